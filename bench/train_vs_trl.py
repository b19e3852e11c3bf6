""".venv/bin/python bench/train_vs_trl.py --dataset both [--backbone encoder|decoder]

Also: `--max-pairs 200` (a quick check on a prompt-grouped subsample), `--dataset hh|oasst|both`,
`--max-length N` (256), `--fits` (train only on pairs and rankings that fit it untruncated),
`--rmcore-set KEY=VALUE` (an rmcore config override, repeatable: e.g. model.prompt_cut=per_prompt),
`--rounds N` (alternate the tools N times, rmcore then TRL, and report the median of the rounds'
ratios: the figure to quote, since a 2-core machine's speed drifts between runs),
`--trl-precision bf16|fp32|both`, `--trl-gradient-checkpointing` (TRL's own default),
`--listwise` (an extra rmcore run with loss.listwise on the rankings), `--only rmcore|trl`,
`--preload FILE.py` (run in each child first: monkeypatch a proposed change to rmcore),
`--json FILE`, `--workdir DIR --keep`; and instead of the comparison, `--profile-steps N`
(where rmcore's loop spends its time, part by part, over its first N steps; with `--precision
auto|bf16|fp32`, `--max-tokens N`, `--torch-profile` for the top torch operators, `--preload`).

rmcore against TRL's RewardTrainer on one machine, in one invocation: the same backbone (the
built-in all-MiniLM-L6-v2 encoder, or with `--backbone decoder` a randomly initialised
Llama-architecture decoder of the same size: 6 layers x 384, grouped-query attention with 2 KV
heads, MiniLM's tokenizer; speed does not depend on the weights), the same training pairs as the
same token ids, batch 16 pairs, lr 3e-5, max length 256, one epoch. With the decoder, rmcore
encodes each prompt once for all its responses in a micro-batch (model.share_prompt auto); the
table's `tokens` and `saving` columns say how many tokens went through the model and how many that
saved. Prints each tool's training pairs/s, the ratio, and held-out
accuracy and loss of each model, computed by the same code (rmcore.evaluation.evaluate: the
model's rewards on the pairs, then pair_metrics) so the accuracies compare.

Data, from ../shared/data (skipped with a message when absent):
  hh     Anthropic HH-RLHF harmless-base: ingested by rmcore into a scratch lake, paired, split by
         prompt (the lake's splits); train on `train`, evaluate on `test` + `validation`.
  oasst  OpenAssistant en_100 trees: rankings of K = 2..9 replies. TRL gets the K(K-1)/2 expanded
         pairs of the lake's pair file; rmcore trains on the same pairs (its batching encodes each
         distinct response of a prompt once per micro-batch); `--listwise` adds a run with the
         Plackett-Luce term over the rankings as well.

How TRL is fed: the pre-tokenized form RewardTrainer documents (`chosen_ids`, `rejected_ids`),
holding exactly rmcore's plain encoder rendering `[CLS] prompt [SEP] response [SEP]` truncated the
rmcore way (prompt cut from the left). TRL's text path cannot give the same inputs: it concatenates
prompt and response into one segment, appends the tokenizer's EOS (MiniLM has none: it fails), and
drops pairs longer than max_length instead of truncating (see the `over max_length` line). TRL's
collator is subclassed only to add the token_type_ids that `tokenizer(prompt, response)` gives
(segment 1 for the response), as rmcore passes them; so both models see identical inputs in
training and evaluation. Pairs that truncation makes identical are left out for both.

Each tool runs in a fresh subprocess, one after the other, with its own defaults except what the
comparison fixes: TRL `use_cpu=True` (its default bf16=True refuses to start on a CPU-only machine
without it), bf16 autocast via accelerate (or fp32 with --trl-precision fp32), gradient
checkpointing off (TRL's default is on; --trl-gradient-checkpointing), the cosine schedule with 5%
warmup of rmcore's default, no checkpoints, seed 0; its defaults otherwise (fused AdamW, random
order, dropout disabled). rmcore: configs' defaults (bf16 autocast on CPUs with AMX/AVX512-BF16,
length bucketing under a 16,384-token budget, prompts kept together, dropout on), save_every 0.
pairs/s = training pairs / training seconds, where the seconds are the wall time of rmcore's
`fit` (tokenization, saving and evaluation excluded) and of TRL's `trainer.train()` (dataset
preparation excluded). `rows` is the rows each tool ran through the model in the epoch (rmcore's
decoder rows hold several sequences) and `pad` the share of padding in them. Evaluation autocasts
to bf16 for both when the CPU has it.
"""

