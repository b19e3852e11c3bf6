"""pair_metrics and report_markdown: every number recomputed by hand on a 6-pair table.

The table (d = r_chosen - r_rejected; lengths in characters):

    pair  source cat  chosen   rejected  p_chosen n_votes  r_w   r_l   d   verdict
    1     a      x    "aaaa"   "bb"      1.0      1        1.0   0.0   1   right
    2     a      y    "cccccc" "dd"      0.75     4        0.5   0.5   0   tie
    3     b      x    "eee"    "fff"     2/3      3        0.0   2.0  -2   wrong
    4     b      x    "gggggg" "h"       1.0      2        3.0   1.0   2   right
    5     a      y    "ii"     "jjjj"    0.5      2        0.0   1.0  -1   conflict (excluded)
    6     b      y    "kkkkk"  "ll"      0.9      10      -1.0  -2.0   1   right
"""

import json
import math

import numpy as np
import pyarrow as pa
import pytest

from rmcore.evaluation.markdown import report_markdown
from rmcore.evaluation.metrics import (
    expected_calibration_error,
    pair_metrics,
    pearson,
    reliability_table,
    sigmoid,
)

# log(1 + e^-d), i.e. -log sigmoid(d), written out and checked against math below
NLL = {
    2.0: 0.12692801104297263,  # log(1 + e^-2)
    1.0: 0.31326168751822286,  # log(1 + e^-1)
    0.0: 0.6931471805599453,  # log 2
    -1.0: 1.3132616875182228,  # log(1 + e^1) = 1 + log(1 + e^-1)
    -2.0: 2.1269280110429727,  # log(1 + e^2) = 2 + log(1 + e^-2)
}
# sigmoid(d)
SIG = {
    2.0: 0.8807970779778823,
    1.0: 0.7310585786300049,
    0.0: 0.5,
    -1.0: 0.2689414213699951,
    -2.0: 0.11920292202211755,
}

R_W = np.array([1.0, 0.5, 0.0, 3.0, 0.0, -1.0])
R_L = np.array([0.0, 0.5, 2.0, 1.0, 1.0, -2.0])


def pair_table(**overrides: list) -> pa.Table:
    columns: dict[str, list] = {
        "pair_id": ["p1", "p2", "p3", "p4", "p5", "p6"],
        "chosen": ["aaaa", "cccccc", "eee", "gggggg", "ii", "kkkkk"],
        "rejected": ["bb", "dd", "fff", "h", "jjjj", "ll"],
        "p_chosen": [1.0, 0.75, 2 / 3, 1.0, 0.5, 0.9],
        "n_votes": [1, 4, 3, 2, 2, 10],
        "conflict": [False, False, False, False, True, False],
        "source": ["a", "a", "b", "b", "a", "b"],
        "category": ["x", "y", "x", "x", "y", "y"],
    }
    columns.update(overrides)
    return pa.table(columns)


@pytest.fixture(scope="module")
def metrics() -> dict:
    return pair_metrics(R_W, R_L, pair_table(), bins=2)


def test_written_out_constants_are_right() -> None:
    for d, value in NLL.items():
        assert value == pytest.approx(math.log1p(math.exp(-d)), abs=1e-15)
        assert SIG[d] == pytest.approx(1 / (1 + math.exp(-d)), abs=1e-15)


def test_accuracy_ties_and_conflicts(metrics: dict) -> None:
    # given pairs 1, 4, 6 right, 2 a tie, 3 wrong and 5 a conflict
    # then the conflict is out: 5 decided, 3 right -> 3/5; 1 tie -> 1/5; ties as half -> 3.5/5
    assert metrics["n_pairs"] == 6
    assert metrics["n_decided"] == 5
    assert metrics["n_conflict"] == 1
    assert metrics["accuracy"] == pytest.approx(0.6)
    assert metrics["n_ties"] == 1
    assert metrics["tie_rate"] == pytest.approx(0.2)
    assert metrics["accuracy_ties_half"] == pytest.approx(0.7)
    assert "strict" in metrics["accuracy_rule"]
    # mean margin over decided pairs: (1 + 0 - 2 + 2 + 1) / 5
    assert metrics["margin_mean"] == pytest.approx(0.4)


