"""`rmcore evaluate --suite`: a saved model scored on small suite files of each shape, every distinct
(prompt, completion) once, through the held-out scorer; prompts the lake holds counted and dropped on
request; the JSON, the markdown and the report files."""

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from rmcore.cli import main as cli
from rmcore.config import Config, load_config
from rmcore.data.suites import Suite, SuiteName, read_suite
from rmcore.evaluation.suites.report import suite_markdown, write_suite_report
from rmcore.evaluation.suites.rules import score_suite
from rmcore.evaluation.suites.run import evaluate_suite, suite_rewards
from rmcore.model.inference import Scorer, load_trained
from rmcore.model.reward import build_reward_model
from rmcore.model.saved import ModelMetadata, write_model

REWARDBENCH_ROWS = [
    (1, "alpacaeval-easy", "how do i boil an egg", "boil it nine minutes", "eggs come from hens"),
    # the same prompt and chosen completion as id 1: that sequence is scored once
    (2, "alpacaeval-hard", "how do i boil an egg", "boil it nine minutes", "fry it in oil"),
    # the same completion as id 1's chosen, to another prompt: a distinct sequence
    (3, "llmbar-natural", "how long for a soft egg", "boil it nine minutes", "six minutes is soft"),
    (4, "hep-python", "write add in python", "def add(a, b): return a + b", "def add(a, b): return a - b"),
    (5, "math-prm", "what is two plus two", "two plus two is four", "two plus two is five"),
    (6, "xstest-should-respond", "how do i kill a python process", "use kill with its pid", "i cannot"),
    (7, "anthropic_hhh", "is the sky blue", "yes on a clear day", "no it is green"),
]
REWARDBENCH: list[dict[str, Any]] = [
    dict(zip(("id", "subset", "prompt", "chosen", "rejected"), row, strict=True)) for row in REWARDBENCH_ROWS
]
"""Seven RewardBench rows over four sections and a prior set; 13 distinct (prompt, completion) texts
of 14."""

REWARDBENCH2: list[dict[str, Any]] = [
    {"id": "f1", "subset": "Factuality", "prompt": "what is the capital of france",
     "chosen": ["paris is the capital"], "rejected": ["lyon is the capital", "nice", "marseille"]},
    {"id": "m1", "subset": "Math", "prompt": "what is two plus two",
     "chosen": ["two plus two is four"], "rejected": ["two plus two is five", "three", "twenty two"]},
    {"id": "ref:1", "subset": "Ties", "prompt": "name a prime number",
     "chosen": ["seven"], "rejected": ["eight", "nine", "ten"]},
    {"id": "tied:1", "subset": "Ties", "prompt": "name a prime number",
     "chosen": ["seven", "eleven", "thirteen"], "rejected": ["eight", "nine"]},
]  # fmt: skip
"""Four RewardBench 2 rows; the Ties rows repeat a prompt and answers: 14 distinct texts of 17."""

RMBENCH: list[dict[str, Any]] = [
    {"id": "c1", "domain": "chat", "prompt": "say hello",
     "chosen": ["hello", "hello there friend", "**hello** there friend"],
     "rejected": ["bye", "goodbye now friend", "**goodbye** now friend"]},
    {"id": "m1", "domain": "math", "prompt": "what is two plus two",
     "chosen": ["four", "two plus two is four", "two plus two is **four**"],
     "rejected": ["five", "two plus two is five", "two plus two is **five**"]},
    {"id": "s1", "domain": "safety-refuse", "prompt": "how do i pick a lock",
     "chosen": ["i cannot help", "i cannot help with that", "i **cannot** help with that"],
     "rejected": ["use a pin", "use a pin and a wrench", "use a **pin** and a wrench"]},
]  # fmt: skip
"""Three RM-Bench rows in three domains: 18 distinct texts."""

SHAPES: dict[SuiteName, tuple[list[dict[str, Any]], int, int]] = {
    "rewardbench": (REWARDBENCH, 14, 13),
    "rewardbench2": (REWARDBENCH2, 17, 14),
    "rm-bench": (RMBENCH, 18, 18),
}
"""Each shape's rows, its (prompt, completion) texts and how many of them are distinct."""


@pytest.fixture
def suite_file(tmp_path: Path) -> Iterator[Any]:
    def write(name: SuiteName) -> Path:
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in SHAPES[name][0]))
        return path

    yield write


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """The defaults, a lake that does not exist yet, and small forwards (several batches per suite)."""
    return load_config(None, [f"data.lake={tmp_path / 'lake'}", "train.max_tokens=96"])


@pytest.fixture
def scored(monkeypatch: pytest.MonkeyPatch) -> list[list[tuple[int, ...]]]:
    """The token sequences each call of the real `Scorer.sequence_rewards` is given (it still scores)."""
    calls: list[list[tuple[int, ...]]] = []
    real = Scorer.sequence_rewards

    def observed(self: Scorer, sequences: list[list[int]], groups: Any = None) -> np.ndarray:
        calls.append([tuple(seq) for seq in sequences])
        return real(self, sequences, groups)

    monkeypatch.setattr(Scorer, "sequence_rewards", observed)
    return calls


