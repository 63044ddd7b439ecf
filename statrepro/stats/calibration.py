"""The calibration grid's pure pieces: one chunk of simulated comparisons of a (cell, shift), the figures of a cell,
the bounds that decide whether a figure passes (asserted by tests/stats/test_calibration_grid.py, printed by
``statrepro bench calibration``), and the greedy edge cells of issue 21."""

from __future__ import annotations

import math

import numpy as np

from .bootstrap import bootstrap_ci
from .paired import compare_paired
from .rules import DEFAULT_RULES, VerdictRules
from .simulate import GREEDY, SHIFTS, GreedyScenario
from .tests import tost
from .verdict import DIFFERENT, INCONCLUSIVE, PASSING, decide

RATE_FIGURES = ("aa_different", "different_half", "size_at_margin", "pass_beyond")
COVERAGE_FIGURES = ("coverage_aa", "coverage_pooled")


def mc_error(rate: float, n: int) -> float:
    """Two Monte Carlo standard errors of a rate ``rate`` estimated from ``n`` simulations."""
    return 2 * math.sqrt(rate * (1 - rate) / n) if n > 0 else float("inf")


def calibration_task(task: tuple) -> tuple[tuple, np.ndarray]:
    """Simulate one chunk of one (cell, shift): counts of different / passing / inconclusive / CI covers."""
    cell, shift_name, chunk, n_sims, options = task
    rng = np.random.default_rng(np.random.SeedSequence(options["seed"], spawn_key=cell.seed_key(shift_name) + (chunk,)))
    scenario = cell.scenario(
        SHIFTS[shift_name],
        tolerance=options["tolerance"],
        margin_kind=options["margin_kind"],
        concentration=options["concentration"],
        flip_rate=options["flip_rate"],
    )
    truth = scenario.true_diff
    rules = VerdictRules(
        tolerance=options["tolerance"], alpha=options["alpha"], margin_kind=options["margin_kind"],
        n_resamples=options["n_resamples"],
    )
    a, b = scenario.draw_many(rng, n_sims)
    counts = np.zeros(4, dtype=np.int64)  # different, passing, inconclusive, covered
    for i in range(n_sims):
        comparison = compare_paired(a[i], b[i], rules, rng=rng)
        verdict = decide({"x": comparison}, rules).benchmarks[0].verdict
        counts[0 if verdict == DIFFERENT else 1 if verdict in PASSING else 2] += 1
        low, high = comparison.bootstrap.diff_ci
        counts[3] += bool(low <= truth <= high)
    return (cell, shift_name), counts


def calibration_bounds(*, sims: int, alpha: float, standard_errors: float = 2.0) -> dict[str, float]:
    """The pass/fail bounds of the grid: error rates <= alpha + ``standard_errors`` MC SE; coverage within the
    nominal +/- 1 point (94-96% at alpha 0.05), widened by as many MC SE of a coverage from that many draws."""
    nominal = 1 - alpha
    aa_error = standard_errors / 2 * mc_error(nominal, sims)
    pooled_error = standard_errors / 2 * mc_error(nominal, sims * len(SHIFTS))
    rate_error = standard_errors / 2 * mc_error(alpha, sims)
    return {
        "rate_max": alpha + rate_error,
        "rate_mc_error": rate_error,
        "coverage_nominal": nominal,
        "coverage_aa_low": nominal - 0.01 - aa_error,
        "coverage_aa_high": nominal + 0.01 + aa_error,
        "coverage_aa_mc_error": aa_error,
        "coverage_pooled_low": nominal - 0.01 - pooled_error,
        "coverage_pooled_high": nominal + 0.01 + pooled_error,
        "coverage_pooled_mc_error": pooled_error,
    }


