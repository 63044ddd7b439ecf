"""The A/A control: the excess-flip test is exact (brute force, thirds included), calibrated and has power."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from statrepro.stats import compare_many, decide
from statrepro.stats.rules import VerdictRules
from statrepro.stats.control import (
    compare_control,
    decompose_flips,
    excess_flip_test,
    excess_rate,
    flip_indicators,
    rate_interval,
)
from statrepro.stats.simulate import Scenario, excess_flip_rejections


def _flips(mean_a: np.ndarray, mean_other: np.ndarray) -> np.ndarray:
    """Written out here rather than taken from flip_indicators, so the brute force checks the library's rule too."""
    return ((mean_a > 0.5) & (mean_other < 0.5)) | ((mean_a < 0.5) & (mean_other > 0.5))


def _brute_force_p(a: np.ndarray, control: np.ndarray, b: np.ndarray) -> float:
    """P(T >= t) by swapping A' and B item by item over all 2^n patterns (the null's own symmetry)."""
    mean_a, mean_control, mean_b = a.mean(axis=1), control.mean(axis=1), b.mean(axis=1)
    observed = int(_flips(mean_a, mean_b).sum() - _flips(mean_a, mean_control).sum())
    at_least = 0
    for swaps in itertools.product((False, True), repeat=a.shape[0]):
        swap = np.array(swaps)
        new_control = np.where(swap, mean_b, mean_control)
        new_b = np.where(swap, mean_control, mean_b)
        at_least += int(_flips(mean_a, new_b).sum() - _flips(mean_a, new_control).sum()) >= observed
    return at_least / 2 ** a.shape[0]


@pytest.mark.parametrize("seeds", [1, 2, 3])
@pytest.mark.parametrize("case", range(6))
def test_excess_flip_test_equals_brute_force_including_thirds_and_ties(seeds: int, case: int) -> None:
    rng = np.random.default_rng(100 * seeds + case)
    n = 9
    p = rng.uniform(0.2, 0.8, size=n)
    a, control, b = ((rng.random((n, seeds)) < p[:, None]).astype(float) for _ in range(3))
    if case % 2:  # B flips a few items more
        b[:3] = 1.0 - np.round(a[:3].mean(axis=1, keepdims=True)).repeat(seeds, axis=1)
    mean_a, mean_control, mean_b = a.mean(axis=1), control.mean(axis=1), b.mean(axis=1)
    result = excess_flip_test(flip_indicators(mean_a, mean_b)["flips"], flip_indicators(mean_a, mean_control)["flips"])
    assert result.exact
    assert result.p_value == pytest.approx(_brute_force_p(a, control, b), abs=1e-12)


def test_excess_flip_test_by_hand() -> None:
    assert excess_flip_test(np.zeros(5, bool), np.zeros(5, bool)).p_value == 1.0
    assert excess_flip_test(np.array([1, 1, 1, 0, 0], bool), np.zeros(5, bool)).p_value == pytest.approx(1 / 8)
    # three items flip in A vs B only, one in A vs A' only: P(Bin(4, 1/2) >= 3) = 5/16
    result = excess_flip_test(np.array([1, 1, 1, 0, 0, 1], bool), np.array([0, 0, 0, 1, 0, 1], bool))
    assert result.statistic == 2 and result.p_value == pytest.approx(5 / 16)


def test_rates_and_excess_intervals_cover_their_estimates() -> None:
    rate = rate_interval(np.array([1, 0, 0, 0], bool), 0.95)
    assert rate.rate == 0.25 and rate.ci[0] < 0.25 < rate.ci[1]
    zero = rate_interval(np.zeros(50, bool), 0.95)
    assert zero.ci[0] == pytest.approx(0.0, abs=1e-12) and 0 < zero.ci[1] < 0.1
    excess = excess_rate(np.array([1, 1, 0, 0], bool), np.array([0, 1, 0, 0], bool), 0.95)
    assert excess.excess == 0.25 and excess.ci[0] < 0.25 < excess.ci[1]
    assert (excess.more_in_candidate, excess.more_in_control) == (1, 0)