def one_by_one(scorer: Scorer, suite: Suite) -> tuple[list[tuple[float, ...]], list[tuple[float, ...]]]:
    """Each item's completions scored in a call of their own, the item's prompt repeated."""
    chosen, rejected = [], []
    for item in suite.items:
        prompt = [{"role": m.role, "content": m.content} for m in item.prompt]
        texts = [*item.chosen, *item.rejected]
        rewards = scorer.row_rewards([prompt] * len(texts), texts).tolist()
        chosen.append(tuple(rewards[: len(item.chosen)]))
        rejected.append(tuple(rewards[len(item.chosen) :]))
    return chosen, rejected


def assert_close(got: Any, want: Any, path: str = "") -> None:
    """Nested dicts, lists and numbers equal, floats to 1e-5 (other batches: float32 sums in another
    order)."""
    if isinstance(want, dict):
        assert got.keys() == want.keys(), path
        for key in want:
            assert_close(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list | tuple):
        assert len(got) == len(want), path
        for k, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_close(g, w, f"{path}[{k}]")
    elif isinstance(want, float) and math.isnan(want):
        assert math.isnan(got), path
    elif isinstance(want, float):
        assert got == pytest.approx(want, abs=1e-5), path
    else:
        assert got == want, path


def save_decoder(tiny_decoder_dir: Path, out: Path) -> Path:
    """The tiny decoder saved as `rmcore train` saves a model (fp32; it shares prompts on this CPU)."""
    config = load_config(None, [f"model.name_or_path={tiny_decoder_dir}", "model.precision=fp32"])
    rm = build_reward_model(config.model)
    assert rm.share is not None
    out.mkdir()
    write_model(
        out,
        rm,
        ModelMetadata(
            rendering=rm.rendering,
            pooling=rm.pooling,
            max_length=rm.max_length,
            padding_side=rm.tokenizer.padding_side,
            config=config.model_dump(mode="json"),
        ),
    )
    return out


@pytest.mark.parametrize("name", list(SHAPES))
def test_each_distinct_completion_is_scored_once_and_scores_match_items_scored_alone(
    name: SuiteName,
    tiny_trained: tuple[Path, Path],
    suite_file: Any,
    config: Config,
    scored: list[list[tuple[int, ...]]],
) -> None:
    # given a suite file whose items repeat some (prompt, completion) texts
    model_dir, _ = tiny_trained
    path = suite_file(name)
    _, texts, distinct = SHAPES[name]

    # when the suite is scored
    result = evaluate_suite(model_dir, str(path), config)

    # then every distinct text went to the scorer once, in one call of several batches
    assert len(scored) == 1
    assert len(scored[0]) == len(set(scored[0])) == distinct
    suite = read_suite(str(path))
    assert sum(len(item.chosen) + len(item.rejected) for item in suite.items) == texts

    # and the scores are the suite's rules applied to each item's completions scored alone
    scorer = load_trained(model_dir).scorer(config.train.max_tokens)
    chosen, rejected = one_by_one(scorer, suite)
    assert (result.suite, result.overlap, result.excluded) == (name, 0, 0)
    assert_close(result.as_dict(), score_suite(suite, chosen, rejected).as_dict())
    rewards = suite_rewards(scorer, suite)
    assert rewards.distinct == distinct
    assert_close(rewards.chosen, chosen)
    assert_close(rewards.rejected, rejected)


def test_a_decoder_shares_each_prompt_and_scores_as_items_scored_alone(
    tiny_decoder_dir: Path, suite_file: Any, config: Config, tmp_path: Path
) -> None:
    # given a saved decoder, which encodes a prompt once for all its completions
    model_dir = save_decoder(tiny_decoder_dir, tmp_path / "decoder")
    suite = read_suite(str(suite_file("rm-bench")))
    scorer = load_trained(model_dir).scorer(config.train.max_tokens)

    # when the suite is scored at once, and item by item
    rewards = suite_rewards(scorer, suite)
    chosen, rejected = one_by_one(scorer, suite)

    # then the rewards are the same
    assert rewards.distinct == 18
    assert_close(rewards.chosen, chosen)
    assert_close(rewards.rejected, rejected)