def test_the_conflict_pair_cannot_move_accuracy() -> None:
    # given the conflict pair's rewards flipped
    flipped_w, flipped_l = R_W.copy(), R_L.copy()
    flipped_w[4], flipped_l[4] = 5.0, -5.0
    # when evaluated
    m = pair_metrics(flipped_w, flipped_l, pair_table(), bins=2)
    # then accuracy and the decided-pair loss are unchanged, the all-pair losses are not
    base = pair_metrics(R_W, R_L, pair_table(), bins=2)
    assert m["accuracy"] == base["accuracy"]
    assert m["loss"] == base["loss"]
    assert m["loss_all"] != base["loss_all"]
    assert m["loss_soft"] != base["loss_soft"]


def test_p_chosen_one_half_is_a_conflict_even_without_the_flag() -> None:
    # given the conflict column missing: p_chosen == 0.5 alone marks pair 5
    m = pair_metrics(R_W, R_L, pair_table().drop(["conflict"]), bins=2)
    # then the same counts as with the flag
    assert (m["n_conflict"], m["accuracy"]) == (1, pytest.approx(0.6))


def test_losses(metrics: dict) -> None:
    # BT NLL over the 5 decided pairs: d = 1, 0, -2, 2, 1
    decided = NLL[1.0] + NLL[0.0] + NLL[-2.0] + NLL[2.0] + NLL[1.0]
    assert decided == pytest.approx(3.5735265776823363)
    assert metrics["loss"] == pytest.approx(decided / 5)  # 0.714705...
    # and over all 6 pairs (adds d = -1)
    assert metrics["loss_all"] == pytest.approx((decided + NLL[-1.0]) / 6)
    # soft label: p * nll(d) + (1 - p) * nll(-d)
    soft = [
        1.0 * NLL[1.0],
        0.75 * NLL[0.0] + 0.25 * NLL[0.0],
        2 / 3 * NLL[-2.0] + 1 / 3 * NLL[2.0],  # 1.460261...
        1.0 * NLL[2.0],
        0.5 * NLL[-1.0] + 0.5 * NLL[1.0],  # 0.813261...
        0.9 * NLL[1.0] + 0.1 * NLL[-1.0],  # 0.413261...
    ]
    assert metrics["loss_soft"] == pytest.approx(sum(soft) / 6)
    # the floor: mean binary entropy of p (0 for p == 1)
    h = [0.0, -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)), 0.0, 0.0, math.log(2.0), 0.0]
    h[2] = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    h[5] = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert metrics["loss_soft_floor"] == pytest.approx(sum(h) / 6)
    assert metrics["loss_soft_floor"] < metrics["loss_soft"]


def test_calibration_on_two_bins_counts_both_orientations(metrics: dict) -> None:
    # given confidence sigmoid(d) against p_chosen and sigmoid(-d) against 1 - p_chosen, for the six
    # pairs d = 1, 0, -2, 2, -1, 1 and p = 1, 3/4, 2/3, 1, 1/2, 0.9; bins [0, 0.5) and [0.5, 1]
    # bin 0: chosen side of pairs 3 and 5, rejected side of pairs 1, 4 and 6
    conf0 = (SIG[-2.0] + SIG[-1.0] + SIG[-1.0] + SIG[-2.0] + SIG[-1.0]) / 5
    obs0 = (2 / 3 + 0.5 + 0.0 + 0.0 + 0.1) / 5
    # bin 1: chosen side of pairs 1, 2, 4 and 6, rejected side of pairs 2 (sigmoid(0) = 0.5), 3 and 5
    conf1 = (SIG[1.0] + SIG[0.0] + SIG[2.0] + SIG[1.0] + SIG[0.0] + SIG[2.0] + SIG[1.0]) / 7
    obs1 = (1.0 + 0.75 + 1.0 + 0.9 + 0.25 + 1 / 3 + 0.5) / 7
    ece = 5 / 12 * abs(conf0 - obs0) + 7 / 12 * abs(conf1 - obs1)
    assert ece == pytest.approx(0.036906, abs=1e-6)
    cal = metrics["calibration"]
    assert cal["ece"] == pytest.approx(ece)
    assert cal["bins"] == 2
    assert "p_chosen" in cal["outcome"]
    assert cal["table"] == [
        {
            "lo": 0.0,
            "hi": 0.5,
            "count": 5,
            "confidence": pytest.approx(conf0),
            "observed": pytest.approx(obs0),
        },
        {
            "lo": 0.5,
            "hi": 1.0,
            "count": 7,
            "confidence": pytest.approx(conf1),
            "observed": pytest.approx(obs1),
        },
    ]