import argparse
import itertools
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
SOURCES = {
    "hh": SHARED / "hh-rlhf" / "harmless-base" / "test.jsonl.gz",
    "oasst": SHARED / "oasst-en100" / "en_100_tree.jsonl",
}
BATCH_PAIRS = 16
LR = 3e-5
MAX_LENGTH = 256
EPOCHS = 1
SEED = 0
WARMUP_RATIO = 0.05
EVAL_MAX_TOKENS = 16_384
TARGET_RATIO = {
    ("encoder", "hh"): 3.0,
    ("encoder", "oasst"): 5.0,
    ("decoder", "hh"): 3.0,
    ("decoder", "oasst"): 7.0,
}
DECODER = {
    "hidden_size": 384,
    "num_hidden_layers": 6,
    "num_attention_heads": 6,
    "num_key_value_heads": 2,
    "intermediate_size": 1536,
    "max_position_embeddings": 512,
}
"""The random decoder of --backbone decoder: MiniLM's size in the Llama architecture."""
TARGET_ACCURACY_POINTS = 1.0


# ---------------------------------------------------------------- data (parent process)


@dataclass(frozen=True)
class Prepared:
    """One dataset made ready: a small lake to train on and a held-out pair file."""

    name: str
    train_lake: Path
    """<dir>/pairs/train.parquet, rankings_train.parquet and an empty validation.parquet."""
    held_out: Path
    """Pair file: the lake's test + validation pairs."""
    train_pairs: int
    train_rankings: int
    held_out_pairs: int
    prompts: int
    max_length: int
    fits: bool
    """Only pairs and rankings whose every sequence fits max_length untruncated."""


def _subsample(pairs: pa.Table, rankings: pa.Table, max_pairs: int, seed: int) -> tuple[pa.Table, pa.Table]:
    """Whole prompts, in a seeded random order, until at least `max_pairs` pairs."""
    ids = sorted(set(pairs.column("prompt_id").to_pylist()))
    random.Random(seed).shuffle(ids)
    counts: dict[str, int] = {}
    for prompt_id in pairs.column("prompt_id").to_pylist():
        counts[prompt_id] = counts.get(prompt_id, 0) + 1
    keep: set[str] = set()
    total = 0
    for prompt_id in ids:
        if total >= max_pairs:
            break
        keep.add(prompt_id)
        total += counts[prompt_id]
    wanted = pa.array(sorted(keep))
    import pyarrow.compute as pc

    return (
        pairs.filter(pc.is_in(pairs.column("prompt_id"), wanted)),
        rankings.filter(pc.is_in(rankings.column("prompt_id"), wanted)),
    )


def _fitting(pairs: pa.Table, rankings: pa.Table, max_length: int) -> tuple[pa.Table, pa.Table]:
    """The pairs and rankings whose every prompt + response fits `max_length` tokens untruncated, in the
    rendering both backbones share (MiniLM's tokenizer, plain)."""
    from rmcore.config import ModelConfig
    from rmcore.model.reward import build_reward_model
    from rmcore.model.tokenize import encode_many

    rm = build_reward_model(ModelConfig(max_length=max_length))

    def fits(prompts: list[Any], responses: list[str]) -> list[bool]:
        return [len(ids) <= max_length for ids in encode_many(rm, prompts, responses, max_length=100_000)]

    prompts = pairs.column("prompt").to_pylist()
    chosen = fits(prompts, pairs.column("chosen").to_pylist())
    rejected = fits(prompts, pairs.column("rejected").to_pylist())
    keep_pairs = [c and r for c, r in zip(chosen, rejected, strict=True)]
    ranked = [
        (prompt, response)
        for prompt, responses in zip(
            rankings.column("prompt").to_pylist(), rankings.column("responses").to_pylist(), strict=True
        )
        for response in responses
    ]
    each = iter(fits([p for p, _ in ranked], [r for _, r in ranked]))
    keep_rankings = [
        all(next(each) for _ in responses) for responses in rankings.column("responses").to_pylist()
    ]
    return pairs.filter(pa.array(keep_pairs)), rankings.filter(pa.array(keep_rankings, type=pa.bool_()))


