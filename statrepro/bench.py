"""Benchmarks that print figures (never asserted in tests): speed of the statistics core and calibration."""

from __future__ import annotations

import math
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from .stats import compare_many, compare_paired, decide
from .stats.simulate import Scenario


def _workload(items: int, seeds: int, benchmarks: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    scenario = Scenario(n_items=items, seeds_a=seeds, seeds_b=seeds, rel_shift=-0.02)
    return [scenario.draw(rng) for _ in range(benchmarks)]


def _scipy_reference(a: np.ndarray, b: np.ndarray, resamples: int) -> None:
    """The same per-benchmark computation through scipy.stats: BCa bootstrap of diff and rel_diff, and the
    paired permutation test, on the item means."""
    from scipy import stats

    mean_a, mean_b = a.mean(axis=1), b.mean(axis=1)
    batch = max(1, 20_000_000 // mean_a.size)
    stats.bootstrap(
        (mean_a, mean_b),
        lambda x, y, axis=-1: np.mean(y - x, axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=resamples,
        batch=batch,
        method="BCa",
        random_state=1,
    )
    stats.bootstrap(
        (mean_a, mean_b),
        lambda x, y, axis=-1: np.mean(y, axis=axis) / np.mean(x, axis=axis) - 1,
        paired=True,
        vectorized=True,
        n_resamples=resamples,
        batch=batch,
        method="BCa",
        random_state=2,
    )
    stats.permutation_test(
        (mean_a, mean_b),
        lambda x, y, axis=-1: np.mean(y - x, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=resamples,
        batch=batch,
        random_state=3,
    )


def run_stats_bench(*, items: int, seeds: int, benchmarks: int, resamples: int, skip_scipy: bool) -> dict[str, float]:
    """Time `analyze`'s statistics (all benchmarks, then the decision) against scipy on the same data."""
    console = Console()
    data = _workload(items, seeds, benchmarks, np.random.default_rng(0))
    console.print(
        f"workload: {benchmarks} benchmarks x {items} items x {seeds} seeds x 2 environments, "
        f"{resamples} bootstrap resamples and {resamples} permutations"
    )
    start = time.perf_counter()
    comparisons = compare_many(
        {f"bench{i}": pair for i, pair in enumerate(data)}, rng_seed=1, n_resamples=resamples, n_permutations=resamples
    )
    decide(comparisons)
    ours = time.perf_counter() - start
    figures = {"statrepro_seconds": ours}
    table = Table(title="statistics core vs scipy.stats")
    table.add_column("implementation")
    table.add_column("seconds", justify="right")
    table.add_row("statrepro (bootstrap x2 CIs, permutation, TOST, power, verdicts)", f"{ours:.3f}")
    if not skip_scipy:
        start = time.perf_counter()
        for a, b in data:
            _scipy_reference(a, b, resamples)
        reference = time.perf_counter() - start
        figures["scipy_seconds"] = reference
        figures["speedup"] = reference / ours
        table.add_row("scipy.stats.bootstrap (BCa x2) + permutation_test", f"{reference:.3f}")
        table.add_row("speed-up", f"{reference / ours:.1f}x")
    console.print(table)
    console.print(f"target: statrepro under 2 s and at least 20x faster than scipy; measured {ours:.3f} s")
    return figures


def run_calibration_bench(*, sims: int, items: int, seeds: int, tolerance: float, alpha: float) -> dict[str, float]:
    """Monte Carlo error rates of the verdicts: A/A false alarms, CI coverage, power, false equivalence."""
    console = Console()
    scenarios = {
        "A/A (no shift)": Scenario(n_items=items, seeds_a=seeds, seeds_b=seeds),
        "shift = 1.2 x tolerance": Scenario(n_items=items, seeds_a=seeds, seeds_b=seeds, rel_shift=-1.2 * tolerance),
        "5-point shift": Scenario(n_items=items, seeds_a=seeds, seeds_b=seeds, rel_shift=-0.10),
    }
    table = Table(title=f"calibration over {sims} simulations per scenario ({items} items x {seeds} seeds)")
    for column in ("scenario", "different", "passing", "inconclusive", "CI coverage", "mean MDE"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    figures: dict[str, float] = {}
    rng = np.random.default_rng(0)
    from rich.progress import Progress

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("simulating", total=sims * len(scenarios))
        for label, scenario in scenarios.items():
            counts = {"different": 0, "passing": 0, "inconclusive": 0}
            covered = 0
            mde = 0.0
            for _ in range(sims):
                a, b = scenario.draw(rng)
                c = compare_paired(a, b, tolerance=tolerance, alpha=alpha, n_resamples=1000, n_permutations=1000, rng=rng)
                verdict = decide({"x": c}, alpha=alpha).verdict
                counts["passing" if verdict in ("equivalent", "within_tolerance") else verdict] += 1
                covered += c.bootstrap.diff_ci[0] <= scenario.true_diff <= c.bootstrap.diff_ci[1]
                mde += c.power.mde
                progress.advance(task)
            error = 2 * math.sqrt(alpha * (1 - alpha) / sims)
            table.add_row(
                label,
                f"{counts['different'] / sims:.3f}",
                f"{counts['passing'] / sims:.3f}",
                f"{counts['inconclusive'] / sims:.3f}",
                f"{covered / sims:.3f}",
                f"{mde / sims:.4f}",
            )
            figures[f"{label}: different"] = counts["different"] / sims
            figures[f"{label}: passing"] = counts["passing"] / sims
            figures[f"{label}: coverage"] = covered / sims
    console.print(table)
    console.print(
        f"guarantees: A/A 'different' <= alpha + MC error = {alpha + error:.3f}; "
        f"'passing' at 1.2 x tolerance <= {alpha + error:.3f}; 95% CI coverage about 0.95"
    )
    return figures
