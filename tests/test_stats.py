"""upft_bench.stats against values computed by hand: McNemar, Wilson, the paired bootstrap, verdicts, sizes."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from upft_bench.stats import (
    compare_paired,
    mcnemar_exact,
    minimum_detectable_difference,
    paired_bootstrap,
    paired_table,
    questions_needed,
    verdict,
    wilson_interval,
)

Z975 = 1.959964
Z95 = 1.6448536
Z80 = 0.8416212


def _wilson_by_hand(k: int, n: int, z: float = Z975) -> tuple[float, float]:
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return ((centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n))


def _sixty_vs_fifty(q: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Per block of 10 questions: method right on 0-5 (60%), reference on 3-7 (50%).

    d = +1 on 0-2, -1 on 6-7, 0 elsewhere: mean 0.1, var (ddof=0) 0.5 - 0.01 = 0.49.
    """
    i = np.arange(q) % 10
    return i < 6, (i >= 3) & (i < 8)


# --- McNemar -------------------------------------------------------------------------------------------------------

def test_mcnemar_no_discordant_pairs_is_one():
    assert mcnemar_exact(0, 0) == 1.0


def test_mcnemar_all_one_way():
    assert mcnemar_exact(5, 0) == pytest.approx(2 * 0.5**5, rel=1e-12)
    assert mcnemar_exact(0, 5) == pytest.approx(0.0625, rel=1e-12)


def test_mcnemar_matches_exact_binomial_sum():
    b, c = 48, 24
    n = b + c
    expected = 2 * sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9)
    assert mcnemar_exact(c, b) == pytest.approx(expected, rel=1e-9)
    assert 0.005 < expected < 0.01  # sanity: a clearly significant table


def test_mcnemar_balanced_table_is_one():
    assert mcnemar_exact(3, 3) == pytest.approx(1.0)


def test_mcnemar_rejects_negative_counts():
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_paired_table_counts():
    method = [1, 1, 0, 0, 1, 0]
    reference = [1, 0, 1, 0, 0, 0]
    assert paired_table(method, reference) == {"both_right": 1, "method_only": 2, "reference_only": 1, "both_wrong": 2}
    with pytest.raises(ValueError):
        paired_table([1, 0], [1])


# --- Wilson --------------------------------------------------------------------------------------------------------

def test_wilson_at_zero():
    lo, hi = wilson_interval(0, 300)
    assert lo == 0.0
    assert hi == pytest.approx(_wilson_by_hand(0, 300)[1], abs=1e-6)
    assert hi == pytest.approx(0.01264, abs=1e-5)


def test_wilson_at_n():
    lo, hi = wilson_interval(300, 300)
    assert hi == 1.0
    assert lo == pytest.approx(_wilson_by_hand(300, 300)[0], abs=1e-6)
    assert lo == pytest.approx(1 - 0.01264, abs=1e-5)


def test_wilson_middle_matches_hand_formula():
    lo, hi = wilson_interval(128, 300)
    hand_lo, hand_hi = _wilson_by_hand(128, 300)
    assert lo == pytest.approx(hand_lo, abs=1e-6)
    assert hi == pytest.approx(hand_hi, abs=1e-6)
    # Wilson is not the Wald interval: its centre is pulled towards 1/2
    assert (lo + hi) / 2 > 128 / 300


def test_wilson_empty_and_confidence():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo90, hi90 = wilson_interval(128, 300, confidence=0.90)
    hand = _wilson_by_hand(128, 300, z=Z95)
    assert (lo90, hi90) == pytest.approx(hand, abs=1e-6)


# --- bootstrap -----------------------------------------------------------------------------------------------------

