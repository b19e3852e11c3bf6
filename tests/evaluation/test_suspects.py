"""Suspect labels: the held-out pairs a trained model contradicts, with who voted, and the model's
agreement with each annotator's own votes."""

import json
import random
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from rmcore.cli import main as cli
from rmcore.config import IngestConfig, PairsConfig, SplitConfig
from rmcore.data.ingest import ingest
from rmcore.data.lake import Lake
from rmcore.data.pairs import build_pairs, read_split
from rmcore.scoring import load_trained

GOOD = ["helpful", "clear", "correct", "careful", "kind", "precise", "useful", "honest"]
BAD = ["rude", "wrong", "lazy", "vague", "false", "careless", "useless", "sloppy"]
FILLER = ["the", "answer", "is", "about", "this", "topic", "and", "it", "seems", "to", "be"]
FLIPPED = range(0, 24, 4)
"""The prompts whose only vote, the contrarian's, prefers the response with BAD words."""


def crowd(seed: int = 7) -> list[dict[str, str]]:
    """Votes on 24 pairs like the tiny model's training pairs (GOOD words beat BAD words). Three careful
    annotators vote for the GOOD response and the contrarian against it on every pair; on the FLIPPED
    pairs the contrarian alone votes, so its wrong vote is the pair's label."""
    rng = random.Random(seed)

    def response(words: list[str]) -> str:
        text = rng.sample(FILLER, 5) + rng.sample(words, 2)
        rng.shuffle(text)
        return " ".join(text)

    rows = []
    for i in range(24):
        pair = {
            "prompt": f"question number {i} from set 9",
            "response_a": response(GOOD),
            "response_b": response(BAD),
        }
        voters = ["contrarian"] if i in FLIPPED else ["careful-1", "careful-2", "careful-3", "contrarian"]
        rows += [pair | {"annotator": a, "label": "b" if a == "contrarian" else "a"} for a in voters]
    return rows


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """The crowd's votes ingested into a lake whose pairs are all in one split."""
    path = tmp_path / "crowd.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in crowd()))
    root = tmp_path / "lake"
    ingest(Lake(root), [path], IngestConfig())
    build_pairs(Lake(root), SplitConfig(train=0, validation=0, test=1), PairsConfig())
    return root


def number(row: dict) -> int:
    return int(row["prompt"][0]["content"].split()[2])


def test_suspects_are_the_pairs_the_model_contradicts_with_their_voters(
    tiny_trained: tuple[Path, Path], lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a model that prefers GOOD words, and labels where the contrarian alone decided 6 pairs
    model_dir, _ = tiny_trained
    out = tmp_path / "suspects.parquet"
    # when it evaluates the lake's pairs and writes its suspects
    args = ["evaluate", "--model", str(model_dir), "--pairs", str(lake), "--suspects", str(out), "--json"]
    assert cli(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # then the suspects are the pairs where the model's probability q for the rejected side is over 1/2,
    # q = sigmoid(r_rejected - r_chosen) recomputed here, surest first
    pairs = read_split(Lake(lake), "pairs", ("test",))
    chosen, rejected = load_trained(model_dir).scorer().pair_rewards(pairs)
    q = 1 / (1 + np.exp(chosen - rejected))
    expected = sorted((i for i in range(len(q)) if q[i] > 0.5), key=lambda i: -q[i])
    suspects = pq.read_table(out).to_pylist()
    assert summary["suspects"] == {"path": str(out), "pairs": len(expected)}
    assert [row["pair_id"] for row in suspects] == [pairs["pair_id"][i].as_py() for i in expected]
    np.testing.assert_allclose([row["model_p_rejected"] for row in suspects], q[expected], rtol=1e-6)
    assert [row["rank"] for row in suspects] == list(range(1, len(expected) + 1))
    # and most of them are the pairs the contrarian decided alone
    assert len({number(row) for row in suspects} & set(FLIPPED)) >= 4
    # and each lists who voted, for which side, with their agreement with the others: the contrarian
    # agrees on none of the 18 pairs it shares with the careful annotators, who agree on all of them
    for row in suspects:
        flipped = number(row) in FLIPPED
        who = ["contrarian"] if flipped else ["careful-1", "careful-2", "careful-3", "contrarian"]
        side = {a: "chosen" if (a == "contrarian") == flipped else "rejected" for a in who}
        agreement = {"contrarian": 0.0, "careful-1": 1.0, "careful-2": 1.0, "careful-3": 1.0}
        assert sorted(row["voters"], key=lambda v: v["annotator"]) == [
            {"annotator": a, "vote": side[a], "agreement": agreement[a]} for a in sorted(who)
        ]
    # and the model's agreement with each annotator's own votes is the share of them it rewards alike:
    # the careful ones vote for the GOOD response, the contrarian for the BAD one
    good_first = np.array([any(w in c for w in GOOD) for c in pairs["chosen"].to_pylist()])
    prefers_good = np.where(good_first, chosen > rejected, rejected > chosen)
    numbers = [number(r) for r in pairs.to_pylist()]
    by_annotator = {row["annotator"]: row for row in summary["annotators"]}
    careful = [prefers_good[i] for i, n in enumerate(numbers) if n not in FLIPPED]
    assert by_annotator["careful-1"]["votes"] == 18
    assert by_annotator["careful-1"]["model_agreement"] == pytest.approx(np.mean(careful))
    assert by_annotator["contrarian"]["votes"] == 24
    assert by_annotator["contrarian"]["model_agreement"] == pytest.approx(1 - np.mean(prefers_good))
    assert summary["annotators"][0]["annotator"] == "contrarian"


def test_suspects_as_csv_flatten_the_prompt_and_voters(
    tiny_trained: tuple[Path, Path], lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir, _ = tiny_trained
    parquet, csv = tmp_path / "suspects.parquet", tmp_path / "suspects.csv"
    for out in (parquet, csv):
        assert cli(["evaluate", "--model", str(model_dir), "--pairs", str(lake), "--suspects", str(out)]) == 0
        assert f"-> {out}" in capsys.readouterr().out
    nested, flat = pq.read_table(parquet).to_pylist(), pacsv.read_csv(csv).to_pylist()
    assert [row["pair_id"] for row in flat] == [row["pair_id"] for row in nested]
    assert flat[0]["prompt"] == f"User: {nested[0]['prompt'][0]['content']}"
    voters = nested[0]["voters"]
    assert flat[0]["voters"] == "; ".join(
        f"{v['annotator']}: {v['vote']} ({v['agreement']:.2f})" for v in voters
    )


def test_a_bare_pair_file_has_suspects_but_no_voters(
    tiny_trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir, pair_file = tiny_trained
    out = tmp_path / "suspects.parquet"
    args = [
        "evaluate",
        "--model",
        str(model_dir),
        "--pairs",
        str(pair_file),
        "--suspects",
        str(out),
        "--json",
    ]
    assert cli(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["annotators"] == []
    assert all(row["voters"] == [] for row in pq.read_table(out).to_pylist())
