"""The exact sign-flip test against full enumeration in exact rational arithmetic (issue 11, defect 1).

Item means are averages over a few seeds, so differences are thirds, sixths, sevenths... Floats cannot
represent them, and a null support rounded differently from the observed statistic splits ties. These
tests hold the p-value to brute force over every sign vector, computed with ``fractions.Fraction`` from the
raw scores (never from the float means the code under test sees).
"""

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from statrepro.stats import compare_paired, item_means, permutation_test
from statrepro.stats import resampling
from statrepro.stats.rules import VerdictRules
from statrepro.stats.resampling import infer_lattice_scale, sign_flip_null, sign_flip_tails, subset_sum_pmf


def _mean_diff(x, y, axis=-1):
    return np.mean(y - x, axis=axis)


def _exact_means(scores: np.ndarray) -> list[Fraction]:
    """Per-item mean of the non-NaN runs, exactly (scores are multiples of 1/2)."""
    return [sum((Fraction(int(round(2 * s)), 2) for s in row if not math.isnan(s)), Fraction(0)) / int(np.sum(~np.isnan(row))) for row in scores]


def _brute_force(differences: list[Fraction]) -> tuple[Fraction, int]:
    """Exact two-sided sign-flip p-value over all 2^n sign vectors, and how many vectors tie with t."""
    n = len(differences)
    common = math.lcm(*(d.denominator for d in differences)) if n else 1
    numerators = np.array([int(d * common) for d in differences], dtype=np.int64)
    observed = int(numerators.sum())
    patterns = (np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1
    null = (1 - 2 * patterns) @ np.abs(numerators)
    less, greater = int(np.sum(null <= observed)), int(np.sum(null >= observed))
    return min(Fraction(1), 2 * Fraction(min(less, greater), 2**n)), int(np.sum(null == observed))


def _random_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n <= 14 items, 1-10 seeds per side, 0/1 or 0/0.5/1 scores, some runs missing (NaN)."""
    n = int(rng.integers(1, 15))
    seeds_a, seeds_b = (int(k) for k in rng.integers(1, 11, size=2))
    levels = np.array([0.0, 0.5, 1.0]) if rng.random() < 0.4 else np.array([0.0, 1.0])
    difficulty = rng.random(n)[:, None]

    def draw(seeds: int) -> np.ndarray:
        scores = levels[np.minimum((rng.random((n, seeds)) < difficulty) + (rng.random((n, seeds)) < difficulty), len(levels) - 1)]
        missing = rng.random((n, seeds)) < 0.2
        missing[np.arange(n), rng.integers(0, seeds, size=n)] = False  # every item keeps one run
        return np.where(missing, np.nan, scores)

    a, b = draw(seeds_a), draw(seeds_b)
    if seeds_a == seeds_b and rng.random() < 0.3:  # some items unchanged
        same = rng.random(n) < 0.3
        b[same] = a[same]
    return a, b


def test_exact_p_matches_full_enumeration_on_1000_random_cases():
    rng = np.random.default_rng(11)
    non_dyadic = tied = 0
    worst = 0.0
    for _ in range(1000):
        a, b = _random_case(rng)
        exact_d = [mb - ma for ma, mb in zip(_exact_means(a), _exact_means(b))]
        expected, ties = _brute_force(exact_d)
        result = permutation_test(item_means(a), item_means(b), rng=np.random.default_rng(0))
        assert result.exact
        assert result.p_value == pytest.approx(float(expected), abs=1e-12), (a, b)
        worst = max(worst, abs(result.p_value - float(expected)))
        denominator = math.lcm(*(d.denominator for d in exact_d))
        non_dyadic += denominator & (denominator - 1) != 0
        tied += ties > 1 and denominator % 3 == 0
    # The cases must exercise the defect: non-dyadic means, and thirds-based statistics with ties at t.
    assert non_dyadic >= 500
    assert tied >= 200
    assert worst <= 1e-12


@pytest.mark.parametrize(
    ("differences", "expected"),
    [
        ([Fraction(1, 3)], Fraction(1)),  # one item moving by +1/3
        ([Fraction(1, 3)] * 6, Fraction(2, 64)),  # six items each +1/3
        ([Fraction(1, 2), Fraction(1, 3), Fraction(1, 6)], Fraction(1, 4)),  # 1/2 = 1/3 + 1/6: a float tie
        ([Fraction(1, 2), Fraction(1, 3), Fraction(-1, 6)], Fraction(1, 2)),
        ([Fraction(1, 2), Fraction(-1, 3), Fraction(-1, 6)], Fraction(1)),
        ([Fraction(2, 3), Fraction(1, 2), Fraction(-1, 6), Fraction(1, 3), Fraction(1, 7)], Fraction(3, 16)),
    ],
)
def test_hand_computed_thirds_and_halves(differences, expected):
    assert _brute_force(differences)[0] == expected  # the hand computation, checked once more
    d = np.array([float(x) for x in differences])
    result = permutation_test(np.zeros(d.size), d, rng=np.random.default_rng(0))
    assert result.p_value == pytest.approx(float(expected), abs=1e-12)
    assert result.exact and result.method == "exact-lattice"


def test_one_right_repeat_out_of_60_items_x_3_seeds_is_p_1():
    """The audit's evalscope pair: A all wrong, B right on one repeat of one item."""
    a = np.zeros((60, 3))
    b = a.copy()
    b[0, 0] = 1.0
    assert permutation_test(a.mean(axis=1), b.mean(axis=1), rng=np.random.default_rng(0)).p_value == 1.0
    comparison = compare_paired(a, b, VerdictRules(margin_kind="absolute", tolerance=0.001), rng=0)
    assert comparison.permutation.p_value == 1.0
    assert comparison.permutation.lattice_scale == 3


def test_lattice_scale_inferred_from_seed_counts_and_partial_credit():
    thirds = np.array([1 / 3, -2 / 3, 1.0, 0.0])
    assert infer_lattice_scale(thirds) == 3
    assert infer_lattice_scale(np.array([1 / 3, 0.5, 1 / 7])) == 42
    assert infer_lattice_scale(np.array([0.5 / 3, 0.25])) == 12  # partial credit over 3 seeds, and over 4
    assert infer_lattice_scale(np.array([1.0, -1.0, 0.0])) == 1
    assert infer_lattice_scale(np.array([1 / 9 - 1 / 10, 3 / 8 - 1 / 7])) == 2520  # float noise tolerated
    assert infer_lattice_scale(np.random.default_rng(0).random(50)) is None


def test_explicit_lattice_hint():
    d = np.array([1 / 3, 1 / 3, -1 / 6, 1 / 2])
    inferred = permutation_test(np.zeros(4), d, rng=np.random.default_rng(0))
    hinted = permutation_test(np.zeros(4), d, rng=np.random.default_rng(0), lattice_scale=12)
    assert inferred.lattice_scale == 6 and hinted.lattice_scale == 12
    assert hinted.p_value == pytest.approx(inferred.p_value, abs=1e-15)
    with pytest.raises(ValueError, match="not multiples of 1/2"):
        permutation_test(np.zeros(4), d, rng=np.random.default_rng(0), lattice_scale=2)
    with pytest.raises(ValueError, match="finite"):
        permutation_test(np.zeros(2), np.array([0.5, np.nan]), rng=np.random.default_rng(0))


def _three_seed_pair(items: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 2, items)
    a = (rng.random((items, 3)) < p[:, None]).mean(axis=1)
    b = (rng.random((items, 3)) < np.clip(p + shift, 0, 1)[:, None]).mean(axis=1)
    return a, b


def test_fft_and_direct_convolution_agree_at_large_n():
    rng = np.random.default_rng(2)
    magnitudes = np.arange(1, 11)  # 10 seeds: |d| in tenths
    counts = rng.integers(200, 2000, size=10)
    direct = subset_sum_pmf(magnitudes, counts, method="direct")
    fft = subset_sum_pmf(magnitudes, counts, method="fft")
    assert direct.size == fft.size == int(magnitudes @ counts) + 1
    assert np.max(np.abs(direct - fft)) <= 1e-13
    assert math.fsum(direct) == pytest.approx(1.0, abs=1e-12)
    a, b = _three_seed_pair(2000, 0.01, seed=3)
    d = b - a
    by = {m: sign_flip_tails(d, 0, np.random.default_rng(0), convolution=m) for m in ("direct", "fft", "auto")}
    for tails in by.values():
        assert tails.exact and tails.lattice_scale == 3
        assert tails.less == pytest.approx(by["direct"].less, abs=1e-10)
        assert tails.greater == pytest.approx(by["direct"].greater, abs=1e-10)


def test_large_n_exact_agrees_with_scipy_monte_carlo():
    a, b = _three_seed_pair(2000, 0.015, seed=4)
    ours = permutation_test(a, b, rng=np.random.default_rng(0))
    reference = stats.permutation_test(
        (a, b), _mean_diff, permutation_type="samples", n_resamples=10_000, vectorized=True, random_state=5
    ).pvalue
    assert ours.exact and ours.n_resamples == 0 and ours.lattice_scale == 3
    assert 0.01 < ours.p_value < 0.9  # a fixture where the comparison means something
    assert ours.p_value == pytest.approx(reference, abs=4 * math.sqrt(ours.p_value * (1 - ours.p_value) / 10_000))


def test_tiny_p_value_is_reported_not_floored():
    a, b = _three_seed_pair(2000, 0.08, seed=6)
    ours = permutation_test(a, b, rng=np.random.default_rng(0))
    direct = sign_flip_tails(b - a, 0, np.random.default_rng(0), convolution="direct")
    assert ours.exact
    assert 0 < ours.p_value < 1e-6  # Monte Carlo with 10,000 draws cannot go below 2e-4
    assert ours.p_value == pytest.approx(2 * min(direct.less, direct.greater), abs=1e-12)


def test_null_distribution_lies_on_the_lattice():
    support, weights, exact = sign_flip_null(np.full(6, 1 / 3), 0, np.random.default_rng(0))
    assert exact
    assert np.allclose(support * 3, np.round(support * 3), atol=1e-12)
    assert weights[np.isclose(support, 2.0)] == pytest.approx([1 / 64], abs=1e-15)
    assert math.fsum(weights) == pytest.approx(1.0, abs=1e-14)


def test_monte_carlo_on_the_lattice_keeps_ties(monkeypatch):
    """When the lattice support is too large for convolution, the draws still compare on the integer scale."""
    monkeypatch.setattr(resampling, "_MAX_LATTICE_SUPPORT", 1)
    monkeypatch.setattr(resampling, "_MAX_EXACT_ENUMERATION", 1)
    result = permutation_test(np.zeros(6), np.full(6, 1 / 3), n_resamples=40_000, rng=np.random.default_rng(1))
    assert result.p_value == pytest.approx(2 / 64, abs=4 * math.sqrt(2 / 64 / 40_000))
    assert not result.exact and result.method == "monte-carlo" and result.lattice_scale == 3


def test_continuous_scores_fall_back_to_monte_carlo_and_agree_with_scipy():
    rng = np.random.default_rng(7)
    a = rng.random(400)
    b = a + rng.normal(0.01, 0.2, 400)
    ours = permutation_test(a, b, n_resamples=20_000, rng=np.random.default_rng(8))
    reference = stats.permutation_test(
        (a, b), _mean_diff, permutation_type="samples", n_resamples=20_000, vectorized=True, random_state=9
    ).pvalue
    assert not ours.exact and ours.method == "monte-carlo" and ours.lattice_scale is None
    assert ours.n_resamples == 20_000
    assert 0.05 < reference < 0.95  # a fixture where Monte Carlo noise matters
    assert ours.p_value == pytest.approx(reference, abs=4 * math.sqrt(2 * 0.25 / 20_000))


def test_few_continuous_items_are_enumerated_exactly():
    rng = np.random.default_rng(10)
    a = rng.random(10)
    b = a + rng.normal(0.05, 0.2, 10)
    b[:2] = a[:2] + 0.1  # two equal magnitudes: grouped
    ours = permutation_test(a, b, rng=np.random.default_rng(0))
    reference = stats.permutation_test((a, b), _mean_diff, permutation_type="samples", n_resamples=np.inf, vectorized=True)
    assert ours.exact and ours.method == "exact-enumeration" and ours.lattice_scale is None
    assert ours.p_value == pytest.approx(reference.pvalue, abs=1e-12)
