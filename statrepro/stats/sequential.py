"""Sequential verdicts: add one seed per side per round and stop as soon as the verdict is known.

A group-sequential design with a fixed maximum number of rounds ``K`` (the seed budget) and Lan-DeMets
alpha spending on each one-sided test: the two TOST tests (each at level alpha, intersection-union) and
the two directions of the "any difference" test (alpha/2 each). Round ``k`` looks at the item means over
the first ``k`` seeds. Boundaries are computed exactly (numerical integration of the canonical joint
distribution) for information growing in proportion to the seeds; real information grows more slowly
(item variance does not average away), which only raises the correlation between looks, so by Slepian's
inequality the error rates stay at or below alpha. See ``docs/methodology.md``, "Sequential verdicts".

Pure: arrays in, frozen result objects out, no I/O. The decision at round ``k`` is recomputed from the
first ``k`` columns of the score matrices, so ``sequential_step`` is stateless and replayable.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .looks import LookResult, SequentialDesign, StopReason, look, stop_reason_of
from .results import ResultMixin
from .verdict import PASSING, BenchmarkVerdict, Decision, combine


@dataclass(frozen=True)
class SequentialDecision(ResultMixin):
    """Where one benchmark's sequential comparison stands after the rounds run so far."""

    verdict: str | None  # None: run another round
    round: int  # the round the verdict was reached at, else the latest round
    max_rounds: int
    stop_reason: StopReason | None  # None while running
    reason: str
    alpha: float
    alpha_spent: float  # cumulative spending of each TOST side by this round
    calls_spent: int  # model calls up to ``round``, both sides (a deterministic side's skipped seeds not counted)
    fixed_design_calls: int  # calls of the fixed design with max_rounds seeds per side (nominal: no skips)
    fixed_design_calls_as_run: int  # the fixed design as it runs: a deterministic side runs 2 seeds (see fixed_calls_as_run)
    seeds_repeated: tuple[bool | None, bool | None]  # per side (A, B): first two seeds identical; None: one seed seen
    looks: tuple[LookResult, ...]

    @property
    def finished(self) -> bool:
        return self.verdict is not None

    def summary(self) -> str:
        state = self.verdict or "continue"
        return f"round {self.round}/{self.max_rounds}: {state} - {self.reason}; {calls_summary(self)}"


def saved_share(spent: int, against: int) -> float | None:
    """Share of ``against`` calls not spent (None when there is nothing to compare with)."""
    return 1 - spent / against if against else None


def calls_summary(result) -> str:
    """Calls spent against the fixed design as it runs (a deterministic side's repeated seeds skipped) and against
    every seed of every item."""
    as_run = saved_share(result.calls_spent, result.fixed_design_calls_as_run) or 0.0
    nominal = saved_share(result.calls_spent, result.fixed_design_calls) or 0.0
    return (
        f"calls {result.calls_spent} vs {result.fixed_design_calls_as_run} for the fixed design as run ({as_run:.0%} saved), "
        f"{result.fixed_design_calls} for every seed of every item ({nominal:.0%} saved)"
    )


def calls_json(result) -> dict:
    """The calls figures of the verdict JSON's ``sequential`` field (overall or per benchmark)."""
    return {
        "calls_spent": result.calls_spent,
        "fixed_design_calls": result.fixed_design_calls,
        "fixed_design_calls_as_run": result.fixed_design_calls_as_run,
        "calls_saved_share": saved_share(result.calls_spent, result.fixed_design_calls_as_run),
        "calls_saved_share_nominal": saved_share(result.calls_spent, result.fixed_design_calls),
    }


class OverallDecision(ResultMixin):
    """What the sequential designs' combined results share: per-benchmark decisions, some still running."""

    benchmarks: dict

    @property
    def pending(self) -> tuple[str, ...]:
        """Benchmarks that still need another round or block (the others have stopped)."""
        return tuple(name for name, decision in self.benchmarks.items() if not decision.finished)

    def headline(self) -> str:
        raise NotImplementedError

    def summary(self) -> str:
        lines = [self.headline()] + [f"  {name}: {decision.summary()}" for name, decision in self.benchmarks.items()]
        return "\n".join(lines)


