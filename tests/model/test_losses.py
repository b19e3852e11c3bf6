"""Losses against hand-computed numbers (the arithmetic is in the comments)."""

import math
from typing import Literal

import pytest
import torch

from rmcore.model.losses import (
    bradley_terry,
    bradley_terry_margin,
    centering,
    group_weights,
    pair_loss,
    plackett_luce,
    soft_label,
)

LOG2 = math.log(2.0)  # 0.6931471805599453
BT_1 = 0.31326168751822286  # -log sigmoid(1) = log(1 + e^-1) = log(1.3678794) = 0.3132617
BT_M2 = 2.1269280110429727  # -log sigmoid(-2) = log(1 + e^2) = log(8.3890561) = 2.1269280
BT_M1 = 1.3132616875182228  # -log sigmoid(-1) = log(1 + e) = 1 + log(1 + e^-1) = 1.3132617


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def test_bradley_terry_hand_values() -> None:
    # given two pairs: d = 1 - 0 = 1 and d = 0 - 2 = -2
    r_w, r_l = t(1.0, 0.0), t(0.0, 2.0)
    # when
    out = bradley_terry(r_w, r_l)
    # then the loss is (0.3132617 + 2.1269280) / 2 = 1.2200948
    assert out.loss.item() == pytest.approx((BT_1 + BT_M2) / 2, abs=1e-6)
    assert out.loss.item() == pytest.approx(1.2200948492805979, abs=1e-6)
    # accuracy 1 of 2, mean margin (1 + -2) / 2 = -0.5
    assert out.metrics["accuracy"] == pytest.approx(0.5)
    assert out.metrics["ties"] == 0.0
    assert out.metrics["reward_margin"] == pytest.approx(-0.5)
    assert out.metrics["loss_bt"] == pytest.approx(out.loss.item())


def test_bradley_terry_equal_rewards_is_log2_and_a_tie() -> None:
    # given r_w == r_l: -log sigmoid(0) = log 2
    out = bradley_terry(t(0.3), t(0.3))
    # then
    assert out.loss.item() == pytest.approx(LOG2, abs=1e-6)
    assert out.metrics["accuracy"] == 0.0  # strict r_w > r_l: a tie is not a win
    assert out.metrics["ties"] == 1.0


def test_bradley_terry_weighted_mean() -> None:
    # given weights 3 and 1: (3 * 0.3132617 + 1 * 2.1269280) / 4 = (0.9397851 + 2.1269280) / 4 = 0.7666783
    out = bradley_terry(t(1.0, 0.0), t(0.0, 2.0), weight=t(3.0, 1.0))
    # then
    assert out.loss.item() == pytest.approx(0.7666782683994103, abs=1e-6)


def test_bradley_terry_gradient_is_minus_one_minus_sigmoid() -> None:
    # given d = r_w - r_l as a leaf and r_l = 0
    d = t(-2.0, 0.0, 1.5, 30.0).requires_grad_()
    # when the loss is summed over pairs (mean * p)
    (bradley_terry(d, torch.zeros(4)).loss * 4).backward()
    # then d loss / d d = -(1 - sigmoid(d)): -(1 - 0.1192029) = -0.8807971, -0.5, -0.1824255, ~0
    assert d.grad is not None
    expected = -(1 - torch.sigmoid(d.detach()))
    torch.testing.assert_close(d.grad, expected, atol=1e-7, rtol=0)
    torch.testing.assert_close(
        d.grad[:3], t(-0.8807970779778823, -0.5, -0.18242552380635635), atol=1e-6, rtol=0
    )


def test_bradley_terry_is_stable_for_large_differences() -> None:
    # given d = +1000 and d = -1000: log(1 + e^-1000) = 0, log(1 + e^1000) = 1000 (no overflow)
    out = bradley_terry(t(1000.0, -1000.0), t(0.0, 0.0))
    # then the mean is (0 + 1000) / 2 = 500, finite
    assert out.loss.item() == pytest.approx(500.0, abs=1e-3)


def test_bradley_terry_computes_in_float32_from_bf16() -> None:
    # given bf16 rewards 1 and 0
    out = bradley_terry(t(1.0).bfloat16(), t(0.0).bfloat16())
    # then the loss is float32 and equals log(1 + e^-1) = 0.3132617
    assert out.loss.dtype == torch.float32
    assert out.loss.item() == pytest.approx(BT_1, abs=1e-6)