def prepare(name: str, workdir: Path, max_pairs: int | None, max_length: int, fits: bool) -> Prepared:
    """Ingest the raw file into a scratch lake, build pairs, and lay out what the children read."""
    from deltalake import write_deltalake

    from rmcore.config import DataConfig, IngestConfig, PairsConfig, SplitConfig
    from rmcore.data.ingest import ingest
    from rmcore.data.lake import Lake, schemas
    from rmcore.data.lake.lake import DESCRIPTION
    from rmcore.data.pairs import build_pairs, load_pairs

    root = workdir / name
    shutil.rmtree(root, ignore_errors=True)
    lake = Lake(root / "lake")
    summary = ingest(lake, [SOURCES[name]], IngestConfig())
    if summary.files_failed:
        raise SystemExit(f"{SOURCES[name]}: {summary.files_failed}")
    build_pairs(lake, SplitConfig(), PairsConfig())
    data = DataConfig()
    train = load_pairs(Path(lake.uri), "train", data, root / "scratch")
    held = [load_pairs(Path(lake.uri), split, data, root / "scratch") for split in ("test", "validation")]
    pairs, rankings = train.pairs, train.rankings
    if fits:
        pairs, rankings = _fitting(pairs, rankings, max_length)
    if max_pairs is not None:
        pairs, rankings = _subsample(pairs, rankings, max_pairs, SEED)
    # a lake whose pair tables hold the chosen training pairs and rankings alone, in split `train`
    # (no validation split: train() evaluates nothing)
    train_lake = Lake(root / "train_lake")
    for table, rows in (("pairs", pairs), ("pair_rankings", rankings)):
        write_deltalake(
            train_lake.table_uri(table),
            rows.select(schemas.LAKE[table].names).cast(schemas.LAKE[table]),
            partition_by=["split"],
            name=table,
            description=DESCRIPTION,
        )
    held_out = root / "held_out.parquet"
    held_pairs = pa.concat_tables([h.pairs for h in held], promote_options="permissive")
    pq.write_table(held_pairs, held_out)
    return Prepared(
        name,
        Path(train_lake.uri),
        held_out,
        pairs.num_rows,
        rankings.num_rows,
        held_pairs.num_rows,
        len(set(pairs.column("prompt_id").to_pylist())),
        max_length,
        fits,
    )


def build_decoder(folder: Path) -> Path:
    """A randomly initialised Llama-architecture reward model with MiniLM's tokenizer, saved in `folder`.

    model_type llama: AutoTokenizer keeps the saved BERT tokenizer (a qwen2 config would make it build
    a Qwen2 tokenizer from the vocabulary). pad_token_id is MiniLM's [PAD], which never occurs in text,
    so transformers' own pooling (TRL's) finds the last real token as rmcore does.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, LlamaConfig

    from rmcore.model.reward import resolve_model_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("builtin:minilm"))
    config = LlamaConfig(**DECODER, vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.pad_token_id)
    config.num_labels = 1
    torch.manual_seed(SEED)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# ---------------------------------------------------------------- children (one tool each)


def _run_preload(preload: str | None) -> None:
    if preload:
        exec(compile(Path(preload).read_text(), preload, "exec"), {"__name__": "preload"})


def _evaluate(rm: Any, held_out: Path, scratch: Path) -> dict[str, Any]:
    """Held-out metrics by the code rmcore uses for its own models: rewards on the pairs, then metrics."""
    import torch

    from rmcore.config import DataConfig
    from rmcore.data.pairs import load_pairs
    from rmcore.evaluation.evaluate import evaluate
    from rmcore.model.inference import Scorer, autocast_dtype

    device = torch.device("cpu")
    dtype = autocast_dtype("auto", device)
    data = load_pairs(held_out, "validation", DataConfig(), scratch)
    started = time.perf_counter()
    metrics = evaluate(
        Scorer(rm=rm, dtype=dtype, device=device, max_tokens=EVAL_MAX_TOKENS), data.pairs
    ).metrics
    return {
        "accuracy": metrics["accuracy"],
        "loss": metrics["loss"],
        "n_decided": metrics["n_decided"],
        "tie_rate": metrics["tie_rate"],
        "ece": metrics["calibration"]["ece"],
        "longer_wins": metrics["baselines"]["longer_wins"].get("accuracy"),
        "eval_seconds": time.perf_counter() - started,
        "eval_precision": str(dtype).removeprefix("torch.") if dtype else "float32",
    }


def _keeping(fn: Callable[..., Any], into: dict[str, Any], key: str) -> Callable[..., Any]:
    """`fn` that also stores its return value in `into[key]`."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        into[key] = fn(*args, **kwargs)
        return into[key]

    return wrapper


