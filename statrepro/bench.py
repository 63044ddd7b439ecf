"""`statrepro bench`: the speed of the statistics core, the calibration of the verdicts, the sequential designs
(over seeds and over items) and the control's excess-flip test, as printed figures. Only the calibration figures
are asserted in tests, on a reduced grid (tests/stats/test_calibration_grid.py)."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
from rich.console import Console
from rich.table import Table

from .stats import DIFFERENT, INCONCLUSIVE, PASSING, compare_many, compare_paired, decide
from .stats.power import POWER as POWER_TARGET
from .stats.rules import VerdictRules
from .stats.simulate import GREEDY, SHIFTS, GreedyScenario, GridCell, Scenario, calibration_grid, excess_flip_rejections


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


# ----------------------------------------------------------------------------------------------
# Calibration grid (issue 11): error rates and CI coverage per cell of accuracy x items x engine.

CALIBRATION_CHUNK = 50  # simulations per task: fixed, so the figures do not depend on the worker count
RATE_FIGURES = ("aa_different", "different_half", "size_at_margin", "pass_beyond")
COVERAGE_FIGURES = ("coverage_aa", "coverage_pooled")


def mc_error(rate: float, n: int) -> float:
    """Two Monte Carlo standard errors of a rate ``rate`` estimated from ``n`` simulations."""
    return 2 * math.sqrt(rate * (1 - rate) / n) if n > 0 else float("inf")


def _calibration_task(task: tuple) -> tuple[tuple, np.ndarray]:
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


def _cell_figures(cell, counts: dict[str, np.ndarray], sims: int, bounds: dict[str, float]) -> dict:
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


def calibration_figures(
    cells,
    *,
    sims: int,
    tolerance: float = 0.05,
    alpha: float = 0.05,
    margin_kind: str = "relative",
    n_resamples: int = 1000,
    workers: int = 1,
    seed: int = 0,
    concentration: float = 3.0,
    flip_rate: float = 0.03,
    standard_errors: float = 2.0,
    on_progress=None,
    on_cell=None,
) -> dict:
    """Simulate every cell of the grid at every shift in ``SHIFTS``; return figures, bounds and failures.

    ``on_progress(n_sims_done)`` is called after each chunk, ``on_cell(figures)`` when a cell is complete.
    Each (cell, shift, chunk) has its own RNG stream keyed by the cell, so a cell's figures do not depend on
    the rest of the grid or on ``workers``.
    """
    options = {
        "tolerance": tolerance,
        "alpha": alpha,
        "margin_kind": margin_kind,
        "n_resamples": n_resamples,
        "seed": seed,
        "concentration": concentration,
        "flip_rate": flip_rate,
    }
    tasks = []
    for cell in cells:
        for shift_name in SHIFTS:
            for chunk, start in enumerate(range(0, sims, CALIBRATION_CHUNK)):
                tasks.append((cell, shift_name, chunk, min(CALIBRATION_CHUNK, sims - start), options))
    remaining = {cell: sum(1 for t in tasks if t[0] == cell) for cell in cells}
    totals = {(cell, name): np.zeros(4, dtype=np.int64) for cell in cells for name in SHIFTS}
    bounds = calibration_bounds(sims=sims, alpha=alpha, standard_errors=standard_errors)
    done: dict = {}
    start_time = time.perf_counter()

    def collect(key, counts, n_sims):
        totals[key] += counts
        cell = key[0]
        remaining[cell] -= 1
        if on_progress:
            on_progress(n_sims)
        if remaining[cell] == 0:
            done[cell] = _cell_figures(cell, {name: totals[(cell, name)] for name in SHIFTS}, sims, bounds)
            if on_cell:
                on_cell(done[cell])

    if workers <= 1:
        for task in tasks:
            collect(*_calibration_task(task), task[3])
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # fork: workers need no re-import of the caller's main module. Callers keep no threads running (the
        # progress bar below refreshes by hand), so forking is safe.
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(_calibration_task, task): task[3] for task in tasks}
            for future in as_completed(futures):
                collect(*future.result(), futures[future])
    rows = [done[cell] for cell in cells]
    failing = [f"{row['cell']}: {name} = {row[name]:.3f}" for row in rows for name in row["failing"]]
    return {
        "config": {**options, "sims_per_scenario": sims, "shifts_in_margins": SHIFTS, "workers": workers,
                   "chunk": CALIBRATION_CHUNK, "greedy_seed_columns": 3},
        "bounds": bounds,
        "cells": rows,
        "failing": failing,
        "seconds": time.perf_counter() - start_time,
    }


def _mark(value: float, failing: bool, color: bool = True) -> str:
    text = f"{value:.3f}"
    return (f"[red]{text}![/]" if color else f"{text}!") if failing else text


def calibration_table(result: dict) -> Table:
    config, bounds = result["config"], result["bounds"]
    nominal = f"{bounds['coverage_nominal']:.0%}"
    margin = (
        f"relative {config['tolerance']:g} x score_A" if config["margin_kind"] == "relative"
        else f"absolute {config['tolerance']:g}"
    )
    table = Table(
        title=f"calibration grid: {config['sims_per_scenario']} sims per scenario, margin {margin}, "
        f"alpha {config['alpha']:g}, {config['n_resamples']} resamples",
        caption=(
            f"'!' fails its bound. Error rates (cols 2-5) <= alpha + MC = {bounds['rate_max']:.3f} "
            f"(MC = 2 SE = {bounds['rate_mc_error']:.3f}). {nominal} CI coverage of the true diff "
            f"(diff_ci): at A/A within {bounds['coverage_aa_low']:.3f}-{bounds['coverage_aa_high']:.3f} "
            f"(+/-1 pt +/- MC {bounds['coverage_aa_mc_error']:.3f}); pooled over the 4 shifts within "
            f"{bounds['coverage_pooled_low']:.3f}-{bounds['coverage_pooled_high']:.3f} "
            f"(MC {bounds['coverage_pooled_mc_error']:.3f}). A/A pass: power to pass, no bound."
        ),
    )
    columns = (
        "cell (accuracy | items | engine)",
        "A/A different",
        "different @0.5x",
        "pass @1.0x (size)",
        "pass @1.2x",
        "A/A pass",
        f"cover {nominal} A/A",
        f"cover {nominal} pooled",
    )
    for column in columns:
        table.add_column(column, justify="left" if column.startswith("cell") else "right")
    previous = None
    for row in result["cells"]:
        if previous is not None and (row["accuracy"], row["n_items"]) != previous:
            table.add_section()
        previous = (row["accuracy"], row["n_items"])
        failing = set(row["failing"])
        table.add_row(
            row["cell"],
            *(_mark(row[name], name in failing) for name in RATE_FIGURES),
            f"{row['aa_passing']:.3f}",
            *(_mark(row[name], name in failing) for name in COVERAGE_FIGURES),
        )
    return table


def _cell_line(row: dict, index: int, total: int, elapsed: float) -> str:
    failing = set(row["failing"])
    parts = [
        f"{label} {_mark(row[name], name in failing, color=False)}"
        for label, name in (
            ("A/A different", "aa_different"),
            ("different@0.5x", "different_half"),
            ("size@1.0x", "size_at_margin"),
            ("pass@1.2x", "pass_beyond"),
            ("coverage A/A", "coverage_aa"),
            ("pooled", "coverage_pooled"),
        )
    ]
    return f"[{index}/{total}] {row['cell']}: " + ", ".join(parts) + f" ({elapsed:.0f} s)"


def run_calibration_bench(
    *,
    sims: int,
    items=(200, 1000),
    accuracies=(0.3, 0.6, 0.9),
    engines=(GREEDY, 1, 3, 5),
    tolerance: float = 0.05,
    alpha: float = 0.05,
    margin_kind: str = "relative",
    n_resamples: int = 1000,
    workers: int = 1,
    seed: int = 0,
    concentration: float = 3.0,
    flip_rate: float = 0.03,
    edge_sims: int = 0,
    console: Console | None = None,
) -> dict:
    """Print the calibration grid of issue 11 (one table) and return (optionally dump) its figures; with
    ``edge_sims``, also the greedy edge cells of issue 21 (``greedy_edge_figures``).

    Progress: a rich bar on a terminal, otherwise one plain line per finished cell."""
    console = console or Console(width=max(150, Console().width))
    cells = calibration_grid(accuracies=accuracies, items=items, engines=engines)
    console.print(
        f"calibration grid: {len(cells)} cells x {len(SHIFTS)} shifts x {sims} sims = "
        f"{len(cells) * len(SHIFTS) * sims:,} comparisons on {workers} process(es)"
    )
    start = time.perf_counter()
    finished = []

    def line(row):
        finished.append(row)
        if not console.is_terminal:
            print(_cell_line(row, len(finished), len(cells), time.perf_counter() - start), flush=True)

    options = dict(
        sims=sims, tolerance=tolerance, alpha=alpha, margin_kind=margin_kind, n_resamples=n_resamples,
        workers=workers, seed=seed, concentration=concentration, flip_rate=flip_rate, on_cell=line,
    )
    if console.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        with Progress(
            TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console, transient=True, auto_refresh=False,  # no refresh thread: workers are forked
        ) as progress:
            task = progress.add_task("simulating", total=len(cells) * len(SHIFTS) * sims)

            def advance(n: int) -> None:
                progress.advance(task, n)
                progress.refresh()

            result = calibration_figures(cells, on_progress=advance, **options)
    else:
        result = calibration_figures(cells, **options)
    console.print(calibration_table(result))
    console.print(f"{len(result['failing'])} failing figure(s); {result['seconds']:.0f} s")
    for failure in result["failing"]:
        console.print(f"  fails: {failure}", markup=False, highlight=False)
    if edge_sims > 0:
        result["greedy_edges"] = greedy_edge_figures(sims=edge_sims, tolerance=tolerance, alpha=alpha, seed=seed)
        for table in greedy_edge_tables(result["greedy_edges"]):
            console.print(table)
    return result


# Greedy edge cells of issue 21: the TOST's size at exactly a relative margin for engines that churn and lose, and
# the coverage of the interval of 0/1 flips when every flip goes one way at a low score.
SIZE_CELLS = ((0.6, 500, 0.02), (0.6, 500, 0.04), (0.6, 1000, 0.02), (0.6, 1000, 0.04))  # accuracy, items, churn
ONE_WAY_CELLS = ((0.3, 200), (0.3, 1000))  # accuracy, items
ONE_WAY_SHIFTS = (0.5, 1.0, 1.2, 2.0)  # true loss in margins; every flip right -> wrong


def greedy_edge_figures(*, sims: int, tolerance: float = 0.05, alpha: float = 0.05, seed: int = 0) -> dict:
    """Size of the relative-margin TOST at exactly the margin (``SIZE_CELLS``) and 95% coverage of ``diff_ci``
    for one-way flips (``ONE_WAY_CELLS`` x ``ONE_WAY_SHIFTS``), each with its Monte Carlo standard error."""
    from .stats import bootstrap_ci
    from .stats.tests import tost

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


def greedy_edge_tables(result: dict) -> tuple[Table, Table]:
    alpha = result["alpha"]
    size = Table(title=f"greedy, relative margin {result['tolerance']:g}: size of the TOST at exactly the margin, "
                 f"{result['sims']:,} sims (bound: alpha {alpha:g} + 2 MC SE)")
    for column in ("accuracy", "items", "churn", "size", "MC SE"):
        size.add_column(column, justify="right")
    for row in result["size"]:
        figure = row["size"]
        size.add_row(f"{row['accuracy']:g}", str(row["n_items"]), f"{row['churn']:.0%}",
                     _mark(figure["rate"], figure["rate"] > alpha + 2 * figure["mc_se"]), f"{figure['mc_se']:.4f}")
    coverage = Table(title=f"greedy, every flip one way: {1 - alpha:.0%} coverage of diff_ci, {result['sims']:,} sims "
                     f"(bound: >= {1 - alpha - 0.01:.2f} - 2 MC SE)")
    for column in ("accuracy", "items", "loss (margins)", "coverage", "MC SE", "truth above"):
        coverage.add_column(column, justify="right")
    for row in result["one_way_coverage"]:
        figure = row["coverage"]
        coverage.add_row(f"{row['accuracy']:g}", str(row["n_items"]), f"{row['shift_in_margins']:g}",
                         _mark(figure["rate"], figure["rate"] < 1 - alpha - 0.01 - 2 * figure["mc_se"]),
                         f"{figure['mc_se']:.4f}", f"{row['truth_above']['rate']:.4f}")
    return size, coverage


# Realised power of the advice an inconclusive verdict gives (issue 21): a pilot, then the advised size on fresh data.
ADVICE_ACCURACIES = (0.3, 0.6, 0.9)
ADVICE_ENGINES = (GREEDY, 3)
ADVICE_SHIFTS = (0.0, 0.5, 2.0)  # true loss in margins


def _advice_task(task: tuple) -> dict:
    """One (accuracy, engine, shift): pilots of ``pilot_items`` items; for each inconclusive one, the advised items
    (at the pilot's seeds) and the advised seeds (at the pilot's items) run on fresh data and are analysed again."""
    from .stats.power import power_analysis
    from .stats.summaries import variance_split
    from .stats.tests import tost

    accuracy, seeds, shift, sims, pilot_items, tolerance, alpha, seed = task
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(21, 2, round(accuracy * 10), seeds, round(shift * 10))))
    cell = GridCell(accuracy, pilot_items, seeds)

    def draw(items: int, runs: int | None = None):
        scenario = replace(cell, n_items=items, seeds=runs or seeds).scenario(shift, tolerance=tolerance)
        a, b = scenario.draw(rng)
        return a, b

    def analyse(a, b):
        return tost(a.mean(axis=1), b.mean(axis=1), tolerance=tolerance, alpha=alpha)

    def conclusive(result) -> bool:
        return result.p_value < alpha or result.p_beyond < alpha

    counts = {"pilots": 0, INCONCLUSIVE: 0, "items_advised": 0, "items_conclusive": 0, "seeds_advised": 0,
              "seeds_conclusive": 0, "items_no_advice": 0, "seeds_no_advice": 0}
    advised_items, advised_seeds = [], []
    runs = 1 if seeds == GREEDY else seeds
    for _ in range(sims):
        a, b = draw(pilot_items)
        pilot = analyse(a, b)
        counts["pilots"] += 1
        if conclusive(pilot):
            continue
        counts[INCONCLUSIVE] += 1
        power = power_analysis(
            a.mean(axis=1), b.mean(axis=1), variance_split(a, b), tolerance=tolerance, margin=pilot.margin,
            margin_kind="relative", mode="equivalence", alpha=alpha, seeds_per_side=runs, conclusive=False,
            score_range=1.0,
        )
        if power.items_needed is None:
            counts["items_no_advice"] += 1
        else:
            counts["items_advised"] += 1
            advised_items.append(power.items_needed)
            counts["items_conclusive"] += conclusive(analyse(*draw(power.items_needed)))
        if seeds != GREEDY:
            if power.seeds_needed is None:
                counts["seeds_no_advice"] += 1
            else:
                counts["seeds_advised"] += 1
                advised_seeds.append(power.seeds_needed)
                counts["seeds_conclusive"] += conclusive(analyse(*draw(pilot_items, power.seeds_needed)))
    row = {"accuracy": accuracy, "engine": cell.engine, "seeds": seeds, "shift_in_margins": shift, **counts,
           "median_items": float(np.median(advised_items)) if advised_items else None,
           "median_seeds": float(np.median(advised_seeds)) if advised_seeds else None}
    for kind in ("items", "seeds"):
        advised = row[f"{kind}_advised"]
        rate = row[f"{kind}_conclusive"] / advised if advised else float("nan")
        row[f"{kind}_power"] = rate
        row[f"{kind}_power_mc_se"] = math.sqrt(rate * (1 - rate) / advised) if advised else float("nan")
    return row


def advice_figures(*, sims: int, pilot_items: int = 200, tolerance: float = 0.05, alpha: float = 0.05, seed: int = 0,
                   workers: int = 1) -> dict:
    """Realised power of "items needed" and "seeds needed" over ``ADVICE_ACCURACIES`` x ``ADVICE_ENGINES`` x
    ``ADVICE_SHIFTS`` (relative margin): the share of advised follow-ups that reach a conclusive verdict, with its MC SE."""
    tasks = [(acc, seeds, shift, sims, pilot_items, tolerance, alpha, seed)
             for acc in ADVICE_ACCURACIES for seeds in ADVICE_ENGINES for shift in ADVICE_SHIFTS]
    if workers <= 1:
        rows = [_advice_task(task) for task in tasks]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            rows = list(pool.map(_advice_task, tasks))
    return {"sims": sims, "pilot_items": pilot_items, "tolerance": tolerance, "alpha": alpha, "rows": rows}


def advice_table(result: dict) -> Table:
    table = Table(
        title=f"advice after an inconclusive pilot of {result['pilot_items']} items ({result['sims']} pilots per row, "
        f"relative margin {result['tolerance']:g}): realised power to conclude at the advised size",
        caption="'!' misses 80% +/- 5 points by more than 2 MC SE. n: follow-ups run (inconclusive pilots with advice); "
        "none: inconclusive pilots told no size suffices.",
    )
    for column in ("accuracy", "engine", "truth (margins)", INCONCLUSIVE, "items: power", "MC SE", "n", "none",
                   "median items", "seeds: power", "MC SE", "n", "none", "median seeds"):
        table.add_column(column, justify="right")

    def power(row, kind):
        rate, error = row[f"{kind}_power"], row[f"{kind}_power_mc_se"]
        if not math.isfinite(rate):
            return "-", "-"
        return _mark(rate, abs(rate - POWER_TARGET) > 0.05 + 2 * error), f"{error:.3f}"

    for row in result["rows"]:
        greedy = row["seeds"] == GREEDY
        table.add_row(
            f"{row['accuracy']:g}", row["engine"], f"{row['shift_in_margins']:g}", str(row[INCONCLUSIVE]),
            *power(row, "items"), str(row["items_advised"]), str(row["items_no_advice"]),
            "-" if row["median_items"] is None else f"{row['median_items']:.0f}",
            *(("-",) * 5 if greedy else (*power(row, "seeds"), str(row["seeds_advised"]), str(row["seeds_no_advice"]),
                                         "-" if row["median_seeds"] is None else f"{row['median_seeds']:.0f}")),
        )
    return table


def run_advice_bench(*, sims: int, pilot_items: int = 200, tolerance: float = 0.05, alpha: float = 0.05, seed: int = 0,
                     workers: int = 1, console: Console | None = None) -> dict:
    console = console or Console(width=max(150, Console().width))
    start = time.perf_counter()
    result = advice_figures(sims=sims, pilot_items=pilot_items, tolerance=tolerance, alpha=alpha, seed=seed, workers=workers)
    console.print(advice_table(result))
    console.print(f"{time.perf_counter() - start:.0f} s")
    return result


def run_sequential_bench(
    *, sims: int, items: int, max_seeds: int, tolerance: float, alpha: float, spending: str, seed: int = 0
) -> dict[str, float]:
    """Error rates and model calls of sequential verdicts vs the fixed design (compare_paired + decide on
    ``max_seeds`` seeds), on the same simulated data with known truth. Calls count what runs: a deterministic
    side's seeds after its first two identical ones are skipped by both designs."""
    from rich.progress import Progress

    from .stats.looks import SequentialDesign
    from .stats.sequential import fixed_calls_as_run, fixed_design_calls, sequential_step

    console = Console(width=max(110, Console().width))
    fixed_rules = VerdictRules(tolerance=tolerance, alpha=alpha, n_resamples=1000)
    design = SequentialDesign(max_rounds=max_seeds, spending=spending, rules=fixed_rules)
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
        "A/A, both deterministic": (Scenario(n_items=items), True),
        # A greedy reference against a sampling candidate: A's one draw per item copied, B's seeds drawn afresh.
        "A/A, A deterministic": (Scenario(n_items=items, seeds_b=max_seeds), "a"),
    }
    every_seed = fixed_design_calls(items, max_seeds)
    table = Table(
        title=f"sequential ({spending}, <= {max_seeds} seeds) vs fixed {max_seeds} seeds: {sims} simulations "
        f"per scenario, {items} items, tol {tolerance}, alpha {alpha}; mean rounds and calls"
    )
    for column in ("scenario", "design", DIFFERENT, "passing", "inconcl.", "rounds", "calls", "calls/concl.",
                   "saved vs fixed as run", "saved vs every seed"):
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
                    a = np.repeat(a, max_seeds, axis=1)
                if deterministic is True:
                    b = np.repeat(b, max_seeds, axis=1)
                step = sequential_step(design, a, b)
                outcomes["sequential"].append((step.verdict, step.round, step.calls_spent))
                comparison = compare_paired(a, b, fixed_rules, rng=rng)
                verdict = decide({"x": comparison}, fixed_rules).verdict
                outcomes["fixed"].append((verdict, max_seeds, fixed_calls_as_run(a, b, max_seeds)))
                progress.advance(task)
            mean_calls = {name: float(np.mean([c for _, _, c in rows])) for name, rows in outcomes.items()}
            for name, rows in outcomes.items():
                verdicts = [_bench_outcome(v) for v, _, _ in rows]
                calls = np.array([c for _, _, c in rows], float)
                conclusive = np.array([v != INCONCLUSIVE for v in verdicts])
                rates = {key: verdicts.count(key) / sims for key in (DIFFERENT, "passing", INCONCLUSIVE)}
                per_conclusive = float(calls.sum() / conclusive.sum()) if conclusive.any() else float("nan")
                as_run = 1 - mean_calls[name] / mean_calls["fixed"] if name == "sequential" else 0.0
                nominal = 1 - mean_calls[name] / every_seed
                table.add_row(
                    label if name == "sequential" else "",
                    "seq." if name == "sequential" else name,
                    f"{rates[DIFFERENT]:.3f}",
                    f"{rates['passing']:.3f}",
                    f"{rates[INCONCLUSIVE]:.3f}",
                    f"{np.mean([r for _, r, _ in rows]):.2f}",
                    f"{mean_calls[name]:,.0f}",
                    f"{per_conclusive:,.0f}",
                    f"{as_run:.1%}",
                    f"{nominal:.1%}",
                )
                for key, value in rates.items():
                    figures[f"{label}: {name} {key}"] = value
                figures[f"{label}: {name} mean calls"] = mean_calls[name]
                figures[f"{label}: {name} calls per conclusive"] = per_conclusive
                figures[f"{label}: {name} calls saved vs fixed as run"] = as_run
                figures[f"{label}: {name} calls saved vs every seed"] = nominal
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


