"""The saved reward model: one directory that plain transformers loads, and what rmcore needs beside it.

    <output_dir>/model/
        config.json, model.safetensors   the backbone and its scalar head (`save_pretrained`)
        tokenizer files                  the tokenizer, with the padding side training used
        rmcore.json                      `ModelMetadata`: how text becomes tokens, where the reward is
                                         read, the held-out reward mean and std, the training data's
                                         hash and the whole training config
        adapter/                         with LoRA only: the peft adapters and head, unmerged

No pickles: weights are safetensors and the metadata is JSON. A directory is published whole (written
under a temporary name, then renamed), so a reader never sees half of one. `read_metadata` is the one
reader of rmcore.json.
"""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError
from torch import Tensor

from rmcore.model.reward import RewardModel, quiet_transformers

MODEL_DIR = "model"
"""The model directory inside a training's output directory."""
METADATA = "rmcore.json"
"""rmcore's metadata file inside a model directory."""
ADAPTER_DIR = "adapter"
"""Inside the model directory, when trained with LoRA: the peft adapters and the scalar head."""


class ModelMetadata(BaseModel):
    """What rmcore.json records beside the weights; unknown keys from newer versions are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    rendering: Literal["chat", "plain"]
    """How a prompt and a response become one token sequence (see rmcore.model.tokenize)."""
    pooling: Literal["first", "last"]
    """Where the reward is read: the first token (encoders) or the last real token (decoders)."""
    max_length: int
    """Longest token sequence; the prompt is cut from the left first."""
    padding_side: Literal["left", "right"] = "right"
    """The tokenizer's padding side during training."""
    reward_mean: float | None = None
    """Mean reward on the held-out pairs at the end of training (None: no held-out pairs)."""
    reward_std: float | None = None
    """Population standard deviation of those rewards: normalized = (reward - mean) / std."""
    train_data_hash: str = ""
    """Content hash of the training pairs."""
    lora_adapter: str | None = None
    """The adapter folder inside the model directory, when trained with LoRA."""
    config: dict[str, Any] = {}
    """The whole training config, as JSON."""

    @property
    def normalizes(self) -> bool:
        """True when normalized rewards can be given: a held-out mean and a non-zero std."""
        return self.reward_mean is not None and bool(self.reward_std)

    @property
    def precision(self) -> str:
        """The training config's model.precision ("auto", "bf16" or "fp32"); scoring uses the same."""
        return str(self.config.get("model", {}).get("precision", "auto"))


def read_metadata(model_dir: Path) -> ModelMetadata:
    """The metadata of a model directory `rmcore train` wrote; a clear error for anything else."""
    path = model_dir / METADATA
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir}: no {METADATA}; train one with `rmcore train` first")
    try:
        return ModelMetadata.model_validate(orjson.loads(path.read_bytes()))
    except (orjson.JSONDecodeError, ValidationError) as error:
        raise ValueError(f"{path}: not rmcore model metadata: {error}") from error


def is_saved_model(model_dir: Path) -> bool:
    """True when `model_dir` is a complete model directory (it is published whole, metadata included)."""
    return (model_dir / METADATA).is_file()


@contextmanager
def publishing(final: Path) -> Iterator[Path]:
    """A temporary directory to fill; on success it replaces `final` in one rename, else it is removed."""
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_model(
    directory: Path, rm: RewardModel, metadata: ModelMetadata, weights: dict[str, Tensor] | None = None
) -> None:
    """Weights (safetensors), tokenizer and rmcore.json into `directory` (one being published).

    `weights`: a state dict to save instead of the model's own (a sharded model's, gathered whole).
    """
    with quiet_transformers():
        rm.model.save_pretrained(directory, state_dict=weights)
        rm.tokenizer.save_pretrained(directory)
    (directory / METADATA).write_bytes(orjson.dumps(metadata.model_dump(), option=orjson.OPT_INDENT_2))
