"""The statistics core agrees with scipy and statsmodels reference implementations on fixed fixtures."""

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.weightstats import ttost_paired

from statrepro.stats import bootstrap_ci, compare_paired, mcnemar_exact, permutation_test, tost


def _mean_diff(x, y, axis=-1):
    return np.mean(y - x, axis=axis)


def test_exact_permutation_matches_scipy_exact():
    rng = np.random.default_rng(3)
    a = rng.random(12)
    b = a + rng.normal(0.1, 0.2, 12)
    ours = permutation_test(a, b, rng=rng)
    reference = stats.permutation_test(
        (a, b), _mean_diff, permutation_type="samples", n_resamples=np.inf, vectorized=True
    )
    assert ours.exact
    assert ours.p_value == pytest.approx(reference.pvalue, abs=1e-12)


def test_monte_carlo_permutation_matches_scipy():
    rng = np.random.default_rng(4)
    a = rng.random(300)
    b = a + rng.normal(0.02, 0.3, 300)
    ours = permutation_test(a, b, n_resamples=200_000, rng=np.random.default_rng(1))
    reference = stats.permutation_test(
        (a, b), _mean_diff, permutation_type="samples", n_resamples=200_000, vectorized=True, random_state=2
    )
    assert not ours.exact
    assert 0.02 < reference.pvalue < 0.98  # a fixture where Monte Carlo noise matters
    assert ours.p_value == pytest.approx(reference.pvalue, abs=0.01)


def test_binary_permutation_is_exact_mcnemar():
    rng = np.random.default_rng(5)
    a = (rng.random(400) < 0.6).astype(float)
    b = np.where(rng.random(400) < 0.1, 1 - a, a)
    table = [[np.sum((a == 1) & (b == 1)), np.sum((a == 1) & (b == 0))], [np.sum((a == 0) & (b == 1)), np.sum((a == 0) & (b == 0))]]
    reference = mcnemar(table, exact=True).pvalue
    assert permutation_test(a, b, rng=rng).p_value == pytest.approx(reference, rel=1e-9)
    assert mcnemar_exact(a, b).p_value == pytest.approx(reference, rel=1e-12)


@pytest.mark.parametrize("method", ["BCa", "percentile"])
def test_bootstrap_matches_scipy_paired(method):
    rng = np.random.default_rng(6)
    p = rng.beta(2, 2, 500)
    a = (rng.random((500, 3)) < p[:, None]).mean(axis=1)
    b = (rng.random((500, 3)) < p[:, None] * 0.95).mean(axis=1)
    ours = bootstrap_ci(a, b, n_resamples=20_000, method=method, rng=np.random.default_rng(7))
    diff_ref = stats.bootstrap(
        (a, b), _mean_diff, paired=True, vectorized=True, n_resamples=20_000, method=method, random_state=8
    ).confidence_interval
    rel_ref = stats.bootstrap(
        (a, b),
        lambda x, y, axis=-1: np.mean(y, axis=axis) / np.mean(x, axis=axis) - 1,
        paired=True,
        vectorized=True,
        n_resamples=20_000,
        method=method,
        random_state=9,
    ).confidence_interval
    width = diff_ref.high - diff_ref.low
    assert ours.diff_ci[0] == pytest.approx(diff_ref.low, abs=0.04 * width)
    assert ours.diff_ci[1] == pytest.approx(diff_ref.high, abs=0.04 * width)
    rel_width = rel_ref.high - rel_ref.low
    assert ours.rel_diff_ci[0] == pytest.approx(rel_ref.low, abs=0.04 * rel_width)
    assert ours.rel_diff_ci[1] == pytest.approx(rel_ref.high, abs=0.04 * rel_width)


def test_bootstrap_fallback_for_continuous_scores_matches_scipy():
    rng = np.random.default_rng(10)
    a = rng.random(1000)  # all distinct: exercises the index-gathering path
    b = a + rng.normal(0.01, 0.1, 1000)
    ours = bootstrap_ci(a, b, n_resamples=20_000, rng=np.random.default_rng(11))
    ref = stats.bootstrap((a, b), _mean_diff, paired=True, vectorized=True, n_resamples=20_000, random_state=12).confidence_interval
    width = ref.high - ref.low
    assert ours.diff_ci == pytest.approx((ref.low, ref.high), abs=0.04 * width)


def _symmetric(rng, centre, spread, n):
    """Values whose sample skewness is exactly 0 (mirrored around their mean)."""
    half = rng.normal(0, spread, n // 2)
    return centre + np.concatenate([half, -half])


def test_tost_absolute_matches_statsmodels_on_unskewed_differences():
    """With zero sample skewness the skew-corrected t is the plain paired t, so it equals statsmodels."""
    rng = np.random.default_rng(13)
    a = rng.random(200)
    b = a + _symmetric(rng, 0.01, 0.08, 200)
    ours = tost(a, b, tolerance=0.03, margin_kind="absolute")
    reference = ttost_paired(b, a, -0.03, 0.03)
    assert ours.method == "skew-corrected-t"
    assert ours.p_value == pytest.approx(reference[0], rel=1e-9)
    assert ours.p_lower == pytest.approx(reference[1][1], rel=1e-9)
    assert ours.p_upper == pytest.approx(reference[2][1], rel=1e-9)


def test_tost_relative_is_paired_tost_on_scaled_a():
    rng = np.random.default_rng(14)
    a = rng.random(200)
    b = 0.95 * a + _symmetric(rng, 0.03, 0.05, 200)  # b - 0.95 a has zero skewness
    ours = tost(a, b, tolerance=0.05)
    lower = ttost_paired(b, 0.95 * a, 0.0, 1e9)[1][1]
    assert ours.p_lower == pytest.approx(lower, rel=1e-9)
    noninf = tost(a, b, tolerance=0.05, mode="non-inferiority")
    assert noninf.p_value == pytest.approx(lower, rel=1e-9)


def test_skew_correction_leans_against_rare_one_way_losses():
    """Rare large losses: the plain t is too ready to reject 'B is below the margin'; the corrected one is not."""
    a = np.ones(400)
    b = a.copy()
    b[:8] = 0  # 2% of items lost, all one way: d is heavily left-skewed
    ours = tost(a, b, tolerance=0.035, margin_kind="absolute")
    plain = ttost_paired(b, a, -0.035, 0.035)[1][1]
    assert plain < ours.p_lower


def test_unpaired_test_misses_what_paired_tests_find():
    """The motivating example: an unpaired z-test on paired data is far too conservative."""
    a = np.repeat([1.0, 0.0], 500)
    b = a.copy()
    b[:40] = 0  # 40 right answers break ...
    b[500:518] = 1  # ... and 18 wrong ones get fixed
    unpaired = stats.ttest_ind(a, b).pvalue
    paired = compare_paired(a, b, rng=0)
    assert paired.mcnemar is not None
    assert paired.mcnemar.p_value < 0.05 < unpaired
