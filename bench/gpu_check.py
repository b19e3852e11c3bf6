"""python3 bench/gpu_check.py [--dry-run] [--steps N] [--json FILE]

rmcore's training engine on one GPU, in one command (under 8 minutes on an H100/H200), printing one
JSON object. `--dry-run` runs the same code on the CPU with a tiny model in seconds (a test does).

    shared     rmcore's step (collate -> loss_step -> backward -> AdamW), prompts encoded once,
               blocks packed into rows, SDPA with a dense mask
    flex       the same with FlexAttention's block mask, masked blocks skipped (CUDA only:
               FlexAttention has no backward on the CPU)
    separate   the same, one row per sequence (model.share_prompt off)
    padded     a TRL-style step: every pair's chosen and rejected, each ranking expanded to its
               K(K-1)/2 pairs, padded to the step's longest sequence, Bradley-Terry loss

on a random decoder shaped like Qwen2.5-0.5B (24 layers x 896, 14 heads, 2 KV heads; the weights do
not change the speed), bf16 autocast, fp32 weights, on synthetic preference data: HH-like pairs
(prompt 60-240 tokens, responses 20-120) and rankings of 4 (prompt 60-240, replies 30-200). For each
mode: pairs/s, tokens encoded and computed (padding included), the work in tokens each sequence
alone would take, model FLOP utilisation (MFU: 6 x non-embedding parameters per encoded token, plus
attention, over the peak a timed bf16 matrix product reaches on this device), and peak memory.
Then NCCL (gloo on the CPU) on one rank: one DDP step and one FSDP2 step of rmcore's wrappers,
whose losses and gradient norms must equal the plain step's.

It needs torch, transformers, numpy, pyyaml and pydantic (rmcore's config; a CUDA PyTorch image
may lack pydantic: carry its wheels, bench/README.md says how). rmcore is imported from this
checkout; nothing is installed.
"""

import argparse
import json
import math
import os
import random
import socket
import sys
import time
from collections.abc import Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any

import torch
import torch.distributed as torch_dist
from torch.nn.parallel import DistributedDataParallel
from transformers import AutoModelForSequenceClassification, Qwen2Config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rmcore.model.batching import Batch, PairExample, RankingExample, collate, pad_sequences  # noqa: E402
from rmcore.model.losses import bradley_terry  # noqa: E402
from rmcore.model.plan import plan_batches  # noqa: E402
from rmcore.model.reward import RewardModel, RewardModule  # noqa: E402
from rmcore.model.rows import SharePolicy, shared_prompt_mask  # noqa: E402
from rmcore.training.distributed import Dist, shard_model  # noqa: E402

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
BATCH_PAIRS = 16
PAD = 0


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
        rankings=[],
        n_pairs=n,
        sequence_tokens=int(mask.sum()),
    )


def steps(
    items: list[PairExample | RankingExample], mode: str, rm: RewardModel, max_tokens: int
) -> list[list[Batch]]:
    """The epoch's optimizer steps as micro-batches, built as the mode builds them."""
    share = rm.share if mode in ("shared", "flex") else None
    plan = plan_batches(items, BATCH_PAIRS, max_tokens, 0, True, share=share)
    if mode == "padded":
        return [[padded_batch([items[i] for mb in step for i in mb])] for step in plan]
    return [[collate([items[i] for i in mb], PAD, "right", share) for mb in step] for step in plan]


def step_loss(
    scorer: torch.nn.Module, batch: Batch, device: torch.device, dtype: torch.dtype | None
) -> torch.Tensor:
    """The mean Bradley-Terry loss of a micro-batch (every mode computes the same loss)."""
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


