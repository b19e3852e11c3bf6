"""Use a trained reward model: load it, score (prompt, response) rows, evaluate it on pairs.

rmcore score --model runs/latest/model rows.jsonl --output scores.parquet
rmcore evaluate --model runs/latest/model --pairs data/lake/pairs/test.parquet --json
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import torch

from rmcore.config import DataConfig, ModelConfig
from rmcore.data import fields
from rmcore.data.atomic import write_table, write_text
from rmcore.data.containers import records
from rmcore.data.pairsets import load_pairs
from rmcore.data.records import RowRejected
from rmcore.evaluate import pair_metrics
from rmcore.model.reward import RewardModel, build_reward_model
from rmcore.model.tokenize import encode_many
from rmcore.train import METADATA, autocast_dtype, score_pairs, score_sequences


@dataclass(frozen=True)
class TrainedModel:
    """A reward model with what training recorded beside it (reward mean and std for normalizing)."""

    rm: RewardModel
    reward_mean: float | None
    reward_std: float | None
    dtype: torch.dtype | None
    metadata: dict[str, Any]


def load_trained(model_dir: Path) -> TrainedModel:
    """A model directory written by `rmcore train` (weights, tokenizer, rmcore.json)."""
    meta_path = model_dir / METADATA
    if not meta_path.exists():
        raise FileNotFoundError(f"{model_dir}: no {METADATA}; train one with `rmcore train` first")
    meta = orjson.loads(meta_path.read_bytes())
    cfg = ModelConfig(
        name_or_path=str(model_dir),
        max_length=meta["max_length"],
        pooling=meta["pooling"],
        rendering=meta["rendering"],
    )
    rm = build_reward_model(cfg)
    rm.tokenizer.padding_side = meta.get("padding_side", rm.tokenizer.padding_side)
    rm.model.eval()
    precision = meta.get("config", {}).get("model", {}).get("precision", "auto")
    dtype = autocast_dtype(precision, rm.model.device)
    return TrainedModel(rm, meta.get("reward_mean"), meta.get("reward_std"), dtype, meta)


def read_rows(path: Path) -> tuple[list[list[dict[str, str]]], list[str]]:
    """(prompt messages, response) of every row of a JSONL/JSON/CSV/Parquet file with those fields."""
    prompts, responses = [], []
    for raw in records(path):
        if raw.error is not None or raw.value is None:
            raise ValueError(f"{path}: row {raw.row}: {raw.error}")
        try:
            prompt = fields.messages(fields.present(raw.value, "prompt"), "prompt")
            response = fields.text(raw.value, "response")
        except RowRejected as why:
            raise ValueError(f"{path}: row {raw.row}: {why.detail}") from why
        prompts.append([{"role": m.role, "content": m.content} for m in prompt])
        responses.append(response)
    return prompts, responses


def score_rows(
    trained: TrainedModel, prompts: list[list[dict[str, str]]], responses: list[str], max_tokens: int = 16_384
) -> tuple[np.ndarray, np.ndarray | None]:
    """Raw rewards, and rewards normalized by the held-out mean and std stored with the model."""
    sequences = encode_many(trained.rm, prompts, responses)
    raw = score_sequences(trained.rm, sequences, max_tokens, trained.dtype, trained.rm.model.device)
    if trained.reward_mean is None or not trained.reward_std:
        return raw, None
    return raw, (raw - trained.reward_mean) / trained.reward_std


def score_file(model_dir: Path, source: Path, output: Path) -> dict[str, Any]:
    """Score every row of `source` into `output` (Parquet, or JSONL by its suffix); a summary."""
    trained = load_trained(model_dir)
    prompts, responses = read_rows(source)
    with torch.no_grad():
        raw, normalized = score_rows(trained, prompts, responses)
    table = pa.table(
        {
            "prompt": prompts,
            "response": responses,
            "reward": raw,
            "reward_normalized": normalized if normalized is not None else pa.nulls(len(raw), pa.float64()),
        }
    )
    if output.suffix in (".jsonl", ".json"):
        lines = (orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY) for row in table.to_pylist())
        write_text(output, "\n".join(line.decode() for line in lines) + "\n")
    else:
        write_table(output, table)
    return {"rows": len(raw), "output": str(output), "reward_mean": float(raw.mean()) if len(raw) else None}


@dataclass(frozen=True)
class Evaluation:
    """A model's scores on a pair table and `pair_metrics` of them."""

    metrics: dict[str, Any]
    chosen: np.ndarray
    """Rewards of each pair's chosen response, (p,), in the table's order."""
    rejected: np.ndarray
    """Rewards of each pair's rejected response, (p,)."""
    pairs: pa.Table


def evaluation(model_dir: Path, pairs: Path, split: str = "test") -> Evaluation:
    """Scores and metrics of a trained model on pairs: a pair file, a lake (its `split`), or a label file."""
    trained = load_trained(model_dir)
    with tempfile.TemporaryDirectory(prefix="rmcore-eval-") as scratch:
        data = load_pairs(pairs, split, DataConfig(), Path(scratch) / "lake")
    chosen, rejected = score_pairs(trained.rm, data, 16_384, trained.dtype, trained.rm.model.device)
    return Evaluation(pair_metrics(chosen, rejected, data.pairs), chosen, rejected, data.pairs)