# Item-sequential bench: the scenario mix of issue 15 (item 3).
ITEM_BENCH_VARIANCES: dict[str, float | None] = {
    # Beta concentration of the items' probabilities (None: a greedy engine). Low concentration puts the
    # probabilities near 0 or 1, so item differences dominate; high concentration leaves seed noise.
    "item-dominated": 0.3,
    "seed-dominated": 30.0,
    "greedy": None,
}
ITEM_BENCH_SHIFTS = (0.0, 0.5, 1.0, 1.2, 2.0)  # multiples of the margin, always a loss for B
ITEM_BENCH_ITEMS = (200, 1000, 5000)
# Side by side on the same data: the fixed design on the full item set, today's seed rounds, item blocks with every
# seed, and item blocks at one seed followed by seed rounds (stochastic engines only).
ITEM_BENCH_DESIGNS = ("fixed", "seeds-only", "items", "items+seeds")
SAMPLING_ITEMS = "items, sampling engines only"


def _bench_outcome(verdict: str | None) -> str:
    return "passing" if verdict in PASSING else verdict or INCONCLUSIVE


def _item_bench_scenario(task: tuple) -> dict:
    """Simulate one scenario of the mix: verdicts and calls of the fixed, seeds-only and item-sequential designs."""
    from .stats.item_sequential import ItemSequentialDesign, item_sequential_step
    from .stats.looks import SequentialDesign
    from .stats.sequential import fixed_calls_as_run, sequential_step
    from .stats.simulate import GridCell

    variance, items, shift, options = task
    concentration = ITEM_BENCH_VARIANCES[variance]
    greedy = concentration is None
    seeds = 1 if greedy else options["seeds"]
    cell = GridCell(options["accuracy"], items, GREEDY if greedy else seeds)
    scenario = cell.scenario(
        shift, tolerance=options["tolerance"], concentration=concentration or 3.0, greedy_seeds=1
    )
    key = (list(ITEM_BENCH_VARIANCES).index(variance), items, round(shift * 10))
    rng = np.random.default_rng(np.random.SeedSequence(options["seed"], spawn_key=key))
    alpha, tolerance, spending = options["alpha"], options["tolerance"], options["spending"]
    fixed_rules = VerdictRules(tolerance=tolerance, alpha=alpha, n_resamples=1000)
    seed_design = SequentialDesign(max_rounds=seeds, spending=spending, rules=fixed_rules)
    block_size = math.ceil(items / options["blocks"])
    a_all, b_all = scenario.draw_many(rng, options["sims"])
    outcomes: dict[str, list[tuple[str, int]]] = {"fixed": [], "seeds-only": [], "items": [], "items+seeds": []}
    for i in range(options["sims"]):
        a, b = a_all[i], b_all[i]
        comparison = compare_paired(a, b, fixed_rules, rng=rng)
        outcomes["fixed"].append((_bench_outcome(decide({"x": comparison}, fixed_rules).verdict), fixed_calls_as_run(a, b, seeds)))
        if not greedy:
            step = sequential_step(seed_design, a, b)
            outcomes["seeds-only"].append((_bench_outcome(step.verdict), step.calls_spent))
        design = ItemSequentialDesign(
            n_items=items, block_size=block_size, order_seed=i, seeds=seeds, spending=spending,
            futility=options["futility"], rules=fixed_rules,
        )
        order = design.item_order()
        decision = item_sequential_step(design, a[order], b[order])
        outcomes["items"].append((_bench_outcome(decision.verdict), decision.calls_spent))
        if not greedy:  # blocks at one seed per item, then the other seeds in rounds over the budgeted items
            decision = item_sequential_step(replace(design, first_seeds=1), a[order], b[order])
            outcomes["items+seeds"].append((_bench_outcome(decision.verdict), decision.calls_spent))
    return {"variance": variance, "items": items, "shift": shift, "outcomes": outcomes}


