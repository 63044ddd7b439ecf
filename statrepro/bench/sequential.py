"""`statrepro bench sequential`: error rates and model calls of the sequential designs against the fixed one, over
seeds and (``--over items``) over items."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from rich.console import Console
from rich.table import Table

from ..stats import DIFFERENT, INCONCLUSIVE, PASSING, compare_paired, decide
from ..stats.calibration import mc_error
from ..stats.rules import VerdictRules
from ..stats.simulate import GREEDY, Scenario


def run_sequential_bench(
    *, sims: int, items: int, max_seeds: int, tolerance: float, alpha: float, spending: str, seed: int = 0
) -> dict[str, float]:
    """Error rates and model calls of sequential verdicts vs the fixed design (compare_paired + decide on
    ``max_seeds`` seeds), on the same simulated data with known truth. Calls count what runs: a deterministic
    side's seeds after its first two identical ones are skipped by both designs."""
    from rich.progress import Progress

    from ..stats.looks import SequentialDesign
    from ..stats.sequential import fixed_calls_as_run, fixed_design_calls, sequential_step

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
    from ..stats.item_sequential import ItemSequentialDesign, item_sequential_step
    from ..stats.looks import SequentialDesign
    from ..stats.sequential import fixed_calls_as_run, sequential_step
    from ..stats.simulate import GridCell

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
