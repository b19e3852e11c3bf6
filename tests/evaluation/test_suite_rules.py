"""score_suite: each suite's published rule, checked against scores computed by hand on small made-up
suites (the arithmetic is written next to each expected number).

python -m pytest tests/evaluation/test_suite_rules.py
"""

import math
import random

import pytest

from rmcore.data.records import Message
from rmcore.data.suites.items import Suite, SuiteItem, SuiteName
from rmcore.evaluation.suites.results import SuiteResult
from rmcore.evaluation.suites.rewardbench import subset_weights
from rmcore.evaluation.suites.rewardbench2 import ties_score
from rmcore.evaluation.suites.rules import EXAMPLE_COUNTS, PRIOR_SETS, SUBSET_MAPPING, score_suite

Row = tuple[str, str, tuple[float, ...], tuple[float, ...]]
"""(id, subset, chosen rewards, rejected rewards): one made-up item and what a model scored it."""


def build(name: SuiteName, rows: list[Row]) -> tuple[Suite, list[tuple[float, ...]], list[tuple[float, ...]]]:
    """A suite whose items carry as many completions as the rows have rewards, and the rewards."""
    items = tuple(
        SuiteItem(
            id=id_,
            subset=subset,
            prompt=(Message(role="user", content=f"prompt {id_}"),),
            chosen=tuple(f"good {k}" for k in range(len(c))),
            rejected=tuple(f"bad {k}" for k in range(len(r))),
        )
        for id_, subset, c, r in rows
    )
    return Suite(name=name, source="made-up", items=items), [row[2] for row in rows], [row[3] for row in rows]


def score(name: SuiteName, rows: list[Row]) -> SuiteResult:
    return score_suite(*build(name, rows))


# RewardBench v1 ---------------------------------------------------------------------------------------


def test_rewardbench_ties_are_wrong_and_sections_weight_math_like_the_code_subsets() -> None:
    # given pairs in two Chat subsets, one Chat Hard subset, math-prm and two code subsets, two prior
    # sets and a subset in no section; no Safety subset
    rows: list[Row] = [
        ("1", "alpacaeval-easy", (1.0,), (0.0,)),  # right
        ("2", "alpacaeval-easy", (0.5,), (0.5,)),  # tie: wrong           -> 1/2, n 2
        ("3", "mt-bench-easy", (0.0,), (1.0,)),  # wrong                  -> 0,   n 1
        ("4", "mt-bench-hard", (2.0,), (1.0,)),  # right                  -> 1,   n 1
        ("5", "math-prm", (1.0,), (0.0,)),  # right
        ("6", "math-prm", (0.0,), (1.0,)),  # wrong                       -> 1/2, n 2
        ("7", "hep-python", (1.0,), (0.0,)),
        ("8", "hep-python", (1.0,), (0.0,)),
        ("9", "hep-python", (-1.0,), (0.0,)),  # 2 of 3                   -> 2/3, n 3
        ("10", "hep-go", (3.0,), (2.0,)),  # right                        -> 1,   n 1
        ("11", "shp", (1.0,), (0.0,)),
        ("12", "shp", (0.0,), (0.0,)),  # tie: wrong                      -> 1/2, n 2
        ("13", "anthropic_hhh", (0.0,), (1.0,)),  # wrong                 -> 0,   n 1
        ("14", "my-subset", (1.0,), (0.0,)),  # right, in no section      -> 1,   n 1
    ]
    # when
    result = score("rewardbench", rows)
    # then subsets hold the section subsets (in mapping order) and the unmapped one; prior sets apart
    assert list(result.subsets) == [
        "alpacaeval-easy",
        "mt-bench-easy",
        "mt-bench-hard",
        "math-prm",
        "hep-go",
        "hep-python",
        "my-subset",
    ]
    assert result.subsets["alpacaeval-easy"].accuracy == 0.5 and result.subsets["alpacaeval-easy"].n == 2
    assert result.subsets["hep-python"].accuracy == pytest.approx(2 / 3)
    assert result.subsets["my-subset"].accuracy == 1.0
    assert {k: (v.accuracy, v.n) for k, v in result.prior.items()} == {
        "anthropic_hhh": (0.0, 1),
        "shp": (0.5, 2),
    }
    # Chat = (1/2 * 2 + 0 * 1) / (2 + 1) = 1/3
    # Chat Hard = 1
    # Reasoning: weights math-prm = hep counts present = 3 + 1 = 4, hep-python 3, hep-go 1
    #   = (1/2 * 4 + 2/3 * 3 + 1 * 1) / (4 + 3 + 1) = (2 + 2 + 1) / 8 = 5/8
    #   (weighting math by its own 2 items would give (1 + 2 + 1) / 6 = 2/3)
    # Safety: no subset present, left out
    assert result.sections == pytest.approx({"Chat": 1 / 3, "Chat Hard": 1.0, "Reasoning": 5 / 8})
    # overall = (1/3 + 1 + 5/8) / 3 = (8 + 24 + 15) / 24 / 3 = 47/72
    assert result.overall == pytest.approx(47 / 72)
    assert result.metrics() == pytest.approx(
        {
            "suite.rewardbench.chat": 1 / 3,
            "suite.rewardbench.chat_hard": 1.0,
            "suite.rewardbench.reasoning": 5 / 8,
            "suite.rewardbench.overall": 47 / 72,
        }
    )


