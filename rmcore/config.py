"""Pipeline configuration: typed, validated, unknown keys refused, every problem reported at once.

rmcore ingest data/raw --config configs/default.yaml
"""

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class Strict(BaseModel):
    """A config group that refuses unknown keys and is immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class IngestConfig(Strict):
    """How raw label files become comparisons."""

    max_chars: int = Field(100_000, gt=0)
    """Longest accepted prompt or response, in characters; longer rows are quarantined."""
    include_synthetic: bool = False
    """Ingest OpenAssistant trees marked synthetic (quarantined by default)."""
    safe_rlhf_preference: Literal["better", "safer"] = "better"
    """Which PKU-SafeRLHF label is the preference: the more helpful response, or the safer one."""
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


Aggregate = Literal["votes", "dawid-skene"]
"""How a pair's judgments become its label (data.pairs.aggregate)."""


class PairsConfig(Strict):
    """How comparisons become pair datasets."""

    drop_conflicts: bool = False
    """Leave out pairs whose votes are split evenly (p_chosen = 0.5); they are always flagged."""
    aggregate: Aggregate = "votes"
    """How a pair's judgments become its label: vote shares, or the Dawid-Skene posterior, which weighs
    each annotator by the reliability the model estimates from all of a source's judgments."""


class DataConfig(Strict):
    """Where the data lives and how it is processed."""

    lake: str = "data/lake"
    """Root of the lake: a local folder, or a URI deltalake opens (s3://, gs://, az://) with credentials
    from the environment as deltalake reads them (AWS_*, GOOGLE_*, AZURE_*)."""
    raw: Path = Path("data/raw")
    """Where incoming label files land."""
    ingest: IngestConfig = IngestConfig()
    splits: SplitConfig = SplitConfig()
    pairs: PairsConfig = PairsConfig()
    train: Path | None = None
    """Training pairs: a pair file in any format ingest reads, or a lake (its train split)."""
    eval: Path | None = None
    """Held-out pairs, as for `train`; None: the validation split of `train`'s lake (or data.lake)."""


class LoraSettings(Strict):
    """Low-rank adapters (peft); the scalar reward head always trains and is saved with them."""

    r: int = Field(16, gt=0)
    """Adapter rank."""
    alpha: int = Field(32, gt=0)
    """Adapter scaling numerator (scale = alpha / r)."""
    dropout: float = Field(0.05, ge=0, lt=1)
    """Dropout on the adapter input."""
    target_modules: list[str] | None = None
    """Module names to adapt; None: peft's default for the architecture."""


