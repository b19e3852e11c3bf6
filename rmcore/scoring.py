"""Score (prompt, response) rows with a trained reward model: what `rmcore score` and the pyfunc serve.

rmcore score --model runs/latest/model rows.jsonl --output scores.parquet

Imports the model layer only (rmcore.model.inference and .saved): serving never loads training code.
`TrainedModel`, `load_trained` and `score_rows` are also the names the MLflow pyfunc of a registered
model imports, so models registered by earlier versions keep loading.
"""

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from rmcore.atomic import write_table, write_text
from rmcore.data.formats import fields
from rmcore.data.formats.containers import records
from rmcore.data.records import RowRejected
from rmcore.model.inference import DEFAULT_MAX_TOKENS, TrainedModel, load_trained

__all__ = ["TrainedModel", "load_trained", "read_rows", "score_file", "score_rows", "scoring_inputs"]


def scoring_inputs(rows: Iterable[Mapping[str, Any]]) -> tuple[list[list[dict[str, str]]], list[str]]:
    """(context messages, final reply) of each row. A prompt is a text (one user message) or a message
    list (a conversation so far); a response is a non-empty text, or the messages that continue the
    prompt up to the final assistant reply (a multi-turn response, as pair files carry them: its
    leading turns join the context). ValueError naming the row (0-based) otherwise."""
    prompts, responses = [], []
    for index, row in enumerate(rows):
        try:
            messages = fields.messages(fields.present(row, "prompt"), "prompt")
            response = fields.present(row, "response")
            if isinstance(response, str):
                reply = fields.nonempty(response, "response")
            else:
                leading, reply = fields.split_last_turn(fields.messages(response, "response"), "response")
                messages += leading
        except RowRejected as why:
            raise ValueError(f"row {index}: {why.detail}") from why
        prompts.append([{"role": m.role, "content": m.content} for m in messages])
        responses.append(reply)
    return prompts, responses


def read_rows(path: Path) -> tuple[list[list[dict[str, str]]], list[str]]:
    """(prompt messages, response) of every row of a JSONL/JSON/CSV/Parquet file with those fields."""
    values = []
    for raw in records(path):
        if raw.error is not None or raw.value is None:
            raise ValueError(f"{path}: row {raw.row}: {raw.error}")
        values.append(raw.value)
    try:
        return scoring_inputs(values)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error


def score_rows(
    trained: TrainedModel,
    prompts: list[list[dict[str, str]]],
    responses: list[str],
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Raw rewards, (n,), and rewards normalized by the held-out mean and std stored with the model."""
    raw = trained.scorer(max_tokens).row_rewards(prompts, responses)
    return raw, trained.normalized(raw)


def score_file(model_dir: Path, source: Path, output: Path) -> dict[str, Any]:
    """Score every row of `source` into `output` (Parquet, or JSONL by its suffix); a summary."""
    trained = load_trained(model_dir)
    prompts, responses = read_rows(source)
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
