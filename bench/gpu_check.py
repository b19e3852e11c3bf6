"""python3 bench/gpu_check.py [--dry-run] [--data DIR] [--json FILE] [--markdown FILE] [--seconds S]

rmcore's training engine on one GPU, in one command (at most 8 minutes on an H100/H200), writing one
JSON object (after every mode and run, so a timeout still leaves what finished) and, with
`--markdown`, the same figures as tables. `--dry-run` runs the same code on the CPU with a tiny model
(a test does).

1. The harness: the same synthetic steps trained four ways, at 16 and at 64 pairs per step:

    shared     rmcore's step (the feed: collate in a thread, copy on a side stream -> loss_step ->
               backward -> AdamW), prompts encoded once, blocks packed into rows whose widths are
               padded up to a multiple of 128 (8 on the dry run), SDPA with a dense mask
    flex       the same with FlexAttention's block mask, masked blocks skipped, the scorer compiled
               with its rows dynamic (DynamicRows: one graph per width); CUDA only (FlexAttention
               has no backward on the CPU)
    separate   the same as shared, one row per sequence (model.share_prompt off)
    padded     a TRL-style step: every pair's chosen and rejected, each ranking expanded to its
               K(K-1)/2 pairs, padded to the step's longest sequence, no width buckets

   on a random decoder shaped like Qwen2.5-0.5B (24 layers x 896, 14 heads, 2 KV heads; the weights
   do not change the speed), bf16 autocast, fp32 weights, over synthetic preference data: HH-like
   pairs (prompt 60-240 tokens, responses 20-120) and rankings of 4 (prompt 60-240, replies 30-200).
   Per mode: pairs/s, tokens encoded and computed (padding included), the tokens each sequence alone
   holds, model FLOP utilisation (MFU: 6 x non-embedding parameters per encoded token, plus attention,
   over the peak a timed bf16 matrix product reaches on this device), peak memory, `gpu_busy` (device
   kernel time over wall time across 3 profiled steps, torch.profiler; null on the CPU),
   `host_syncs_per_step` (the calls that made the host wait for the device in those steps, from
   CUDA's sync debug mode; null on the CPU) and the graphs compiled and recompiles during the mode
   (torch's dynamo counters).
2. NCCL (gloo on the CPU) on one rank: one DDP step and one FSDP2 step of rmcore's wrappers, whose
   losses and gradient norms must equal the plain step's (exit status 1 otherwise).
3. `rmcore train` on real text (with `--data DIR` holding hh-rlhf/harmless-base/test.jsonl.gz and
   oasst-en100/en_100_tree.jsonl, as ../shared/data does): each data set ingested into a lake of its
   own, then `train` in-process with a random Llama of the same 0.5B shape and MiniLM's tokenizer
   (built here, nothing downloaded), model.max_length=1024, at most `--max-pairs` training pairs
   (train.max_steps), share_prompt off and auto, attention sdpa and (CUDA) flex_attention.

`--seconds` (default 450) skips what is left once the run has taken that long, saying so in the JSON.

It needs torch, transformers, numpy, pyyaml, pydantic, and for the train section duckdb, deltalake
and orjson
(a CUDA PyTorch image may lack them: carry their wheels, bench/README.md says how). rmcore is
imported from this checkout; nothing is installed.
"""

import argparse
import json
import math
import os
import random
import shutil
import socket
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any

import torch
import torch.distributed as torch_dist
from torch.nn.parallel import DistributedDataParallel
from transformers import AutoModelForSequenceClassification, Qwen2Config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rmcore.config import LossConfig  # noqa: E402
from rmcore.model.batching import Batch, PairExample, RankingExample, collate, pad_sequences  # noqa: E402
from rmcore.model.losses import bradley_terry  # noqa: E402
from rmcore.model.plan import plan_batches  # noqa: E402
from rmcore.model.reward import RewardModel, RewardModule  # noqa: E402
from rmcore.model.rows import SharePolicy, shared_prompt_mask  # noqa: E402
from rmcore.training.compiled import DynamicRows, compilations  # noqa: E402
from rmcore.training.distributed import Dist, shard_model  # noqa: E402
from rmcore.training.feed import Collation, micro_batches  # noqa: E402
from rmcore.training.loop import loss_step  # noqa: E402

