"""`statrepro bench stats`: the speed of the statistics core (compare_many + decide), against scipy's reference
implementations of the same tests."""

from __future__ import annotations

import time

import numpy as np
from rich.console import Console
from rich.table import Table

from ..stats import compare_many, decide
from ..stats.rules import VerdictRules
from ..stats.simulate import Scenario


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
    rules = VerdictRules(n_resamples=resamples)
    comparisons = compare_many({f"bench{i}": pair for i, pair in enumerate(data)}, rules, rng_seed=1)
    decide(comparisons, rules)
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
