"""Ranking losses for reward models: one function per loss, each returning LossOut(loss, metrics).

Notation: r_w (p,) rewards of the preferred ("won") responses, r_l (p,) of the rejected ones,
d = r_w - r_l. Every function is numerically stable (logsigmoid, logcumsumexp; no exp of a
reward), computes in float32 whatever the input dtype, and returns a scalar loss together with
the metrics worth logging, as detached () tensors on the loss's device (`LossOut.parts`): a
training step accumulates them there and reads them back once per log point, never inside the
step. `LossOut.metrics` reads them as floats in one transfer. parts["loss"] is always the
returned loss; the other keys are named after the part (loss_bt, loss_pl, ...).

Pairwise losses take an optional per-pair `weight` (p,) and return the weighted mean
sum(w * l) / sum(w); `group_weights(pair_group)` gives the weights of the InstructGPT group
normalization, so every pairwise loss can be group-normalized. `pair_loss`, the loss training
runs, is the sum of these functions chosen by explicit arguments (a loss kind, margin on/off,
centering coefficient, group normalization). Each public loss is `_loss_out` of a `_*_parts`
function that holds its formula and returns the loss and metrics as tensors: `pair_loss` adds
those parts up.

An empty input (no pairs, no rankings) gives a loss of 0 that still belongs to the graph, so a
micro-batch without pairs can go through `backward` unchanged; its metrics are nan.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

_PAD_REWARD = -1.0e30
"""Stands in for the missing rewards of a short ranking: exp(-1e30 - r) is exactly 0 in float32."""


@dataclass
class LossOut:
    """A scalar loss (with its graph) and its metrics for logging, still on the device."""

    loss: Tensor
    """() float32 scalar."""
    parts: dict[str, Tensor]
    """Detached () float32 metrics, on the loss's device; reading them waits for the device."""

    @cached_property
    def metrics(self) -> dict[str, float]:
        """`parts` as Python floats, read back in one device transfer (a host sync on a GPU)."""
        return _floats(self.parts)


def _floats(values: Mapping[str, Tensor]) -> dict[str, float]:
    """() tensors as Python floats, read back in one device transfer."""
    if not values:
        return {}
    stacked = torch.stack([v.detach().float().reshape(()) for v in values.values()])
    return dict(zip(values, stacked.tolist(), strict=True))


def _loss_out(parts: Mapping[str, Tensor]) -> LossOut:
    """LossOut of parts["loss"] (the () loss with its graph) and every part, detached, as a metric."""
    return LossOut(parts["loss"], {key: value.detach().float().reshape(()) for key, value in parts.items()})


def _weighted_mean(values: Tensor, weight: Tensor | None) -> Tensor:
    """sum(w * x) / sum(w) over (p,) values (plain mean without weights); 0 when p == 0."""
    if values.numel() == 0:
        return values.sum()
    if weight is None:
        return values.mean()
    weight = weight.to(values)
    return (weight * values).sum() / weight.sum()


def _reward_mean(r_w: Tensor, r_l: Tensor) -> Tensor:
    """() mean of all 2p rewards, detached."""
    return torch.cat([r_w, r_l]).detach().mean()


def _pair_stats(r_w: Tensor, r_l: Tensor) -> dict[str, Tensor]:
    """Detached () metrics of (p,) float32 pairs: accuracy (strict d > 0), ties (d == 0),
    reward_margin (mean d) and reward_mean (mean of r_w and r_l)."""
    d = (r_w - r_l).detach()
    return {
        "accuracy": (d > 0).float().mean(),
        "ties": (d == 0).float().mean(),
        "reward_margin": d.mean(),
        "reward_mean": _reward_mean(r_w, r_l),
    }