def test_margin_shifts_the_difference() -> None:
    # given r_w = 1, r_l = 0 and margin 1: -log sigmoid(1 - 0 - 1) = log 2
    out = bradley_terry_margin(t(1.0), t(0.0), margin=t(1.0))
    assert out.loss.item() == pytest.approx(LOG2, abs=1e-6)
    # given margin 3: -log sigmoid(1 - 3) = log(1 + e^2) = 2.1269280
    out = bradley_terry_margin(t(1.0), t(0.0), margin=t(3.0))
    assert out.loss.item() == pytest.approx(BT_M2, abs=1e-6)
    # then the reported reward margin stays r_w - r_l = 1 (without m)
    assert out.metrics["reward_margin"] == pytest.approx(1.0)


def test_margin_nan_means_plain_bradley_terry() -> None:
    # given one pair with margin 1 (d - m = 0 -> log 2) and one without (d = 1 -> 0.3132617)
    out = bradley_terry_margin(t(1.0, 1.0), t(0.0, 0.0), margin=t(1.0, float("nan")))
    # then (0.6931472 + 0.3132617) / 2 = 0.5032044
    assert out.loss.item() == pytest.approx((LOG2 + BT_1) / 2, abs=1e-6)


def test_margin_equals_bradley_terry_on_shifted_rewards() -> None:
    # given random rewards and margins
    gen = torch.Generator().manual_seed(0)
    r_w, r_l, m = torch.randn(8, generator=gen), torch.randn(8, generator=gen), torch.rand(8, generator=gen)
    # then -log sigmoid(r_w - r_l - m) is BT with r_w - m
    expected = bradley_terry(r_w - m, r_l).loss
    torch.testing.assert_close(bradley_terry_margin(r_w, r_l, m).loss, expected)


def test_soft_label_with_p_one_equals_bradley_terry() -> None:
    # given p = 1: -[1 * log sigmoid(d) + 0 * log sigmoid(-d)] = -log sigmoid(d)
    gen = torch.Generator().manual_seed(1)
    r_w, r_l = torch.randn(6, generator=gen), torch.randn(6, generator=gen)
    # then
    torch.testing.assert_close(soft_label(r_w, r_l, torch.ones(6)).loss, bradley_terry(r_w, r_l).loss)


def test_soft_label_hand_values() -> None:
    # given d = 1, p = 0.75: 0.75 * 0.3132617 + 0.25 * 1.3132617 = 0.2349463 + 0.3283154 = 0.5632617
    out = soft_label(t(1.0), t(0.0), t(0.75))
    assert out.loss.item() == pytest.approx(0.5632616875182228, abs=1e-6)
    # given d = 0, p = 0.5: -[0.5 log 0.5 + 0.5 log 0.5] = log 2
    out = soft_label(t(0.0), t(0.0), t(0.5))
    assert out.loss.item() == pytest.approx(LOG2, abs=1e-6)


def test_soft_label_minimum_is_at_sigmoid_d_equal_p() -> None:
    # given p = 0.8: the minimum over d is at sigmoid(d) = 0.8, d = log(0.8 / 0.2) = log 4 = 1.3862944
    d = torch.tensor([math.log(4.0)], requires_grad=True)
    # when
    soft_label(d, torch.zeros(1), t(0.8)).loss.backward()
    # then the gradient -(p - sigmoid(d)) = -(0.8 - 0.8) = 0
    assert d.grad is not None
    assert abs(d.grad.item()) < 1e-6


def test_centering_value() -> None:
    # given r_w = [1, 3], r_l = [1, 0]: (1 + 1)^2 = 4, (3 + 0)^2 = 9, mean 6.5, coef 0.1 -> 0.65
    out = centering(t(1.0, 3.0), t(1.0, 0.0), coef=0.1)
    # then
    assert out.loss.item() == pytest.approx(0.65, abs=1e-6)
    # mean reward (1 + 3 + 1 + 0) / 4 = 1.25
    assert out.metrics["reward_mean"] == pytest.approx(1.25)
    # given opposite rewards r_w = -r_l: (r_w + r_l)^2 = 0
    assert centering(t(2.0, -0.5), t(-2.0, 0.5), coef=1.0).loss.item() == 0.0


def test_plackett_luce_k2_equals_bradley_terry() -> None:
    # given rankings of 2: -log(e^a / (e^a + e^b)) = log(1 + e^(b - a)) = -log sigmoid(a - b)
    gen = torch.Generator().manual_seed(2)
    rewards = torch.randn(5, 2, generator=gen)
    # then
    torch.testing.assert_close(plackett_luce(rewards).loss, bradley_terry(rewards[:, 0], rewards[:, 1]).loss)