def _rate(rows: list[tuple[str, int]], outcome: str) -> float:
    return sum(v == outcome for v, _ in rows) / len(rows) if rows else float("nan")


def item_sequential_figures(results: list[dict]) -> dict:
    """Per design, pooled over the mix: false `different` (shift <= 1 x tolerance), false pass (1.0 and 1.2),
    power (pass at 0 and 0.5, different at 2) with their simulation counts, and mean calls saved against the
    fixed design averaged over the scenarios."""
    figures: dict = {}
    # "items+seeds" runs on sampling engines only: the item design over the same scenarios sits beside it.
    for label in (*ITEM_BENCH_DESIGNS, SAMPLING_ITEMS):
        name = "items" if label == SAMPLING_ITEMS else label
        pooled = {"false different": [], "false pass at 1.0": [], "false pass at 1.2": [], "power": []}
        savings = []
        for result in results:
            rows, shift = result["outcomes"][name], result["shift"]
            if not rows or (label == SAMPLING_ITEMS and not result["outcomes"]["items+seeds"]):
                continue
            verdicts = [v for v, _ in rows]
            if shift <= 1.0:
                pooled["false different"] += [v == DIFFERENT for v in verdicts]
            if shift in (1.0, 1.2):
                pooled[f"false pass at {shift:.1f}"] += [v == "passing" for v in verdicts]
            if shift < 1.0:
                pooled["power"] += [v == "passing" for v in verdicts]
            if shift > 1.2:
                pooled["power"] += [v == DIFFERENT for v in verdicts]
            fixed_calls = np.mean([c for _, c in result["outcomes"]["fixed"]])
            savings.append(1 - np.mean([c for _, c in rows]) / fixed_calls)
        for outcome, hits in pooled.items():
            rate = float(np.mean(hits)) if hits else float("nan")
            figures[f"{label}: {outcome}"] = rate
            figures[f"{label}: {outcome} sims"] = len(hits)
            figures[f"{label}: {outcome} mc error"] = mc_error(rate, len(hits))
        figures[f"{label}: mean calls saved"] = float(np.mean(savings)) if savings else float("nan")
        figures[f"{label}: scenarios"] = len(savings)
    return figures


