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


def run_sequential_bench(
    *, sims: int, items: int, max_seeds: int, tolerance: float, alpha: float, spending: str, seed: int = 0
) -> dict[str, float]:
    """Error rates and model calls of sequential verdicts vs the fixed design (compare_paired + decide on
    ``max_seeds`` seeds), on the same simulated data with known truth."""
    from rich.progress import Progress

    from .stats.sequential import SequentialDesign, fixed_design_calls, sequential_step

    console = Console(width=max(110, Console().width))
    design = SequentialDesign(max_rounds=max_seeds, alpha=alpha, tolerance=tolerance, spending=spending)
    scenarios = {
        "A/A": (Scenario(n_items=items, seeds_a=max_seeds, seeds_b=max_seeds), False),
        "edge: shift = tol": (
            Scenario(n_items=items, seeds_a=max_seeds, seeds_b=max_seeds, rel_shift=-tolerance),
            False,
        ),
        "shift = 1.2 tol": (
            Scenario(n_items=items, seeds_a=max_seeds, seeds_b=max_seeds, rel_shift=-1.2 * tolerance),
            False,
        ),
        "clear: shift = 2 tol": (
            Scenario(n_items=items, seeds_a=max_seeds, seeds_b=max_seeds, rel_shift=-2 * tolerance),
            False,
        ),
        # fp32 greedy engines repeat themselves: one draw per item, copied to every seed.
        "A/A, deterministic": (Scenario(n_items=items), True),
    }
    fixed_calls = fixed_design_calls(items, max_seeds)
    table = Table(
        title=f"sequential ({spending}, <= {max_seeds} seeds) vs fixed {max_seeds} seeds: {sims} simulations "
        f"per scenario, {items} items, tol {tolerance}, alpha {alpha}; mean rounds and calls"
    )
    for column in ("scenario", "design", "different", "passing", "inconcl.", "rounds", "calls", "calls/concl."):
        table.add_column(column, justify="left" if column in ("scenario", "design") else "right")
    figures: dict[str, float] = {}
    rng = np.random.default_rng(seed)
    savings = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("simulating", total=sims * len(scenarios))
        for label, (scenario, deterministic) in scenarios.items():
            outcomes = {"sequential": [], "fixed": []}
            for _ in range(sims):
                a, b = scenario.draw(rng)
                if deterministic:
                    a, b = np.repeat(a, max_seeds, axis=1), np.repeat(b, max_seeds, axis=1)
                step = sequential_step(design, a, b)
                outcomes["sequential"].append((step.verdict, step.round, step.calls_spent))
                comparison = compare_paired(
                    a, b, tolerance=tolerance, alpha=alpha, n_resamples=200, n_permutations=2000, rng=rng
                )
                verdict = decide({"x": comparison}, alpha=alpha).verdict
                outcomes["fixed"].append((verdict, max_seeds, fixed_calls))
                progress.advance(task)
            mean_calls = {}
            for name, rows in outcomes.items():
                verdicts = [v if v not in ("equivalent", "within_tolerance") else "passing" for v, _, _ in rows]
                calls = np.array([c for _, _, c in rows], float)
                conclusive = np.array([v != "inconclusive" for v in verdicts])
                rates = {key: verdicts.count(key) / sims for key in ("different", "passing", "inconclusive")}
                mean_calls[name] = float(calls.mean())
                per_conclusive = float(calls.sum() / conclusive.sum()) if conclusive.any() else float("nan")
                table.add_row(
                    label if name == "sequential" else "",
                    "seq." if name == "sequential" else name,
                    f"{rates['different']:.3f}",
                    f"{rates['passing']:.3f}",
                    f"{rates['inconclusive']:.3f}",
                    f"{np.mean([r for _, r, _ in rows]):.2f}",
                    f"{mean_calls[name]:,.0f}",
                    f"{per_conclusive:,.0f}",
                )
                for key, value in rates.items():
                    figures[f"{label}: {name} {key}"] = value
                figures[f"{label}: {name} mean calls"] = mean_calls[name]
                figures[f"{label}: {name} calls per conclusive"] = per_conclusive
            if not deterministic:
                savings.append(1 - mean_calls["sequential"] / mean_calls["fixed"])
            table.add_section()
    console.print(table)
    error = 2 * math.sqrt(alpha * (1 - alpha) / sims)
    figures["mean calls saved"] = float(np.mean(savings))
    console.print(
        f"guarantees: A/A 'different' <= alpha + MC error = {alpha + error:.3f}; "
        f"'passing' at 1.2 x tolerance <= {alpha + error:.3f}. Calls saved by the sequential design, averaged "
        f"over the four stochastic scenarios: {figures['mean calls saved']:.1%} (target: at least 40%)"
    )
    return figures
