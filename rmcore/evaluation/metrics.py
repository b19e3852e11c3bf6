"""Evaluation of a reward model on preference pairs: pure functions over its scores, no model.

`pair_metrics(r_chosen, r_rejected, pairs)` takes the rewards the model gave to the chosen and the
rejected response of each pair (shape (n,) each) and the pair table they came from (the data
layer's pair schema; only `chosen` and `rejected` are required) and returns one JSON-serializable
dict (`rmcore.evaluation.markdown.report_markdown` renders it). The rules, stated once:

- d = r_chosen - r_rejected, per pair, shape (n,).
- Conflicts: a pair whose `conflict` is true or whose p_chosen is exactly 0.5 has no right answer.
  It is left out of every accuracy (its count is reported) and out of `loss`, but kept in
  `loss_soft`, `loss_all`, the calibration error and the reward statistics.
- Headline accuracy is strict: a pair counts as right when d > tie_tol. A tie is |d| <= tie_tol
  (default 1e-6, so that an identical pair scored in two differently padded batches, which can
  differ by float noise, is a tie and not a coin flip; pass tie_tol=0.0 for exact equality).
  Ties count as wrong in the headline and are reported apart (`tie_rate`), along with
  `accuracy_ties_half` (a tie counts 1/2), so readers used to either convention can compare.
- Losses: `loss` is the mean Bradley-Terry NLL -log sigmoid(d) over decided pairs (the pairs the
  accuracy counts); `loss_all` the same over all pairs; `loss_soft` the mean soft-label NLL
  -[p log sigmoid(d) + (1-p) log sigmoid(-d)] over all pairs with p = p_chosen, and
  `loss_soft_floor` its minimum (the mean binary entropy of p), reached by sigmoid(d) == p.
- Calibration: each pair counts in both orientations, (sigmoid(d), p_chosen) and
  (sigmoid(-d), 1 - p_chosen): the model's probability that a response wins against the share of
  annotator votes it got (p_chosen is 1.0 for a single-vote or unanimous pair). Both are needed
  because the chosen side is the one the votes favoured: with the chosen orientation alone the
  outcome is never below 0.5, and a perfectly calibrated model would show a large error.
  Equal-width bins on [0, 1] over the 2n points; the expected calibration error is
  sum over bins of (count / 2n) * |mean confidence - mean outcome|.
- Reward statistics use the population standard deviation (ddof=0); `rewards.all` pools the 2n
  scores and is what to store with a model to offer normalized scores.
- Baselines: "the longer response wins" (length in Unicode characters) over decided pairs, equal
  lengths reported apart; Pearson correlation of reward with length over the 2n scored responses,
  and of d with the length difference over all pairs (invariant to which side is called chosen).

Missing optional columns: p_chosen defaults to 1.0 (a hard label), conflict to p_chosen == 0.5,
n_votes to the group "unknown", source and category to "(none)"; nulls are treated the same way.
"""

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TIE_TOL = 1e-6
"""Default tie tolerance: |r_chosen - r_rejected| <= TIE_TOL is a tie."""

NONE_GROUP = "(none)"
"""Group name for a null or missing source / category."""

N_VOTES_GROUPS = ("1", "2", "3", "4+")
P_CHOSEN_GROUPS = ("[0.5,0.6)", "[0.6,0.8)", "[0.8,1.0)", "1.0")
LENGTH_GROUPS = ("chosen longer", "same length", "rejected longer")

ACCURACY_RULE = (
    "strict: right when r_chosen - r_rejected > tie_tol; ties (|r_chosen - r_rejected| <= tie_tol) "
    "count as wrong and are reported apart; conflicts (p_chosen == 0.5) are excluded"
)
CALIBRATION_CONFIDENCE = (
    "sigmoid(r_a - r_b): the model's probability that response a wins, each pair in both orientations"
)
CALIBRATION_OUTCOME = "the share of annotator votes for response a (p_chosen, or 1 - p_chosen)"


# ---------------------------------------------------------------------------------------------
# Elementwise pieces


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)), elementwise and overflow-free; (n,) -> (n,)."""
    return np.logaddexp(0.0, x)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), elementwise and overflow-free; (n,) -> (n,)."""
    return np.exp(-softplus(-x))


def bt_nll(d: np.ndarray) -> np.ndarray:
    """Bradley-Terry negative log-likelihood -log sigmoid(d) = log(1 + exp(-d)); (n,) -> (n,)."""
    return softplus(-d)