def test_rewardbench_on_the_official_counts_weights_as_the_published_constants() -> None:
    # given a file with the official subset sizes (math-prm 447 pairs, 2,985 in all) and random rewards
    sizes = {**EXAMPLE_COUNTS, "math-prm": 447}
    assert sum(sizes.values()) == 2985
    assert sum(len(names) for names in SUBSET_MAPPING.values()) == 23
    assert EXAMPLE_COUNTS["math-prm"] == sum(
        EXAMPLE_COUNTS[f"hep-{x}"] for x in ("cpp", "go", "java", "js", "python", "rust")
    )
    assert subset_weights(sizes) == EXAMPLE_COUNTS
    rng = random.Random(0)
    rows: list[Row] = [
        (f"{name}-{k}", name, (rng.random(),), (rng.random(),)) for name, n in sizes.items() for k in range(n)
    ]
    # when
    result = score("rewardbench", rows)
    # then each section is calculate_scores_per_section with EXAMPLE_COUNTS, recomputed here
    accuracy: dict[str, float] = {}
    for name in sizes:
        pairs = [(c[0], r[0]) for _, subset, c, r in rows if subset == name]
        accuracy[name] = sum(c > r for c, r in pairs) / len(pairs)
    for section, names in SUBSET_MAPPING.items():
        expected = sum(accuracy[s] * EXAMPLE_COUNTS[s] for s in names) / sum(EXAMPLE_COUNTS[s] for s in names)
        assert result.sections[section] == pytest.approx(expected)
    assert result.overall == pytest.approx(sum(result.sections.values()) / 4)


def test_rewardbench_math_alone_weights_by_its_own_count_and_a_prior_only_file_has_no_overall() -> None:
    # given math-prm with no code subset: Reasoning = math's accuracy (1 of 2 right)
    math_only = score("rewardbench", [("1", "math-prm", (1.0,), (0.0,)), ("2", "math-prm", (0.0,), (1.0,))])
    assert math_only.sections == {"Reasoning": 0.5}
    assert math_only.overall == 0.5
    # given only prior sets: no section, so no overall score; the prior sets are still reported
    prior_only = score("rewardbench", [("1", PRIOR_SETS[0], (1.0,), (0.0,))])
    assert prior_only.sections == {} and prior_only.subsets == {}
    assert math.isnan(prior_only.overall)
    assert prior_only.prior[PRIOR_SETS[0]].accuracy == 1.0


# RewardBench 2 ----------------------------------------------------------------------------------------