def test_a_calibrated_model_on_single_votes_has_a_small_error() -> None:
    # given hard labels drawn from a model's own win probabilities, each pair oriented to its winner
    rng = np.random.default_rng(0)
    d_true = rng.normal(0.0, 2.0, 20_000)
    a_wins = rng.random(d_true.size) < sigmoid(d_true)
    d_chosen = np.where(a_wins, d_true, -d_true)
    table = pa.table({"chosen": ["x"] * d_true.size, "rejected": ["y"] * d_true.size})

    # when its calibration is measured
    ece = pair_metrics(d_chosen, np.zeros(d_true.size), table)["calibration"]["ece"]

    # then the error is sampling noise only (the chosen orientation alone gives about 0.3)
    assert ece < 0.02


def test_reliability_table_empty_bins_and_edges() -> None:
    # given probabilities on the bin edges 0, 0.5 and 1 with 4 bins
    table = reliability_table(np.array([0.0, 0.5, 1.0]), np.array([0.0, 1.0, 1.0]), bins=4)
    # then 0 -> bin 0, 0.5 -> bin 2 (lower edge inclusive), 1.0 -> the last bin; bin 1 is empty
    assert [row["count"] for row in table] == [1, 0, 1, 1]
    assert table[1]["confidence"] is None and table[1]["observed"] is None
    # and a perfectly calibrated set has ECE 0; nothing to bin gives None
    assert expected_calibration_error(np.array([0.2, 0.2, 0.9]), np.array([0.2, 0.2, 0.9]), 10) == 0.0
    assert expected_calibration_error(np.array([]), np.array([]), 10) is None


def test_accuracy_per_source_and_category(metrics: dict) -> None:
    # source a: pairs 1 (right), 2 (tie), 5 (conflict) -> 1/2; b: 3 (wrong), 4, 6 (right) -> 2/3
    a, b = metrics["by_source"]["a"], metrics["by_source"]["b"]
    assert (a["n_pairs"], a["n_decided"], a["n_conflict"], a["n_ties"]) == (3, 2, 1, 1)
    assert a["accuracy"] == pytest.approx(0.5)
    assert a["loss"] == pytest.approx((NLL[1.0] + NLL[0.0]) / 2)
    assert (b["n_decided"], b["n_conflict"]) == (3, 0)
    assert b["accuracy"] == pytest.approx(2 / 3)
    # category x: 1, 3, 4 -> 2/3; y: 2 (tie), 5 (conflict), 6 (right) -> 1/2
    assert metrics["by_category"]["x"]["accuracy"] == pytest.approx(2 / 3)
    assert metrics["by_category"]["y"]["accuracy"] == pytest.approx(0.5)
    assert metrics["by_category"]["y"]["n_conflict"] == 1


def test_accuracy_by_annotator_agreement(metrics: dict) -> None:
    by_votes = metrics["by_n_votes"]
    # n_votes 1: pair 1 (right); 2: pair 4 (right) + conflict 5; 3: pair 3 (wrong); 4+: 2 (tie), 6 (right)
    assert list(by_votes) == ["1", "2", "3", "4+"]
    assert by_votes["1"]["accuracy"] == 1.0
    assert (by_votes["2"]["n_decided"], by_votes["2"]["n_conflict"], by_votes["2"]["accuracy"]) == (1, 1, 1.0)
    assert by_votes["3"]["accuracy"] == 0.0
    assert by_votes["4+"]["accuracy"] == pytest.approx(0.5)
    assert by_votes["4+"]["tie_rate"] == pytest.approx(0.5)
    by_p = metrics["by_p_chosen"]
    # [0.5,0.6): only the conflict -> nothing decided, accuracy undefined
    assert list(by_p) == ["[0.5,0.6)", "[0.6,0.8)", "[0.8,1.0)", "1.0"]
    assert (by_p["[0.5,0.6)"]["n_pairs"], by_p["[0.5,0.6)"]["n_decided"]) == (1, 0)
    assert by_p["[0.5,0.6)"]["accuracy"] is None and by_p["[0.5,0.6)"]["loss"] is None
    # [0.6,0.8): pairs 2 (0.75, tie) and 3 (2/3, wrong) -> 0, half of them ties
    assert by_p["[0.6,0.8)"]["accuracy"] == 0.0
    assert by_p["[0.6,0.8)"]["tie_rate"] == pytest.approx(0.5)
    # [0.8,1.0): pair 6 -> 1; 1.0: pairs 1 and 4 -> 1
    assert by_p["[0.8,1.0)"]["accuracy"] == 1.0
    assert (by_p["1.0"]["n_decided"], by_p["1.0"]["accuracy"]) == (2, 1.0)