@dataclass(frozen=True)
class SequentialOverall(OverallDecision):
    """Several benchmarks: pass when all pass, different when any is different, else keep going."""

    verdict: str | None
    round: int
    max_rounds: int
    design: SequentialDesign
    benchmarks: dict[str, SequentialDecision]
    calls_spent: int
    fixed_design_calls: int
    fixed_design_calls_as_run: int

    def headline(self) -> str:
        return f"sequential: {self.verdict or 'continue'} after round {self.round}/{self.max_rounds}; {calls_summary(self)}"

    def to_json(self) -> dict:
        """The ``sequential`` field of the verdict JSON (see docs/methodology.md)."""
        return {
            "over": "seeds",
            "design": self.design.to_dict(),
            "verdict": self.verdict,
            "rounds": self.round,
            **calls_json(self),
            "benchmarks": {
                name: {
                    "verdict": d.verdict,
                    "stop_reason": d.stop_reason,
                    "rounds": d.round,
                    **calls_json(d),
                    "seeds_repeated": dict(zip("ab", d.seeds_repeated)),
                    "alpha_spent": d.alpha_spent,
                    "looks": [look.to_dict() for look in d.looks],
                }
                for name, d in self.benchmarks.items()
            },
        }

def _reason(look: LookResult, stop_reason: str | None) -> str:
    levels = f"(round {look.round}: TOST level {look.tost_level:.3g}, difference level {look.different_level:.3g})"
    if look.seeds_informative is False:
        why = "seeds add no information (within-item seed variance is 0 on both sides)"
        return f"{why}; {look.reason} {levels}" + ("" if look.verdict in PASSING or look.verdict == "different" else "; more items are needed, not more seeds")
    if stop_reason == "budget":
        return f"seed budget spent without a conclusive verdict; {look.reason} {levels}"
    if stop_reason == "futility":
        return (
            f"no verdict is likely within the seed budget (conditional power {look.conditional_power:.2f}); "
            f"{look.reason} {levels}; more items are needed"
        )
    return f"{look.reason} {levels}"


# ----------------------------------------------------------------------------------------------
# Deterministic sides: skipped seeds


def repeated_seeds(scores: np.ndarray) -> bool | None:
    """Whether a side's first two seed columns are identical on every item (missing runs in the same places):
    a deterministic engine, whose later seeds a run skips. None with fewer than two columns (cannot tell yet)."""
    if scores.shape[1] < 2:
        return None
    return bool(np.array_equal(scores[:, 0], scores[:, 1], equal_nan=True))


def with_skipped_seeds(scores: np.ndarray, columns: int) -> np.ndarray:
    """``scores`` widened to ``columns`` seed columns when its first two seeds were identical: a run skips a
    deterministic side's later seeds because they would repeat it, so the side counts as holding all of them,
    copies of its first. Any other matrix is returned as given."""
    if scores.shape[1] >= columns or not repeated_seeds(scores):
        return scores
    return np.concatenate([scores, np.repeat(scores[:, :1], columns - scores.shape[1], axis=1)], axis=1)


def seed_matrices(scores_a, scores_b) -> tuple[np.ndarray, np.ndarray]:
    """Both sides as (items, seeds) matrices, a side that skipped its repeated seeds widened to the other's seeds."""
    a = np.atleast_2d(np.asarray(scores_a, float).T).T
    b = np.atleast_2d(np.asarray(scores_b, float).T).T
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"item counts differ: {a.shape[0]} vs {b.shape[0]}")
    columns = max(a.shape[1], b.shape[1])
    return with_skipped_seeds(a, columns), with_skipped_seeds(b, columns)


def side_seeds(scores: np.ndarray, seeds: int) -> int:
    """Seeds a side runs per item when ``seeds`` are asked for: two for a side whose first two were identical."""
    return min(seeds, 2) if repeated_seeds(scores) else seeds


def fixed_calls_as_run(scores_a: np.ndarray, scores_b: np.ndarray, seeds: int, items: int | None = None) -> int:
    """Model calls of the fixed design with ``seeds`` seeds on ``items`` items (default: the rows given) as it
    runs: a side whose first two seeds were identical runs only those two. A side of which only one seed was
    seen counts as running two, the fewest the fixed design runs, so the saving reported against it is a
    lower bound."""
    items = scores_a.shape[0] if items is None else items
    per_side = [side_seeds(s, seeds) if repeated_seeds(s) is not None else min(seeds, 2) for s in (scores_a, scores_b)]
    return int(items) * sum(per_side)


# ----------------------------------------------------------------------------------------------
# Public entry points


