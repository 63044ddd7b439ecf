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

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

import numpy as np
from scipy import optimize, special, stats

from .missing import count_missing_runs
from .paired import beyond_with_missing, tipping_point
from .results import ResultMixin
from .rules import DEFAULT_RULES, VerdictRules
from .summaries import changed_items, item_means, variance_split
from .tests import MIN_CHANGED_ITEMS_FOR_T, permutation_test, tost
from .verdict import PASSING, BenchmarkVerdict, Decision, Evidence, classify, combine

Spending = Literal["obrien-fleming", "pocock"]
StopReason = Literal["conclusive", "budget", "no-seed-information", "futility"]

# Grid of the numerical integration on the score scale: points per look, and the lower cut-off in SDs.
_GRID_POINTS = 801
_GRID_SDS = 10.0


@dataclass(frozen=True, kw_only=True)
class SequentialRules(ResultMixin):
    """What every sequential design pre-registers besides its budget: the verdict rules (carried intact, as the
    fixed design gets them), the spending function and the futility threshold. The metric's score range is data
    about the benchmark, not a design choice: each look gets it beside the scores."""

    rules: VerdictRules = DEFAULT_RULES
    spending: Spending = "obrien-fleming"
    futility: float = 0.1  # stop as inconclusive when no verdict has this conditional power; 0 = never

    @property
    def alpha(self) -> float:
        return self.rules.alpha

    def __post_init__(self) -> None:
        if self.spending not in ("obrien-fleming", "pocock"):
            raise ValueError(f"unknown spending function {self.spending!r}")


@dataclass(frozen=True)
class SequentialDesign(SequentialRules):
    """The pre-registered design of seed rounds: budget, error rate, margin and spending function."""

    max_rounds: int  # K: the most seeds per side that will be run (the budget)

    def __post_init__(self) -> None:
        if self.max_rounds < 1:
            raise ValueError(f"max_rounds must be at least 1, got {self.max_rounds}")
        super().__post_init__()

    @property
    def fractions(self) -> tuple[float, ...]:
        """Information fraction of each round, for the boundaries: round / K."""
        return tuple(k / self.max_rounds for k in range(1, self.max_rounds + 1))

    def alpha_spent(self, round_index: int, level: float | None = None) -> float:
        """Cumulative type I error a one-sided test at ``level`` (default alpha) may spend by this round."""
        return spending_function(self.spending, level if level is not None else self.alpha, round_index / self.max_rounds)


@dataclass(frozen=True)
class LookResult(ResultMixin):
    """The statistics of one round (look) and the nominal levels they were held to."""

    round: int
    n_items: int
    score_a: float
    score_b: float
    diff: float
    margin: float
    p_lower: float
    p_upper: float
    tost_method: str
    tost_level: float  # a TOST side passes when its p-value is below this
    p_different: float  # two-sided p-value of "no difference"
    different_method: str  # "paired-t" or "exact-sign-flip" (few changed items)
    different_level: float
    n_changed: int
    seeds_informative: bool | None  # None at round 1 (one seed: cannot tell)
    conditional_power: float | None  # best chance, at the current trend, of any verdict by the last round
    verdict: str | None  # None: no verdict yet at this round
    reason: str  # what the one rule set says at this round


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


# ----------------------------------------------------------------------------------------------
# Boundaries


def spending_function(kind: Spending, level: float, fraction: float) -> float:
    """Lan-DeMets spending: the type I error a one-sided test at ``level`` spends by information ``fraction``."""
    t = min(1.0, max(0.0, fraction))
    if t == 0.0:
        return 0.0
    if kind == "obrien-fleming":
        return float(2 * special.ndtr(-special.ndtri(1 - level / 2) / math.sqrt(t)))
    return float(level * math.log1p((math.e - 1) * t))


def nominal_levels(max_rounds: int, level: float, spending: Spending) -> tuple[float, ...]:
    """One-sided nominal p-value thresholds per round for equally spaced information (round / K)."""
    return boundary_levels(tuple(k / max_rounds for k in range(1, max_rounds + 1)), level, spending)