def _timed(fn: Callable[..., Any], into: dict[str, float]) -> Callable[..., Any]:
    """`fn` that records its wall and CPU seconds into `into`."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import torch

        into["threads"] = torch.get_num_threads()
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            into["train_seconds"] = time.perf_counter() - wall
            into["cpu_seconds"] = time.process_time() - cpu

    return wrapper


def child_rmcore(spec: dict[str, Any]) -> dict[str, Any]:
    """rmcore.training.recipe.train with the default config and the fixed settings; then the evaluation."""
    import rmcore.training.recipe as rt
    from rmcore.config import load_config
    from rmcore.model.reward import build_reward_model

    out = Path(spec["out"])
    timing: dict[str, float] = {}
    rt.fit = _timed(rt.fit, timing)  # measure the loop itself; train() calls fit by its module name
    built: dict[str, Any] = {}
    for name in ("build_examples", "build_plan"):  # keep what train() builds, to count rows and padding
        setattr(rt, name, _keeping(getattr(rt, name), built, name))
    fixed = [
        f"data.train={spec['train_lake']}",
        f"model.name_or_path={spec['backbone']}",
        f"model.max_length={spec['max_length']}",
        f"loss.listwise={spec['listwise']}",
        f"train.batch_size={BATCH_PAIRS}",
        f"train.lr={LR}",
        f"train.epochs={EPOCHS}",
        "train.save_every=0",
        f"train.seed={SEED}",
        f"output_dir={out}",
    ]
    config = load_config(None, [*fixed, *spec["rmcore_set"]])
    started = time.perf_counter()
    result = rt.train(config, progress=False)
    total = time.perf_counter() - started
    pairs = spec["train_pairs"] - result["identical_after_truncation"]
    rm = build_reward_model(config.model.model_copy(update={"name_or_path": result["model_dir"]}))
    items = built["build_examples"].items
    batches = [collate_stats(items, mb, rm.share) for step in built["build_plan"] for mb in step]
    preload = f" [{Path(spec['preload']).name}]" if spec.get("preload") else ""
    preload += "".join(f" {setting}" for setting in spec["rmcore_set"])
    return {
        "tool": "rmcore" + (" listwise" if spec["listwise"] else "") + preload,
        "rows": sum(b[0] for b in batches),
        "tokens": result["tokens_encoded"],
        "padding": result["padding"],
        "saving": result["shared_prompt_saving"],
        "precision": result["precision"],
        "steps": result["steps"],
        "pairs": pairs,
        "dropped_identical": result["identical_after_truncation"],
        "train_seconds": timing["train_seconds"],
        "cpu_seconds": timing["cpu_seconds"],
        "threads": timing["threads"],
        "pairs_per_s": pairs / timing["train_seconds"],
        "own_pairs_per_s": result["train_pairs_per_s"],
        "setup_seconds": total - timing["train_seconds"],
        **_evaluate(rm, Path(spec["held_out"]), out / "eval"),
    }


def _trl_inputs(
    rm: Any, train_lake: Path, scratch: Path, max_length: int
) -> tuple[list[list[int]], list[list[int]], int, int]:
    """rmcore's encodings of the training pairs; the pairs identical after truncation left out.

    Also counts the pairs that TRL's own text path would drop (either side over max_length untruncated).
    """
    from rmcore.config import DataConfig
    from rmcore.data.pairs import load_pairs
    from rmcore.model.tokenize import encode_many, identical_after_truncation

    pairs = load_pairs(train_lake, "train", DataConfig(), scratch).pairs
    prompts = pairs.column("prompt").to_pylist()
    responses = pairs.column("chosen").to_pylist() + pairs.column("rejected").to_pylist()
    ids = encode_many(rm, prompts + prompts, responses)
    full = encode_many(rm, prompts + prompts, responses, max_length=100_000)
    n = len(prompts)
    chosen, rejected = [], []
    for c, r in zip(ids[:n], ids[n:], strict=True):
        if not identical_after_truncation(c, r):
            chosen.append(c)
            rejected.append(r)
    too_long = sum(max(len(full[i]), len(full[n + i])) > max_length for i in range(n))
    return chosen, rejected, n - len(chosen), too_long


def child_trl(spec: dict[str, Any]) -> dict[str, Any]:
    """TRL's RewardTrainer on rmcore's token ids; then the same evaluation."""
    import warnings

    import torch
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer
    from trl.trainer.reward_trainer import DataCollatorForPreference

    from rmcore.config import ModelConfig
    from rmcore.model.reward import RewardModel, build_reward_model, resolve_model_path, segment_ids

    warnings.filterwarnings("ignore", category=FutureWarning)
    out = Path(spec["out"])
    max_length = spec["max_length"]
    ours = build_reward_model(ModelConfig(name_or_path=spec["backbone"], max_length=max_length))
    tokenizer = ours.tokenizer  # and its rendering: the token ids rmcore trains on
    started = time.perf_counter()
    chosen, rejected, dropped, too_long = _trl_inputs(
        ours, Path(spec["train_lake"]), out / "data", max_length
    )
    tokenize_seconds = time.perf_counter() - started
    separator = tokenizer.sep_token_id
    seen = {"rows": 0, "real": 0, "padded": 0}

    class SegmentCollator(DataCollatorForPreference):
        """TRL's collator plus the token_type_ids of tokenizer(prompt, response); counts what it pads."""

        def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
            batch = super().torch_call(examples)
            if ours.pooling == "first":  # an encoder: the response is segment 1, as rmcore gives it
                batch["token_type_ids"] = segment_ids(batch["input_ids"], batch["attention_mask"], separator)
            seen["rows"] += int(batch["input_ids"].shape[0])
            seen["real"] += int(batch["attention_mask"].sum())
            seen["padded"] += int(batch["input_ids"].numel())
            return batch

    bf16 = spec["precision"] == "bf16"
    steps = math.ceil(len(chosen) / BATCH_PAIRS)
    args = RewardConfig(
        output_dir=str(out / "trl"),
        per_device_train_batch_size=BATCH_PAIRS,
        learning_rate=LR,
        num_train_epochs=EPOCHS,
        max_length=max_length,
        lr_scheduler_type="cosine",
        warmup_steps=math.ceil(WARMUP_RATIO * steps),
        use_cpu=True,
        bf16=bf16,
        gradient_checkpointing=spec["gradient_checkpointing"],
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=SEED,
        data_seed=SEED,
    )
    dataset = Dataset.from_dict({"chosen_ids": chosen, "rejected_ids": rejected})
    trainer = RewardTrainer(
        model=resolve_model_path(spec["backbone"]),
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        data_collator=SegmentCollator(pad_token_id=tokenizer.pad_token_id),
    )
    prepared = trainer.train_dataset
    assert isinstance(prepared, Dataset)
    kept = len(prepared)  # after TRL's own max_length filter
    timing: dict[str, float] = {}
    output = _timed(trainer.train, timing)()
    model = trainer.accelerator.unwrap_model(trainer.model)
    model.eval()
    rm = RewardModel(model.to(torch.float32), tokenizer, ours.pooling, ours.rendering, max_length)
    return {
        "tool": "TRL RewardTrainer" + (" +gc" if spec["gradient_checkpointing"] else ""),
        "rows": seen["rows"],
        "tokens": seen["real"],
        "padding": 1 - seen["real"] / max(seen["padded"], 1),
        "saving": 0.0,
        "precision": "bfloat16" if bf16 else "float32",
        "steps": int(output.global_step),
        "pairs": kept,
        "dropped_identical": dropped,
        "trl_text_path_would_drop": too_long,
        "train_seconds": timing["train_seconds"],
        "cpu_seconds": timing["cpu_seconds"],
        "threads": timing["threads"],
        "pairs_per_s": kept / timing["train_seconds"],
        "own_pairs_per_s": float(output.metrics.get("train_samples_per_second", float("nan"))),
        "setup_seconds": tokenize_seconds,
        **_evaluate(rm, Path(spec["held_out"]), out / "eval"),
    }