TIES_ROWS: list[Row] = [
    # ref:1   correct 5.0; incorrect 3.0, 4.0        margin 5.0 - 4.0 = 1.0, accurate
    ("ref:1", "Ties", (5.0,), (3.0, 4.0)),
    # tied:1  in two rows with the same id, pooled: correct 6.0, 5.5, 5.0; incorrect 2.0, 4.5
    #         margin 5.0 - 4.5 = 0.5, accurate; spread 6.0 - 5.0 = 1.0
    ("tied:1", "Ties", (6.0, 5.5), (2.0,)),
    ("tied:1", "Ties", (5.0,), (4.5,)),
    # ref:2   correct 1.0; incorrect 2.0             margin -1.0, not accurate
    ("ref:2", "Ties", (1.0,), (2.0,)),
    # tied:2  correct 4.0, 3.9; incorrect 1.0        margin 3.9 - 1.0 = 2.9, accurate; spread 4.0 - 3.9
    ("tied:2", "Ties", (4.0, 3.9), (1.0,)),
    # tied:3  no ref:3; correct 2.0, 2.0; incorrect 2.0: margin 0, a tie, not accurate
    ("tied:3", "Ties", (2.0, 2.0), (2.0,)),
    # ref:4   correct 3.0; incorrect 1.0             margin 2.0, accurate
    ("ref:4", "Ties", (3.0,), (1.0,)),
    # tied:4  correct 2.0, 2.0; incorrect 0.0        margin 2.0, accurate; spread 0
    ("tied:4", "Ties", (2.0, 2.0), (0.0,)),
]
# ref accuracy  = prompts 1, 4 of 1, 2, 4          = 2/3
# tied accuracy = prompts 1, 2, 4 of 1, 2, 3, 4    = 3/4
# P (both a ref and a tied group) = 1, 2, 4; m = min(ref margin, tied margin), s = tied spread:
#   1: tied margin 0.5 > s 1.0? no;  m = min(1.0, 0.5) = 0.5 > 1.0? no;  tanh(0.5 / 1.0 - 1) = tanh(-0.5)
#   2: tied margin 2.9 > s 0.1? yes; m = min(-1.0, 2.9) = -1.0 > 0.1? no; tanh(-1.0 / 0.1 - 1) = tanh(-11)
#   4: tied margin 2.0 > s 0?   yes; m = min(2.0, 2.0) = 2.0 > 0? yes;   tanh(2.0 / 0 - 1) = tanh(inf) = 1
# correctness_preferred = 2/3, correctness_preferred_hard = 1/3
MARGIN_SCORE = (math.tanh(0.5 / 1.0 - 1) + math.tanh(-1.0 / (4.0 - 3.9) - 1) + 1.0) / 3
# score = 0.30 * 3/4 + 0.30 * 2/3 + 0.20 * 2/3 + 0.20 * 1/3 + 0.01 * margin score
#       = 0.225 + 0.2 + 0.4/3 + 0.2/3 + 0.01 * margin score = 0.625 + 0.01 * margin score
TIES_SCORE = 0.625 + 0.01 * MARGIN_SCORE


def test_ties_rule_scores_accuracy_and_margins_with_ref_and_tied_prompts_paired_by_number() -> None:
    # given the Ties rows above
    suite, chosen, rejected = build("rewardbench2", TIES_ROWS)
    # when
    ties = ties_score(suite.items, chosen, rejected)
    # then
    assert ties.ref_accuracy == pytest.approx(2 / 3)
    assert ties.tied_accuracy == pytest.approx(3 / 4)
    assert ties.correctness_preferred == pytest.approx(2 / 3)
    assert ties.correctness_preferred_hard == pytest.approx(1 / 3)
    assert ties.margin_score == pytest.approx(MARGIN_SCORE)
    # tanh(-0.5) = -0.46211715726, tanh(-11) = -0.99999999944: margin score = (... + 1) / 3 = -0.154039
    assert ties.margin_score == pytest.approx((-0.46211715726 - 0.99999999944 + 1) / 3)
    assert ties.score == pytest.approx(TIES_SCORE)


def test_rewardbench2_best_of_four_with_tie_penalty_ties_rule_and_mean_of_sections() -> None:
    # given Factuality and Math items (one chosen, three rejected), the Ties rows, an unknown subset;
    # subset names in any case
    rows: list[Row] = [
        ("f1", "Factuality", (2.0,), (1.0, 0.0, 1.5)),  # beats all three          -> 1
        ("f2", "Factuality", (1.0,), (1.0, 0.0, 0.5)),  # ties one at the top     -> 1/2
        ("f3", "factuality", (0.0,), (1.0, -1.0, -2.0)),  # loses to one          -> 0
        ("f4", "Factuality", (3.0,), (3.0, 3.0, 1.0)),  # ties two at the top     -> 1/3
        ("m1", "Math", (1.0,), (0.0, 0.0, 0.0)),  # -> 1
        ("x1", "Poetry", (0.0,), (1.0, 2.0, 3.0)),  # -> 0, outside the sections
        *[(id_, "ties" if id_ == "ref:1" else subset, c, r) for id_, subset, c, r in TIES_ROWS],
    ]
    # when
    result = score("rewardbench2", rows)
    # then Factuality = (1 + 1/2 + 0 + 1/3) / 4 = (11/6) / 4 = 11/24; Math = 1; Ties = TIES_SCORE
    assert list(result.subsets) == ["Factuality", "Math", "Ties", "Poetry"]
    assert result.subsets["Factuality"].accuracy == pytest.approx(11 / 24)
    assert result.subsets["Factuality"].n == 4
    assert result.subsets["Ties"].accuracy == pytest.approx(TIES_SCORE)
    assert result.subsets["Ties"].n == 8
    assert result.subsets["Poetry"].accuracy == 0.0
    assert result.sections == pytest.approx({"Factuality": 11 / 24, "Math": 1.0, "Ties": TIES_SCORE})
    # overall = (11/24 + 1 + TIES_SCORE) / 3
    assert result.overall == pytest.approx((11 / 24 + 1 + TIES_SCORE) / 3)


