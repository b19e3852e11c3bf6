"""`rmcore evaluate` takes its settings from --config: how a label file becomes pairs (data), and the
batch budget (train.max_tokens)."""

import json
from pathlib import Path

import pytest

from rmcore.cli import main as cli

ROWS = [
    (
        "question number 1 from set 2",
        "the answer is helpful and correct",
        "the answer is rude and wrong",
        "a",
        "x",
    ),
    ("question number 2 from set 2", "it seems clear and kind", "it seems vague and lazy", "a", "x"),
    ("question number 3 from set 2", "this topic is precise", "this topic is sloppy", "a", "x"),
    ("question number 3 from set 2", "this topic is precise", "this topic is sloppy", "b", "y"),
]
"""Three pairs in the labelled format; the third has two annotators who disagree (a conflict)."""


@pytest.fixture
def labels(tmp_path: Path) -> Path:
    path = tmp_path / "labels.jsonl"
    keys = ("prompt", "response_a", "response_b", "label", "annotator")
    path.write_text("".join(json.dumps(dict(zip(keys, row, strict=True))) + "\n" for row in ROWS))
    return path


def test_evaluate_reads_label_files_with_the_configs_data_settings(
    tiny_trained: tuple[Path, Path], labels: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir, _ = tiny_trained
    # given the defaults, which keep a conflict (flagged, left out of accuracy)
    assert cli(["evaluate", "--model", str(model_dir), "--pairs", str(labels), "--json"]) == 0
    kept = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (kept["n_pairs"], kept["n_conflict"]) == (3, 1)

    # when --config says to drop conflicts
    config = tmp_path / "drop.yaml"
    config.write_text("data:\n  pairs:\n    drop_conflicts: true\ntrain:\n  max_tokens: 64\n")
    argv = ["evaluate", "--model", str(model_dir), "--pairs", str(labels), "--config", str(config), "--json"]
    assert cli(argv) == 0
    dropped = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    # then the conflict is not among the pairs, and the decided pairs score the same
    assert (dropped["n_pairs"], dropped["n_conflict"]) == (2, 0)
    assert dropped["accuracy"] == kept["accuracy"]
    assert dropped["loss"] == pytest.approx(kept["loss"], abs=1e-6)