def run_item_sequential_bench(
    *,
    sims: int,
    items: tuple[int, ...] = ITEM_BENCH_ITEMS,
    seeds: int = 3,
    blocks: int = 10,
    futility: float = 0.1,
    accuracy: float = 0.6,
    tolerance: float = 0.05,
    alpha: float = 0.05,
    spending: str = "obrien-fleming",
    seed: int = 0,
) -> dict:
    """The scenario mix of item-sequential verdicts (variance kind x items x shift) against the fixed design on
    the full item set and today's seeds-only design, on the same simulated data with known truth."""
    from rich.progress import Progress

    console = Console(width=max(170, Console().width))
    options = dict(
        sims=sims, seeds=seeds, blocks=blocks, futility=futility, accuracy=accuracy, tolerance=tolerance, alpha=alpha,
        spending=spending, seed=seed,
    )
    tasks = [(v, n, s, options) for v in ITEM_BENCH_VARIANCES for n in items for s in ITEM_BENCH_SHIFTS]
    results = []
    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task("simulating", total=len(tasks))
        for task in tasks:
            results.append(_item_bench_scenario(task))
            progress.advance(bar)
    table = Table(
        title=f"item-sequential ({blocks} blocks, {spending}, futility {futility}) vs fixed full design vs seeds-only (<= {seeds} seeds): "
        f"{sims} simulations per scenario, accuracy {accuracy}, relative tolerance {tolerance}, alpha {alpha}; "
        "greedy engines run 1 seed"
    )
    for column in ("variance", "items", "shift", "fixed diff/pass", "seeds-only diff/pass", "seeds-only saved",
                   "items diff/pass", "items saved", "items+seeds diff/pass", "items+seeds saved"):
        table.add_column(column, justify="left" if column == "variance" else "right")
    for result in results:
        out = result["outcomes"]
        fixed_calls = np.mean([c for _, c in out["fixed"]])

        def cell(name: str) -> tuple[str, str]:
            rows = out[name]
            if not rows:
                return "n/a", "n/a"
            saved = 1 - np.mean([c for _, c in rows]) / fixed_calls
            return f"{_rate(rows, DIFFERENT):.2f}/{_rate(rows, 'passing'):.2f}", f"{saved:.0%}"

        table.add_row(
            result["variance"], f"{result['items']:,}", f"{result['shift']:g}",
            cell("fixed")[0], *cell("seeds-only"), *cell("items"), *cell("items+seeds"),
        )
    console.print(table)
    figures = item_sequential_figures(results)
    summary = Table(title="pooled over the mix (error rates with 2 MC standard errors; savings vs the fixed design)")
    for column in ("design", "false different", "false pass 1.0x", "false pass 1.2x", "power", "calls saved"):
        summary.add_column(column, justify="left" if column == "design" else "right")
    for name in (*ITEM_BENCH_DESIGNS, SAMPLING_ITEMS):
        def rate(label: str, name=name) -> str:
            return f"{figures[f'{name}: {label}']:.3f} ± {figures[f'{name}: {label} mc error']:.3f} (n={figures[f'{name}: {label} sims']})"

        summary.add_row(
            name, rate("false different"), rate("false pass at 1.0"), rate("false pass at 1.2"),
            f"{figures[f'{name}: power']:.3f}",
            f"{figures[f'{name}: mean calls saved']:.1%} over {figures[f'{name}: scenarios']} scenarios",
        )
    console.print(summary)
    console.print(
        f"target: item-sequential saves >= 50% of the fixed design's calls averaged over the mix "
        f"(measured {figures['items: mean calls saved']:.1%}), every error rate <= alpha {alpha} + MC error"
    )
    figures["scenarios"] = [
        {
            "variance": r["variance"], "items": r["items"], "shift": r["shift"],
            **{f"{name} {outcome}": _rate(rows, outcome) for name, rows in r["outcomes"].items()
               for outcome in (DIFFERENT, "passing")},
            **{f"{name} mean calls": float(np.mean([c for _, c in rows])) if rows else float("nan")
               for name, rows in r["outcomes"].items()},
        }
        for r in results
    ]