def bradley_terry(r_w: Tensor, r_l: Tensor, weight: Tensor | None = None) -> LossOut:
    """Bradley-Terry negative log-likelihood, the standard reward-model loss.

        loss = mean_p -log sigmoid(r_w - r_l)        (weighted mean when weight is given)

    P(w beats l) = sigmoid(r_w - r_l) (Bradley & Terry 1952, "Rank analysis of incomplete block
    designs"); used for reward models by Ouyang et al. 2022 (InstructGPT). Gradient with respect
    to d = r_w - r_l: -(1 - sigmoid(d)) per pair.

    r_w, r_l: (p,) rewards; weight: (p,) non-negative pair weights or None.
    Metrics: loss_bt, accuracy (strict r_w > r_l), ties (r_w == r_l), reward_margin (mean d),
    reward_mean (mean of r_w and r_l).
    """
    return _loss_out(_bradley_terry_parts(r_w, r_l, None, weight))


def bradley_terry_margin(r_w: Tensor, r_l: Tensor, margin: Tensor, weight: Tensor | None = None) -> LossOut:
    """Bradley-Terry with a per-pair margin: the preferred reward must lead by at least m.

        loss = mean_p -log sigmoid(r_w - r_l - m)

    Llama 2 (Touvron et al. 2023, section 3.2.2) uses a larger margin for pairs that annotators
    rated as clearly better. A pair without a margin (nan) uses m = 0, i.e. plain Bradley-Terry.

    r_w, r_l, margin: (p,); weight: (p,) or None.
    Metrics: loss_bt_margin, accuracy, ties, reward_margin (mean r_w - r_l, without m), reward_mean.
    """
    return _loss_out(_bradley_terry_parts(r_w, r_l, margin, weight))


def _bradley_terry_parts(
    r_w: Tensor, r_l: Tensor, margin: Tensor | None, weight: Tensor | None
) -> dict[str, Tensor]:
    """mean_w -log sigmoid(r_w - r_l - m) as "loss" and "loss_bt" (m = 0, margin None) or
    "loss_bt_margin" (m = margin, nan read as 0), with the pair stats; all (p,) inputs."""
    r_w, r_l = r_w.float(), r_l.float()
    d = r_w - r_l
    if margin is not None:
        d = d - torch.nan_to_num(margin.to(d), nan=0.0)
    loss = _weighted_mean(-F.logsigmoid(d), weight)
    key = "loss_bt" if margin is None else "loss_bt_margin"
    return {"loss": loss, key: loss, **_pair_stats(r_w, r_l)}


def soft_label(r_w: Tensor, r_l: Tensor, p: Tensor, weight: Tensor | None = None) -> LossOut:
    """Bradley-Terry cross-entropy against a soft label (the annotators' share for the preferred one).

        loss = mean_p -[p log sigmoid(d) + (1 - p) log sigmoid(-d)],   d = r_w - r_l

    The binary cross-entropy of the Bradley-Terry probability sigmoid(d) against p = p_chosen,
    the share of votes for the preferred response (Bradley & Terry 1952; soft targets as in
    knowledge distillation). p = 1 is plain Bradley-Terry; p = 1/2 pulls d toward 0; the minimum
    over d is at sigmoid(d) = p.

    r_w, r_l, p: (p,); weight: (p,) or None.
    Metrics: loss_soft, accuracy, ties, reward_margin, reward_mean.
    """
    return _loss_out(_soft_label_parts(r_w, r_l, p, weight))


def _soft_label_parts(r_w: Tensor, r_l: Tensor, p: Tensor, weight: Tensor | None) -> dict[str, Tensor]:
    """mean_w -[p log sigmoid(d) + (1 - p) log sigmoid(-d)] as "loss" and "loss_soft", with the
    pair stats; all (p,) inputs."""
    r_w, r_l = r_w.float(), r_l.float()
    d = r_w - r_l
    p = p.to(d)
    loss = _weighted_mean(-(p * F.logsigmoid(d) + (1.0 - p) * F.logsigmoid(-d)), weight)
    return {"loss": loss, "loss_soft": loss, **_pair_stats(r_w, r_l)}