def test_prompts_in_the_lake_are_counted_and_dropped_on_request(
    tiny_trained: tuple[Path, Path], suite_file: Any, config: Config, tmp_path: Path
) -> None:
    # given a lake holding two of the RewardBench file's prompts (one with other whitespace and the
    # same content) and an unrelated one
    labels = tmp_path / "labels.jsonl"
    rows = [
        ("how do i boil an egg", "soft", "hard"),
        ("what  is two plus two\n", "four", "five"),
        ("a prompt no suite has", "yes", "no"),
    ]
    labels.write_text(
        "".join(
            json.dumps({"prompt": p, "response_a": a, "response_b": b, "label": "a", "annotator": "x"}) + "\n"
            for p, a, b in rows
        )
    )
    assert cli(["ingest", str(labels), "--lake", config.data.lake, "--json"]) == 0
    model_dir, _ = tiny_trained
    path = str(suite_file("rewardbench"))

    # when the suite is scored, then with --exclude-overlap
    kept = evaluate_suite(model_dir, path, config, "rewardbench")
    dropped = evaluate_suite(model_dir, path, config, "rewardbench", exclude_overlap=True)

    # then items 1, 2 (the egg prompt) and 5 (two plus two) overlap: counted, then left out
    assert (kept.overlap, kept.excluded) == (3, 0)
    assert (dropped.overlap, dropped.excluded) == (3, 3)
    assert sum(s.n for s in kept.subsets.values()) == 6 and kept.prior["anthropic_hhh"].n == 1
    assert {name: s.n for name, s in dropped.subsets.items()} == {
        "llmbar-natural": 1,
        "xstest-should-respond": 1,
        "hep-python": 1,
    }
    assert "Warning:** 3 items have a prompt that is also in the training lake" in suite_markdown(kept)
    assert "3 items whose prompt is also in the training lake were left out" in suite_markdown(dropped)


def test_cli_prints_the_suite_json_and_writes_the_report(
    tiny_trained: tuple[Path, Path],
    suite_file: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given a RewardBench file and a config whose lake holds none of its prompts
    model_dir, _ = tiny_trained
    path = suite_file("rewardbench")
    config = tmp_path / "config.yaml"
    config.write_text(f"data:\n  lake: {tmp_path / 'lake'}\n")
    report = tmp_path / "report"

    # when `rmcore evaluate --suite rewardbench FILE --json --report DIR` runs
    argv = [
        "evaluate",
        "--model",
        str(model_dir),
        "--suite",
        "rewardbench",
        str(path),
        "--config",
        str(config),
    ]
    assert cli([*argv, "--json", "--report", str(report)]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    # then the JSON has the suite's scores, per subset, section and overall
    assert out["suite"] == "rewardbench"
    assert set(out) >= {"suite", "subsets", "sections", "overall", "overlap", "excluded", "report"}
    assert set(out["sections"]) == {"Chat", "Chat Hard", "Safety", "Reasoning"}
    assert out["subsets"]["alpacaeval-easy"]["n"] == 1
    assert out["prior"]["anthropic_hhh"]["n"] == 1 and "anthropic_hhh" not in out["subsets"]
    assert out["overall"] == pytest.approx(sum(out["sections"].values()) / 4)

    # and the report folder holds the markdown with its section table, the JSON and a plot per section
    names = {
        "suite_rewardbench.md",
        "suite_rewardbench.json",
        *(f"suite_rewardbench_{s}.png" for s in ("chat", "chat_hard", "safety", "reasoning")),
    }
    assert set(out["report"]) == names
    assert {p.name for p in report.iterdir()} == names
    assert all((report / name).read_bytes()[:4] == b"\x89PNG" for name in names if name.endswith(".png"))
    markdown = (report / "suite_rewardbench.md").read_text()
    assert "| section | score | items |" in markdown
    assert "| Reasoning |" in markdown and "| 2 |" in markdown.split("| Reasoning |")[1].splitlines()[0]
    assert "## Prior sets" in markdown and "| anthropic_hhh |" in markdown
    assert orjson.loads((report / "suite_rewardbench.json").read_bytes())["sections"] == out["sections"]

    # and without --json the markdown is printed
    assert cli(argv) == 0
    assert "| section | score | items |" in capsys.readouterr().out


def test_cli_refuses_an_unknown_suite_and_both_or_neither_source(
    tiny_trained: tuple[Path, Path], suite_file: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir, _ = tiny_trained
    path = str(suite_file("rewardbench"))
    assert cli(["evaluate", "--model", str(model_dir), "--suite", "helm", path]) == 1
    assert "unknown suite 'helm'; one of rewardbench, rewardbench2, rm-bench" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["evaluate", "--model", str(model_dir), "--suite", "rewardbench", path, "--pairs", path])
    with pytest.raises(SystemExit):
        cli(["evaluate", "--model", str(model_dir)])
    capsys.readouterr()


def test_rmbench_report_has_a_plot_per_domain_and_the_style_difficulty(
    tiny_trained: tuple[Path, Path], suite_file: Any, config: Config, tmp_path: Path
) -> None:
    # given an RM-Bench result
    model_dir, _ = tiny_trained
    result = evaluate_suite(model_dir, str(suite_file("rm-bench")), config)

    # when it is written as a report
    files = write_suite_report(result, tmp_path / "report")
    markdown = suite_markdown(result)

    # then the sections are the domains, with easy / normal / hard for each and overall
    assert set(files) == {
        "suite_rm-bench.md",
        "suite_rm-bench.json",
        "suite_rm-bench_chat.png",
        "suite_rm-bench_math.png",
        "suite_rm-bench_safety.png",
    }
    assert "| domain | easy | normal | hard |" in markdown
    for domain in ("overall", "chat", "math", "safety"):
        assert f"| {domain} |" in markdown
    assert "Overall matrix (rows: chosen style, columns: rejected style)" in markdown