def test_longer_wins_baseline_and_accuracy_by_length(metrics: dict) -> None:
    # given decided pairs' lengths 4>2, 6>2, 3=3, 6>1, 5>2: chosen longer in 4 of 5, one equal
    longer = metrics["baselines"]["longer_wins"]
    assert longer["n_decided"] == 5
    assert longer["accuracy"] == pytest.approx(0.8)
    assert (longer["n_equal_length"], longer["equal_length_rate"]) == (1, pytest.approx(0.2))
    assert longer["accuracy_ties_half"] == pytest.approx(0.9)
    # the model by length relation: chosen longer 1, 2 (tie), 4, 6 -> 3/4; same length 3 -> 0;
    # rejected longer: only conflict 5 -> undefined
    by_length = metrics["by_length"]
    assert by_length["chosen longer"]["accuracy"] == pytest.approx(0.75)
    assert by_length["same length"]["accuracy"] == 0.0
    assert (by_length["rejected longer"]["n_conflict"], by_length["rejected longer"]["accuracy"]) == (1, None)


def test_length_correlations(metrics: dict) -> None:
    # rewards (12, mean 1/2) against lengths (mean 10/3):
    # x - 1/2 = .5 0 -.5 2.5 -.5 -1.5 | -.5 0 1.5 .5 .5 -2.5
    # 3y - 10 = 2 8 -1 8 -4 5 | -4 -4 -1 -7 2 -4
    # Sxy = 24/3 = 8, Sxx = 18.5, Syy = 276/9 -> r = 24 / sqrt(18.5 * 276)
    assert metrics["baselines"]["length_correlation"] == pytest.approx(24 / math.sqrt(18.5 * 276))
    # d = 1 0 -2 2 -1 1 (mean 1/6) against length differences 2 4 0 5 -2 3 (mean 2):
    # 6d - 1 = 5 -1 -13 11 -7 5; diff - 2 = 0 2 -2 3 -4 1
    # Sxy = 90/6 = 15, Sdd = 390/36, Sll = 34 -> r = 90 / sqrt(390 * 34)
    assert metrics["baselines"]["length_diff_correlation"] == pytest.approx(90 / math.sqrt(390 * 34))
    # constant input has no correlation
    assert pearson(np.array([1.0, 1.0]), np.array([1.0, 2.0])) is None


def test_reward_statistics(metrics: dict) -> None:
    rewards = metrics["rewards"]
    # chosen 1 .5 0 3 0 -1: mean 7/12, E[x^2] = 11.25/6
    assert rewards["chosen"]["mean"] == pytest.approx(7 / 12)
    assert rewards["chosen"]["std"] == pytest.approx(math.sqrt(11.25 / 6 - (7 / 12) ** 2))
    assert (rewards["chosen"]["min"], rewards["chosen"]["max"]) == (-1.0, 3.0)
    # rejected 0 .5 2 1 1 -2: mean 5/12
    assert rewards["rejected"]["mean"] == pytest.approx(5 / 12)
    assert (rewards["rejected"]["min"], rewards["rejected"]["max"]) == (-2.0, 2.0)
    # all 12: mean 1/2, sum of squared deviations 18.5 (population std)
    assert rewards["all"] == {
        "n": 12,
        "mean": pytest.approx(0.5),
        "std": pytest.approx(math.sqrt(18.5 / 12)),
        "min": -2.0,
        "max": 3.0,
    }


def test_tie_tolerance() -> None:
    # given a difference of 1e-7 (float noise) on pair 1
    r_w = R_W.copy()
    r_w[0] = R_L[0] + 1e-7
    # then it is a tie under the default tolerance 1e-6, and right under exact comparison
    assert pair_metrics(r_w, R_L, pair_table())["n_ties"] == 2
    exact = pair_metrics(r_w, R_L, pair_table(), tie_tol=0.0)
    assert (exact["n_ties"], exact["accuracy"], exact["tie_tol"]) == (1, pytest.approx(0.6), 0.0)