def centering(r_w: Tensor, r_l: Tensor, coef: float, weight: Tensor | None = None) -> LossOut:
    """Reward-centering penalty: keeps rewards near zero, since Bradley-Terry is shift-invariant.

        loss = coef * mean_p (r_w + r_l)^2

    From Eisenstein et al. 2023, "Helping or Herding? Reward Model Ensembles Mitigate but do not
    Eliminate Reward Hacking" (the auxiliary loss that makes reward offsets identifiable).

    r_w, r_l: (p,); coef: the coefficient (lambda); weight: (p,) or None.
    Metrics: loss_center (the penalty, coef included), reward_mean (mean of r_w and r_l).
    """
    return _loss_out(_centering_parts(r_w, r_l, coef, weight))


def _centering_parts(r_w: Tensor, r_l: Tensor, coef: float, weight: Tensor | None) -> dict[str, Tensor]:
    """coef * mean_w (r_w + r_l)^2 as "loss" and "loss_center", with reward_mean; (p,) inputs."""
    r_w, r_l = r_w.float(), r_l.float()
    loss = coef * _weighted_mean((r_w + r_l) ** 2, weight)
    return {"loss": loss, "loss_center": loss, "reward_mean": _reward_mean(r_w, r_l)}


def plackett_luce(rewards: Tensor, lengths: Tensor | None = None) -> LossOut:
    """Listwise Plackett-Luce negative log-likelihood of rankings, batched over rankings.

        loss_j = -sum_{i=1}^{K_j - 1} log( exp(r_i) / sum_{k=i}^{K_j} exp(r_k) )
        loss   = mean_j loss_j

    The probability of an ordering is the product of choosing the best of the remaining
    responses at each step (Plackett 1975, "The analysis of permutations"; Luce 1959,
    "Individual Choice Behavior"). For K = 2 it is exactly Bradley-Terry.

    rewards: (r, K) float, row j the rewards of ranking j ordered best -> worst, padded on the
    right to the longest ranking (pad values are ignored); lengths: (r,) long, the number K_j
    of responses of each ranking (None: all K). Rankings must be strict: a ranking with ties is
    given to the pairwise losses as its strictly ordered pairs instead (see batching.collate).

    Metrics: loss_pl, pl_top1 (share of rankings whose best response gets the strictly highest
    reward), rankings (r).
    """
    x = rewards.float()
    n, k = x.shape
    if lengths is None:
        lengths = torch.full((n,), k, dtype=torch.long, device=x.device)
    position = torch.arange(k, device=x.device)
    valid = position[None, :] < lengths.to(x.device)[:, None]  # (r, K)
    x = x.masked_fill(~valid, _PAD_REWARD)
    suffix_lse = torch.logcumsumexp(x.flip(-1), dim=-1).flip(-1)  # (r, K): log sum_{k >= i} exp(r_k)
    counted = position[None, :] < (lengths.to(x.device)[:, None] - 1)  # the last choice has probability 1
    nll = -torch.where(counted, x - suffix_lse, torch.zeros_like(x)).sum(-1)  # (r,)
    loss = nll.mean() if n else x.sum()
    with torch.no_grad():
        best = x[:, 0]
        others = x[:, 1:].masked_fill(~valid[:, 1:], float("-inf"))
        top1 = (best > others.amax(-1)).float().mean() if k > 1 else _scalar(float("nan"), x.device)
    rankings = _scalar(float(n), x.device)
    return _loss_out({"loss": loss, "loss_pl": loss, "pl_top1": top1, "rankings": rankings})


def _scalar(value: float, device: torch.device) -> Tensor:
    """A () float32 tensor filled on `device`: unlike `torch.tensor(value, device=...)`, no copy from the
    host, which on a GPU would wait for the work queued before it."""
    return torch.full((), value, dtype=torch.float32, device=device)


