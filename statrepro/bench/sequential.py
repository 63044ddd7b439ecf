"""`statrepro bench sequential`: error rates and model calls of the sequential designs against the fixed one, over
seeds and (``--over items``) over items."""

from __future__ import annotations

import math

import numpy as np
from rich.console import Console
from rich.table import Table

from ..stats import DIFFERENT, INCONCLUSIVE
from ..stats.design_simulation import (
    ITEM_BENCH_DESIGNS,
    ITEM_BENCH_ITEMS,
    ITEM_BENCH_SHIFTS,
    ITEM_BENCH_VARIANCES,
    SAMPLING_ITEMS,
    item_scenario_outcomes,
    item_sequential_figures,
    outcome_label,
    outcome_rate,
    seed_round_outcomes,
    seed_round_scenarios,
)
from ..stats.rules import DEFAULT_RULES, VerdictRules


def run_sequential_bench(
    *, sims: int, items: int, max_seeds: int, tolerance: float, alpha: float, spending: str, seed: int = 0
) -> dict[str, float]:
    """Error rates and model calls of sequential verdicts vs the fixed design (compare_paired + decide on
    ``max_seeds`` seeds), on the same simulated data with known truth. Calls count what runs: a deterministic
    side's seeds after its first two identical ones are skipped by both designs."""
    from rich.progress import Progress

    from ..stats.looks import SequentialDesign
    from ..stats.sequential import fixed_design_calls

    console = Console(width=max(110, Console().width))
    fixed_rules = VerdictRules(tolerance=tolerance, alpha=alpha, n_resamples=1000)
    design = SequentialDesign(max_rounds=max_seeds, spending=spending, rules=fixed_rules)
    scenarios = seed_round_scenarios(items, max_seeds, tolerance)
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
            outcomes = seed_round_outcomes(
                scenario, deterministic, design, sims=sims, rng=rng, on_draw=lambda: progress.advance(task)
            )
            mean_calls = {name: float(np.mean([c for _, _, c in rows])) for name, rows in outcomes.items()}
            for name, rows in outcomes.items():
                verdicts = [outcome_label(v) for v, _, _ in rows]
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


def run_item_sequential_bench(
    *,
    sims: int,
    items: tuple[int, ...] = ITEM_BENCH_ITEMS,
    seeds: int = 3,
    blocks: int = 10,
    futility: float = 0.1,
    accuracy: float = 0.6,
    tolerance: float = DEFAULT_RULES.tolerance,
    alpha: float = DEFAULT_RULES.alpha,
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
            results.append(item_scenario_outcomes(task))
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
            return f"{outcome_rate(rows, DIFFERENT):.2f}/{outcome_rate(rows, 'passing'):.2f}", f"{saved:.0%}"

        table.add_row(
            result["variance"], f"{result['items']:,}", f"{result['shift']:g}",
            cell("fixed")[0], *cell("seeds-only"), *cell("items"), *cell("items+seeds"),
        )
    console.print(table)
    figures = item_sequential_figures(results)
    summary = _pooled_table(figures)
    console.print(summary)
    console.print(
        f"target: item-sequential saves >= 50% of the fixed design's calls averaged over the mix "
        f"(measured {figures['items: mean calls saved']:.1%}), every error rate <= alpha {alpha} + MC error"
    )
    figures["scenarios"] = [
        {
            "variance": r["variance"], "items": r["items"], "shift": r["shift"],
            **{f"{name} {outcome}": outcome_rate(rows, outcome) for name, rows in r["outcomes"].items()
               for outcome in (DIFFERENT, "passing")},
            **{f"{name} mean calls": float(np.mean([c for _, c in rows])) if rows else float("nan")
               for name, rows in r["outcomes"].items()},
        }
        for r in results
    ]


def _pooled_table(figures: dict) -> Table:
    """The item-sequential figures pooled over the mix, one row per design."""
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
    return summary
