"""Sequential verdicts: boundaries, error rates under continuous monitoring (simulation with known truth),
early stopping, and the deterministic-engine case."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from statrepro.stats.rules import VerdictRules
from statrepro.stats.boundaries import nominal_levels, spending_function
from statrepro.stats.looks import SequentialDesign
from statrepro.stats.sequential import fixed_design_calls, sequential_step, sequential_step_many
from statrepro.stats.simulate import Scenario

ALPHA = 0.05


def _mc_error(rate: float, n: int) -> float:
    """Two Monte Carlo standard errors of a rate estimated from n simulations."""
    return 2 * math.sqrt(rate * (1 - rate) / n)


def _run(scenario: Scenario, design: SequentialDesign, n_sims: int, seed: int):
    rng = np.random.default_rng(seed)
    return [sequential_step(design, *scenario.draw(rng)) for _ in range(n_sims)]


def test_obrien_fleming_boundaries_match_published_values():
    # Lan-DeMets O'Brien-Fleming-type spending, 5 equally spaced looks, one-sided 0.025 (Jennison &
    # Turnbull 2000, table 7.6 / gsDesign): 4.877, 3.357, 2.680, 2.290, 2.031.
    z = stats.norm.isf(nominal_levels(5, 0.025, "obrien-fleming"))
    assert z == pytest.approx([4.877, 3.357, 2.680, 2.290, 2.031], abs=2e-3)
    # One look is the fixed design; Pocock-type boundaries are nearly flat.
    assert nominal_levels(1, 0.05, "obrien-fleming") == pytest.approx((0.05,))
    pocock = stats.norm.isf(nominal_levels(5, 0.025, "pocock"))
    assert pocock == pytest.approx([2.438, 2.427, 2.410, 2.397, 2.386], abs=5e-3)
    for kind in ("obrien-fleming", "pocock"):
        assert spending_function(kind, 0.05, 1.0) == pytest.approx(0.05)
        assert spending_function(kind, 0.05, 0.0) == 0.0


def test_aa_false_different_rate_under_continuous_monitoring():
    """Over all rounds, 'different' (and even bare significance at any look) stays at or below alpha."""
    n_sims = 600
    design = SequentialDesign(max_rounds=4, futility=0.0, rules=VerdictRules(alpha=ALPHA))
    results = _run(Scenario(n_items=150, seeds_a=4, seeds_b=4), design, n_sims, seed=11)
    false_different = np.mean([r.verdict == "different" for r in results])
    significant_any = np.mean([any(look.p_different < look.different_level for look in r.looks) for r in results])
    assert false_different <= ALPHA + _mc_error(ALPHA, n_sims)
    assert significant_any <= ALPHA + _mc_error(ALPHA, n_sims)
    assert significant_any >= 0.015  # alive: it does reject at about its level, not never


@pytest.mark.parametrize("shift_in_tolerances", [1.0, 1.2])
def test_false_equivalence_rate_at_and_beyond_the_margin(shift_in_tolerances):
    """A true shift at (or beyond) the margin passes at most alpha of the time, however often we look."""
    n_sims, tolerance = 600, 0.05
    design = SequentialDesign(max_rounds=4, rules=VerdictRules(alpha=ALPHA, tolerance=tolerance))
    scenario = Scenario(n_items=1500, seeds_a=4, seeds_b=4, rel_shift=-shift_in_tolerances * tolerance)
    results = _run(scenario, design, n_sims, seed=12)
    passing = np.mean([r.verdict in ("equivalent", "within_tolerance") for r in results])
    assert passing <= ALPHA + _mc_error(ALPHA, n_sims)


def test_stops_early_and_saves_calls_when_the_answer_is_clear():
    design = SequentialDesign(max_rounds=5, rules=VerdictRules(alpha=ALPHA, tolerance=0.05))
    # 'different' needs the whole interval beyond the margin, so a clear case is a shift of 4 x tolerance.
    clear = _run(Scenario(n_items=2000, seeds_a=5, seeds_b=5, rel_shift=-0.20), design, 100, seed=13)
    assert all(r.verdict == "different" and r.stop_reason == "conclusive" for r in clear)
    assert np.mean([r.round for r in clear]) <= 2.5
    same = _run(Scenario(n_items=3000, seeds_a=5, seeds_b=5), design, 100, seed=14)
    assert np.mean([r.verdict in ("equivalent", "within_tolerance") for r in same]) >= 0.8
    assert np.mean([r.calls_spent for r in same]) <= 0.8 * fixed_design_calls(3000, 5)


def test_deterministic_engine_stops_after_round_two_without_burning_the_budget():
    rng = np.random.default_rng(15)
    a, b = Scenario(n_items=2000).draw(rng)
    a5, b5 = np.repeat(a, 5, axis=1), np.repeat(b, 5, axis=1)
    decision = sequential_step(SequentialDesign(max_rounds=5), a5, b5)
    assert decision.round == 2 and decision.verdict is not None
    assert decision.calls_spent == 2 * 2000 * 2 and decision.fixed_design_calls == 2 * 2000 * 5
    # The fixed design skips those seeds too: against it, as it runs, nothing is saved.
    assert decision.fixed_design_calls_as_run == decision.calls_spent and decision.seeds_repeated == (True, True)
    record = sequential_step_many(SequentialDesign(max_rounds=5), {"x": (a5, b5)}).to_json()
    assert record["calls_saved_share"] == 0.0 and record["calls_saved_share_nominal"] == pytest.approx(0.6)
    # The store holds only the two seeds each side ran: the same decision.
    assert sequential_step(SequentialDesign(max_rounds=5), a5[:, :2], b5[:, :2]) == decision
    assert "seeds add no information" in decision.reason
    assert decision.looks[-1].seeds_informative is False
    # Undecidable with these items: inconclusive at round 2 with the "more items" advice, not round 5.
    tiny_a, tiny_b = np.repeat(a[:40], 5, axis=1), np.repeat(b[:40], 5, axis=1)
    stuck = sequential_step(SequentialDesign(max_rounds=5), tiny_a, tiny_b)
    assert (stuck.verdict, stuck.round, stuck.stop_reason) == ("inconclusive", 2, "no-seed-information")
    assert "more items are needed" in stuck.reason


def _greedy_a_sampling_b(rng: np.random.Generator, items: int, seeds: int):
    """A/A truth with a deterministic A: one fixed outcome per item (drawn at the item's probability), copied to
    the two seeds a run keeps before skipping the rest; B draws every seed at the same probabilities."""
    p = rng.beta(2, 2, items)
    a = np.repeat((rng.random((items, 1)) < p[:, None]).astype(float), 2, axis=1)
    return a, (rng.random((items, seeds)) < p[:, None]).astype(float)


def test_a_deterministic_side_whose_later_seeds_were_skipped_still_concludes_like_the_fixed_design():
    """The run skips a deterministic side's seeds 3..K, so the store holds two of its columns while the sampling
    side holds every round's. Replayed round by round as `compare --sequential` does, the design must go on to
    the later rounds (counting the skipped seeds as copies) and pass about as often as the fixed design on the
    same data; it used to re-analyse round 2 at every look and end inconclusive."""
    from statrepro.stats.paired import compare_paired
    from statrepro.stats.verdict import decide

    rng = np.random.default_rng(21)
    items, seeds, n_sims = 3000, 5, 40
    design = SequentialDesign(max_rounds=seeds)
    sequential_passes, fixed_passes, decisions = [], [], []
    for _ in range(n_sims):
        a, b = _greedy_a_sampling_b(rng, items, seeds)
        for k in range(1, seeds + 1):
            result = sequential_step_many(design, {"x": (a[:, : min(k, 2)], b[:, :k])})
            if result.verdict is not None:
                break
        sequential_passes.append(result.verdict in ("equivalent", "within_tolerance"))
        decisions.append(result.benchmarks["x"])
        rules = VerdictRules(tolerance=0.05, alpha=ALPHA, n_resamples=300)
        fixed_passes.append(decide({"x": compare_paired(a, b, rules, rng=rng)}, rules).verdict in ("equivalent", "within_tolerance"))
    # Fixed design: ~0.8 here; 2 MC errors of a difference of two rates at 40 simulations each is about 0.2.
    assert np.mean(sequential_passes) >= np.mean(fixed_passes) - 0.25 and np.mean(sequential_passes) >= 0.4
    # Calls as run: A ran at most two seeds, B one per round; the fixed design runs A's two and B's five.
    for decision in decisions:
        assert decision.calls_spent == items * (min(decision.round, 2) + decision.round)
        assert decision.fixed_design_calls_as_run == items * (2 + seeds)


def test_few_changed_items_use_exact_tests_and_pass():
    rng = np.random.default_rng(16)
    a = (rng.random((500, 1)) < 0.6).astype(float)
    b = a.copy()
    b[:3] = 1 - b[:3]  # three items flip, identically on every seed
    decision = sequential_step(SequentialDesign(max_rounds=5), np.repeat(a, 3, axis=1), np.repeat(b, 3, axis=1))
    look = decision.looks[-1]
    assert look.tost_method == "exact-changed-share" and look.different_method == "exact-sign-flip"
    assert decision.verdict == "equivalent" and decision.round == 2


def test_round_by_round_calls_agree_with_a_single_replay():
    rng = np.random.default_rng(17)
    a, b = Scenario(n_items=800, seeds_a=5, seeds_b=5, rel_shift=-0.08).draw(rng)
    design = SequentialDesign(max_rounds=5)
    replay = sequential_step(design, a, b)
    for k in range(1, replay.round):
        assert sequential_step(design, a[:, :k], b[:, :k], k).verdict is None
    stepped = sequential_step(design, a[:, : replay.round], b[:, : replay.round], replay.round)
    assert stepped == replay
    assert replay.alpha_spent == pytest.approx(spending_function("obrien-fleming", ALPHA, replay.round / 5))
    with pytest.raises(ValueError):
        sequential_step(SequentialDesign(max_rounds=2), a, b, 3)


def test_several_benchmarks_and_the_json_record():
    rng = np.random.default_rng(18)
    same = Scenario(n_items=3000, seeds_a=3, seeds_b=3).draw(rng)
    shifted = Scenario(n_items=3000, seeds_a=3, seeds_b=3, rel_shift=-0.15).draw(rng)
    design = SequentialDesign(max_rounds=3)
    overall = sequential_step_many(design, {"gsm8k": shifted, "mmlu": same})
    assert overall.verdict == "different"
    assert overall.benchmarks["gsm8k"].verdict == "different"
    record = json.loads(json.dumps(overall.to_json()))
    assert record["design"]["max_rounds"] == 3
    assert record["calls_spent"] == sum(b["calls_spent"] for b in record["benchmarks"].values())
    assert record["fixed_design_calls"] == fixed_design_calls(3000, 3, benchmarks=2)
    assert record["benchmarks"]["gsm8k"]["looks"][0]["round"] == 1
    # One round in, nothing is decided yet for the equivalent benchmark: the overall verdict waits.
    first = sequential_step_many(design, {"mmlu": (same[0][:, :1], same[1][:, :1])})
    assert first.verdict is None and first.pending == ("mmlu",)
    assert fixed_design_calls(100, 5, benchmarks=3) == 3000


def test_bench_sequential_command_prints_both_designs():
    from typer.testing import CliRunner

    from statrepro.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["bench", "sequential", "--sims", "3", "--items", "300", "--max-seeds", "3"])
    assert result.exit_code == 0, result.output
    assert "fixed" in result.output and "averaged over the four stochastic scenarios" in result.output
    bad = runner.invoke(app, ["bench", "sequential", "--spending", "linear"])
    assert bad.exit_code == 2


def test_each_look_uses_the_metrics_declared_range_as_the_fixed_design_does():
    """Issue 21: the sequential path assumed scores in [0, 1]. On a 0-10 metric with few changed items (the exact
    changed-share path, which bounds each change by the range), its looks must equal the fixed design's TOST."""
    from statrepro.stats.summaries import item_means
    from statrepro.stats.tests import tost

    rng = np.random.default_rng(4)
    a = np.repeat(np.round(rng.random((300, 1)) * 10), 2, axis=1)
    b = a.copy()
    b[:5] = np.clip(b[:5] - 1, 0, 10)  # 5 items lose a point: fewer than 10 changed, so the exact path
    rules = VerdictRules(margin_kind="absolute", tolerance=0.5)
    design = SequentialDesign(max_rounds=2, rules=rules)
    fixed = tost(item_means(a), item_means(b), tolerance=0.5, margin_kind="absolute", score_bounds=(0.0, 10.0))
    declared = sequential_step(design, a, b, score_bounds=(0.0, 10.0)).looks[-1]
    assert fixed.method == declared.tost_method == "exact-changed-share"
    assert (declared.p_lower, declared.p_upper) == (fixed.p_lower, fixed.p_upper)
    assumed_unit = sequential_step(design, a, b).looks[-1]
    assert assumed_unit.p_lower != fixed.p_lower  # [0, 1] would bound each change ten times too tightly
    overridden = sequential_step(SequentialDesign(max_rounds=2, rules=replace(rules, score_range=(0.0, 10.0))), a, b)
    assert overridden.looks[-1].p_lower == fixed.p_lower  # --score-range overrides the declared range, as in analyze