@lru_cache(maxsize=256)
def boundary_levels(fractions: tuple[float, ...], level: float, spending: Spending) -> tuple[float, ...]:
    """One-sided nominal p-value thresholds per look at information ``fractions`` (increasing, the last 1).

    Look k's boundary c_k solves P(Z_1 < c_1, ..., Z_{k-1} < c_{k-1}, Z_k >= c_k) = spent(t_k) - spent(t_{k-1})
    for the canonical joint distribution (Z_k = S(t_k) / sqrt(t_k), S a Brownian motion), integrated
    numerically on a grid of the score S(t_k) over the continuation region. Information is scaled to
    K * t_k so that equally spaced looks integrate the unit-increment random walk.
    """
    looks = len(fractions)
    information = [looks * t for t in fractions]
    spent = [0.0] + [spending_function(spending, level, t) for t in fractions]
    levels = [spent[1]]
    # -ndtri(p), not ndtri(1 - p): an early look at a small fraction spends ~1e-20, which 1 - p rounds away.
    c_first = float(-special.ndtri(spent[1])) if spent[1] > 0 else math.inf
    root = math.sqrt(information[0])
    # Sub-density of S_1 on its continuation region (-L, c_1 * sqrt(I_1)).
    grid = np.linspace(-_GRID_SDS * root, min(c_first, _GRID_SDS) * root, _GRID_POINTS)
    density = stats.norm.pdf(grid / root) / root
    for k in range(2, looks + 1):
        weights = _trapezoid_weights(grid) * density
        increment = spent[k] - spent[k - 1]
        root_k = math.sqrt(information[k - 1])
        step_sd = math.sqrt(information[k - 1] - information[k - 2])

        def crossing(c: float, weights=weights, grid=grid, root_k=root_k, step_sd=step_sd) -> float:
            return float(weights @ special.ndtr((grid - c * root_k) / step_sd))

        if increment <= 0:
            levels.append(0.0)
            c_k = math.inf
        else:
            c_k = optimize.brentq(lambda c: crossing(c) - increment, -10.0, 40.0, xtol=1e-10)
            levels.append(float(special.ndtr(-c_k)))
        upper = c_k * root_k if math.isfinite(c_k) else _GRID_SDS * root_k
        new_grid = np.linspace(-_GRID_SDS * root_k, upper, _GRID_POINTS)
        density = (stats.norm.pdf((new_grid[:, None] - grid[None, :]) / step_sd) / step_sd) @ weights
        grid = new_grid
    return tuple(levels)


def _trapezoid_weights(grid: np.ndarray) -> np.ndarray:
    step = grid[1] - grid[0]
    weights = np.full(grid.size, step)
    weights[[0, -1]] = step / 2
    return weights


def spending_increments(fractions: tuple[float, ...], level: float, spending: Spending) -> tuple[float, ...]:
    """Alpha spent at each look alone: a Bonferroni split over looks, valid under any dependence."""
    spent = [0.0] + [spending_function(spending, level, t) for t in fractions]
    return tuple(spent[k] - spent[k - 1] for k in range(1, len(fractions) + 1))


# ----------------------------------------------------------------------------------------------
# One look and the verdict rules


def _paired_t_two_sided(differences: np.ndarray) -> float:
    n = differences.size
    sd = float(differences.std(ddof=1)) if n > 1 else 0.0
    mean = float(differences.mean()) if n else 0.0
    if sd == 0.0:
        return 1.0 if mean == 0.0 else 0.0
    t_stat = mean / (sd / math.sqrt(n))
    return float(2 * stats.t.sf(abs(t_stat), n - 1))