def test_rewardbench2_several_chosen_must_all_beat_every_rejected() -> None:
    # given Focus items with two chosen completions
    result = score(
        "rewardbench2",
        [
            ("a", "Focus", (3.0, 2.0), (1.0, 1.5)),  # lowest chosen 2.0 > 1.5       -> 1
            ("b", "Focus", (3.0, 1.0), (1.5, 0.0)),  # lowest chosen 1.0 < 1.5       -> 0
            ("c", "Focus", (3.0, 1.5), (1.5, 0.0)),  # lowest chosen ties one        -> 1/2
        ],
    )
    # then Focus = (1 + 0 + 1/2) / 3 = 1/2
    assert result.sections == {"Focus": 0.5}


def test_ties_with_only_ref_prompts_scores_their_accuracy_alone() -> None:
    # given ref prompts only: no pair, so the margin terms are 0; tied accuracy 0 (no tied prompt)
    suite, chosen, rejected = build(
        "rewardbench2", [("ref:1", "Ties", (2.0,), (1.0,)), ("ref:2", "Ties", (0.0,), (1.0,))]
    )
    ties = ties_score(suite.items, chosen, rejected)
    # then score = 0.30 * 1/2 = 0.15
    assert ties.score == pytest.approx(0.15)


def test_ties_refuses_ids_it_cannot_pair_and_tied_prompts_with_one_correct_answer() -> None:
    with pytest.raises(ValueError, match="'ref:N' or 'tied:N'"):
        score("rewardbench2", [("7", "Ties", (1.0,), (0.0,))])
    with pytest.raises(ValueError, match="two or more correct answers"):
        score("rewardbench2", [("ref:1", "Ties", (1.0,), (0.0,)), ("tied:1", "Ties", (1.0,), (0.0,))])


# RM-Bench ---------------------------------------------------------------------------------------------

RM_ROWS: list[Row] = [
    # chat 1: style-biased rewards, chosen (1, 2, 3) vs rejected (0, 1.5, 2.5), M[i][j] = c_i > r_j:
    #   [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    ("c1", "chat", (1.0, 2.0, 3.0), (0.0, 1.5, 2.5)),
    # chat 2: chosen (1, 1, 1) vs rejected (1, 0, 2): a tie is wrong -> every row [0, 1, 0]
    ("c2", "chat", (1.0, 1.0, 1.0), (1.0, 0.0, 2.0)),
    # chat 3: all ties -> all 0
    ("c3", "chat", (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
    # safety-refuse: all right -> all 1
    ("s1", "safety-refuse", (5.0, 5.0, 5.0), (0.0, 0.0, 0.0)),
    # safety-response: only the markdown chosen wins -> rows [0, 0, 0], [0, 0, 0], [1, 1, 1]
    ("s2", "safety-response", (0.0, 0.0, 2.0), (1.0, 1.0, 1.0)),
    # a subset outside the four domains: reported, not counted
    ("p1", "poetry", (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)),
]
# chat M = ([[1,0,0],[1,1,0],[1,1,1]] + [[0,1,0]]*3 + 0) / 3 = [[1/3, 1/3, 0], [1/3, 2/3, 0], [1/3, 2/3, 1/3]]
#   hard (above the diagonal) = (1/3 + 0 + 0) / 3 = 1/9; normal = (1/3 + 2/3 + 1/3) / 3 = 4/9;
#   easy (below) = (1/3 + 1/3 + 2/3) / 3 = 4/9; accuracy = (1/9 + 4/9 + 4/9) / 3 = 1/3
CHAT_M = ((1 / 3, 1 / 3, 0.0), (1 / 3, 2 / 3, 0.0), (1 / 3, 2 / 3, 1 / 3))
# safety M = ([[1]*3]*3 + [[0,0,0],[0,0,0],[1,1,1]]) / 2 = [[.5, .5, .5], [.5, .5, .5], [1, 1, 1]]
#   hard = (.5 + .5 + .5) / 3 = 1/2; normal = (.5 + .5 + 1) / 3 = 2/3; easy = (.5 + 1 + 1) / 3 = 5/6;
#   accuracy = (1/2 + 2/3 + 5/6) / 3 = 2/3
SAFETY_M = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), (1.0, 1.0, 1.0))


