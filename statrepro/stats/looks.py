"""One look of a sequential design: the design objects, the statistics of the data seen so far, the verdict the one
rule set gives there at the look's levels, and the conditional power behind stopping for futility."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special, stats

from .boundaries import Spending, boundary_levels, spending_function, spending_increments
from .paired import beyond_with_missing, complete_items, margin_note, margin_options, tipping_point
from .results import ResultMixin, TostResult
from .rules import DEFAULT_RULES, VerdictRules
from .summaries import changed_items, variance_split
from .tests import MIN_CHANGED_ITEMS_FOR_T, permutation_test, tost
from .verdict import PASSING, Evidence, classify

StopReason = Literal["conclusive", "budget", "no-seed-information", "futility"]


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
    all_a, all_b = a, b
    missing, a, b, mean_a, mean_b = complete_items(all_a, all_b)
    n = int(mean_a.size)
    rules = design.rules
    options = margin_options(rules, score_bounds)
    equivalence = tost(mean_a, mean_b, **options)
    worst_case_tost_p, tipping_beyond_p = tipping_point(
        all_a, all_b, missing, float(mean_b.mean() - mean_a.mean()), options
    )
    differences = mean_b - mean_a
    changed = changed_items(mean_a, mean_b)
    # var(d_i) with one seed per side that more seeds average away (None: no seed rounds, or one seed so far)
    seed_noise = _seed_noise(a, b) if seed_rounds and round_index >= 2 else None
    seeds_informative = None if seed_noise is None else seed_noise > 0
    different_level_one_sided = design.alpha / (2 * benchmarks)  # two directions, Bonferroni over benchmarks
    tost_level, different_level = _look_levels(
        design, fractions, round_index, equivalence.method, changed, different_level_one_sided, seeds_informative
    )
    p_different, different_method = _difference_test(mean_a, mean_b, differences, changed)
    score_a, score_b = float(mean_a.mean()), float(mean_b.mean())
    diff = score_b - score_a
    evidence = Evidence(
        n_items=n,
        missing=missing,
        max_missing_share=rules.max_missing_share,
        diff=diff,
        margin=equivalence.margin,
        margin_note=margin_note(rules.margin_kind, score_a),
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
    # Futility extrapolates t statistics; exact-path rounds have none to extrapolate, so they never stop for it.
    exact_path = equivalence.method == "exact-changed-share" or changed < MIN_CHANGED_ITEMS_FOR_T
    conditional_power = (
        _trend_power(design, fractions, round_index, equivalence, p_different, differences, seed_noise,
                     different_level_one_sided, seed_rounds=seed_rounds)
        if verdict is None and not exact_path and round_index < last
        else None
    )
    return LookResult(
        round=round_index, n_items=n, score_a=score_a, score_b=score_b, diff=diff, margin=equivalence.margin,
        p_lower=equivalence.p_lower, p_upper=equivalence.p_upper, tost_method=equivalence.method, tost_level=tost_level,
        p_different=p_different, different_method=different_method, different_level=different_level, n_changed=changed,
        seeds_informative=seeds_informative, conditional_power=conditional_power, verdict=verdict, reason=reason,
    )


def _seed_noise(a: np.ndarray, b: np.ndarray) -> float:
    """The part of var(d_i) with one seed per side that more seeds average away (0: the seeds repeat)."""
    split = variance_split(a, b)
    return (split.seed_var_a or 0.0) + (split.seed_var_b or 0.0)


def _look_levels(
    design: SequentialRules,
    fractions: tuple[float, ...],
    round_index: int,
    tost_method: str,
    changed: int,
    different_level_one_sided: float,
    seeds_informative: bool | None,
) -> tuple[float, float]:
    """(TOST level, two-sided "different" level) of this look: the spending boundaries, their Bonferroni split
    over looks on the exact path, or the whole alpha when the seeds repeat (this look is then the last one)."""
    if seeds_informative is False:
        # Identical seeds: every later round would repeat this data, so this is the final analysis.
        return design.alpha, 2 * different_level_one_sided
    k = round_index - 1
    tost_levels = (
        spending_increments(fractions, design.alpha, design.spending)
        if tost_method == "exact-changed-share"
        else boundary_levels(fractions, design.alpha, design.spending)
    )
    different_levels = (
        spending_increments(fractions, different_level_one_sided, design.spending)
        if changed < MIN_CHANGED_ITEMS_FOR_T
        else boundary_levels(fractions, different_level_one_sided, design.spending)
    )
    return tost_levels[k], 2 * different_levels[k]


def _difference_test(mean_a: np.ndarray, mean_b: np.ndarray, differences: np.ndarray, changed: int) -> tuple[float, str]:
    """(two-sided p, method) of "no difference": the paired t, or with few changed items the exact sign-flip null
    (small support, so no random draws are made)."""
    if changed >= MIN_CHANGED_ITEMS_FOR_T:
        return _paired_t_two_sided(differences), "paired-t"
    return permutation_test(mean_a, mean_b, rng=np.random.default_rng(0)).p_value, "exact-sign-flip"


def _trend_power(
    design: SequentialRules,
    fractions: tuple[float, ...],
    round_index: int,
    equivalence: TostResult,
    p_different: float,
    differences: np.ndarray,
    seed_noise: float | None,
    different_level_one_sided: float,
    *,
    seed_rounds: bool,
) -> float:
    """``_conditional_power`` at this look, held to the last look's boundaries."""
    return _conditional_power(
        design,
        equivalence,
        p_different,
        differences,
        _information_ratio(differences, round_index, fractions, seed_noise),
        boundary_levels(fractions, design.alpha, design.spending)[-1],
        boundary_levels(fractions, different_level_one_sided, design.spending)[-1],
        different_by_estimate=seed_rounds,
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