def look(
    design: SequentialRules,
    a: np.ndarray,
    b: np.ndarray,
    round_index: int,
    fractions: tuple[float, ...],
    benchmarks: int,
    *,
    seed_rounds: bool,
    score_bounds: tuple[float, float] | None = (0.0, 1.0),
) -> LookResult:
    """Statistics of the data seen by look ``round_index`` (of ``len(fractions)``, at those information
    fractions) and the verdict the one rule set gives there. ``a``/``b`` hold exactly that look's data: the
    first ``round_index`` seed columns of a seed-round design (``seed_rounds``, whose looks also check whether
    seeds carry information), or the items run so far of an item-block design. ``design`` supplies the verdict
    rules and the spending; ``score_bounds`` is the metric's declared range (None: unknown)."""
    missing = count_missing_runs(a, b)
    all_a, all_b = a, b
    present = np.ones(a.shape[0], bool)
    present[list(missing.items)] = False
    a, b = a[present], b[present]
    mean_a, mean_b = item_means(a), item_means(b)
    n = int(mean_a.size)
    if n < 2:
        raise ValueError(f"need at least 2 paired items with results on both sides, got {n}")
    rules = design.rules
    margin_options = dict(
        tolerance=rules.tolerance, margin_kind=rules.margin_kind, mode=rules.mode, alpha=rules.alpha, score_bounds=score_bounds
    )
    equivalence = tost(mean_a, mean_b, **margin_options)
    worst_case_tost_p, tipping_beyond_p = tipping_point(
        all_a, all_b, missing, float(mean_b.mean() - mean_a.mean()), margin_options
    )
    differences = mean_b - mean_a
    changed = changed_items(mean_a, mean_b)
    seeds_informative = None
    seed_noise = None  # var(d_i) with one seed per side that more seeds average away
    if seed_rounds and round_index >= 2:
        split = variance_split(a, b)
        seed_noise = (split.seed_var_a or 0.0) + (split.seed_var_b or 0.0)
        seeds_informative = seed_noise > 0
    k = round_index - 1
    different_level_one_sided = design.alpha / (2 * benchmarks)  # two directions, Bonferroni over benchmarks
    exact_path = equivalence.method == "exact-changed-share" or changed < MIN_CHANGED_ITEMS_FOR_T
    if seeds_informative is False:
        # Identical seeds: every later round would repeat this data, so this is the final analysis.
        tost_level, different_level = design.alpha, 2 * different_level_one_sided
    else:
        tost_levels = (
            spending_increments(fractions, design.alpha, design.spending)
            if equivalence.method == "exact-changed-share"
            else boundary_levels(fractions, design.alpha, design.spending)
        )
        tost_level = tost_levels[k]
        different_levels = (
            spending_increments(fractions, different_level_one_sided, design.spending)
            if changed < MIN_CHANGED_ITEMS_FOR_T
            else boundary_levels(fractions, different_level_one_sided, design.spending)
        )
        different_level = 2 * different_levels[k]
    if changed >= MIN_CHANGED_ITEMS_FOR_T:
        p_different, different_method = _paired_t_two_sided(differences), "paired-t"
    else:
        # Few changed items: the exact sign-flip null (small support, so no random draws are made).
        p_different = permutation_test(mean_a, mean_b, rng=np.random.default_rng(0)).p_value
        different_method = "exact-sign-flip"
    score_a, score_b = float(mean_a.mean()), float(mean_b.mean())
    diff = score_b - score_a
    note = (
        "score_a is 0, so a relative margin is 0: use an absolute margin"
        if rules.margin_kind == "relative" and score_a <= 0
        else None
    )
    evidence = Evidence(
        n_items=n,
        missing=missing,
        max_missing_share=rules.max_missing_share,
        diff=diff,
        margin=equivalence.margin,
        margin_note=note,
        tost_method=equivalence.method,
        tost_p=equivalence.p_value,
        tost_level=tost_level,
        difference_p=p_different,
        difference_level=different_level,
        beyond_p=beyond_with_missing(equivalence.p_beyond, tipping_beyond_p),
        beyond_level=different_level,
        worst_case_tost_p=worst_case_tost_p,
    )
    verdict, reason = classify(evidence)
    last = len(fractions)
    final = seeds_informative is False or round_index >= last
    if verdict == "inconclusive" and not final:
        verdict = None  # another round may still decide it
    conditional_power = None
    # Futility extrapolates t statistics; exact-path rounds have none to extrapolate, so they never stop for it.
    if verdict is None and not exact_path and round_index < last:
        conditional_power = _conditional_power(
            design,
            equivalence,
            p_different,
            differences,
            _information_ratio(differences, round_index, fractions, seed_noise),
            boundary_levels(fractions, design.alpha, design.spending)[-1],
            boundary_levels(fractions, different_level_one_sided, design.spending)[-1],
            different_by_estimate=seed_rounds,
        )
    return LookResult(
        round=round_index,
        n_items=n,
        score_a=score_a,
        score_b=score_b,
        diff=diff,
        margin=equivalence.margin,
        p_lower=equivalence.p_lower,
        p_upper=equivalence.p_upper,
        tost_method=equivalence.method,
        tost_level=tost_level,
        p_different=p_different,
        different_method=different_method,
        different_level=different_level,
        n_changed=changed,
        seeds_informative=seeds_informative,
        conditional_power=conditional_power,
        verdict=verdict,
        reason=reason,
    )


