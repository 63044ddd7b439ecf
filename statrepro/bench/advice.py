"""`statrepro bench advice`: the realised power of the items and seeds advised after an inconclusive pilot
(issue 21)."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
from rich.console import Console
from rich.table import Table

from ..stats import INCONCLUSIVE
from ..stats.power import POWER as POWER_TARGET
from ..stats.rules import DEFAULT_RULES
from ..stats.simulate import GREEDY, GridCell
from .tables import mark


# Realised power of the advice an inconclusive verdict gives (issue 21): a pilot, then the advised size on fresh data.
ADVICE_ACCURACIES = (0.3, 0.6, 0.9)
ADVICE_ENGINES = (GREEDY, 3)
ADVICE_SHIFTS = (0.0, 0.5, 2.0)  # true loss in margins


def _advice_task(task: tuple) -> dict:
    """One (accuracy, engine, shift): pilots of ``pilot_items`` items; for each inconclusive one, the advised items
    (at the pilot's seeds) and the advised seeds (at the pilot's items) run on fresh data and are analysed again."""
    from ..stats.power import power_analysis
    from ..stats.summaries import variance_split
    from ..stats.tests import tost

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


def advice_figures(*, sims: int, pilot_items: int = 200, tolerance: float = DEFAULT_RULES.tolerance, alpha: float = DEFAULT_RULES.alpha, seed: int = 0,
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
        "none: inconclusive pilots given no size (withheld as unreliable, or none finite).",
    )
    for column in ("accuracy", "engine", "truth (margins)", INCONCLUSIVE, "items: power", "MC SE", "n", "none",
                   "median items", "seeds: power", "MC SE", "n", "none", "median seeds"):
        table.add_column(column, justify="right")

    def power(row, kind):
        rate, error = row[f"{kind}_power"], row[f"{kind}_power_mc_se"]
        if not math.isfinite(rate):
            return "-", "-"
        return mark(rate, abs(rate - POWER_TARGET) > 0.05 + 2 * error), f"{error:.3f}"

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


def run_advice_bench(*, sims: int, pilot_items: int = 200, tolerance: float = DEFAULT_RULES.tolerance, alpha: float = DEFAULT_RULES.alpha, seed: int = 0,
                     workers: int = 1, console: Console | None = None) -> dict:
    console = console or Console(width=max(150, Console().width))
    start = time.perf_counter()
    result = advice_figures(sims=sims, pilot_items=pilot_items, tolerance=tolerance, alpha=alpha, seed=seed, workers=workers)
    console.print(advice_table(result))
    console.print(f"{time.perf_counter() - start:.0f} s")
    return result
