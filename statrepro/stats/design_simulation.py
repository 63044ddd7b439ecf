"""Simulated comparisons of the sequential designs against the fixed one, on the same draws with known truth:
the outcomes that ``statrepro bench sequential`` tabulates (over seeds, and the item-sequential scenario mix of
issue 15)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from .calibration import mc_error
from .item_sequential import ItemSequentialDesign, item_sequential_step
from .looks import SequentialDesign
from .paired import compare_paired
from .rules import VerdictRules
from .sequential import fixed_calls_as_run, sequential_step
from .simulate import GREEDY, GridCell, Scenario
from .verdict import DIFFERENT, INCONCLUSIVE, PASSING, decide

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


def outcome_label(verdict: str | None) -> str:
    """A verdict as the benches count it: passing (either passing label), different or inconclusive."""
    return "passing" if verdict in PASSING else verdict or INCONCLUSIVE


def seed_round_scenarios(items: int, max_seeds: int, tolerance: float) -> dict[str, tuple[Scenario, bool | str]]:
    """The scenarios of the seed-round bench: label -> (scenario, deterministic sides; see ``seed_round_outcomes``)."""
    return {
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


def seed_round_outcomes(scenario: Scenario, deterministic: bool | str, design: SequentialDesign, *, sims: int,
                        rng: np.random.Generator, on_draw=None) -> dict[str, list[tuple[str | None, int, int]]]:
    """(verdict, rounds, calls) of the seed-round design and of the fixed design (its rules, ``design.max_rounds``
    seeds) on ``sims`` draws of ``scenario``. ``deterministic``: True, both sides repeat their one draw per item
    on every seed; "a", A only. ``on_draw()`` is called after each draw."""
    max_seeds, fixed_rules = design.max_rounds, design.rules
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
        if on_draw:
            on_draw()
    return outcomes


def item_scenario_outcomes(task: tuple) -> dict:
    """Simulate one scenario of the mix: verdicts and calls of the fixed, seeds-only and item-sequential designs."""
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
        outcomes["fixed"].append((outcome_label(decide({"x": comparison}, fixed_rules).verdict), fixed_calls_as_run(a, b, seeds)))
        if not greedy:
            step = sequential_step(seed_design, a, b)
            outcomes["seeds-only"].append((outcome_label(step.verdict), step.calls_spent))
        design = ItemSequentialDesign(
            n_items=items, block_size=block_size, order_seed=i, seeds=seeds, spending=spending,
            futility=options["futility"], rules=fixed_rules,
        )
        order = design.item_order()
        decision = item_sequential_step(design, a[order], b[order])
        outcomes["items"].append((outcome_label(decision.verdict), decision.calls_spent))
        if not greedy:  # blocks at one seed per item, then the other seeds in rounds over the budgeted items
            decision = item_sequential_step(replace(design, first_seeds=1), a[order], b[order])
            outcomes["items+seeds"].append((outcome_label(decision.verdict), decision.calls_spent))
    return {"variance": variance, "items": items, "shift": shift, "outcomes": outcomes}


def outcome_rate(rows: list[tuple[str, int]], outcome: str) -> float:
    """Share of (outcome, calls) rows with this outcome (NaN without rows)."""
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
