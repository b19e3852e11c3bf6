"""Multi-turn comparisons end to end: a TRL conversational file whose conversations differ from an earlier
assistant turn on is ingested, trained on by a tiny chat-template decoder, evaluated and scored."""

import json
import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from rmcore.config import DataConfig, load_config
from rmcore.data.pairs import load_pairs
from rmcore.model.inference import response_contexts
from rmcore.scoring import load_trained, score_file
from rmcore.training.recipe import train

GOOD = ["helpful", "clear", "correct", "careful", "kind", "precise"]
BAD = ["rude", "wrong", "lazy", "vague", "false", "sloppy"]


def conversations(n: int, seed: int) -> list[dict[str, object]]:
    """TRL rows: a question, a first answer, a follow-up, a final answer; chosen's final answer uses
    GOOD words, rejected's BAD ones. Every other row's first answers differ too (a multi-turn response)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        first = f"first reply {i}"
        other_first = first if i % 2 else f"another first reply {i}"
        sides = [
            [
                {"role": "user", "content": f"question {i} of set {seed}"},
                {"role": "assistant", "content": opening},
                {"role": "user", "content": "and then?"},
                {"role": "assistant", "content": " ".join(rng.sample(words, 2))},
            ]
            for opening, words in ((first, GOOD), (other_first, BAD))
        ]
        rows.append({"chosen": sides[0], "rejected": sides[1]})
    return rows


@pytest.fixture(scope="module")
def trained(tiny_decoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("multiturn")
    for name, n, seed in (("train", 96, 1), ("eval", 24, 2)):
        (folder / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in conversations(n, seed)) + "\n")
    config = load_config(
        None,
        [
            f"model.name_or_path={tiny_decoder_dir}",
            "model.max_length=96",
            "model.precision=fp32",
            f"data.train={folder / 'train.jsonl'}",
            f"data.eval={folder / 'eval.jsonl'}",
            f"output_dir={folder / 'run'}",
            "train.batch_size=16",
            "train.lr=3e-3",
            "train.epochs=6",
        ],
    )
    result = train(config, progress=False)
    # a tiny decoder learns which final replies are preferred, read after their conversations
    assert result["eval"]["accuracy"] >= 0.9, result["eval"]
    held_out = load_pairs(folder / "eval.jsonl", "validation", DataConfig(), folder / "eval-lake")
    pq.write_table(held_out.pairs, folder / "eval_pairs.parquet")
    return Path(result["model_dir"]), folder / "eval_pairs.parquet"


def test_multi_turn_pairs_keep_their_leading_turns_through_ingest(trained: tuple[Path, Path]) -> None:
    # given the ingested held-out file (every split of it)
    pairs = pq.read_table(trained[1])
    assert pairs.num_rows == 24
    # then each pair's prompt is the shared question; where the first replies differed, each side keeps
    # its first reply and the follow-up as leading turns, and elsewhere the prompt runs to the follow-up
    rows = pairs.to_pylist()
    multi = [r for r in rows if r["chosen_turns"]]
    single = [r for r in rows if not r["chosen_turns"]]
    assert multi and single
    for r in multi:
        assert len(r["prompt"]) == 1
        assert [m["role"] for m in r["chosen_turns"]] == [m["role"] for m in r["rejected_turns"]]
        assert [m["role"] for m in r["chosen_turns"]] == ["assistant", "user"]
        assert r["chosen_turns"][0]["content"].startswith("first reply")
        assert r["rejected_turns"][0]["content"].startswith("another first reply")
    for r in single:
        assert [m["role"] for m in r["prompt"]] == ["user", "assistant", "user"] and not r["rejected_turns"]


def test_a_multi_turn_model_scores_rows_as_evaluation_scores_pairs(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    # given the trained decoder and its held-out pairs as scoring rows whose response is the whole
    # continuation (leading turns, then the final reply), chosen rows then rejected rows
    model_dir, pair_file = trained
    pairs = pq.read_table(pair_file)
    rows = []
    for side in ("chosen", "rejected"):
        turns = pairs.column(f"{side}_turns").to_pylist()
        for prompt, lead, reply in zip(
            pairs.column("prompt").to_pylist(), turns, pairs.column(side).to_pylist(), strict=True
        ):
            rows.append({"prompt": prompt, "response": [*lead, {"role": "assistant", "content": reply}]})
    source = tmp_path / "rows.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n")

    # when they are scored
    score_file(model_dir, source, tmp_path / "scores.parquet")

    # then each row's reward is the one evaluation gives that side of the pair
    model = load_trained(model_dir)
    chosen, rejected = model.scorer(max_tokens=4096).pair_rewards(pairs)
    scores = pq.read_table(tmp_path / "scores.parquet").column("reward").to_numpy()
    np.testing.assert_allclose(scores, np.concatenate([chosen, rejected]), atol=1e-5)
    # and the leading turns reach the model: the final replies read after the prompt alone score otherwise
    without = model.scorer().row_rewards(
        pairs.column("prompt").to_pylist(), pairs.column("chosen").to_pylist()
    )
    multi = [i for i, lead in enumerate(pairs.column("chosen_turns").to_pylist()) if lead]
    assert multi and not np.allclose(without[multi], chosen[multi], atol=1e-3)
    assert response_contexts(pairs, "chosen")[multi[0]][1:] == pairs.column("chosen_turns")[multi[0]].as_py()
