"""`statrepro bench calibration`: error rates and CI coverage per cell of accuracy x items x engine (issue 11), and
the greedy edge cells of issue 21. The simulations, the figures and their bounds are ``stats.calibration``'s; this
module runs the grid and renders it."""

from __future__ import annotations

import time

import numpy as np
from rich.console import Console
from rich.table import Table

from ..stats.calibration import (
    COVERAGE_FIGURES,
    RATE_FIGURES,
    calibration_bounds,
    calibration_task,
    cell_figures,
    greedy_edge_figures,
)
from ..stats.rules import DEFAULT_RULES
from ..stats.simulate import GREEDY, SHIFTS, calibration_grid
from .tables import mark

CALIBRATION_CHUNK = 50  # simulations per task: fixed, so the figures do not depend on the worker count


def calibration_figures(
    cells,
    *,
    sims: int,
    tolerance: float = DEFAULT_RULES.tolerance,
    alpha: float = DEFAULT_RULES.alpha,
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
            done[cell] = cell_figures(cell, {name: totals[(cell, name)] for name in SHIFTS}, sims, bounds)
            if on_cell:
                on_cell(done[cell])

    if workers <= 1:
        for task in tasks:
            collect(*calibration_task(task), task[3])
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # fork: workers need no re-import of the caller's main module. Callers keep no threads running (the
        # progress bar below refreshes by hand), so forking is safe.
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(calibration_task, task): task[3] for task in tasks}
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
            *(mark(row[name], name in failing) for name in RATE_FIGURES),
            f"{row['aa_passing']:.3f}",
            *(mark(row[name], name in failing) for name in COVERAGE_FIGURES),
        )
    return table


def _cell_line(row: dict, index: int, total: int, elapsed: float) -> str:
    failing = set(row["failing"])
    parts = [
        f"{label} {mark(row[name], name in failing, color=False)}"
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
    tolerance: float = DEFAULT_RULES.tolerance,
    alpha: float = DEFAULT_RULES.alpha,
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


def greedy_edge_tables(result: dict) -> tuple[Table, Table]:
    alpha = result["alpha"]
    size = Table(title=f"greedy, relative margin {result['tolerance']:g}: size of the TOST at exactly the margin, "
                 f"{result['sims']:,} sims (bound: alpha {alpha:g} + 2 MC SE)")
    for column in ("accuracy", "items", "churn", "size", "MC SE"):
        size.add_column(column, justify="right")
    for row in result["size"]:
        figure = row["size"]
        size.add_row(f"{row['accuracy']:g}", str(row["n_items"]), f"{row['churn']:.0%}",
                     mark(figure["rate"], figure["rate"] > alpha + 2 * figure["mc_se"]), f"{figure['mc_se']:.4f}")
    coverage = Table(title=f"greedy, every flip one way: {1 - alpha:.0%} coverage of diff_ci, {result['sims']:,} sims "
                     f"(bound: >= {1 - alpha - 0.01:.2f} - 2 MC SE)")
    for column in ("accuracy", "items", "loss (margins)", "coverage", "MC SE", "truth above"):
        coverage.add_column(column, justify="right")
    for row in result["one_way_coverage"]:
        figure = row["coverage"]
        coverage.add_row(f"{row['accuracy']:g}", str(row["n_items"]), f"{row['shift_in_margins']:g}",
                         mark(figure["rate"], figure["rate"] < 1 - alpha - 0.01 - 2 * figure["mc_se"]),
                         f"{figure['mc_se']:.4f}", f"{row['truth_above']['rate']:.4f}")
    return size, coverage