QWEN_05B = {
    "hidden_size": 896,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "intermediate_size": 4864,
    "vocab_size": 151_936,
}
TINY = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "vocab_size": 1000,
}
PAIRS_PER_STEP = (16, 64)
PAD = 0
PROFILED_STEPS = 3
HH = "hh-rlhf/harmless-base/test.jsonl.gz"
OASST = "oasst-en100/en_100_tree.jsonl"


def decoder(shape: dict[str, int], device: torch.device) -> RewardModel:
    """A random Qwen2-architecture reward model of `shape`, fp32 weights, SDPA attention, on `device`."""
    config = Qwen2Config(**shape, max_position_embeddings=4096, tie_word_embeddings=False)
    config.num_labels = 1
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config, attn_implementation="sdpa")
    model.config.use_cache = False
    policy = SharePolicy.dense(shape["hidden_size"])  # SDPA computes masked products too, GPUs included
    return RewardModel(model.to(device), None, "last", "plain", 4096, policy)  # type: ignore[arg-type]


def examples(n_pairs: int, n_rankings: int, vocab: int, scale: float) -> list[PairExample | RankingExample]:
    """HH-like pairs and rankings of 4 as random token ids; lengths times `scale`."""
    rng = random.Random(0)

    def ids(low: int, high: int) -> list[int]:
        return [rng.randrange(1, vocab) for _ in range(max(2, int(rng.randint(low, high) * scale)))]

    items: list[PairExample | RankingExample] = []
    for i in range(n_pairs):
        prompt = ids(60, 240)
        chosen, rejected = prompt + ids(20, 120), prompt + ids(20, 120)
        items.append(
            PairExample(prompt_id=f"p{i}", chosen=chosen, rejected=rejected, p_chosen=1.0, margin=None)
        )
    for i in range(n_rankings):
        prompt = ids(60, 240)
        responses = [prompt + ids(30, 200) for _ in range(4)]
        items.append(RankingExample(prompt_id=f"r{i}", responses=responses, ranks=[0, 1, 2, 3]))
    return items


def padded_batch(items: Sequence[PairExample | RankingExample]) -> Batch:
    """A TRL-style batch: chosen then rejected of every (expanded) pair, right-padded, nothing shared."""
    pairs = [(e.chosen, e.rejected) for e in items if isinstance(e, PairExample)]
    for e in items:
        if isinstance(e, RankingExample):
            pairs += [(e.responses[a], e.responses[b]) for a in range(4) for b in range(a + 1, 4)]
    ids, mask = pad_sequences([c for c, _ in pairs] + [r for _, r in pairs], PAD)
    n = len(pairs)
    return Batch(
        input_ids=ids,
        attention_mask=mask,
        chosen=torch.arange(n),
        rejected=torch.arange(n, 2 * n),
        p_chosen=torch.ones(n),
        margin=torch.full((n,), math.nan),
        pair_group=torch.arange(n),
        n_pairs=n,
        sequence_tokens=int(mask.sum()),
    )


def step_loss(
    scorer: torch.nn.Module, batch: Batch, device: torch.device, dtype: torch.dtype | None
) -> torch.Tensor:
    """The mean Bradley-Terry loss of a micro-batch (the one-rank check's plain step)."""
    batch = batch.to(device)
    with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        scores = scorer(batch.input_ids, batch.attention_mask, **batch.row_inputs()).float()
    return bradley_terry(scores[batch.chosen], scores[batch.rejected]).loss


