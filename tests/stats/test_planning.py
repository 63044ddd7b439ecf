"""stats/planning.py: the planned items and the certifiable margin deliver their guarantees on simulated data with
known truth (80% power to pass when B equals A, the false pass at the margin at most alpha), and the noise models
match what they model (brute force where it exists)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from statrepro.stats.calibration import mc_error
from statrepro.stats.peer_gates import trt_theta
from statrepro.stats.planning import noise_from_baseline, noise_from_flip_rate, noise_from_pair, plan_benchmark
from statrepro.stats.simulate import GreedyScenario, Scenario
from statrepro.stats.tests import tost

SIMS = 400
ALPHA = 0.05


def pass_rate(a: np.ndarray, b: np.ndarray, **rules) -> float:
    """Share of simulated comparisons (sims, items, seeds) whose margin test passes."""
    means_a, means_b = a.mean(axis=2), b.mean(axis=2)
    return float(np.mean([tost(x, y, alpha=ALPHA, **rules).p_value < ALPHA for x, y in zip(means_a, means_b)]))


@pytest.mark.parametrize(
    ("flip_rate", "margin_kind", "tolerance", "mode"),
    [(0.10, "absolute", 0.03, "non-inferiority"), (0.20, "relative", 0.05, "equivalence")],
)
def test_planned_items_pass_80_percent_of_a_a_runs_and_hold_the_margin(flip_rate, margin_kind, tolerance, mode):
    """Greedy engines: at the planned n, B = A passes 80% +/- MC error, and a true loss of the margin (flips on top)
    passes at most alpha + MC error."""
    accuracy = 0.6
    plan = plan_benchmark(noise_from_flip_rate(accuracy, flip_rate), n_items=None, tolerance=tolerance,
                          margin_kind=margin_kind, mode=mode, alpha=ALPHA)
    n = plan.items_needed
    assert n is not None and plan.margin == pytest.approx(tolerance * (accuracy if margin_kind == "relative" else 1))
    rules = dict(tolerance=tolerance, margin_kind=margin_kind, mode=mode)
    rng = np.random.default_rng(1)
    power = pass_rate(*GreedyScenario(n, accuracy, flip_rate=flip_rate, seeds=1).draw_many(rng, SIMS), **rules)
    assert abs(power - 0.8) <= mc_error(0.8, SIMS) + 0.02
    at_margin = GreedyScenario(n, accuracy, diff=-plan.margin, flip_rate=flip_rate, seeds=1, churn_at_shift=True)
    assert pass_rate(*at_margin.draw_many(rng, SIMS), **rules) <= ALPHA + mc_error(ALPHA, SIMS)


def test_a_plan_from_a_three_seed_pilot_delivers_its_power_on_thirds():
    """Stochastic engines with 3 seeds (item means in thirds, many ties): a large A/A pilot gives the noise; at the
    planned n fresh comparisons pass 80% +/- MC error, and a true loss of the margin at most alpha + MC error."""
    accuracy, tolerance = 0.6, 0.03
    pilot = Scenario.from_accuracy(20_000, accuracy, seeds=3)
    a, a_again = pilot.draw(np.random.default_rng(2))
    means = a.mean(axis=1), a_again.mean(axis=1)
    assert np.isin(np.round(3 * np.concatenate(means), 9), (0, 1, 2, 3)).all()  # thirds: the data tie
    plan = plan_benchmark(noise_from_pair(*means), n_items=None, tolerance=tolerance, margin_kind="absolute",
                          mode="non-inferiority", alpha=ALPHA)
    n = plan.items_needed
    rules = dict(tolerance=tolerance, margin_kind="absolute", mode="non-inferiority")
    rng = np.random.default_rng(3)
    power = pass_rate(*Scenario.from_accuracy(n, accuracy, seeds=3).draw_many(rng, SIMS), **rules)
    assert abs(power - 0.8) <= mc_error(0.8, SIMS) + 0.02
    at_margin = Scenario.from_accuracy(n, accuracy, seeds=3, diff=-tolerance)
    assert pass_rate(*at_margin.draw_many(rng, SIMS), **rules) <= ALPHA + mc_error(ALPHA, SIMS)


def test_the_certifiable_margin_passes_80_percent_of_a_a_runs_at_the_items_at_hand():
    accuracy, flip_rate, n = 0.6, 0.05, 1319
    plan = plan_benchmark(noise_from_flip_rate(accuracy, flip_rate), n_items=n, tolerance=0.03, margin_kind="absolute",
                          mode="non-inferiority", alpha=ALPHA)
    margin = plan.certifiable_margin
    assert margin is not None and margin < plan.margin and plan.power_at_n > 0.8
    rules = dict(tolerance=margin, margin_kind="absolute", mode="non-inferiority")
    rng = np.random.default_rng(4)
    power = pass_rate(*GreedyScenario(n, accuracy, flip_rate=flip_rate, seeds=1).draw_many(rng, SIMS), **rules)
    assert abs(power - 0.8) <= mc_error(0.8, SIMS) + 0.02
    at_margin = GreedyScenario(n, accuracy, diff=-margin, flip_rate=flip_rate, seeds=1, churn_at_shift=True)
    assert pass_rate(*at_margin.draw_many(rng, SIMS), **rules) <= ALPHA + mc_error(ALPHA, SIMS)


def test_without_flips_the_need_is_the_exact_tests_floor():
    """No flips: the exact changed-share test passes identical results once (1 - s)^n < alpha, s the margin."""
    plan = plan_benchmark(noise_from_flip_rate(0.6, 0.0), n_items=None, tolerance=0.03, margin_kind="absolute",
                          mode="non-inferiority", alpha=ALPHA)
    brute = next(n for n in range(2, 1000) if (1 - 0.03) ** n < ALPHA)
    assert plan.items_needed == brute == 99


def test_tensorrt_llm_under_the_same_guarantees_is_its_own_theta():
    """One-sided, the unpaired gate certifies TensorRT-LLM's stated minimum detectable effect (compute_theta) and
    needs 2 sigma^2 (z_alpha + z_beta)^2 / m^2 items; statrepro's paired test certifies under half of it at 2%
    flips and 1,319 items (issue 24's target)."""
    plan = plan_benchmark(noise_from_flip_rate(0.6, 0.02), n_items=1319, tolerance=0.03, margin_kind="absolute",
                          mode="non-inferiority", alpha=ALPHA)
    assert plan.trt_certifiable_margin == pytest.approx(trt_theta(1319), abs=1e-6)
    z = stats.norm.ppf(0.95) + stats.norm.ppf(0.8)
    assert plan.trt_items_needed == math.ceil(2 * 0.5**2 * z**2 / 0.03**2)
    assert plan.certifiable_margin <= plan.trt_certifiable_margin / 2


def test_a_baseline_with_seeds_predicts_the_a_a_noise():
    """Brute force: for p ~ Beta(1.8, 1.2) and 3 runs, Var(d) = 2 E[p(1-p)] / 3, cov(d, a) = -E[p(1-p)] / 3, and an
    item changes with probability E[1 - sum_j Binomial(j; 3, p)^2] (by quadrature); a baseline's seeds estimate all
    three, and so does an A/A pilot of the same population."""
    population = Scenario.from_accuracy(40_000, 0.6, seeds=3)
    a, a_again = population.draw(np.random.default_rng(5))
    beta = stats.beta(population.beta_a, population.beta_b)
    seed_var = beta.expect(lambda p: p * (1 - p))
    changed = integrate.quad(lambda p: beta.pdf(p) * (1 - sum(stats.binom.pmf(j, 3, p) ** 2 for j in range(4))), 0, 1)[0]
    for noise in (noise_from_baseline(a), noise_from_pair(a.mean(axis=1), a_again.mean(axis=1))):
        assert noise.var_d == pytest.approx(2 * seed_var / 3, rel=0.03)
        assert noise.cov_da == pytest.approx(-seed_var / 3, rel=0.05)
        assert noise.changed_share == pytest.approx(changed, rel=0.03)


def test_a_greedy_baseline_needs_a_flip_rate():
    scores = np.repeat((np.arange(100) % 2)[:, None], 3, axis=1).astype(float)  # 3 identical runs per item
    with pytest.raises(ValueError, match="state a flip rate"):
        noise_from_baseline(scores)
    assert noise_from_baseline(scores, flip_rate=0.04) == noise_from_flip_rate(0.5, 0.04)


@pytest.mark.parametrize(("accuracy", "flip_rate"), [(0.6, -0.1), (0.6, 1.5), (0.9, 0.3)])
def test_a_flip_rate_outside_its_range_is_refused(accuracy, flip_rate):
    with pytest.raises(ValueError, match="flip rate"):
        noise_from_flip_rate(accuracy, flip_rate)


@pytest.mark.parametrize("tolerance", [0.0, -0.02])
def test_a_margin_of_zero_or_below_is_refused(tolerance):
    with pytest.raises(ValueError, match="greater than 0"):
        plan_benchmark(noise_from_flip_rate(0.6, 0.02), n_items=100, tolerance=tolerance)


def test_a_metric_on_another_scale_plans_the_same_in_points():
    """Scores on 0-100 with a 3-point margin plan exactly as 0-1 scores with 0.03 (noise, margins, TensorRT-LLM's
    sigma and the exact test's bound all scale), and the table shows the same points."""
    rng = np.random.default_rng(6)
    a = (rng.random(2000) < 0.6).astype(float)
    b = np.where(rng.random(2000) < 0.006, 1 - a, a)  # few flips: the exact path at small n
    unit = plan_benchmark(noise_from_pair(a, b), n_items=2000, tolerance=0.03, margin_kind="absolute")
    scaled = plan_benchmark(noise_from_pair(100 * a, 100 * b), n_items=2000, tolerance=3.0, margin_kind="absolute",
                            score_range=100.0)
    assert (scaled.items_needed, scaled.trt_items_needed) == (unit.items_needed, unit.trt_items_needed)
    assert scaled.certifiable_margin == pytest.approx(100 * unit.certifiable_margin, rel=1e-6)
    assert scaled.trt_certifiable_margin == pytest.approx(100 * unit.trt_certifiable_margin, rel=1e-6)
    assert scaled.cells()[2:] == unit.cells()[2:]