PROFILE_PARTS = (
    ("tokenize", "build_examples: encode every pair (before the loop)"),
    ("plan", "build_plan: length bucketing (before the loop)"),
    ("collate", "collate: micro-batch tensors (in the feed's thread, beside the loop, with train.prefetch)"),
    ("forward", "RewardModule.forward under autocast"),
    ("loss", "the rest of loss_step: indexing, pair_loss (metrics stay tensors)"),
    ("backward", "Tensor.backward"),
    ("clip", "clip_grad_norm_"),
    ("optimizer", "AdamW.step"),
    ("scheduler", "LambdaLR.step"),
    ("other", "the rest of fit: zero_grad, waiting for the feed, log points, bookkeeping"),
)


def child_profile(spec: dict[str, Any]) -> dict[str, Any]:
    """rmcore.training.recipe.train for `profile_steps` steps, with the time of each part of fit measured.

    Wraps (without changing) what fit calls: collate (the feed's), loss_step, RewardModule.forward,
    Tensor.backward, clip_grad_norm_, AdamW.step and LambdaLR.step; and build_examples / build_plan.
    With `torch_profile`, also torch.profiler's top operators over the loop.
    """
    import torch

    import rmcore.training.feed as feed
    import rmcore.training.loop as loop
    import rmcore.training.recipe as rt
    from rmcore.config import Config, DataConfig, ModelConfig, TrainConfig
    from rmcore.model.batching import pair_count
    from rmcore.model.reward import RewardModule, build_reward_model

    seconds: dict[str, float] = {}
    calls: dict[str, int] = {}

    def wrap(owner: Any, name: str, key: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - started
                calls[key] = calls.get(key, 0) + 1

        setattr(owner, name, wrapper)

    for owner, name, key in (
        (feed, "collate", "collate"),
        (loop, "loss_step", "loss_step"),
        (RewardModule, "forward", "forward"),
        (torch.Tensor, "backward", "backward"),
        (torch.nn.utils, "clip_grad_norm_", "clip"),
        (torch.optim.AdamW, "step", "optimizer"),
        (torch.optim.lr_scheduler.LambdaLR, "step", "scheduler"),
    ):
        wrap(owner, name, key)
    built: dict[str, Any] = {}

    def keep(name: str, key: str) -> None:
        original = getattr(rt, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            built[key] = original(*args, **kwargs)
            seconds[key] = time.perf_counter() - started
            return built[key]

        setattr(rt, name, wrapper)

    marks: list[float] = []  # loop start, then the end of each optimizer step
    step = torch.optim.lr_scheduler.LambdaLR.step

    def mark(self: Any, *args: Any, **kwargs: Any) -> Any:
        if marks:
            marks.append(time.perf_counter())
        return step(self, *args, **kwargs)

    torch.optim.lr_scheduler.LambdaLR.step = mark  # type: ignore[method-assign]
    keep("build_examples", "tokenize")
    keep("build_plan", "plan")
    fit = rt.fit
    table = ""

    def measured(*args: Any, **kwargs: Any) -> Any:
        nonlocal table
        started, cpu = time.perf_counter(), time.process_time()
        marks.append(started)
        if not spec.get("torch_profile"):
            result = fit(*args, **kwargs)
        else:
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU]) as prof:
                result = fit(*args, **kwargs)
            table = prof.key_averages().table(
                sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=60
            )
        seconds["fit"] = time.perf_counter() - started
        seconds["fit_cpu"] = time.process_time() - cpu
        return result

    rt.fit = measured
    config = Config(
        data=DataConfig(train=Path(spec["train_lake"])),
        model=ModelConfig(
            name_or_path=spec["backbone"], max_length=spec["max_length"], precision=spec["precision"]
        ),
        train=TrainConfig(
            batch_size=BATCH_PAIRS,
            lr=LR,
            epochs=EPOCHS,
            save_every=0,
            seed=SEED,
            max_steps=spec["profile_steps"],
            max_tokens=spec["max_tokens"],
        ),
        output_dir=Path(spec["out"]),
    )
    result = rt.train(config, progress=False)
    seconds["loss"] = seconds.get("loss_step", 0.0) - seconds.get("forward", 0.0)
    inner = ("collate", "loss_step", "backward", "clip", "optimizer", "scheduler")
    seconds["other"] = seconds["fit"] - sum(seconds.get(k, 0.0) for k in inner)
    items, plan = built["tokenize"].items, built["plan"][: result["steps"]]
    share = build_reward_model(config.model).share
    batches = [collate_stats(items, mb, share) for step in plan for mb in step]
    history = [json.loads(line) for line in (Path(spec["out"]) / "metrics.jsonl").read_text().splitlines()]
    return {
        "tool": "rmcore profile",
        "precision": result["precision"],
        "threads": torch.get_num_threads(),
        "steps": result["steps"],
        "pairs": sum(pair_count(items[i]) for step in plan for mb in step for i in mb),
        "micro_batches": len(batches),
        "rows": sum(b[0] for b in batches),
        "real_tokens": sum(b[1] for b in batches),
        "padded_tokens": sum(b[2] for b in batches),
        "seconds": seconds,
        "calls": calls,
        "losses": [h["loss"] for h in history if "loss" in h],
        "step_seconds": [b - a for a, b in itertools.pairwise(marks)],
        "table": table,
    }