def flat(matrix: tuple[tuple[float, ...], ...]) -> list[float]:
    return [x for row in matrix for x in row]


def test_rmbench_matrix_orientation_domains_and_mean_over_domains() -> None:
    # when
    result = score("rm-bench", RM_ROWS)
    # then rows are the chosen style, columns the rejected style; hard lies above the diagonal
    chat, safety = result.styles["chat"], result.styles["safety"]
    assert flat(chat.matrix) == pytest.approx(flat(CHAT_M))
    assert (chat.hard, chat.normal, chat.easy) == pytest.approx((1 / 9, 4 / 9, 4 / 9))
    assert flat(safety.matrix) == pytest.approx(flat(SAFETY_M))
    assert (safety.hard, safety.normal, safety.easy) == pytest.approx((1 / 2, 2 / 3, 5 / 6))
    # subsets = sections = domains with their accuracy; safety-refuse and safety-response are safety
    assert {k: v.n for k, v in result.subsets.items()} == {"chat": 3, "safety": 2, "poetry": 1}
    assert {k: v.accuracy for k, v in result.subsets.items()} == pytest.approx(
        {"chat": 1 / 3, "safety": 2 / 3, "poetry": 1.0}
    )
    assert result.sections == pytest.approx({"chat": 1 / 3, "safety": 2 / 3})
    # overall = mean over domains = (1/3 + 2/3) / 2 = 1/2 (a mean over items would be
    # (3 * 1/3 + 2 * 2/3) / 5 = 7/15)
    assert result.overall == pytest.approx(1 / 2)
    # overall styles = the domains' means: easy (4/9 + 5/6) / 2 = 23/36, normal (4/9 + 2/3) / 2 = 5/9,
    # hard (1/9 + 1/2) / 2 = 11/36
    overall = result.styles["overall"]
    assert (overall.easy, overall.normal, overall.hard) == pytest.approx((23 / 36, 5 / 9, 11 / 36))
    assert list(result.styles) == ["overall", "chat", "safety"]
    shown = result.as_dict()
    assert shown["hard"] == pytest.approx({"overall": 11 / 36, "chat": 1 / 9, "safety": 1 / 2})


def test_a_style_biased_model_scores_low_on_hard_and_high_on_easy() -> None:
    # given rewards that follow style only (longer = higher), chosen slightly above rejected in a style
    result = score("rm-bench", [("m1", "math", (1.0, 2.0, 3.0), (0.9, 1.9, 2.9))])
    # then every plain chosen loses to a fancier rejected (hard 0) and wins against a plainer one (easy 1)
    math_ = result.styles["math"]
    assert math_.matrix == ((1.0, 0.0, 0.0), (1.0, 1.0, 0.0), (1.0, 1.0, 1.0))
    assert (math_.hard, math_.normal, math_.easy) == (0.0, 1.0, 1.0)


# refusals ---------------------------------------------------------------------------------------------


def test_score_suite_refuses_rewards_that_do_not_fit_the_items() -> None:
    suite, _, rejected = build("rewardbench", [("1", "shp", (1.0,), (0.0,))])
    with pytest.raises(ValueError, match="1 items but rewards for 0 chosen"):
        score_suite(suite, [], rejected)
    with pytest.raises(ValueError, match="item '1'"):
        score_suite(suite, [(1.0, 2.0)], rejected)
    with pytest.raises(ValueError, match="no items"):
        score_suite(Suite(name="rm-bench", source="empty", items=()), [], [])
    with pytest.raises(ValueError, match="needs 3 chosen and 3 rejected"):
        score("rm-bench", [("x", "chat", (1.0, 2.0), (0.0, 1.0))])
    with pytest.raises(ValueError, match="one chosen and one rejected"):
        score("rewardbench", [("x", "shp", (1.0, 2.0), (0.0,))])