def _information_ratio(
    differences: np.ndarray, round_index: int, fractions: tuple[float, ...], seed_noise: float | None
) -> float:
    """How much the information grows from this look to the last one.

    Seed rounds: Var_k(d_i) / Var_K(d_i) with Var_j = item part + seed noise / j (K / k before the seed
    noise can be estimated, the most optimistic case). Item blocks (``seed_noise`` None): the item count
    grows by t_K / t_k.
    """
    k, last = round_index, len(fractions)
    if seed_noise is None:
        return fractions[-1] / fractions[k - 1]
    total = float(differences.var(ddof=1))
    item_part = max(0.0, total - seed_noise / k)
    return (item_part + seed_noise / k) / (item_part + seed_noise / last) if total > 0 else 1.0


def _conditional_power(
    design: SequentialRules,
    equivalence,
    p_different: float,
    differences: np.ndarray,
    ratio: float,
    tost_final: float,
    different_final: float,
    *,
    different_by_estimate: bool,
) -> float:
    """Chance, if the current estimates were the truth, that the last look reaches a verdict.

    Information grows by ``ratio`` (``_information_ratio``) from this look to the last. Each one-sided
    test's z then ends near z_k * sqrt(r) with variance 1 - 1/r (the usual "current trend" conditional
    power, checked against the last look's boundary only, which understates it). The chance of "different"
    is that of the beyond-margin test, or (``different_by_estimate``, the seed-round design's measured
    rule) the smaller of "significant" and "the final estimate lies beyond the margin", which stays near 0.5
    at the margin and so keeps seed rounds going there.
    """
    if ratio <= 1.0:
        return 0.0
    spread = math.sqrt(1 - 1 / ratio)

    def reach(z_now: float, level: float) -> float:
        return float(special.ndtr((z_now * math.sqrt(ratio) - special.ndtri(1 - level)) / spread))

    def z_of(p: float) -> float:
        return float(special.ndtri(1 - min(max(p, 1e-300), 1 - 1e-16)))

    passing = reach(z_of(equivalence.p_lower), tost_final)
    if design.rules.mode != "non-inferiority":
        passing = min(passing, reach(z_of(equivalence.p_upper), tost_final))
    if not different_by_estimate:
        # "different" needs only the beyond-margin test (one-sided in the estimate's direction: half its p).
        return max(passing, reach(z_of(equivalence.p_beyond / 2), different_final))
    significant = reach(z_of(p_different / 2), different_final)
    diff = float(differences.mean())
    total = float(differences.var(ddof=1))
    se_final_shift = math.sqrt(total / differences.size * (1 / ratio) * (1 - 1 / ratio)) if total > 0 else 0.0
    distance = (-diff if design.rules.mode == "non-inferiority" else abs(diff)) - equivalence.margin
    beyond = float(special.ndtr(distance / se_final_shift)) if se_final_shift > 0 else float(distance > 0)
    return max(passing, min(significant, beyond))


def stop_reason_of(result: LookResult, futility: float, last: int) -> StopReason | None:
    """Why the design stops after this look (None: it goes on)."""
    if result.verdict in PASSING or result.verdict == "different":
        return "conclusive"
    if result.seeds_informative is False:
        return "no-seed-information"
    if result.conditional_power is not None and result.conditional_power < futility:
        return "futility"
    if result.round == last:
        return "budget"
    return None


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