def collate_stats(items: Sequence[Any], indices: Sequence[int], share: Any) -> tuple[int, int, int]:
    """Rows, real tokens and padded tokens (rows * longest) of one micro-batch as rmcore collates it
    (with a share policy: shared-prompt blocks packed into rows)."""
    from rmcore.model.batching import collate

    batch = collate([items[i] for i in indices], 0, "right", share)
    return batch.n_rows, batch.tokens, batch.padded_tokens


def child(spec_path: Path) -> None:
    """Run one tool as the spec says; write its result JSON next to the spec."""
    spec = json.loads(spec_path.read_text())
    _run_preload(spec.get("preload"))
    load = os.getloadavg()[0]
    tools = {"rmcore": child_rmcore, "trl": child_trl, "profile": child_profile}
    result = tools[spec["tool"]](spec)
    result["load_before"], result["load_after"] = load, os.getloadavg()[0]
    Path(spec["result"]).write_text(json.dumps(result, indent=1))


# ---------------------------------------------------------------- parent


def run_child(spec: dict[str, Any], workdir: Path, label: str) -> dict[str, Any] | None:
    """One tool in a fresh interpreter; its result, or None (with the child's stderr tail) on failure."""
    spec_path = workdir / f"{label}.spec.json"
    spec["result"] = str(workdir / f"{label}.result.json")
    spec["out"] = str(workdir / label)
    spec_path.write_text(json.dumps(spec))
    print(f"  running {label} ...", flush=True)
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(spec_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n    ".join(proc.stderr.strip().splitlines()[-15:])
        print(f"  {label} failed (exit {proc.returncode}):\n    {tail}", flush=True)
        return None
    result: dict[str, Any] = json.loads(Path(spec["result"]).read_text())
    if spec["tool"] == "profile":
        return result
    print(
        f"    {result['tool']}: {result['pairs']} pairs in {result['train_seconds']:.1f} s "
        f"= {result['pairs_per_s']:.2f} pairs/s; held-out accuracy {result['accuracy']:.4f}",
        flush=True,
    )
    return result


def _in_round(result: dict[str, Any] | None, round_: int) -> dict[str, Any] | None:
    return None if result is None else result | {"round": round_}


def _row(r: dict[str, Any]) -> str:
    return (
        f"  {r['tool']:<30} {r['precision']:<9} {r['steps']:>5} {r['pairs']:>6} {r['rows']:>6} "
        f"{r['tokens']:>8} {100 * r['padding']:>5.1f}% {100 * r['saving']:>5.1f}% "
        f"{r['train_seconds']:>8.1f} {r['cpu_seconds']:>8.1f} "
        f"{r['pairs_per_s']:>8.2f} {r['accuracy']:>9.4f} {r['loss']:>7.4f} "
        f"{r['load_before']:>4.1f}/{r['load_after']:<4.1f}"
    )


def report(data: Prepared, backbone: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """Print the dataset's table and the ratios against the targets; the summary for --json."""
    print(
        f"\n{data.name}, {backbone}: {data.train_pairs} training pairs over {data.prompts} prompts"
        f"{f' and {data.train_rankings} rankings (K > 2)' if data.train_rankings else ''}, "
        f"{data.held_out_pairs} held-out pairs (test + validation); max length {data.max_length}"
        f"{' (only what fits it)' if data.fits else ''}, "
        f"batch {BATCH_PAIRS} pairs, lr {LR:g}, {EPOCHS} epoch"
    )
    print(
        f"  {'tool':<30} {'precision':<9} {'steps':>5} {'pairs':>6} {'rows':>6} {'tokens':>8} {'pad':>6} "
        f"{'saving':>6} {'train s':>8} "
        f"{'CPU s':>8} {'pairs/s':>8} {'accuracy':>9} {'loss':>7} load"
    )
    for r in results:
        print(_row(r))
    trl = [r for r in results if r["tool"].startswith("TRL")]
    ours = [r for r in results if r["tool"].startswith("rmcore")]
    comparisons = []
    kinds = sorted({(o["tool"], t["tool"], t["precision"]) for o in ours for t in trl})
    for ours_tool, trl_tool, trl_precision in kinds:
        rounds = [
            (o, t)
            for o in ours
            for t in trl
            if (o["tool"], t["tool"], t["precision"]) == (ours_tool, trl_tool, trl_precision)
            and o["round"] == t["round"]
        ]
        ratios = sorted(o["pairs_per_s"] / t["pairs_per_s"] for o, t in rounds)
        if not ratios:
            continue
        ratio = statistics.median(ratios)
        points = statistics.median(100 * (o["accuracy"] - t["accuracy"]) for o, t in rounds)
        target = TARGET_RATIO[(backbone, data.name)]
        speed_ok = ratio >= target
        accuracy_ok = points >= -TARGET_ACCURACY_POINTS
        spread = (
            f" (median of {len(ratios)} rounds, {ratios[0]:.2f}-{ratios[-1]:.2f}x)" if len(ratios) > 1 else ""
        )
        print(
            f"  {ours_tool} vs {trl_tool} ({trl_precision}): {ratio:.2f}x pairs/s{spread} "
            f"(target >= {target:g}x: {'met' if speed_ok else 'MISSED'}); "
            f"accuracy {points:+.1f} points (target >= -{TARGET_ACCURACY_POINTS:g}: "
            f"{'met' if accuracy_ok else 'MISSED'})"
        )
        comparisons.append(
            {
                "rmcore": ours_tool,
                "trl": trl_tool,
                "trl_precision": trl_precision,
                "ratio": ratio,
                "ratios": ratios,
                "accuracy_points": points,
                "speed_target_met": speed_ok,
                "accuracy_target_met": accuracy_ok,
            }
        )
    for t in trl:
        if t.get("trl_text_path_would_drop"):
            print(
                f"  over max_length: TRL's text path would drop {t['trl_text_path_would_drop']} of "
                f"{data.train_pairs} pairs (it filters, rmcore truncates the prompt)"
            )
            break
    return {
        "backbone": backbone,
        "dataset": data.__dict__ | {"train_lake": str(data.train_lake), "held_out": str(data.held_out)},
        "results": results,
        "comparisons": comparisons,
    }


def report_profile(data: Prepared, r: dict[str, Any], label: str) -> None:
    """Print where one profiled rmcore run spent its time."""
    sec = r["seconds"]
    loop = sec["fit"]
    print(
        f"\n{data.name} profile [{label}]: {r['steps']} steps, {r['pairs']} pairs, {r['micro_batches']} "
        f"micro-batches, {r['rows']} rows, {r['real_tokens']} real / {r['padded_tokens']} padded tokens "
        f"({100 * (1 - r['real_tokens'] / max(r['padded_tokens'], 1)):.1f}% padding); {r['precision']}, "
        f"{r['threads']} threads; load {r['load_before']:.1f}/{r['load_after']:.1f}"
    )
    rate = f"{r['pairs'] / loop:.2f} pairs/s, {r['real_tokens'] / loop:.0f} real tokens/s"
    print(f"  loop {loop:.2f} s ({sec['fit_cpu']:.1f} CPU s) = {rate}")
    print(f"  step seconds: {', '.join(f'{x:.2f}' for x in r['step_seconds'])}")
    for key, what in PROFILE_PARTS:
        value = sec.get(key, 0.0)
        share = f"{100 * value / loop:5.1f}%" if key not in ("tokenize", "plan") else "  (out)"
        print(f"  {key:<10} {value:8.2f} s {share}  {what}")
    print(f"  losses: {', '.join(f'{x:.4f}' for x in r['losses'])}")
    if r["table"]:
        print(r["table"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["hh", "oasst", "both"], default="both")
    parser.add_argument("--backbone", choices=["encoder", "decoder"], default="encoder", help="see above")
    parser.add_argument("--max-pairs", type=int, default=None, help="train on a prompt-grouped subsample")
    parser.add_argument("--max-length", type=int, default=MAX_LENGTH, help="tokens per prompt + response")
    parser.add_argument(
        "--fits", action="store_true", help="train only on what fits --max-length untruncated"
    )
    parser.add_argument("--rounds", type=int, default=1, help="alternate the tools: rmcore, TRL, rmcore, ...")
    parser.add_argument(
        "--rmcore-set", action="append", default=[], metavar="KEY=VALUE", help="an rmcore config override"
    )
    parser.add_argument("--trl-precision", choices=["bf16", "fp32", "both"], default="bf16")
    parser.add_argument("--trl-gradient-checkpointing", action="store_true", help="TRL's default; off here")
    parser.add_argument("--listwise", action="store_true", help="also rmcore with loss.listwise (oasst)")
    parser.add_argument("--only", choices=["rmcore", "trl"], default=None)
    parser.add_argument("--preload", type=Path, default=None, help="Python file run in each child first")
    parser.add_argument("--json", type=Path, default=None, help="write all figures to this file")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--profile-steps", type=int, default=0, help="instead: profile N steps of rmcore's loop, by part"
    )
    parser.add_argument(
        "--precision", choices=["auto", "bf16", "fp32"], default="auto", help="--profile-steps"
    )
    parser.add_argument("--max-tokens", type=int, default=16_384, help="--profile-steps: micro-batch budget")
    parser.add_argument("--torch-profile", action="store_true", help="--profile-steps: top torch operators")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return 0

    names = ["hh", "oasst"] if args.dataset == "both" else [args.dataset]
    missing = [str(SOURCES[n]) for n in names if not SOURCES[n].exists()]
    if missing:
        print(f"skipped: the shared data is absent ({', '.join(missing)})")
        return 0
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rmcore-vs-trl-"))
    workdir.mkdir(parents=True, exist_ok=True)
    precisions = ["bf16", "fp32"] if args.trl_precision == "both" else [args.trl_precision]
    summary = []
    backbone = str(build_decoder(workdir / "decoder")) if args.backbone == "decoder" else "builtin:minilm"
    try:
        for name in names:
            data = prepare(name, workdir, args.max_pairs, args.max_length, args.fits)
            print(f"{name}: prepared {data.train_pairs} training pairs in {workdir / name}", flush=True)
            base = {
                "train_lake": str(data.train_lake),
                "held_out": str(data.held_out),
                "train_pairs": data.train_pairs,
                "max_length": args.max_length,
                "rmcore_set": args.rmcore_set,
                "backbone": backbone,
                "preload": str(args.preload.resolve()) if args.preload else None,
            }
            if args.profile_steps:
                spec = {
                    **base,
                    "tool": "profile",
                    "profile_steps": args.profile_steps,
                    "precision": args.precision,
                    "max_tokens": args.max_tokens,
                    "torch_profile": args.torch_profile,
                }
                label = f"{args.precision}, max_tokens {args.max_tokens}" + (
                    f", preload {args.preload.name}" if args.preload else ""
                )
                profiled = run_child(spec, workdir, f"{name}-profile")
                if profiled is not None:
                    report_profile(data, profiled, label)
                    summary.append({"dataset": name, "profile": profiled})
                continue
            results = []
            for round_ in range(1, args.rounds + 1):
                suffix = f"-{round_}" if args.rounds > 1 else ""
                if args.only != "trl":
                    runs = [False, True] if args.listwise and data.train_rankings else [False]
                    for listwise in runs:
                        label = f"{name}-rmcore{'-listwise' if listwise else ''}{suffix}"
                        spec = {**base, "tool": "rmcore", "listwise": listwise}
                        results.append(_in_round(run_child(spec, workdir, label), round_))
                if args.only != "rmcore":
                    for precision in precisions:
                        spec = {
                            **base,
                            "tool": "trl",
                            "precision": precision,
                            "gradient_checkpointing": args.trl_gradient_checkpointing,
                        }
                        results.append(
                            _in_round(run_child(spec, workdir, f"{name}-trl-{precision}{suffix}"), round_)
                        )
            summary.append(report(data, args.backbone, [r for r in results if r is not None]))
    finally:
        if args.json:
            args.json.write_text(json.dumps(summary, indent=1, default=str))
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