def attended_products(batch: Batch, mode: str) -> int:
    """Query-key products per layer and head group the mode's attention computes: every product of a
    row for a dense kernel, masked or not; those the mask allows for FlexAttention (it skips whole
    masked blocks, and computes the partial ones, so this is a lower bound)."""
    if mode == "flex" and batch.blocks is not None and batch.segments is not None:
        return int(shared_prompt_mask(batch.blocks, batch.segments).sum())
    return batch.padded_tokens * int(batch.input_ids.shape[1])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_flops(device: torch.device, dtype: torch.dtype | None) -> float:
    """FLOP/s of a timed square matrix product in the training precision on this device."""
    n = 8192 if device.type == "cuda" else 512
    a = torch.randn(n, n, device=device, dtype=dtype or torch.float32)
    for _ in range(3):
        a @ a
    sync(device)
    started, repeats = time.perf_counter(), 10
    for _ in range(repeats):
        a @ a
    sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - started)


def kernel_seconds(prof: torch.profiler.profile) -> float:
    """Device kernel self time of the profiled CUDA events (kernels, copies, memsets), in seconds."""
    from torch.autograd import DeviceType

    return sum(e.self_device_time_total for e in prof.events() if e.device_type == DeviceType.CUDA) / 1e6


def measure(
    mode: str,
    rm: RewardModel,
    items: list[PairExample | RankingExample],
    batch_pairs: int,
    args: argparse.Namespace,
    device: torch.device,
    dtype: torch.dtype | None,
    peak: float,
) -> dict[str, Any]:
    """Train 2 warm-up steps, `args.steps` timed steps and 3 profiled ones (the first timed steps again)
    of `batch_pairs` pairs in this mode; the figures of the timed steps."""
    before = compilations()
    model = deepcopy(rm.model)
    share: SharePolicy | None = rm.share if mode == "shared" else None
    if mode == "flex":
        model.set_attn_implementation("flex_attention")
        share = SharePolicy(attention_weight=0.0)  # masked blocks cost nothing: share wherever it saves
    module = RewardModule(RewardModel(model, None, "last", "plain", 4096, share))  # type: ignore[arg-type]
    multiple = 1 if mode == "padded" else args.width_multiple
    widths = -(-args.max_tokens // multiple)
    scorer: torch.nn.Module = DynamicRows(module, max_graphs=widths + 2) if mode == "flex" else module
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)  # TRL's default too
    plan = plan_batches(items, batch_pairs, args.max_tokens, 0, True, share=share, width_multiple=multiple)
    warmup, timed = plan[:2], plan[2 : 2 + args.steps]
    profiled = timed[:PROFILED_STEPS]
    sequence = warmup + timed + profiled
    jobs = [[items[i] for i in mb] for step in sequence for mb in step]
    batches: Iterator[Batch]
    if mode == "padded":  # one micro-batch per step, whatever its size, as TRL's trainer takes it
        sequence = [[[i for mb in step for i in mb]] for step in sequence]
        jobs = [[items[i] for i in step[0]] for step in sequence]
        batches = (padded_batch(job).to(device, non_blocking=True) for job in jobs)
    else:
        collation = Collation(pad_id=PAD, padding_side="right", share=share, width_multiple=multiple)
        batches = (mb.on_stream() for mb in micro_batches(jobs, collation, device, ahead=2))
    loss_cfg = LossConfig(listwise=True)  # rankings feed Plackett-Luce, as rmcore trains them

    def train_step(step: list[list[int]]) -> None:
        optimizer.zero_grad(set_to_none=True)
        for _ in step:
            loss_step(scorer, next(batches), loss_cfg, dtype).loss.backward()
        optimizer.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for step in sequence[: len(warmup)]:
        train_step(step)
    sync(device)
    started = time.perf_counter()
    for step in sequence[len(warmup) : len(warmup) + len(timed)]:
        train_step(step)
    sync(device)
    seconds = time.perf_counter() - started
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with (
        torch.profiler.profile(activities=activities) as prof,
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        if device.type == "cuda":  # every call that makes the host wait for the device warns
            torch.cuda.set_sync_debug_mode("warn")
        profile_started = time.perf_counter()
        for step in sequence[len(warmup) + len(timed) :]:
            train_step(step)
        if device.type == "cuda":
            torch.cuda.set_sync_debug_mode("default")
        sync(device)
        profile_wall = time.perf_counter() - profile_started
    gpu_busy = kernel_seconds(prof) / profile_wall if device.type == "cuda" and profiled else None
    syncs = sum("synchroniz" in str(w.message) for w in caught) if device.type == "cuda" else None
    compiled = compilations().since(before)
    # what the timed steps computed, counted on host collations (outside the timed loop)
    encoded = computed = attended = alone = pairs = 0
    for step in sequence[len(warmup) : len(warmup) + len(timed)]:
        for mb in step:
            examples = [items[i] for i in mb]
            batch = (
                padded_batch(examples)
                if mode == "padded"
                else collate(examples, PAD, "right", share, multiple)
            )
            encoded, computed = encoded + batch.tokens, computed + batch.padded_tokens
            attended += attended_products(batch, mode)
            alone, pairs = alone + batch.sequence_tokens, pairs + batch.n_pairs
    params = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n)
    layers, hidden = model.config.num_hidden_layers, model.config.hidden_size
    # QK^T and AV take 2 x 2 x hidden FLOPs per query-key product forward, 3x that with backward
    flops = 6 * params * encoded + 12 * layers * hidden * attended
    return {
        "steps": len(timed),
        "width_multiple": multiple,
        "pairs_per_s": pairs / seconds,
        "tokens_encoded": encoded,
        "tokens_computed": computed,
        "tokens_alone": alone,
        "encoded_tokens_per_s": encoded / seconds,
        "mfu": flops / seconds / peak,
        "gpu_busy": gpu_busy,
        "host_syncs_per_step": syncs / len(profiled) if syncs is not None and profiled else None,
        "profiled_steps": len(profiled),
        "compiled_graphs": compiled.graphs,
        "recompiles": compiled.recompiles,
        "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        "seconds": seconds,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_rank_wrappers(rm: RewardModel, batch: Batch, device: torch.device) -> dict[str, Any]:
    """One fp32 step of rmcore's DDP wrapping and FSDP2 sharding on a one-rank process group, against
    the plain step: the losses and gradient norms."""
    backend = "nccl" if device.type == "cuda" else "gloo"
    torch_dist.init_process_group(
        backend,
        init_method=f"tcp://127.0.0.1:{free_port()}",
        rank=0,
        world_size=1,
        device_id=device if device.type == "cuda" else None,
    )
    results: dict[str, Any] = {"backend": backend}
    try:
        for name in ("plain", "ddp", "fsdp"):
            model = deepcopy(rm.model)
            module = RewardModule(RewardModel(model, None, "last", "plain", 4096, rm.share))  # type: ignore[arg-type]
            scorer: torch.nn.Module = module
            if name == "ddp":
                scorer = DistributedDataParallel(
                    module, device_ids=[device.index or 0] if device.type == "cuda" else None
                )
            if name == "fsdp":
                shard_model(
                    module, getattr(model, "_no_split_modules", None) or (), Dist(world_size=1, device=device)
                )
            loss = step_loss(scorer, batch, device, None)
            loss.backward()
            grad = torch.stack(
                [p.grad.detach().float().norm() for p in model.parameters() if p.grad is not None]
            )
            results[name] = {"loss": loss.item(), "grad_norm": grad.norm().item()}
    finally:
        torch_dist.destroy_process_group()
    plain = results["plain"]
    results["match"] = all(
        abs(results[n]["loss"] - plain["loss"]) <= 1e-5 * max(1.0, abs(plain["loss"]))
        and abs(results[n]["grad_norm"] - plain["grad_norm"]) <= 1e-4 * max(1.0, plain["grad_norm"])
        for n in ("ddp", "fsdp")
    )
    return results


def llama_dir(out: Path, dry_run: bool, device: torch.device) -> dict[str, Any]:
    """A random Llama reward model of the 0.5B shape (tiny on the dry run) with MiniLM's tokenizer,
    saved into `out` (model_type llama: AutoTokenizer keeps the BERT tokenizer); its shape."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    from rmcore.model.reward import resolve_model_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("builtin:minilm"))
    shape = {k: v for k, v in (TINY if dry_run else QWEN_05B).items() if k != "vocab_size"}
    config = LlamaConfig(
        **shape,
        vocab_size=len(tokenizer),
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    with torch.device(device):  # random init of 0.5B parameters is quick there
        model = LlamaForSequenceClassification(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {**shape, "vocab_size": len(tokenizer), "parameters": sum(p.numel() for p in model.parameters())}


def lake_of(data: Path, relative: str, root: Path) -> dict[str, Any]:
    """`data/relative` ingested into a lake of its own under `root`, pairs built; what it holds."""
    from rmcore.config import IngestConfig, PairsConfig, SplitConfig
    from rmcore.data.ingest import ingest
    from rmcore.data.lake import Lake
    from rmcore.data.pairs import build_pairs

    lake = Lake(root)
    ingest(lake, [data / relative], IngestConfig())
    built = build_pairs(lake, SplitConfig(), PairsConfig())
    return {"lake": str(root), "pairs": built.pairs, "rankings": built.rankings}


def train_run(
    lake: str, model_dir: Path, out: Path, share: str, attention: str, args: argparse.Namespace
) -> dict:
    """`rmcore train` in-process on `lake`; the figures of its summary."""
    from rmcore.config import load_config
    from rmcore.training.recipe import train

    overrides = [
        f"data.lake={lake}",
        f"data.train={lake}",
        f"model.name_or_path={model_dir}",
        f"model.max_length={args.max_length}",
        f"model.share_prompt={share}",
        f"model.attention={attention}",
        "train.batch_size=16",
        f"train.max_steps={math.ceil(args.max_pairs / 16)}",
        "train.save_every=0",
        f"output_dir={out}",
    ]
    if args.dry_run:
        overrides.append(f"train.width_multiple={args.width_multiple}")
    started = time.perf_counter()
    summary = train(load_config(None, overrides), progress=False)
    seconds = summary["train_seconds"]
    return {
        "steps": summary["steps"],
        "pairs_per_s": summary["train_pairs_per_s"],
        "tokens_encoded": summary["tokens_encoded"],
        "encoded_tokens_per_s": summary["tokens_encoded"] / max(seconds, 1e-9),
        "tokens_padded": summary["tokens_padded"],
        "padding": summary["padding"],
        "shared_prompt_saving": summary["shared_prompt_saving"],
        "shapes": summary["shapes"],
        "widths": summary["widths"],
        "width_multiple": summary["width_multiple"],
        "attention": summary["attention"],
        "compiled_graphs": summary["compiled_graphs"],
        "recompiles": summary["recompiles"],
        "train_seconds": seconds,
        "held_out_pairs": summary["eval"].get("n_pairs"),
        "held_out_accuracy": summary["eval"].get("accuracy"),
        "seconds": time.perf_counter() - started,  # loading, training, checkpoint and evaluation
    }


def fmt(value: Any, spec: str = ",.0f", suffix: str = "") -> str:
    return "" if value is None else f"{value:{spec}}{suffix}"


def markdown(result: dict[str, Any]) -> str:
    """The figures as markdown tables (what bench/README.md's gpu_check section shows)."""
    lines = [
        f"### gpu_check on {result['device']} (torch {result['torch']}, {result['date']}"
        f"{', dry run' if result['dry_run'] else ''})",
        "",
        f"Harness: random decoder, {result['model']['num_hidden_layers']} x "
        f"{result['model']['hidden_size']}, "
        f"{result['precision']} autocast, synthetic pairs and rankings of 4; matmul peak "
        f"{result['peak_tflops_measured']:.2f} TFLOP/s.",
        "",
        "| pairs / step | mode | pairs/s | tokens encoded | encoded tokens/s | MFU | GPU busy "
        "| graphs | recompiles | peak memory |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for per_step, modes in result["harness"].items():
        for mode, m in modes.items():
            if "pairs_per_s" not in m:
                lines.append(f"| {per_step} | {mode} | {m.get('skipped') or m.get('error')} ||||||||")
                continue
            lines.append(
                f"| {per_step} | {mode} | {m['pairs_per_s']:.1f} | {m['tokens_encoded']:,} "
                f"| {m['encoded_tokens_per_s']:,.0f} | {m['mfu']:.1%} | {fmt(m['gpu_busy'], '.0%')} "
                f"| {m['compiled_graphs']} | {m['recompiles']} | {fmt(m['peak_memory_gib'], '.1f', ' GiB')} |"
            )
    one_rank = result.get("one_rank")
    if one_rank:
        lines += [
            "",
            f"One rank ({one_rank['backend']}): DDP and FSDP2 match the plain step: {one_rank['match']}.",
        ]
    section = result.get("train")
    if section:
        lines += ["", "`rmcore train` (random Llama of that shape, MiniLM's tokenizer, batch 16):", ""]
        if "skipped" in section:
            lines.append(f"Skipped: {section['skipped']}.")
        else:
            lines += [
                "| data | share_prompt | attention | steps | pairs/s | tokens encoded | encoded tokens/s "
                "| padding | shapes | graphs | recompiles | train s | held-out acc. |",
                "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for r in section["runs"]:
                head = f"| {r['data']} | {r['share_prompt']} | {r['attention_asked']} "
                if "pairs_per_s" not in r:
                    lines.append(head + f"| {r.get('skipped') or r.get('error')} |||||||||")
                    continue
                lines.append(
                    head + f"| {r['steps']} | {r['pairs_per_s']:.1f} | {r['tokens_encoded']:,} "
                    f"| {r['encoded_tokens_per_s']:,.0f} | {r['padding']:.1%} | {r['shapes']} "
                    f"| {r['compiled_graphs']} | {r['recompiles']} | {r['train_seconds']:.1f} "
                    f"| {fmt(r['held_out_accuracy'], '.3f')} |"
                )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[2])
    parser.add_argument("--dry-run", action="store_true", help="the CPU, a tiny model, a few steps")
    parser.add_argument("--steps", type=int, help="timed optimizer steps per mode (default 20; dry run 2)")
    parser.add_argument("--max-tokens", type=int, default=16_384, help="padded tokens per micro-batch")
    parser.add_argument(
        "--data", type=Path, help="folder with hh-rlhf/... and oasst-en100/... (train section)"
    )
    parser.add_argument(
        "--max-pairs", type=int, help="training pairs per train run (default 800; dry run 48)"
    )
    parser.add_argument("--seconds", type=float, default=450, help="skip what is left after this long")
    parser.add_argument("--json", type=Path, help="also write the object to this file (after every mode)")
    parser.add_argument("--markdown", type=Path, help="also write the figures as markdown tables")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available() and not args.dry_run
    device = torch.device("cuda", 0) if cuda else torch.device("cpu")
    args.steps = args.steps or (20 if cuda else 2)
    args.max_pairs = args.max_pairs or (800 if cuda else 48)
    args.width_multiple = 128 if cuda else 8
    args.max_length = 1024 if cuda else 256
    shape = TINY if args.dry_run else QWEN_05B
    dtype = torch.bfloat16 if (cuda and torch.cuda.is_bf16_supported()) or not cuda else None
    started = time.perf_counter()

    def over_budget() -> str | None:
        spent = time.perf_counter() - started
        return f"past --seconds {args.seconds:.0f} ({spent:.0f} s spent)" if spent > args.seconds else None

    rm = decoder(shape, device)
    peak = peak_flops(device, dtype)
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if cuda else "cpu",
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "dry_run": args.dry_run,
        "model": {**shape, "parameters": sum(p.numel() for p in rm.model.parameters())},
        "precision": str(dtype).removeprefix("torch.") if dtype else "float32",
        "peak_tflops_measured": peak / 1e12,
        "harness": {},
    }

    def save() -> None:
        result["seconds"] = time.perf_counter() - started
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result) + "\n")
        if args.markdown:
            args.markdown.parent.mkdir(parents=True, exist_ok=True)
            args.markdown.write_text(markdown(result))

    scale = 0.25 if args.dry_run else 1.0
    for per_step in PAIRS_PER_STEP:
        # enough steps for the warm-up and the timed ones: ~10 (GPU) or ~1.5 (dry run) items per pair a step
        per_pair = 1.5 if args.dry_run else 10.0
        items = examples(int(per_step * per_pair), int(per_step * per_pair / 4), shape["vocab_size"], scale)
        modes: dict[str, Any] = result["harness"].setdefault(str(per_step), {})
        for mode in ("shared", *(["flex"] if cuda else []), "separate", "padded"):
            why = over_budget()
            try:
                modes[mode] = (
                    {"skipped": why} if why else measure(mode, rm, items, per_step, args, device, dtype, peak)
                )
            except Exception as error:  # noqa: BLE001 (one failed mode must not cost the others)
                modes[mode] = {"error": f"{type(error).__name__}: {error}"[:2000]}
            if cuda:
                torch.cuda.empty_cache()
            save()
        if all("pairs_per_s" in modes.get(m, {}) for m in ("shared", "separate", "padded")):
            speedups = {
                "shared_vs_padded": modes["shared"]["pairs_per_s"] / modes["padded"]["pairs_per_s"],
                "shared_vs_separate": modes["shared"]["pairs_per_s"] / modes["separate"]["pairs_per_s"],
            }
            if "pairs_per_s" in modes.get("flex", {}):
                speedups["flex_vs_shared"] = modes["flex"]["pairs_per_s"] / modes["shared"]["pairs_per_s"]
            result.setdefault("speedups", {})[str(per_step)] = speedups
    first = collate(examples(3, 0, shape["vocab_size"], scale), PAD, "right", rm.share)
    result["one_rank"] = one_rank_wrappers(rm, first, device)
    del rm
    save()
    result["train"] = train_section(args, device, over_budget, save, result)
    save()
    print(json.dumps(result))
    return 0 if result["one_rank"]["match"] else 1