def sequential_step(
    design: SequentialDesign,
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    round_index: int | None = None,
    *,
    benchmarks: int = 1,
    score_bounds: tuple[float, float] | None = (0.0, 1.0),
) -> SequentialDecision:
    """Decide after ``round_index`` rounds (default: the number of seed columns) of one benchmark.

    ``scores_*`` are (n_items, seeds_so_far) matrices, column j holding seed j (NaN = failed run). A side
    whose first two seeds are identical counts as holding as many seeds as the other, copies of its first
    (``with_skipped_seeds``: the run skips a deterministic side's later seeds). Every round up to
    ``round_index`` is re-evaluated from its first columns, so the call is stateless: the first round with a
    verdict wins, and a finished comparison keeps its verdict. ``benchmarks`` splits the "different" test's
    alpha over that many benchmarks (Bonferroni); the TOSTs need no split. Each look is judged by
    ``stats.verdict.classify``, the fixed design's rules, at that look's levels. ``score_bounds`` is the metric's
    declared range (``design.rules.score_range`` overrides it), as in the fixed design.
    """
    score_bounds = design.rules.score_bounds(score_bounds)
    scores_a, scores_b = seed_matrices(scores_a, scores_b)
    available = min(scores_a.shape[1], scores_b.shape[1])
    rounds = available if round_index is None else round_index
    if not 1 <= rounds <= min(available, design.max_rounds):
        raise ValueError(
            f"round {rounds} needs 1..{design.max_rounds} rounds and at most the {available} seed columns given"
        )
    looks: list[LookResult] = []
    stop_reason = None
    for k in range(1, rounds + 1):
        result = look(
            design, scores_a[:, :k], scores_b[:, :k], k, design.fractions, benchmarks, seed_rounds=True,
            score_bounds=score_bounds,
        )
        looks.append(result)
        stop_reason = stop_reason_of(result, design.futility, design.max_rounds)
        if stop_reason is not None:
            break
    last = looks[-1]
    n_rows = scores_a.shape[0]
    return SequentialDecision(
        verdict=last.verdict if stop_reason == "conclusive" else ("inconclusive" if stop_reason else None),
        round=last.round,
        max_rounds=design.max_rounds,
        stop_reason=stop_reason,
        reason=_reason(last, stop_reason),
        alpha=design.alpha,
        alpha_spent=design.alpha if last.seeds_informative is False else design.alpha_spent(last.round),
        calls_spent=n_rows * (side_seeds(scores_a, last.round) + side_seeds(scores_b, last.round)),
        fixed_design_calls=fixed_design_calls(n_rows, design.max_rounds),
        fixed_design_calls_as_run=fixed_calls_as_run(scores_a, scores_b, design.max_rounds),
        seeds_repeated=(repeated_seeds(scores_a), repeated_seeds(scores_b)),
        looks=tuple(looks),
    )


def sequential_step_many(
    design: SequentialDesign,
    score_pairs: dict[str, tuple[np.ndarray, np.ndarray]],
    round_index: int | None = None,
    *,
    score_bounds: dict[str, tuple[float, float] | None] | None = None,
) -> SequentialOverall:
    """``sequential_step`` for every benchmark, combined by ``stats.verdict.combine``: different if any
    benchmark is different, pass if all pass, otherwise continue while any benchmark is still running
    (stopped benchmarks need no more rounds: see ``SequentialOverall.pending``), else inconclusive.
    ``score_bounds`` gives each benchmark's declared metric range (default [0, 1])."""
    if not score_pairs:
        raise ValueError("no benchmarks to decide on")
    names = sorted(score_pairs)
    decisions = {}
    for name in names:
        a, b = seed_matrices(*score_pairs[name])
        available = min(a.shape[1], b.shape[1])
        rounds = available if round_index is None else min(round_index, available)
        decisions[name] = sequential_step(
            design, a, b, rounds, benchmarks=len(names), score_bounds=(score_bounds or {}).get(name, (0.0, 1.0))
        )
    return SequentialOverall(
        verdict=combine([d.verdict for d in decisions.values()]),
        round=max(d.round for d in decisions.values()),
        max_rounds=design.max_rounds,
        design=design,
        benchmarks=decisions,
        calls_spent=sum(d.calls_spent for d in decisions.values()),
        fixed_design_calls=sum(d.fixed_design_calls for d in decisions.values()),
        fixed_design_calls_as_run=sum(d.fixed_design_calls_as_run for d in decisions.values()),
    )


def sequential_decision(fixed: Decision, result: SequentialOverall) -> Decision:
    """The decision of a sequential comparison: each benchmark's verdict and reason are those its looks reached
    under the one rule set (alpha spent across rounds); the fixed analysis of the same data supplies the
    statistics shown beside them. A design still running counts as inconclusive."""
    benchmarks = tuple(
        BenchmarkVerdict(
            item.name,
            item.comparison,
            item.p_adjusted,
            result.benchmarks[item.name].verdict or "inconclusive",
            result.benchmarks[item.name].reason,
            item.p_beyond_adjusted,
        )
        for item in fixed.benchmarks
    )
    return replace(fixed, verdict=result.verdict or "inconclusive", benchmarks=benchmarks)


def fixed_design_calls(n_items: int, seeds: int, benchmarks: int = 1, sides: int = 2) -> int:
    """Model calls of a fixed design: every item, every seed, every benchmark, on each side."""
    return int(n_items) * int(seeds) * int(benchmarks) * int(sides)