def test_plackett_luce_k3_hand_value() -> None:
    # given rewards [2, 1, 0] ordered best -> worst:
    #   step 1: -log(e^2 / (e^2 + e^1 + e^0)) = log(7.3890561 + 2.7182818 + 1) - 2 = 2.4076060 - 2 = 0.4076060
    #   step 2: -log(e^1 / (e^1 + e^0)) = log(1 + e^-1) = 0.3132617
    #   total 0.7208677
    out = plackett_luce(t(2.0, 1.0, 0.0)[None])
    # then
    assert out.loss.item() == pytest.approx(0.7208676519626029, abs=1e-6)
    assert out.metrics["pl_top1"] == 1.0
    assert out.metrics["rankings"] == 1.0
    assert out.metrics["loss"] == out.metrics["loss_pl"] == pytest.approx(0.7208676519626029, abs=1e-6)


def test_plackett_luce_batched_with_varying_lengths() -> None:
    # given a ranking of 3 [2, 1, 0] (0.7208677) and one of 2 [0.5, 1.5] padded with nan:
    #   -log sigmoid(0.5 - 1.5) = log(1 + e) = 1.3132617; mean (0.7208677 + 1.3132617) / 2 = 1.0170647
    rewards = torch.tensor([[2.0, 1.0, 0.0], [0.5, 1.5, float("nan")]], requires_grad=True)
    # when
    out = plackett_luce(rewards, torch.tensor([3, 2]))
    out.loss.backward()
    # then the padding neither changes the value nor receives gradient
    assert out.loss.item() == pytest.approx(1.0170646697404129, abs=1e-6)
    assert rewards.grad is not None
    assert torch.isfinite(rewards.grad).all()
    assert rewards.grad[1, 2].item() == 0.0
    # the second ranking's best response does not get the top reward: top-1 is 1 of 2
    assert out.metrics["pl_top1"] == pytest.approx(0.5)


def test_plackett_luce_is_stable_for_large_rewards() -> None:
    # given rewards [1000, 0]: log(1 + e^-1000) = 0, and [0, 1000]: log(1 + e^1000) = 1000
    out = plackett_luce(torch.tensor([[1000.0, 0.0], [0.0, 1000.0]]))
    # then mean (0 + 1000) / 2 = 500, finite
    assert out.loss.item() == pytest.approx(500.0, abs=1e-3)


def test_group_weights_weigh_each_prompt_equally() -> None:
    # given three pairs of prompt 0 (losses 1, 2, 3) and one pair of prompt 1 (loss 10), as centering
    # losses with coef 1 and r_l = 0: each pair's loss is (r_w + 0)^2, so r_w = sqrt(loss)
    r_w, r_l, groups = t(1.0, 2.0, 3.0, 10.0).sqrt(), torch.zeros(4), torch.tensor([0, 0, 0, 1])
    # when the pair losses are weighted by group
    out = centering(r_w, r_l, coef=1.0, weight=group_weights(groups))
    # then each prompt weighs 1: ((1 + 2 + 3) / 3 + 10) / 2 = (2 + 10) / 2 = 6 (the plain mean is 16 / 4 = 4)
    assert out.loss.item() == pytest.approx(6.0)
    assert centering(r_w, r_l, coef=1.0).loss.item() == pytest.approx(4.0)
    torch.testing.assert_close(group_weights(groups), t(1 / 3, 1 / 3, 1 / 3, 1.0))