def soft_nll(d: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Soft-label NLL -[p log sigmoid(d) + (1-p) log sigmoid(-d)]; d, p (n,) -> (n,)."""
    return p * softplus(-d) + (1.0 - p) * softplus(d)


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """-[p log p + (1-p) log(1-p)] with 0 log 0 = 0: the floor of `soft_nll` at label p; (n,) -> (n,)."""
    q = 1.0 - p
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(np.where(p > 0, p * np.log(p), 0.0) + np.where(q > 0, q * np.log(q), 0.0))
    return np.asarray(h, dtype=np.float64)


def _mean(x: np.ndarray) -> float | None:
    return float(np.mean(x)) if x.size else None


# ---------------------------------------------------------------------------------------------
# Statistics


def pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson correlation of x and y, both (n,); None when n < 2 or either is constant."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"pearson: shapes differ, {x.shape} and {y.shape}")
    if x.size < 2:
        return None
    dx = x - x.mean()
    dy = y - y.mean()
    sxx = float(dx @ dx)
    syy = float(dy @ dy)
    if sxx == 0.0 or syy == 0.0:
        return None
    return float(dx @ dy) / math.sqrt(sxx * syy)


def reward_stats(r: np.ndarray) -> dict[str, Any]:
    """n, mean, std (population, ddof=0), min and max of rewards r (n,); None values when empty."""
    r = np.asarray(r, dtype=np.float64)
    if r.size == 0:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    return {
        "n": int(r.size),
        "mean": float(r.mean()),
        "std": float(r.std()),
        "min": float(r.min()),
        "max": float(r.max()),
    }


def reliability_table(prob: np.ndarray, outcome: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Per equal-width bin of prob on [0, 1]: the points a reliability diagram draws.

    prob (n,) predicted probabilities of the event, outcome (n,) its observed frequency per item
    (0/1, or a soft label in [0, 1]). Bin i holds lo <= prob < hi with lo = i/bins, hi = (i+1)/bins;
    the last bin also holds prob == 1. Returns one dict per bin, all bins listed:
    {"lo", "hi", "count", "confidence": mean prob, "observed": mean outcome} (None when empty).
    """
    prob = np.asarray(prob, dtype=np.float64)
    outcome = np.asarray(outcome, dtype=np.float64)
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    if prob.shape != outcome.shape:
        raise ValueError(f"reliability_table: shapes differ, {prob.shape} and {outcome.shape}")
    if prob.size and (prob.min() < 0.0 or prob.max() > 1.0):
        raise ValueError("reliability_table: probabilities must lie in [0, 1]")
    index = np.minimum(np.floor(prob * bins).astype(np.int64), bins - 1)
    table = []
    for i in range(bins):
        member = index == i
        table.append(
            {
                "lo": i / bins,
                "hi": (i + 1) / bins,
                "count": int(member.sum()),
                "confidence": _mean(prob[member]),
                "observed": _mean(outcome[member]),
            }
        )
    return table


def expected_calibration_error(prob: np.ndarray, outcome: np.ndarray, bins: int = 10) -> float | None:
    """sum over equal-width bins of (count / n) * |mean prob - mean outcome|; None when n == 0.

    prob (n,) predicted probabilities, outcome (n,) observed frequencies (0/1 or soft labels);
    bins as in `reliability_table`.
    """
    table = reliability_table(prob, outcome, bins)
    n = sum(row["count"] for row in table)
    if n == 0:
        return None
    return float(
        sum(row["count"] / n * abs(row["confidence"] - row["observed"]) for row in table if row["count"])
    )


# ---------------------------------------------------------------------------------------------
# Accuracy and its groups


def accuracy_summary(d: np.ndarray, conflict: np.ndarray, tie_tol: float = TIE_TOL) -> dict[str, Any]:
    """Accuracy of reward differences d (n,) with conflicts (n,) bool left out.

    Returns n_pairs, n_decided, n_conflict, accuracy (d > tie_tol), n_ties and tie_rate
    (|d| <= tie_tol), accuracy_ties_half and loss (mean -log sigmoid(d)), all over decided pairs;
    rates and loss are None when no pair is decided.
    """
    decided = ~conflict
    dd = d[decided]
    n = int(dd.size)
    right = int(np.sum(dd > tie_tol))
    ties = int(np.sum(np.abs(dd) <= tie_tol))
    return {
        "n_pairs": int(d.size),
        "n_decided": n,
        "n_conflict": int(conflict.sum()),
        "accuracy": right / n if n else None,
        "n_ties": ties,
        "tie_rate": ties / n if n else None,
        "accuracy_ties_half": (right + ties / 2) / n if n else None,
        "loss": _mean(bt_nll(dd)),
    }


def accuracy_by(
    d: np.ndarray,
    conflict: np.ndarray,
    keys: Sequence[str],
    order: Iterable[str] = (),
    tie_tol: float = TIE_TOL,
) -> dict[str, dict[str, Any]]:
    """`accuracy_summary` per group: d (n,), conflict (n,) bool, keys (n,) the group of each pair.

    Groups named in `order` come first and are always present (an empty one has zero counts and
    None rates); the others follow in sorted order.
    """
    key_array = np.asarray(list(keys), dtype=object)
    if key_array.shape != d.shape:
        raise ValueError(f"accuracy_by: {len(key_array)} keys for {d.size} pairs")
    fixed = list(order)
    names = fixed + sorted(set(key_array.tolist()) - set(fixed))
    return {
        name: accuracy_summary(d[key_array == name], conflict[key_array == name], tie_tol) for name in names
    }


def n_votes_group(n_votes: int | None) -> str:
    """The agreement group of a vote count: "1", "2", "3", "4+"; "unknown" for None or < 1."""
    if n_votes is None or n_votes < 1:
        return "unknown"
    return str(n_votes) if n_votes < 4 else "4+"


def p_chosen_group(p: float) -> str:
    """The agreement group of a soft label: [0.5,0.6), [0.6,0.8), [0.8,1.0), 1.0; "<0.5" below."""
    if p >= 1.0:
        return "1.0"
    if p >= 0.8:
        return "[0.8,1.0)"
    if p >= 0.6:
        return "[0.6,0.8)"
    if p >= 0.5:
        return "[0.5,0.6)"
    return "<0.5"


def length_group(len_chosen: int, len_rejected: int) -> str:
    """ "chosen longer", "same length" or "rejected longer"."""
    if len_chosen > len_rejected:
        return "chosen longer"
    if len_chosen < len_rejected:
        return "rejected longer"
    return "same length"


def longer_wins(len_chosen: np.ndarray, len_rejected: np.ndarray, conflict: np.ndarray) -> dict[str, Any]:
    """The "longer response wins" baseline over decided pairs; lengths (n,), conflict (n,) bool.

    accuracy: share of decided pairs whose chosen response is strictly longer; equal lengths are
    counted apart (n_equal_length, equal_length_rate) and as half in accuracy_ties_half.
    """
    decided = ~conflict
    diff = (len_chosen - len_rejected)[decided].astype(np.float64)
    summary = accuracy_summary(diff, np.zeros(diff.shape, dtype=bool), tie_tol=0.0)
    return {
        "n_decided": summary["n_decided"],
        "accuracy": summary["accuracy"],
        "n_equal_length": summary["n_ties"],
        "equal_length_rate": summary["tie_rate"],
        "accuracy_ties_half": summary["accuracy_ties_half"],
    }


# ---------------------------------------------------------------------------------------------
# Reading the pair table


def _strings(pairs: pa.Table, name: str) -> list[str]:
    if name not in pairs.column_names:
        return [NONE_GROUP] * pairs.num_rows
    return [NONE_GROUP if v is None else str(v) for v in pairs.column(name).to_pylist()]


def char_lengths(pairs: pa.Table, name: str) -> np.ndarray:
    """Length in Unicode characters of each text of a string column of `pairs`, (n,); null counts as 0."""
    if name not in pairs.column_names:
        raise ValueError(f"pair table has no {name!r} column (columns: {', '.join(pairs.column_names)})")
    column = pairs.column(name)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise ValueError(f"pair table column {name!r} must be a string, got {column.type}")
    lengths = pc.fill_null(pc.utf8_length(column), 0)
    return np.asarray(lengths.to_numpy(zero_copy_only=False), dtype=np.int64)


def _p_chosen(pairs: pa.Table) -> np.ndarray:
    if "p_chosen" not in pairs.column_names:
        return np.ones(pairs.num_rows)
    p = np.array([1.0 if v is None else float(v) for v in pairs.column("p_chosen").to_pylist()])
    if p.size and not (np.all(np.isfinite(p)) and p.min() >= 0.0 and p.max() <= 1.0):
        raise ValueError("p_chosen must lie in [0, 1]")
    return p


def _conflict(pairs: pa.Table, p: np.ndarray) -> np.ndarray:
    conflict = p == 0.5
    if "conflict" in pairs.column_names:
        flags = np.array([bool(v) for v in pairs.column("conflict").to_pylist()], dtype=bool)
        conflict = conflict | flags
    return np.asarray(conflict, dtype=bool)


def _n_votes(pairs: pa.Table) -> list[int | None]:
    if "n_votes" not in pairs.column_names:
        return [None] * pairs.num_rows
    return [None if v is None else int(v) for v in pairs.column("n_votes").to_pylist()]


def _rewards(r: np.ndarray, name: str, n: int) -> np.ndarray:
    arr = np.asarray(r, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"{name} has shape {arr.shape}; the pair table has {n} rows, expected ({n},)")
    bad = int(np.sum(~np.isfinite(arr)))
    if bad:
        raise ValueError(f"{name} holds {bad} non-finite rewards (nan or inf); the model's scores are broken")
    return arr


# ---------------------------------------------------------------------------------------------
# The metrics


def pair_metrics(
    r_chosen: np.ndarray,
    r_rejected: np.ndarray,
    pairs: pa.Table,
    bins: int = 10,
    *,
    tie_tol: float = TIE_TOL,
) -> dict[str, Any]:
    """Everything worth knowing about rewards r_chosen (n,) and r_rejected (n,) on n pairs.

    pairs: the pair table, row i scored by r_chosen[i] and r_rejected[i]; bins: calibration bins;
    tie_tol: |d| <= tie_tol is a tie. The rules are in the module docstring. Returns a dict of
    plain ints, floats, strings, lists and dicts (None where a value is undefined):

    n_pairs, n_decided, n_conflict, accuracy (headline, strict), accuracy_rule, tie_tol, n_ties,
    tie_rate, accuracy_ties_half, loss (BT, decided pairs), loss_all (BT, all pairs), loss_soft,
    loss_soft_floor, margin_mean (mean d over decided pairs); by_source, by_category, by_n_votes,
    by_p_chosen, by_length: {group: accuracy_summary}; calibration: {ece, bins, confidence,
    outcome, table}; rewards: {chosen, rejected, all: reward_stats}; baselines: {longer_wins,
    length_correlation, length_diff_correlation}.
    """
    n = pairs.num_rows
    rw = _rewards(r_chosen, "r_chosen", n)
    rl = _rewards(r_rejected, "r_rejected", n)
    len_w = char_lengths(pairs, "chosen")
    len_l = char_lengths(pairs, "rejected")
    p = _p_chosen(pairs)
    conflict = _conflict(pairs, p)
    d = rw - rl

    headline = accuracy_summary(d, conflict, tie_tol)
    prob = sigmoid(np.concatenate([d, -d]))
    outcome = np.concatenate([p, 1.0 - p])
    n_votes = [n_votes_group(v) for v in _n_votes(pairs)]
    metrics: dict[str, Any] = {
        "n_pairs": headline["n_pairs"],
        "n_decided": headline["n_decided"],
        "n_conflict": headline["n_conflict"],
        "accuracy": headline["accuracy"],
        "accuracy_rule": ACCURACY_RULE,
        "tie_tol": float(tie_tol),
        "n_ties": headline["n_ties"],
        "tie_rate": headline["tie_rate"],
        "accuracy_ties_half": headline["accuracy_ties_half"],
        "loss": headline["loss"],
        "loss_all": _mean(bt_nll(d)),
        "loss_soft": _mean(soft_nll(d, p)),
        "loss_soft_floor": _mean(binary_entropy(p)),
        "margin_mean": _mean(d[~conflict]),
        "by_source": accuracy_by(d, conflict, _strings(pairs, "source"), tie_tol=tie_tol),
        "by_category": accuracy_by(d, conflict, _strings(pairs, "category"), tie_tol=tie_tol),
        "by_n_votes": accuracy_by(d, conflict, n_votes, N_VOTES_GROUPS, tie_tol),
        "by_p_chosen": accuracy_by(d, conflict, [p_chosen_group(v) for v in p], P_CHOSEN_GROUPS, tie_tol),
        "by_length": accuracy_by(
            d,
            conflict,
            [length_group(a, b) for a, b in zip(len_w, len_l, strict=True)],
            LENGTH_GROUPS,
            tie_tol,
        ),
        "calibration": {
            "ece": expected_calibration_error(prob, outcome, bins),
            "bins": int(bins),
            "confidence": CALIBRATION_CONFIDENCE,
            "outcome": CALIBRATION_OUTCOME,
            "table": reliability_table(prob, outcome, bins),
        },
        "rewards": {
            "chosen": reward_stats(rw),
            "rejected": reward_stats(rl),
            "all": reward_stats(np.concatenate([rw, rl])),
        },
        "baselines": {
            "longer_wins": longer_wins(len_w, len_l, conflict),
            "length_correlation": pearson(np.concatenate([rw, rl]), np.concatenate([len_w, len_l])),
            "length_diff_correlation": pearson(d, (len_w - len_l).astype(np.float64)),
        },
    }
    result = to_jsonable(metrics)
    assert isinstance(result, dict)
    return result


def to_jsonable(value: Any) -> Any:
    """value with numpy scalars made plain, tuples made lists and NaN / inf floats made None."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value