def train_section(
    args: argparse.Namespace, device: torch.device, over_budget: Any, save: Any, result: dict[str, Any]
) -> dict[str, Any]:
    """`rmcore train` on the HH and OASST lakes built from `args.data`: one run per data set, sharing
    and attention (sdpa runs first, flex_attention's compiling ones last), saved after each."""
    if args.data is None:
        return {"skipped": "no --data"}
    missing = [rel for rel in (HH, OASST) if not (args.data / rel).exists()]
    if missing:
        return {"skipped": f"not under {args.data}: {', '.join(missing)}"}
    work = Path(tempfile.mkdtemp(prefix="gpu_check-"))
    section: dict[str, Any] = {
        "max_length": args.max_length,
        "max_pairs": args.max_pairs,
        "model": llama_dir(work / "model", args.dry_run, device),
        "data": {
            "hh": lake_of(args.data, HH, work / "hh"),
            "oasst": lake_of(args.data, OASST, work / "oasst"),
        },
        "runs": [],
    }
    result["train"] = section
    attentions = ("sdpa", "flex_attention") if device.type == "cuda" else ("sdpa",)
    for attention in attentions:
        for data in ("hh", "oasst"):
            for share in ("off", "auto"):
                run: dict[str, Any] = {"data": data, "share_prompt": share, "attention_asked": attention}
                why = over_budget()
                out = work / "runs" / f"{data}-{share}-{attention}"
                try:
                    run |= (
                        {"skipped": why}
                        if why
                        else train_run(
                            section["data"][data]["lake"], work / "model", out, share, attention, args
                        )
                    )
                except Exception as error:  # noqa: BLE001 (one failed run must not cost the others)
                    run["error"] = f"{type(error).__name__}: {error}"[:2000]
                finally:  # a 0.5B run leaves ~6 GB of checkpoint: the device's disk holds a few
                    shutil.rmtree(out, ignore_errors=True)
                section["runs"].append(run)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                save()
    shutil.rmtree(work, ignore_errors=True)
    for lake in section["data"].values():
        lake["lake"] = Path(lake["lake"]).name
    return section


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
