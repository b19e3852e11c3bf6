"""The visual evaluation report: PNG plots and an HTML page from a model's scores on pairs."""

import base64
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from rmcore.cli import main as cli
from rmcore.evaluation.metrics import pair_metrics
from rmcore.evaluation.report import PLOTS, write_eval_report

REPORT_FILES = {*PLOTS, "report.html", "report.md"}
MAX_PNG_BYTES = 150_000


def scored_pairs(
    n: int,
    seed: int = 0,
    sources: tuple[str, ...] = ("hh", "oasst", "tulu"),
    votes: tuple[int, ...] = (1, 2, 3, 5),
    conflict_every: int = 7,
) -> tuple[np.ndarray, np.ndarray, pa.Table]:
    """Rewards (n,) x 2 and a pair table: chosen mostly scored higher, lengths of 5 to ~2000 characters,
    every `conflict_every`-th pair (0 for none) a conflict (p_chosen = 0.5)."""
    rng = np.random.default_rng(seed)
    n_votes = rng.choice(votes, n)
    conflict = np.array([bool(conflict_every) and i % conflict_every == 0 for i in range(n)], dtype=bool)
    p = np.where(conflict, 0.5, np.where(n_votes == 1, 1.0, rng.choice([0.6, 0.8, 1.0], n)))
    lengths = (np.exp(rng.normal(4, 1.2, (2, n))) + 5).astype(int)
    chosen = rng.normal(0.5, 1.0, n)
    rejected = chosen - rng.normal(0.8, 1.2, n)
    table = pa.table(
        {
            "chosen": pa.array(["c" * int(k) for k in lengths[0]], pa.string()),
            "rejected": pa.array(["r" * int(k) for k in lengths[1]], pa.string()),
            "p_chosen": p,
            "n_votes": n_votes.astype(np.int64),
            "conflict": conflict,
            "source": pa.array([sources[i % len(sources)] for i in range(n)], pa.string()),
        }
    )
    return chosen, rejected, table


def assert_valid_report(files: dict[str, Path], out: Path) -> None:
    """Every report file exists in `out` (nothing else, no temporary file) and each PNG reads back."""
    assert set(files) == REPORT_FILES
    assert sorted(p.name for p in out.iterdir()) == sorted(REPORT_FILES)
    for name in PLOTS:
        assert 1_000 < files[name].stat().st_size < MAX_PNG_BYTES, name
        with Image.open(files[name]) as image:
            image.verify()
        with Image.open(files[name]) as image:
            width, height = image.size
        assert image.format == "PNG" and 500 <= width <= 1100 and 400 <= height <= 600, (name, image.size)


def test_report_writes_every_plot_and_a_page_that_embeds_them(tmp_path: Path) -> None:
    # given 300 scored pairs from three sources with multi-vote pairs and conflicts
    chosen, rejected, pairs = scored_pairs(300)
    metrics = pair_metrics(chosen, rejected, pairs)

    # when the report is written
    files = write_eval_report(chosen, rejected, pairs, metrics, tmp_path / "report", title="Run 7 on test")

    # then every plot is a valid PNG of sensible size
    assert_valid_report(files, tmp_path / "report")
    # and the HTML embeds every plot byte for byte, under its title, with the headline figures
    page = files["report.html"].read_text(encoding="utf-8")
    for name in PLOTS:
        assert base64.b64encode(files[name].read_bytes()).decode("ascii") in page
    assert "<h1>Run 7 on test</h1>" in page
    assert f"{100 * metrics['accuracy']:.1f}%" in page
    assert f"{metrics['calibration']['ece']:.4f}" in page
    assert f"{100 * metrics['baselines']['longer_wins']['accuracy']:.1f}%" in page
    assert f"{metrics['n_pairs']} ({metrics['n_decided']} decided, {metrics['n_conflict']} conflicts)" in page
    # and the markdown is the metrics report under the title, linking every plot
    markdown = files["report.md"].read_text(encoding="utf-8")
    assert markdown.startswith("# Run 7 on test\n") and "## Accuracy by group" in markdown
    assert all(f"]({name})" in markdown for name in PLOTS)


@pytest.mark.parametrize(
    "case",
    [
        {"n": 40, "sources": ("only",)},
        {"n": 40, "votes": (1,)},
        {"n": 10, "conflict_every": 1},
        {"n": 1, "conflict_every": 0},
        {"n": 0},
        {"n": 60, "sources": tuple(f"source-{i:02d}-with-a-rather-long-name" for i in range(25))},
        {"n": 5000},
    ],
    ids=[
        "single source",
        "no multi-vote pairs",
        "all conflicts",
        "one pair",
        "empty table",
        "25 sources",
        "5000 pairs",
    ],
)
def test_report_handles_edge_cases(tmp_path: Path, case: dict) -> None:
    # given an unusual set of scored pairs
    chosen, rejected, pairs = scored_pairs(**case)
    metrics = pair_metrics(chosen, rejected, pairs)

    # when the report is written, then it does not fail and every file is valid
    files = write_eval_report(chosen, rejected, pairs, metrics, tmp_path)
    assert_valid_report(files, tmp_path)
    # and an undefined headline says so
    if metrics["accuracy"] is None:
        assert "<td>accuracy (strict)</td><td>n/a</td>" in files["report.html"].read_text(encoding="utf-8")


def test_report_refuses_rewards_that_do_not_match_the_table(tmp_path: Path) -> None:
    chosen, rejected, pairs = scored_pairs(5)
    metrics = pair_metrics(chosen, rejected, pairs)
    with pytest.raises(ValueError, match="table of 4 pairs"):
        write_eval_report(chosen, rejected, pairs.slice(0, 4), metrics, tmp_path)


@pytest.mark.slow
def test_cli_evaluate_writes_the_report(
    tiny_trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a tiny model trained for a few steps and its held-out pair file
    model_dir, eval_file = tiny_trained

    # when `rmcore evaluate --report` runs on the held-out pairs
    argv = ["evaluate", "--model", str(model_dir), "--pairs", str(eval_file)]
    assert cli([*argv, "--report", str(tmp_path / "report"), "--json"]) == 0

    # then the report is written and its files are listed with the metrics
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["n_pairs"] == 24
    assert_valid_report({name: Path(path) for name, path in metrics["report"].items()}, tmp_path / "report")
    assert f"{100 * metrics['accuracy']:.1f}%" in (tmp_path / "report" / "report.html").read_text()