def test_pair_loss_composes_the_pieces() -> None:
    # given pairs d = 1 (group 0), d = 1 and d = -2 (group 1)
    r_w, r_l, groups = t(1.0, 1.0, 0.0), t(0.0, 0.0, 2.0), torch.tensor([0, 1, 1])
    # when Bradley-Terry with centering 0.1 and group normalization
    out = pair_loss(r_w, r_l, centering=0.1, pair_group=groups, group_normalize=True)
    # then BT = (0.3132617 + (0.3132617 + 2.1269280) / 2) / 2 = (0.3132617 + 1.2200948) / 2 = 0.7666783
    bt = (BT_1 + (BT_1 + BT_M2) / 2) / 2
    #      centering = 0.1 * ((1 + 0)^2 + ((1 + 0)^2 + (0 + 2)^2) / 2) / 2 = 0.1 * (1 + 2.5) / 2 = 0.175
    center = 0.1 * (1.0 + (1.0 + 4.0) / 2) / 2
    assert out.metrics["loss_bt"] == pytest.approx(bt, abs=1e-6)
    assert out.metrics["loss_center"] == pytest.approx(center, abs=1e-6)
    assert out.loss.item() == pytest.approx(bt + center, abs=1e-6)
    # accuracy 2 of 3, mean reward margin (1 + 1 - 2) / 3 = 0
    assert out.metrics["accuracy"] == pytest.approx(2 / 3)
    assert out.metrics["reward_margin"] == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize(
    ("kind", "use_margin", "term_key"),
    [
        ("bradley_terry", False, "loss_bt"),
        ("bradley_terry", True, "loss_bt_margin"),
        ("soft", False, "loss_soft"),
    ],
)
@pytest.mark.parametrize("coef", [0.0, 0.1])
@pytest.mark.parametrize("group_normalize", [False, True])
def test_pair_loss_is_the_public_term_plus_centering(
    kind: Literal["bradley_terry", "soft"],
    use_margin: bool,
    term_key: str,
    coef: float,
    group_normalize: bool,
) -> None:
    # given random pairs of three prompt groups (sizes 1, 3, 1), margins (one missing) and soft labels
    gen = torch.Generator().manual_seed(3)
    r_w = torch.randn(5, generator=gen).requires_grad_()
    r_l = torch.randn(5, generator=gen).requires_grad_()
    margin, p = t(0.5, float("nan"), 1.0, 2.0, 0.0), t(1.0, 0.6, 0.75, 0.5, 0.9)
    groups = torch.tensor([0, 1, 1, 1, 2])
    # when training's loss is built from the options
    out = pair_loss(
        r_w, r_l, kind=kind, p_chosen=p, margin=margin, use_margin=use_margin, centering=coef,
        pair_group=groups, group_normalize=group_normalize,
    )  # fmt: skip
    # then it is the matching public term, plus the centering term when coef > 0, on the same weights
    weight = group_weights(groups) if group_normalize else None
    if kind == "soft":
        term = soft_label(r_w, r_l, p, weight=weight)
    elif use_margin:
        term = bradley_terry_margin(r_w, r_l, margin, weight=weight)
    else:
        term = bradley_terry(r_w, r_l, weight=weight)
    parts = [term, centering(r_w, r_l, coef, weight=weight)] if coef > 0 else [term]
    expected = torch.stack([part.loss for part in parts]).sum()
    torch.testing.assert_close(out.loss, expected)
    torch.testing.assert_close(
        torch.autograd.grad(out.loss, (r_w, r_l)), torch.autograd.grad(expected, (r_w, r_l))
    )
    # and its metrics are the parts' metrics with the total as loss, under the documented keys
    merged = {key: value for part in parts for key, value in part.metrics.items()}
    assert out.metrics == pytest.approx({**merged, "loss": expected.item()})
    keys = {"loss", term_key, "accuracy", "ties", "reward_margin", "reward_mean"}
    assert set(out.metrics) == (keys | {"loss_center"} if coef > 0 else keys)


def test_pair_loss_refuses_inconsistent_arguments() -> None:
    r = t(1.0)
    with pytest.raises(ValueError, match="soft labels"):
        pair_loss(r, r, kind="soft", p_chosen=r, margin=r, use_margin=True)
    with pytest.raises(ValueError, match="p_chosen"):
        pair_loss(r, r, kind="soft")
    with pytest.raises(ValueError, match="pair_group"):
        pair_loss(r, r, group_normalize=True)
    with pytest.raises(ValueError, match="unknown"):
        pair_loss(r, r, kind="hinge")  # type: ignore[arg-type]


def test_empty_inputs_give_a_zero_loss_that_backpropagates() -> None:
    # given no pairs and no rankings
    r = torch.zeros(0, requires_grad=True)
    # when
    pairs = pair_loss(r, r, centering=0.1, pair_group=torch.zeros(0, dtype=torch.long), group_normalize=True)
    ranking = plackett_luce(torch.zeros(0, 3, requires_grad=True), torch.zeros(0, dtype=torch.long))
    (pairs.loss + ranking.loss).backward()
    # then the losses are 0 (metrics over no pairs are nan)
    assert pairs.loss.item() == 0.0
    assert ranking.loss.item() == 0.0
    assert math.isnan(pairs.metrics["accuracy"])