def test_bootstrap_single_seed_matches_analytic_se():
    method, reference = _sixty_vs_fifty(300)
    d = method.astype(int) - reference.astype(int)
    assert d.mean() == pytest.approx(0.1)
    analytic_se = math.sqrt(d.var() / d.size)  # sqrt(0.49 / 300) = 0.0404
    assert analytic_se == pytest.approx(math.sqrt(0.49 / 300))
    out = paired_bootstrap(d[None, :], n_resamples=4000, seed=1)
    assert out["estimate"] == pytest.approx(0.1)
    assert out["se"] == pytest.approx(analytic_se, rel=0.05)
    lo, hi = out["intervals"][0.95]
    assert lo < 0.1 < hi
    assert hi - lo == pytest.approx(2 * 1.96 * analytic_se, rel=0.10)
    lo90, hi90 = out["intervals"][0.90]
    assert lo < lo90 < 0.1 < hi90 < hi
    assert hi90 - lo90 == pytest.approx(2 * Z95 * analytic_se, rel=0.10)


def test_bootstrap_one_dimensional_is_one_seed():
    method, reference = _sixty_vs_fifty(100)
    d = method.astype(int) - reference.astype(int)
    assert paired_bootstrap(d, n_resamples=500, seed=3) == paired_bootstrap(d[None, :], n_resamples=500, seed=3)


def test_bootstrap_zero_differences():
    out = paired_bootstrap(np.zeros((3, 50)), n_resamples=500)
    assert out["estimate"] == 0.0
    assert out["se"] == 0.0
    assert out["intervals"][0.95] == (0.0, 0.0)
    assert out["intervals"][0.90] == (0.0, 0.0)


def test_bootstrap_seed_level_adds_spread():
    q = 300
    i = np.arange(q) % 10
    # three seeds with per-seed mean differences -0.1, +0.1, +0.3
    d = np.stack([np.where(i < 1, -1, 0), np.where(i < 1, 1, 0), np.where(i < 3, 1, 0)])
    assert d.mean(axis=1) == pytest.approx([-0.1, 0.1, 0.3])
    per_question = d.mean(axis=0)
    question_only_se = math.sqrt(per_question.var() / q)  # the S = 1 analytic value on the seed-pooled data
    cells_iid_se = math.sqrt(d.var() / d.size)  # every (seed, question) cell as an independent draw
    out = paired_bootstrap(d, n_resamples=3000, seed=0)
    assert out["estimate"] == pytest.approx(0.1)
    assert out["se"] > 1.5 * question_only_se
    assert out["se"] > 1.5 * cells_iid_se
    # roughly question spread plus the spread of the seed means: var(seed means) / S
    rough = math.sqrt(question_only_se**2 + d.mean(axis=1).var() / 3)
    assert out["se"] == pytest.approx(rough, rel=0.25)


def test_bootstrap_deterministic_for_a_seed():
    method, reference = _sixty_vs_fifty(200)
    d = np.stack([method.astype(int) - reference.astype(int), np.roll(method, 3).astype(int) - reference.astype(int)])
    a = paired_bootstrap(d, n_resamples=1000, seed=7)
    assert a == paired_bootstrap(d, n_resamples=1000, seed=7)
    assert a["intervals"] != paired_bootstrap(d, n_resamples=1000, seed=8)["intervals"]


# --- minimum detectable difference, verdicts, sizes ----------------------------------------------------------------

def test_minimum_detectable_difference():
    assert minimum_detectable_difference(1.0) == pytest.approx(Z975 + Z80, abs=1e-6)
    assert minimum_detectable_difference(2.5) == pytest.approx(2.5 * 2.801585, abs=1e-5)
    assert minimum_detectable_difference(1.0, alpha=0.10, power=0.5) == pytest.approx(Z95, abs=1e-6)


def test_verdict_equivalence_edges():
    wide95 = (-3.0, 3.0)
    assert verdict(wide95, (-2.0, 1.0), margin=2.0) != "equivalent"  # touches -margin
    assert verdict(wide95, (-1.0, 2.0), margin=2.0) != "equivalent"  # touches +margin
    assert verdict(wide95, (-1.999, 1.999), margin=2.0) == "equivalent"
    assert verdict((0.0, 0.0), (0.0, 0.0), margin=0.0) == "inconclusive"  # no margin: nothing is equivalent