class ModelConfig(Strict):
    """The backbone and how sequences reach it."""

    name_or_path: str = "builtin:minilm"
    """A local path or Hugging Face id; builtin:minilm is the offline all-MiniLM-L6-v2 package."""
    max_length: int = Field(256, ge=8)
    """Tokens per (prompt, response) sequence; the prompt is cut from the left first."""
    pooling: Literal["auto", "first", "last"] = "auto"
    """Where the reward is read: first token (encoders), last real token (decoders), or by architecture."""
    rendering: Literal["auto", "chat", "plain"] = "auto"
    """Chat template when the tokenizer has one (auto), always, or the documented plain rendering."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """Autocast dtype: bf16 where the hardware has it (CUDA, CPUs with AMX/AVX512-BF16); fp32 weights."""
    share_prompt: Literal["auto", "on", "off"] = "auto"
    """Decoders encode a prompt once for all its responses in a micro-batch, where that costs less
    (exact: a response never changes its prompt's hidden states). auto: decoders on, encoders off."""

    @field_validator("share_prompt", mode="before")
    @classmethod
    def _yaml_switch(cls, value: object) -> object:
        """YAML reads a bare on / off as true / false."""
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

    prompt_cut: Literal["per_response", "per_prompt"] = "per_response"
    """In training, a prompt too long for max_length keeps as much of its end as each response leaves
    room for (per_response, as scoring does), or the same tail for every response to it (per_prompt:
    as much as its longest response leaves), so that a decoder encodes it once for all of them."""
    attention: Literal["auto", "sdpa", "eager", "flex_attention", "flash_attention_2"] = "auto"
    """The attention implementation. auto: in training on CUDA, flex_attention for a decoder whose rows
    share prompts, else SDPA (on CUDA without cuDNN's kernel, which plans per shape). Shared prompts
    need one that takes a mask: sdpa and eager compute every masked product, flex_attention (CUDA:
    it has no backward on the CPU) skips masked blocks; flash_attention_2 takes none, so share_prompt
    auto leaves sharing off with it."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass to save memory."""
    disable_dropout: bool = True
    """Turn the backbone's dropout off for training (as TRL does); it halved the CPU forward here."""
    lora: LoraSettings | None = None
    """Train low-rank adapters instead of every weight."""


class LossConfig(Strict):
    """The ranking loss and its terms."""

    pairwise: Literal["bradley_terry", "soft"] = "bradley_terry"
    """Bradley-Terry NLL on the majority label, or soft labels from annotator agreement (p_chosen)."""
    margin: bool = False
    """Subtract each pair's graded margin inside the sigmoid (Llama 2)."""
    centering: float = Field(0.0, ge=0)
    """Coefficient of the reward-centering term mean((r_w + r_l)^2)."""
    listwise: bool = False
    """Add the Plackett-Luce loss over rankings of K > 2 responses."""
    group_by_prompt: bool = True
    """Average a prompt's pairs into one element (InstructGPT), so each prompt weighs the same."""

    @model_validator(mode="after")
    def _margin_needs_hard_labels(self) -> Self:
        if self.margin and self.pairwise == "soft":
            raise ValueError("loss.margin works with pairwise: bradley_terry, not with soft labels")
        return self


class TrainConfig(Strict):
    """The optimization."""

    batch_size: int = Field(16, gt=0)
    """Pairs per optimizer step (accumulated over micro-batches)."""
    max_tokens: int = Field(16_384, gt=0)
    """Padded tokens per forward micro-batch."""
    lr: float = Field(3e-5, gt=0)
    """Peak learning rate (AdamW)."""
    weight_decay: float = Field(0.0, ge=0)
    """AdamW weight decay."""
    epochs: float = Field(1.0, gt=0)
    """Passes over the training pairs (fractions allowed)."""
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    """Share of steps with linear warmup."""
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    """Decay after warmup."""
    max_grad_norm: float = Field(1.0, gt=0)
    """Gradient clipping norm."""
    seed: int = 0
    """Seed for weights, data order and dropout."""
    deterministic: bool = False
    """Use deterministic algorithms (slower)."""
    keep_prompts_together: bool = True
    """Keep a prompt's pairs in one optimizer step (InstructGPT)."""
    bucketing: bool = True
    """Sort each window of steps by row width, so micro-batches waste little on padding (off: a plain
    shuffle, the same order whatever the rows' layout)."""
    eval_every: int = Field(0, ge=0)
    """Evaluate every N steps (0: at the end of each epoch)."""
    save_every: int = Field(100, ge=0)
    """Checkpoint every N steps (0: only at the end)."""
    early_stopping_patience: int = Field(0, ge=0)
    """Stop after N evaluations without a better held-out accuracy (0: never)."""
    max_steps: int = Field(0, ge=0)
    """Stop this invocation after N optimizer steps (0: run the whole plan); --resume goes on from there."""
    distributed: Literal["ddp", "fsdp"] = "ddp"
    """With several torchrun processes: a model replica per rank (ddp), or FSDP2 shards per layer (fsdp)."""
    compile: bool = False
    """Wrap the scorer in torch.compile (rows dynamic, one graph per row width): meant for CUDA, where
    widths come in buckets (width_multiple); slower on CPU. flex_attention is always compiled."""
    width_multiple: int | None = Field(None, ge=1)
    """Pad every micro-batch's row width up to a multiple of this, so that an epoch runs a few shapes
    whose kernel plans and compiled graphs are reused (None: 128 on CUDA, 1 on the CPU, where padding
    costs compute and plans nothing)."""
    log_every: int = Field(10, ge=1)
    """Read the step metrics back from the device every N steps (and before a checkpoint or evaluation):
    metrics.jsonl still gets every step, the progress bar moves then, a non-finite loss stops training
    then, naming its step."""
    prefetch: int = Field(2, ge=0)
    """Micro-batches collated and copied to the device ahead of the step, by a background thread
    (0: collate in the loop)."""
    nproc_per_node: int = Field(1, ge=1)
    """Training processes on this node: `rmcore train` and the retrain flow start them with torchrun
    (1: training runs in the calling process)."""


SuiteName = Literal["rewardbench", "rewardbench2", "rm-bench"]
"""A benchmark suite's shape and scoring rules (rmcore.data.suites.SUITE_NAMES)."""


class SuiteSpec(Strict):
    """One benchmark suite to score models on; a bare string in YAML is its `source`."""

    source: str
    """A local JSON, JSONL or Parquet file, or a Hugging Face dataset hf://owner/name[:split]."""
    suite: SuiteName | None = None
    """rewardbench, rewardbench2 or rm-bench; None: detected from the rows."""
    exclude_overlap: bool = False
    """Leave out the items whose prompt is also in the training lake (they inflate the score)."""

    @model_validator(mode="before")
    @classmethod
    def _bare_source(cls, value: object) -> object:
        return {"source": value} if isinstance(value, str) else value


class EvaluateConfig(Strict):
    """What the retrain flow scores the new model and the champion on, besides the lake's test split."""

    suites: list[SuiteSpec] = []
    """Benchmark suites, logged to MLflow as suite.<suite>.<section> (none: `make run` stays offline)."""

    @model_validator(mode="after")
    def _one_file_per_suite(self) -> Self:
        named = [spec.suite for spec in self.suites if spec.suite is not None]
        twice = sorted({name for name in named if named.count(name) > 1})
        if twice:
            raise ValueError(
                f"suites {', '.join(twice)} listed more than once: their metrics suite.<suite>.* collide"
            )
        return self


class TrackingConfig(Strict):
    """Where runs and registered models are recorded (MLflow)."""

    tracking_uri: str | None = None
    """Tracking server or database URI; None: $MLFLOW_TRACKING_URI if set, else SQLite in `store`."""
    store: Path = Path("mlflow")
    """Local store folder (mlflow.db and artifacts/), relative to the working directory."""
    experiment: str = "rmcore"
    """Experiment that holds the runs."""
    registered_model: str = "reward-model"
    """Registered model name; every retraining adds a version."""
    promotion_margin: float = Field(0.0, ge=0)
    """A new version becomes champion only if its accuracy exceeds the champion's by more than this."""
    suite_floor: float | None = Field(None, ge=0, le=1)
    """Refuse a new version whose score on any section of an evaluate.suites suite is more than this below
    the champion's, in accuracy fractions as the scores are (0.05: five points); None: suites do not gate."""
    system_metrics: bool = True
    """Record CPU, memory and GPU use with each run (MLflow system metrics)."""


class Config(Strict):
    """The whole pipeline's configuration."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    tracking: TrackingConfig = TrackingConfig()
    output_dir: Path = Path("runs/latest")
    """Where training writes checkpoints and the final model."""

    @model_validator(mode="after")
    def _fsdp_without_lora(self) -> Self:
        if self.train.distributed == "fsdp" and self.model.lora is not None:
            raise ValueError(
                "train.distributed fsdp does not train LoRA adapters; with model.lora use train.distributed "
                "ddp (only the adapters and head have gradients), or drop model.lora to shard the full model"
            )
        return self


class ConfigError(Exception):
    """A config file that cannot be used; the message lists every problem."""


def _with_override(document: dict[str, Any], assignment: str) -> dict[str, Any]:
    """`document` with one dotted KEY=VALUE set (the value read as YAML: 3e-5, true, a/path)."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. train.lr=3e-5")
    *parents, leaf = key.strip().split(".")
    node = document
    for name in parents:
        child = node.setdefault(name, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {assignment!r}: {name} is not a group of options")
        node = child
    node[leaf] = yaml.safe_load(raw) if raw.strip() else None
    return document


def add_override_argument(parser: argparse.ArgumentParser) -> None:
    """`--set KEY=VALUE`, repeatable, into `args.overrides`: how every command line changes one option."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config option, e.g. train.lr=3e-5 (repeatable; the value is read as YAML)",
    )


def load_config(path: Path | None, overrides: Sequence[str] = ()) -> Config:
    """The config in a YAML file (defaults for what it leaves out) with `--set` overrides applied."""
    document: dict[str, Any] = {}
    if path is not None:
        if not path.exists():
            raise ConfigError(f"config file not found: {path} (see configs/default.yaml)")
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML: {error}") from error
    for assignment in overrides:
        document = _with_override(document, assignment)
    try:
        return Config.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in error.errors()
        )
        where = path or "config"
        raise ConfigError(f"{where}: {error.error_count()} problem(s): {problems}") from error
