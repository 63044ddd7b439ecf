"""Item-sequential verdicts: run the benchmark's items in a seeded random order, in blocks, and stop as soon
as the verdict is known.

A group-sequential design over items: ``K = ceil(max_items / block_size)`` looks, look ``k`` analysing the
first ``n_k`` items of the pre-registered order (every item with all ``seeds`` seeds per side), with
Lan-DeMets alpha spending at information fractions ``n_k / max_items`` on each one-sided test, exactly as the
seed-round design of ``stats.sequential`` (which this module reuses: ``look``, the boundaries and the stop
rules). Why the error rates hold: the order is a uniform random permutation drawn before any result is seen,
so the first ``n_k`` items are a simple random sample of the benchmark, and the benchmark is (as in the fixed
design) a sample of the item population. The looks are then paired t statistics of i.i.d. item differences
with nested samples: the canonical joint distribution with information proportional to ``n_k``, the very
case the boundaries are computed for (no Slepian bound needed, unlike seed rounds). See
``docs/methodology.md``, "Item-sequential verdicts".

Pure: arrays in, frozen result objects out, no I/O. Rows of the score matrices are the items run so far, in
the design's order; the decision at look ``k`` is recomputed from the first ``n_k`` rows, so
``item_sequential_step`` is stateless and replayable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .results import ResultMixin
from .looks import LookResult, SequentialRules, StopReason, look, stop_reason_of
from .sequential import (
    OverallDecision,
    calls_json,
    calls_summary,
    fixed_calls_as_run,
    fixed_design_calls,
    seed_matrices,
    side_seeds,
)
from .verdict import PASSING, combine


@dataclass(frozen=True)
class ItemSequentialDesign(SequentialRules):
    """The pre-registered design: which items run in which order, in which blocks, up to which budget."""

    n_items: int  # items in the benchmark
    block_size: int  # items per block (the last block may be smaller)
    order_seed: int  # seeds the random order of the items
    max_items: int | None = None  # the budget: items run at most (None: all of them)
    seeds: int = 1  # the seed budget per item and side
    # Seeds per item while the blocks run; once every block has run, one more seed per round over the budgeted
    # items up to ``seeds`` (None: every seed within the item's block, no seed rounds).
    first_seeds: int | None = None

    def __post_init__(self) -> None:
        if self.n_items < 2:
            raise ValueError(f"n_items must be at least 2, got {self.n_items}")
        if not 2 <= self.budget_items <= self.n_items:
            raise ValueError(f"max_items must be in 2..{self.n_items}, got {self.max_items}")
        if not 1 <= self.block_size <= self.budget_items:
            raise ValueError(f"block_size must be in 1..{self.budget_items}, got {self.block_size}")
        if self.seeds < 1:
            raise ValueError(f"seeds must be at least 1, got {self.seeds}")
        if self.first_seeds is not None and not 1 <= self.first_seeds <= self.seeds:
            raise ValueError(f"first_seeds must be in 1..{self.seeds}, got {self.first_seeds}")
        super().__post_init__()

    @property
    def budget_items(self) -> int:
        return self.n_items if self.max_items is None else self.max_items

    @property
    def block_seeds(self) -> int:
        """Seeds per item and side while the blocks run."""
        return self.seeds if self.first_seeds is None else self.first_seeds

    @property
    def blocks(self) -> int:
        return math.ceil(self.budget_items / self.block_size)

    @property
    def schedule(self) -> tuple[tuple[int, int], ...]:
        """(items, seeds) analysed at each look: one more block each time at ``block_seeds`` seeds, then one
        more seed per round over the budgeted items."""
        blocks = [(min(k * self.block_size, self.budget_items), self.block_seeds) for k in range(1, self.blocks + 1)]
        rounds = [(self.budget_items, seeds) for seeds in range(self.block_seeds + 1, self.seeds + 1)]
        return tuple(blocks + rounds)

    @property
    def looks(self) -> int:
        return len(self.schedule)

    @property
    def look_items(self) -> tuple[int, ...]:
        """Items analysed at each look."""
        return tuple(items for items, _ in self.schedule)

    @property
    def fractions(self) -> tuple[float, ...]:
        """Each look's share of the budget's model calls: its information fraction for the boundaries. Items
        and seeds are nested (a later look averages over a superset of each item's runs), so the looks have
        the canonical covariance at their true information; the calls share is never above it (an added seed
        adds at most its share of the information), so the boundaries are conservative (docs/methodology.md §13)."""
        return tuple(items * seeds / (self.budget_items * self.seeds) for items, seeds in self.schedule)

    def item_order(self) -> np.ndarray:
        """Row indices of the benchmark's items in run order (a uniform permutation fixed by ``order_seed``),
        cut to the budget."""
        return np.random.default_rng(self.order_seed).permutation(self.n_items)[: self.budget_items]

    def block(self, look_index: int) -> np.ndarray:
        """Row indices of the benchmark's items that look ``look_index`` (one of the blocks) adds."""
        if not 1 <= look_index <= self.blocks:
            raise ValueError(f"look must be in 1..{self.blocks}, got {look_index}")
        start = self.look_items[look_index - 2] if look_index > 1 else 0
        return self.item_order()[start : self.look_items[look_index - 1]]


@dataclass(frozen=True)
class ItemSequentialDecision(ResultMixin):
    """Where one benchmark's item-sequential comparison stands after the blocks run so far."""

    verdict: str | None  # None: run another block
    look: int  # the look the verdict was reached at, else the latest look
    looks: int  # planned
    items_run: int  # items analysed at ``look``
    seeds_run: int  # seeds per item and side analysed at ``look``
    stop_reason: StopReason | None
    reason: str
    alpha: float
    calls_spent: int  # model calls for the items and seeds up to ``look``, both sides (skipped seeds not counted)
    fixed_design_calls: int  # the fixed design: every budgeted item, every seed, both sides
    fixed_design_calls_as_run: int  # the same with a deterministic side's repeated seeds skipped, as it runs
    history: tuple[LookResult, ...]

    @property
    def finished(self) -> bool:
        return self.verdict is not None

    def summary(self) -> str:
        return (
            f"look {self.look}/{self.looks} ({self.items_run} items x {self.seeds_run} seeds): {self.verdict or 'continue'} - {self.reason}; "
            f"{calls_summary(self)}"
        )


def item_sequential_step(
    design: ItemSequentialDesign,
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    *,
    benchmarks: int = 1,
    seeds_run: int | None = None,
    score_bounds: tuple[float, float] | None = (0.0, 1.0),
) -> ItemSequentialDecision:
    """Decide on the items and seeds run so far: ``scores_*`` are (items_run, seeds) matrices whose rows follow
    ``design.item_order()`` (NaN = failed run). Every completed look is re-evaluated from its first rows and
    seed columns by ``stats.looks.look`` (the one rule set at that look's spending boundaries); the first
    look with a verdict wins. ``benchmarks`` splits the "different" test's alpha over that many benchmarks
    (Bonferroni). A side whose first two seeds are identical counts as holding the other side's seeds, copies of
    its first (``stats.sequential.with_skipped_seeds``: the run skips a deterministic side's later seeds).
    ``seeds_run`` is the seed round reached (default: the columns both sides hold)."""
    scores_a, scores_b = seed_matrices(scores_a, scores_b)
    if seeds_run is None:
        seeds_run = min(scores_a.shape[1], scores_b.shape[1])
    completed = sum(1 for items, seeds in design.schedule if items <= scores_a.shape[0] and seeds <= seeds_run)
    if completed < 1:
        raise ValueError(f"the first block needs {design.look_items[0]} items, got {scores_a.shape[0]}")
    history: list[LookResult] = []
    stop_reason = None
    for k in range(1, completed + 1):
        rows, seeds = design.schedule[k - 1]
        result = look(
            design, scores_a[:rows, :seeds], scores_b[:rows, :seeds], k, design.fractions, benchmarks, seed_rounds=False,
            score_bounds=design.rules.score_bounds(score_bounds),
        )
        history.append(result)
        stop_reason = stop_reason_of(result, design.futility, design.looks)
        if stop_reason is not None:
            break
    last = history[-1]
    items_run, seeds = design.schedule[last.round - 1]
    return ItemSequentialDecision(
        verdict=last.verdict if stop_reason == "conclusive" else ("inconclusive" if stop_reason else None),
        look=last.round,
        looks=design.looks,
        items_run=items_run,
        seeds_run=seeds,
        stop_reason=stop_reason,
        reason=_reason(last, stop_reason, items_run, seeds),
        alpha=design.alpha,
        calls_spent=_calls_spent(design, scores_a, scores_b, items_run, seeds),
        fixed_design_calls=fixed_design_calls(design.budget_items, design.seeds),
        fixed_design_calls_as_run=fixed_calls_as_run(scores_a, scores_b, design.seeds, design.budget_items),
        history=tuple(history),
    )


def _calls_spent(design: ItemSequentialDesign, scores_a: np.ndarray, scores_b: np.ndarray, items_run: int, seeds: int) -> int:
    """Calls of the first ``items_run`` items at ``seeds`` seeds, both sides. Each block runs as jobs of its own,
    so a side skips its later seeds block by block where that block's first two seeds were identical."""
    starts = (0, *design.look_items[: design.blocks])
    calls = 0
    for start, stop in zip(starts, starts[1:]):
        stop = min(stop, items_run)
        if stop > start:
            calls += (stop - start) * sum(side_seeds(side[start:stop], seeds) for side in (scores_a, scores_b))
    return calls


@dataclass(frozen=True)
class ItemSequentialOverall(OverallDecision):
    """Several benchmarks, each with its own item design: pass when all pass, different when any is different,
    else keep going while any benchmark still runs blocks."""

    verdict: str | None
    designs: dict[str, ItemSequentialDesign]
    benchmarks: dict[str, ItemSequentialDecision]
    calls_spent: int
    fixed_design_calls: int
    fixed_design_calls_as_run: int

    def headline(self) -> str:
        return f"item-sequential: {self.verdict or 'continue'}; {calls_summary(self)}"

    def to_json(self) -> dict:
        """The ``sequential`` field of the verdict JSON for an item design (see docs/methodology.md)."""
        return {
            "over": "items",
            "verdict": self.verdict,
            **calls_json(self),
            "benchmarks": {
                name: {
                    "design": self.designs[name].to_dict(),
                    "verdict": d.verdict,
                    "stop_reason": d.stop_reason,
                    "looks_run": d.look,
                    "items_run": d.items_run,
                    "seeds_run": d.seeds_run,
                    **calls_json(d),
                    "looks": [look.to_dict() for look in d.history],
                }
                for name, d in self.benchmarks.items()
            },
        }


def item_sequential_step_many(
    designs: dict[str, ItemSequentialDesign],
    score_pairs: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    seeds_run: dict[str, int] | None = None,
    score_bounds: dict[str, tuple[float, float] | None] | None = None,
) -> ItemSequentialOverall:
    """``item_sequential_step`` for every benchmark (the "different" test's alpha split over them; ``seeds_run``
    per benchmark; ``score_bounds``, each benchmark's declared metric range, default [0, 1]), combined by
    ``stats.verdict.combine`` as the seed-round design combines its benchmarks."""
    if not score_pairs or set(score_pairs) != set(designs):
        raise ValueError(f"need one design per benchmark: designs {sorted(designs)}, scores {sorted(score_pairs)}")
    decisions = {
        name: item_sequential_step(
            designs[name], *score_pairs[name], benchmarks=len(score_pairs), seeds_run=(seeds_run or {}).get(name),
            score_bounds=(score_bounds or {}).get(name, (0.0, 1.0)),
        )
        for name in sorted(score_pairs)
    }
    return ItemSequentialOverall(
        verdict=combine([d.verdict for d in decisions.values()]),
        designs={name: designs[name] for name in decisions},
        benchmarks=decisions,
        calls_spent=sum(d.calls_spent for d in decisions.values()),
        fixed_design_calls=sum(d.fixed_design_calls for d in decisions.values()),
        fixed_design_calls_as_run=sum(d.fixed_design_calls_as_run for d in decisions.values()),
    )


def _reason(result: LookResult, stop_reason: StopReason | None, items_run: int, seeds: int) -> str:
    levels = (
        f"(look {result.round}, {items_run} items x {seeds} seeds: TOST level {result.tost_level:.3g}, "
        f"difference level {result.different_level:.3g})"
    )
    if stop_reason == "budget" and result.verdict not in PASSING and result.verdict != "different":
        return f"item and seed budget spent without a conclusive verdict; {result.reason} {levels}"
    if stop_reason == "futility":
        return (
            f"no verdict is likely within the item and seed budget (conditional power {result.conditional_power:.2f}); "
            f"{result.reason} {levels}"
        )
    return f"{result.reason} {levels}"