def test_verdict_better_worse_edges():
    wide90 = (-5.0, 5.0)  # never equivalent at margin 2
    assert verdict((0.0, 3.0), wide90, margin=2.0) == "inconclusive"  # touches 0
    assert verdict((-3.0, 0.0), wide90, margin=2.0) == "inconclusive"
    assert verdict((0.001, 3.0), wide90, margin=2.0) == "better"
    assert verdict((-3.0, -0.001), wide90, margin=2.0) == "worse"
    assert verdict((-1.0, 3.0), wide90, margin=2.0) == "inconclusive"


def test_verdict_equivalence_takes_precedence():
    assert verdict((0.5, 1.5), (0.6, 1.4), margin=2.0) == "equivalent"
    assert verdict((0.5, 1.5), (0.6, 1.4), margin=1.0) == "better"


def test_questions_needed_equivalence_branch():
    # |d| = 0.5 < margin 2: need 1.6449 * se * sqrt(100 / m) + 0.5 < 2  ->  m > 100 * (1.6449 / 1.5)^2 = 120.246
    assert 100 * (Z95 * 1.0 / 1.5) ** 2 == pytest.approx(120.246, abs=1e-3)
    m = questions_needed(100, se=1.0, difference=0.5, margin=2.0)
    assert m == 121
    assert Z95 * 1.0 * math.sqrt(100 / m) + 0.5 < 2.0
    assert Z95 * 1.0 * math.sqrt(100 / (m - 1)) + 0.5 >= 2.0
    assert questions_needed(100, se=1.0, difference=-0.5, margin=2.0) == 121


def test_questions_needed_difference_branch():
    # |d| = 3 >= margin 2: need 1.96 * 2 * sqrt(100 / m) < 3  ->  m > 100 * (1.96 * 2 / 3)^2 = 170.73
    assert 100 * (Z975 * 2.0 / 3.0) ** 2 == pytest.approx(170.73, abs=1e-2)
    m = questions_needed(100, se=2.0, difference=-3.0, margin=2.0)
    assert m == 171
    assert Z975 * 2.0 * math.sqrt(100 / m) < 3.0
    assert Z975 * 2.0 * math.sqrt(100 / (m - 1)) >= 3.0
    # exactly at the margin counts as a difference to show, not equivalence
    assert questions_needed(100, se=2.0, difference=2.0, margin=2.0) == math.ceil(100 * (Z975 * 2.0 / 2.0) ** 2)


def test_questions_needed_degenerate():
    assert questions_needed(100, se=1.0, difference=0.0, margin=0.0) is None
    assert questions_needed(100, se=1.0, difference=1.0, margin=0.0) == math.ceil(100 * Z975**2)


# --- compare_paired ------------------------------------------------------------------------------------------------

def _three_seeds(q: int = 300) -> tuple[np.ndarray, np.ndarray]:
    method, reference = _sixty_vs_fifty(q)
    return np.stack([method, np.roll(method, 1), np.roll(method, 4)]), reference


def test_compare_figures_are_points():
    method, reference = _sixty_vs_fifty(300)
    out = compare_paired(method, reference, margin=0.2, n_resamples=3000)
    assert out["questions"] == 300 and out["seeds"] == 1
    assert out["accuracy"] == 60.0
    assert out["reference_accuracy"] == 50.0
    assert out["difference"] == 10.0
    analytic_se = 100 * math.sqrt(0.49 / 300)  # 4.04 points
    assert out["se"] == pytest.approx(analytic_se, rel=0.05)
    assert out["ci95"][0] < 10.0 < out["ci95"][1]
    assert out["ci90"][0] < 10.0 < out["ci90"][1]
    assert out["mde"] == pytest.approx(round(2.801585 * out["se"], 4), abs=1e-3)
    # a margin of 0.2 points is tiny: the clear 10-point gain is "better" (read as a fraction, 0.2 = 20 points,
    # it would have been "equivalent")
    assert out["margin"] == 0.2
    assert out["verdict"] == "better"
    assert out["questions_needed"] is None
    assert compare_paired(method, reference, margin=20.0, n_resamples=3000)["verdict"] == "equivalent"
    table = out["mcnemar"][0]
    assert (table["method_only"], table["reference_only"], table["both_right"], table["both_wrong"]) == (90, 60, 90, 60)
    assert table["p"] == pytest.approx(mcnemar_exact(90, 60), rel=1e-3)