def group_weights(pair_group: Tensor) -> Tensor:
    """(p,) float32 pair weights w_p = 1 / n_g, n_g the number of pairs of the pair's group g:
    the weights of the InstructGPT per-prompt normalization. With them a pairwise loss's weighted
    mean is the mean over the G groups of the mean within each group:

        sum_p w_p l_p / sum_p w_p = (1 / G) * sum_g (1 / n_g) * sum_{p in g} l_p

    Ouyang et al. 2022 (InstructGPT, section 3.5) train on all K(K-1)/2 comparisons of a prompt
    as one batch element, so each prompt weighs 1 however many pairs it has (and its correlated
    pairs do not dominate the batch).

    pair_group: (p,) long group ids, each < p (ids 0..G-1 as batching.collate numbers them).
    """
    ones = torch.ones(pair_group.shape, dtype=torch.float32, device=pair_group.device)
    # counted into p slots rather than max id + 1: reading the max back would sync with the device
    counts = torch.zeros_like(ones).scatter_add_(0, pair_group, ones)
    return 1.0 / counts[pair_group]


def pair_loss(
    r_w: Tensor,
    r_l: Tensor,
    *,
    kind: Literal["bradley_terry", "soft"] = "bradley_terry",
    p_chosen: Tensor | None = None,
    margin: Tensor | None = None,
    use_margin: bool = False,
    centering: float = 0.0,
    pair_group: Tensor | None = None,
    group_normalize: bool = False,
) -> LossOut:
    """The configured pairwise loss, as training runs it: a pairwise term plus optional centering.

        loss = term + centering(r_w, r_l, centering)          (the centering term only if > 0)
        term = bradley_terry(r_w, r_l)                         -log sigmoid(d)
             | bradley_terry_margin(r_w, r_l, margin)          -log sigmoid(d - m)   (use_margin)
             | soft_label(r_w, r_l, p_chosen)                  -[p log sigmoid(d) + (1 - p) log sigmoid(-d)]

    every term a mean over pairs, weighted by `group_weights(pair_group)` with group_normalize
    (the InstructGPT group mean: each prompt group weighs 1). The papers are in those functions.

    r_w, r_l: (p,) rewards; p_chosen: (p,) soft labels (needed for kind "soft"); margin: (p,)
    margins, nan where none (needed for use_margin); pair_group: (p,) long (needed for
    group_normalize). A margin combined with soft labels is refused: the margin assumes the
    preferred response is the winner, the soft label that it may not be.

    For gradient accumulation over micro-batches of one step, scale each micro-batch's loss by
    its share of the step: batch.n_pairs / step pairs, or batch.n_groups / step groups when
    group-normalized.

    Metrics: loss (the total); the term's own value: loss_bt, loss_bt_margin (use_margin) or
    loss_soft; loss_center (the centering term, coefficient included; only when centering > 0);
    accuracy (strict r_w > r_l); ties (r_w == r_l); reward_margin (mean r_w - r_l, never
    including the margin); reward_mean (mean of r_w and r_l).
    """
    if kind not in ("bradley_terry", "soft"):
        raise ValueError(f"unknown pair loss kind {kind!r}: use 'bradley_terry' or 'soft'")
    if kind == "soft" and use_margin:
        raise ValueError(
            "a margin cannot be combined with soft labels: choose kind 'bradley_terry' or no margin"
        )
    if kind == "soft" and p_chosen is None:
        raise ValueError("kind 'soft' needs p_chosen (the soft labels)")
    if use_margin and margin is None:
        raise ValueError("use_margin needs the pairs' margins")
    if group_normalize and pair_group is None:
        raise ValueError("group_normalize needs pair_group")

    # one float32 copy shared by the terms: their gradients add up in float32 before one cast back
    r_w, r_l = r_w.float(), r_l.float()
    weight = group_weights(pair_group) if group_normalize and pair_group is not None else None
    if kind == "soft":
        assert p_chosen is not None
        parts = _soft_label_parts(r_w, r_l, p_chosen, weight)
    else:
        parts = _bradley_terry_parts(r_w, r_l, margin if use_margin else None, weight)
    if centering > 0:
        center = _centering_parts(r_w, r_l, centering, weight)
        parts = {**parts, **center, "loss": parts["loss"] + center["loss"]}
    return _loss_out(parts)