def measure(
    mode: str,
    rm: RewardModel,
    items: list,
    args: argparse.Namespace,
    device: torch.device,
    dtype: torch.dtype | None,
    peak: float,
) -> dict[str, Any]:
    """Train `args.steps` steps in this mode after 2 warm-up steps; the figures."""
    model = deepcopy(rm.model)
    share = rm.share
    if mode == "flex":
        model.set_attn_implementation("flex_attention")
        share = SharePolicy(attention_weight=0.0)  # masked blocks cost nothing: share wherever it saves
    rm = RewardModel(model, None, "last", "plain", 4096, share)  # type: ignore[arg-type]
    scorer = RewardModule(rm)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    plan = steps(items, mode, rm, args.max_tokens)
    warmup, timed = plan[:2], plan[2 : 2 + args.steps]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    encoded = computed = attended = alone = pairs = 0
    started = 0.0
    for k, step in enumerate(warmup + timed):
        if k == len(warmup):
            sync(device)
            started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        for batch in step:
            step_loss(scorer, batch, device, dtype).backward()
            if k >= len(warmup):
                encoded, computed = encoded + batch.tokens, computed + batch.padded_tokens
                attended += attended_products(batch, mode)
                alone, pairs = alone + batch.sequence_tokens, pairs + batch.n_pairs
        optimizer.step()
    sync(device)
    seconds = time.perf_counter() - started
    params = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n)
    layers, hidden = model.config.num_hidden_layers, model.config.hidden_size
    # QK^T and AV take 2 x 2 x hidden FLOPs per query-key product forward, 3x that with backward
    flops = 6 * params * encoded + 12 * layers * hidden * attended
    return {
        "steps": len(timed),
        "pairs_per_s": pairs / seconds,
        "tokens_encoded": encoded,
        "tokens_computed": computed,
        "tokens_alone": alone,
        "encoded_tokens_per_s": encoded / seconds,
        "mfu": flops / seconds / peak,
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[2])
    parser.add_argument("--dry-run", action="store_true", help="the CPU, a tiny model, a few steps")
    parser.add_argument("--steps", type=int, help="timed optimizer steps per mode (default 20; dry run 2)")
    parser.add_argument("--max-tokens", type=int, default=16_384, help="padded tokens per micro-batch")
    parser.add_argument("--json", type=Path, help="also write the object to this file")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available() and not args.dry_run
    device = torch.device("cuda", 0) if cuda else torch.device("cpu")
    args.steps = args.steps or (20 if cuda else 2)
    shape = TINY if args.dry_run else QWEN_05B
    dtype = torch.bfloat16 if (cuda and torch.cuda.is_bf16_supported()) or not cuda else None
    started = time.perf_counter()
    rm = decoder(shape, device)
    scale = 0.25 if args.dry_run else 1.0
    items = examples(24 if args.dry_run else 160, 8 if args.dry_run else 40, shape["vocab_size"], scale)
    peak = peak_flops(device, dtype)
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if cuda else "cpu",
        "torch": torch.__version__,
        "dry_run": args.dry_run,
        "model": {**shape, "parameters": sum(p.numel() for p in rm.model.parameters())},
        "precision": str(dtype).removeprefix("torch.") if dtype else "float32",
        "peak_tflops_measured": peak / 1e12,
        "modes": {
            mode: measure(mode, rm, items, args, device, dtype, peak)
            for mode in ("shared", *(["flex"] if cuda else []), "separate", "padded")
        },
    }
    modes = result["modes"]
    if "flex" in modes:
        result["speedup_flex_vs_shared"] = modes["flex"]["pairs_per_s"] / modes["shared"]["pairs_per_s"]
    result["speedup_shared_vs_padded"] = modes["shared"]["pairs_per_s"] / modes["padded"]["pairs_per_s"]
    result["speedup_shared_vs_separate"] = modes["shared"]["pairs_per_s"] / modes["separate"]["pairs_per_s"]
    first = collate(items[:3], PAD, "right", rm.share)
    result["one_rank"] = one_rank_wrappers(rm, first, device)
    result["seconds"] = time.perf_counter() - started
    text = json.dumps(result)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0 if result["one_rank"]["match"] else 1


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