def cell_figures(cell, counts: dict[str, np.ndarray], sims: int, bounds: dict[str, float]) -> dict:
    """The figures of one cell of the grid from its counts per shift, and the ones outside ``bounds`` (``failing``)."""
    share = {name: counts[name] / sims for name in SHIFTS}  # rows: different, passing, inconclusive, covered
    figures = {
        "cell": cell.label,
        "accuracy": cell.accuracy,
        "n_items": cell.n_items,
        "engine": "greedy" if cell.seeds == GREEDY else "stochastic",
        "seeds": cell.seeds,
        "sims": sims,
        "aa_different": float(share["aa"][0]),
        "aa_passing": float(share["aa"][1]),
        "different_half": float(share["half"][0]),
        "size_at_margin": float(share["margin"][1]),
        "pass_beyond": float(share["beyond"][1]),
        "coverage_aa": float(share["aa"][3]),
        "coverage_pooled": float(sum(counts[name][3] for name in SHIFTS) / (sims * len(SHIFTS))),
        "by_shift": {
            name: {
                "shift_in_margins": SHIFTS[name],
                DIFFERENT: float(s[0]),
                "passing": float(s[1]),
                INCONCLUSIVE: float(s[2]),
                "coverage": float(s[3]),
            }
            for name, s in share.items()
        },
    }
    failing = [name for name in RATE_FIGURES if figures[name] > bounds["rate_max"]]
    for name, key in (("coverage_aa", "aa"), ("coverage_pooled", "pooled")):
        if not bounds[f"coverage_{key}_low"] <= figures[name] <= bounds[f"coverage_{key}_high"]:
            failing.append(name)
    figures["failing"] = failing
    return figures


# Greedy edge cells of issue 21: the TOST's size at exactly a relative margin for engines that churn and lose, and
# the coverage of the interval of 0/1 flips when every flip goes one way at a low score.
SIZE_CELLS = ((0.6, 500, 0.02), (0.6, 500, 0.04), (0.6, 1000, 0.02), (0.6, 1000, 0.04))  # accuracy, items, churn
ONE_WAY_CELLS = ((0.3, 200), (0.3, 1000))  # accuracy, items
ONE_WAY_SHIFTS = (0.5, 1.0, 1.2, 2.0)  # true loss in margins; every flip right -> wrong


def greedy_edge_figures(*, sims: int, tolerance: float = DEFAULT_RULES.tolerance, alpha: float = DEFAULT_RULES.alpha, seed: int = 0) -> dict:
    """Size of the relative-margin TOST at exactly the margin (``SIZE_CELLS``) and 95% coverage of ``diff_ci``
    for one-way flips (``ONE_WAY_CELLS`` x ``ONE_WAY_SHIFTS``), each with its Monte Carlo standard error."""
    def share(hits: int) -> dict:
        rate = hits / sims
        return {"rate": rate, "mc_se": math.sqrt(rate * (1 - rate) / sims), "sims": sims}

    size_rows = []
    for index, (accuracy, items, churn) in enumerate(SIZE_CELLS):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(21, 0, index)))
        scenario = GreedyScenario(items, accuracy, diff=-tolerance * accuracy, flip_rate=churn, seeds=1, churn_at_shift=True)
        passed = 0
        for start in range(0, sims, 1000):
            a, b = scenario.draw_many(rng, min(1000, sims - start))
            passed += sum(tost(a[i, :, 0], b[i, :, 0], tolerance=tolerance, alpha=alpha).p_value < alpha for i in range(len(a)))
        size_rows.append({"accuracy": accuracy, "n_items": items, "churn": churn, "size": share(int(passed))})
    coverage_rows = []
    for index, (accuracy, items) in enumerate(ONE_WAY_CELLS):
        for shift in ONE_WAY_SHIFTS:
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(21, 1, index, round(shift * 10))))
            scenario = GreedyScenario(items, accuracy, diff=-shift * tolerance * accuracy, seeds=1)
            covered = above = 0
            for start in range(0, sims, 1000):
                a, b = scenario.draw_many(rng, min(1000, sims - start))
                for i in range(len(a)):
                    low, high = bootstrap_ci(a[i, :, 0], b[i, :, 0], n_resamples=10, confidence=1 - alpha, rng=rng).diff_ci
                    covered += low <= scenario.true_diff <= high
                    above += high < scenario.true_diff
            coverage_rows.append(
                {"accuracy": accuracy, "n_items": items, "shift_in_margins": shift,
                 "coverage": share(covered), "truth_above": share(above)}
            )
    return {"sims": sims, "tolerance": tolerance, "alpha": alpha, "size": size_rows, "one_way_coverage": coverage_rows}
