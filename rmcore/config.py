"""Pipeline configuration: typed, validated, unknown keys refused, every problem reported at once.

rmcore ingest data/raw --config configs/default.yaml
"""

from pathlib import Path
from typing import Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class Strict(BaseModel):
    """A config group that refuses unknown keys and is immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class IngestConfig(Strict):
    """How raw label files become comparisons."""

    max_chars: int = Field(100_000, gt=0)
    """Longest accepted prompt or response, in characters; longer rows are quarantined."""
    include_synthetic: bool = False
    """Ingest OpenAssistant trees marked synthetic (quarantined by default)."""
    raw_text_chars: int = Field(2_000, gt=0)
    """How much of a rejected row's raw text the rejects table keeps."""
    workers: int = Field(0, ge=0)
    """Processes that stage one large plain JSONL file in parallel chunks (0: one per CPU)."""
    chunk_bytes: int = Field(64 << 20, gt=0)
    """Smallest chunk of a file worth a worker process, in bytes."""


class SplitConfig(Strict):
    """Fractions of prompts per split; a prompt's split is a pure function of its hash."""

    train: float = Field(0.8, ge=0, le=1)
    """Share of prompts in the train split."""
    validation: float = Field(0.1, ge=0, le=1)
    """Share of prompts in the validation split."""
    test: float = Field(0.1, ge=0, le=1)
    """Share of prompts in the test split."""

    @model_validator(mode="after")
    def _sums_to_one(self) -> Self:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"split fractions must sum to 1, got {total:g}")
        return self


class PairsConfig(Strict):
    """How comparisons become pair datasets."""

    drop_conflicts: bool = False
    """Leave out pairs whose votes are split evenly (p_chosen = 0.5); they are always flagged."""


class DataConfig(Strict):
    """Where the data lives and how it is processed."""

    lake: Path = Path("data/lake")
    """Root of the Parquet lake."""
    raw: Path = Path("data/raw")
    """Where incoming label files land."""
    ingest: IngestConfig = IngestConfig()
    splits: SplitConfig = SplitConfig()
    pairs: PairsConfig = PairsConfig()


class Config(Strict):
    """The whole pipeline's configuration."""

    data: DataConfig = DataConfig()


class ConfigError(Exception):
    """A config file that cannot be used; the message lists every problem."""


def load_config(path: Path | None) -> Config:
    """The config in a YAML file (defaults for everything it leaves out), or the defaults."""
    if path is None:
        return Config()
    if not path.exists():
        raise ConfigError(f"config file not found: {path} (see configs/default.yaml)")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    try:
        return Config.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in error.errors()
        )
        raise ConfigError(f"{path}: {error.error_count()} problem(s): {problems}") from error