def test_json_serializable_with_nan_as_none() -> None:
    # given a table where everything is a conflict: accuracies are undefined
    table = pair_table(p_chosen=[0.5] * 6)
    m = pair_metrics(R_W, R_L, table, bins=2)
    # then they are None and the dict dumps as strict JSON
    assert (m["n_decided"], m["accuracy"], m["loss"], m["tie_rate"]) == (0, None, None, None)
    assert m["loss_soft"] is not None
    text = json.dumps(m, allow_nan=False)
    assert json.loads(text) == m


def test_empty_table() -> None:
    # given no pairs at all
    m = pair_metrics(np.zeros(0), np.zeros(0), pair_table().slice(0, 0))
    # then counts are 0, every rate None, fixed groups still listed, markdown still renders
    assert (m["n_pairs"], m["accuracy"], m["loss_soft"], m["calibration"]["ece"]) == (0, None, None, None)
    assert m["rewards"]["all"]["mean"] is None
    assert m["by_n_votes"]["4+"]["n_pairs"] == 0
    assert m["by_source"] == {}
    assert m["baselines"]["length_correlation"] is None
    json.dumps(m, allow_nan=False)
    assert "n/a" in report_markdown(m)


def test_minimal_table_defaults() -> None:
    # given a plain pair file: only chosen and rejected
    table = pa.table({"chosen": ["long answer", "x"], "rejected": ["short", "yy"]})
    m = pair_metrics(np.array([1.0, 0.0]), np.array([0.0, 1.0]), table, bins=2)
    # then p_chosen is a hard 1.0, no conflicts, groups fall back to "(none)" / "unknown"
    assert (m["n_decided"], m["accuracy"], m["n_conflict"]) == (2, 0.5, 0)
    assert m["loss_soft"] == pytest.approx(m["loss_all"])
    assert m["loss_soft_floor"] == 0.0
    assert list(m["by_source"]) == ["(none)"]
    assert m["by_n_votes"]["unknown"]["n_pairs"] == 2
    assert m["by_p_chosen"]["1.0"]["n_pairs"] == 2


def test_nulls_in_optional_columns() -> None:
    # given null source, n_votes and p_chosen on some rows
    table = pair_table(
        source=["a", None, "b", "b", "a", None],
        n_votes=[1, None, 3, 2, 2, 10],
        p_chosen=[1.0, None, 2 / 3, 1.0, 0.5, 0.9],
    )
    m = pair_metrics(R_W, R_L, table, bins=2)
    # then they land in "(none)" / "unknown" / a hard label
    assert m["by_source"]["(none)"]["n_pairs"] == 2
    assert m["by_n_votes"]["unknown"]["n_pairs"] == 1
    assert m["by_p_chosen"]["1.0"]["n_pairs"] == 3


def test_bad_inputs_are_refused() -> None:
    table = pair_table()
    with pytest.raises(ValueError, match="shape"):
        pair_metrics(R_W[:5], R_L, table)
    with pytest.raises(ValueError, match="non-finite"):
        pair_metrics(np.array([math.nan, 0, 0, 0, 0, 0]), R_L, table)
    with pytest.raises(ValueError, match="p_chosen"):
        pair_metrics(R_W, R_L, pair_table(p_chosen=[1.5, 1, 1, 1, 1, 1]))
    with pytest.raises(ValueError, match="'rejected'"):
        pair_metrics(R_W, R_L, table.drop(["rejected"]))


def test_large_margins_do_not_overflow() -> None:
    # given |d| = 1000: log(1 + e^1000) = 1000 to double precision, log(1 + e^-1000) = 0
    m = pair_metrics(
        np.array([1000.0, -1000.0]), np.zeros(2), pa.table({"chosen": ["a", "b"], "rejected": ["c", "d"]})
    )
    assert m["loss"] == pytest.approx(500.0)
    assert m["calibration"]["table"][-1]["count"] == 2  # sigmoid(1000) = 1, once per orientation


def test_markdown_has_the_headline_numbers(metrics: dict) -> None:
    text = report_markdown(metrics)
    assert "**60.0%**" in text  # strict accuracy
    assert "20.0% (1)" in text  # ties
    assert "70.0%" in text  # ties as half
    assert f"{0.7147053155364673:.4f}" in text  # BT loss
    assert f"{0.03690609308540767:.4f}" in text  # ECE
    assert "80.0%" in text  # longer response wins
    assert "6 pairs: 5 decided, 1 conflicts" in text
    for heading in ("By source", "By category", "By number of votes", "p_chosen", "Calibration", "Rewards"):
        assert heading in text
    assert "| [0.5,0.6) | 1 | 0 | 1 | n/a |" in text  # the empty agreement group