def test_compare_broadcasts_single_reference_row():
    method, reference = _three_seeds()
    tiled = compare_paired(method, np.tile(reference, (3, 1)), margin=2.0, n_resamples=2000)
    assert compare_paired(method, reference, margin=2.0, n_resamples=2000) == tiled
    assert compare_paired(method, reference[None, :], margin=2.0, n_resamples=2000) == tiled
    assert tiled["seeds"] == 3 and tiled["questions"] == 300
    assert [t["seed_index"] for t in tiled["mcnemar"]] == [0, 1, 2]
    # and the other way round: one method row against three reference seeds
    flipped = compare_paired(reference, method, margin=2.0, n_resamples=2000)
    assert flipped["seeds"] == 3
    assert flipped["difference"] == -tiled["difference"]


def test_compare_rejects_shapes_that_do_not_pair():
    method, reference = _three_seeds(300)
    with pytest.raises(ValueError) as err:
        compare_paired(method, np.tile(reference[:200], (3, 1)), margin=2.0, n_resamples=100)
    assert "(3, 300)" in str(err.value) and "(3, 200)" in str(err.value)
    with pytest.raises(ValueError) as err:
        compare_paired(method, np.tile(reference, (2, 1)), margin=2.0, n_resamples=100)
    assert "(3, 300)" in str(err.value) and "(2, 300)" in str(err.value)
    with pytest.raises(ValueError):
        compare_paired(method, reference * 2, margin=2.0, n_resamples=100)  # not 0/1


def test_compare_pooled_mcnemar_sums_seed_tables():
    method, reference = _three_seeds()
    out = compare_paired(method, reference, margin=2.0, n_resamples=2000)
    b = sum(t["method_only"] for t in out["mcnemar"])
    c = sum(t["reference_only"] for t in out["mcnemar"])
    for t in out["mcnemar"]:
        assert t["method_only"] + t["reference_only"] + t["both_right"] + t["both_wrong"] == 300
        assert t == {**t, **paired_table(method[t["seed_index"]], reference)}
    assert out["mcnemar_p_pooled"] == pytest.approx(mcnemar_exact(b, c), rel=1e-3)
    assert out["mcnemar_p_pooled"] < min(t["p"] for t in out["mcnemar"])  # three times the evidence


def test_compare_deterministic_and_json():
    method, reference = _three_seeds()
    a = compare_paired(method, reference, margin=2.0, n_resamples=2000, seed=5)
    assert a == compare_paired(method.copy(), reference.copy(), margin=2.0, n_resamples=2000, seed=5)
    assert json.loads(json.dumps(a)) == a
    for key in ("accuracy", "reference_accuracy", "difference", "se", "mde"):
        assert a[key] == round(a[key], 4)


def test_compare_inconclusive_reports_questions_needed():
    q = 300
    i = np.arange(q) % 50
    reference = i < 25  # 50%
    method = (i >= 2) & (i < 28)  # 52%: 3 method-only, 2 reference-only per 50
    out = compare_paired(method, reference, margin=2.0, n_resamples=2000)
    assert out["difference"] == 2.0
    assert out["verdict"] == "inconclusive"
    expected = questions_needed(q, out["se"], out["difference"], out["margin"])
    assert out["questions_needed"] == expected
    assert expected > q  # more questions than we have