def test_decomposition_splits_flips_by_direction_and_counts_churn() -> None:
    mean_a = np.array([1.0, 1.0, 0.0, 0.0, 2 / 3, 0.5])
    mean_b = np.array([0.0, 1.0, 1.0, 0.0, 1 / 3, 1.0])  # harmful, same, beneficial, same, harmful, from a tie
    answer_changed = np.array([1.0, 1.0, 1.0, 0.0, np.nan, 1.0])
    decomposition, _ = decompose_flips(mean_a, mean_b, answer_changed, 0.95)
    assert (decomposition.harmful.count, decomposition.beneficial.count, decomposition.flips.count) == (2, 1, 3)
    # churn: answer changed without a flip, among the 5 items with both answers known (item 1 and the tie item)
    assert (decomposition.churn.count, decomposition.churn.n_items) == (2, 5)


def _baseline_and_candidate(a: np.ndarray, control: np.ndarray, b: np.ndarray):
    rules = VerdictRules(n_resamples=500)
    baseline = decide(compare_many({"x": (a, control)}, rules), rules).benchmarks[0]
    candidate = compare_many({"x": (a, b)}, rules)["x"]
    return baseline, candidate


def test_compare_control_on_identical_runs_is_stable_with_zero_control_flips() -> None:
    rng = np.random.default_rng(3)
    a = (rng.random((300, 1)) < 0.6).astype(float)
    b = a.copy()
    b[:30] = 1 - b[:30]
    baseline, candidate = _baseline_and_candidate(a, a.copy(), b)
    result = compare_control(a, a.copy(), b, baseline=baseline, candidate=candidate, rng=0)
    assert result.control.flips.rate == 0 and result.candidate.flips.count == 30
    assert result.baseline == "stable" and result.warning is None
    assert result.excess_flips.excess == pytest.approx(0.1) and result.excess_test.p_value < 1e-8
    assert result.candidate_diff == candidate.diff and result.control_diff == 0
    assert "excess" in result.summary() and result.to_dict()["excess_test"]["p_value"] == result.excess_test.p_value


def test_compare_control_warns_when_the_baseline_is_unstable_without_touching_the_candidate() -> None:
    rng = np.random.default_rng(4)
    a = (rng.random((400, 1)) < 0.6).astype(float)
    control = a.copy()
    control[np.flatnonzero(a[:, 0] == 1)[:120]] = 0.0  # A' loses 120 right items: clearly different from A
    baseline, candidate = _baseline_and_candidate(a, control, a.copy())
    result = compare_control(a, control, a.copy(), baseline=baseline, candidate=candidate, rng=0)
    assert result.baseline_verdict == "different" and result.baseline == "unstable"
    assert "unstable" in result.warning
    assert result.candidate.flips.rate == 0 and result.excess_test.p_value == 1.0


@pytest.mark.parametrize("accuracy", [0.3, 0.6, 0.9])
@pytest.mark.parametrize("items", [200, 1000])
@pytest.mark.parametrize("seeds", [1, 3])
def test_excess_flip_test_false_alarm_is_at_most_alpha(accuracy: float, items: int, seeds: int) -> None:
    sims = 200
    rng = np.random.default_rng(int(accuracy * 10) + items + seeds)
    rate = excess_flip_rejections(Scenario.from_accuracy(items, accuracy, seeds=seeds), rng, sims=sims)
    assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / sims)  # alpha plus three Monte Carlo standard errors


def test_excess_flip_test_detects_five_points_more_flips_at_1000_items() -> None:
    scenario = Scenario.from_accuracy(1000, 0.6, seeds=3)
    assert excess_flip_rejections(scenario, np.random.default_rng(7), sims=100, excess_flips=0.05) >= 0.8