def run_control_bench(
    *, sims: int, alpha: float, excess_flips: float, accuracies: tuple[float, ...] = (0.3, 0.6, 0.9),
    items: tuple[int, ...] = (200, 1000), seeds: tuple[int, ...] = (1, 3), seed: int = 0,
) -> dict[str, dict[str, float]]:
    """False alarm (A/A/A) and power (B flips ``excess_flips`` more items than the control) of the excess-flip
    test, per accuracy, item count and seed count, with Monte Carlo standard errors; prints one table."""
    console = Console(width=max(110, Console().width))
    table = Table(title=f"excess-flip test (alpha {alpha}): {sims} simulations per cell; power against +{excess_flips:.0%} flips")
    for column in ("accuracy", "items", "seeds", "false alarm", "± MC SE", "power", "± MC SE"):
        table.add_column(column, justify="right")
    rng = np.random.default_rng(seed)
    figures: dict[str, dict[str, float]] = {}
    for accuracy in accuracies:
        for n_items in items:
            for n_seeds in seeds:
                scenario = Scenario.from_accuracy(n_items, accuracy, seeds=n_seeds)
                false_alarm = excess_flip_rejections(scenario, rng, sims=sims, alpha=alpha)
                power = excess_flip_rejections(scenario, rng, sims=sims, alpha=alpha, excess_flips=excess_flips)
                errors = [float(np.sqrt(rate * (1 - rate) / sims)) for rate in (false_alarm, power)]
                figures[f"acc={accuracy} items={n_items} seeds={n_seeds}"] = {
                    "false_alarm": false_alarm, "false_alarm_se": errors[0], "power": power, "power_se": errors[1]
                }
                table.add_row(f"{accuracy:g}", str(n_items), str(n_seeds), f"{false_alarm:.3f}", f"{errors[0]:.3f}",
                              f"{power:.3f}", f"{errors[1]:.3f}")
    console.print(table)
    return figures
