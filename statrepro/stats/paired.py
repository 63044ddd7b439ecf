"""Paired, item-level comparison of two environments on one benchmark.

Arrays in, frozen result objects out; no I/O. Inputs are score matrices of shape (n_items, n_seeds)
with rows aligned by item; NaN marks a missing (failed) run of an item. See ``docs/methodology.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .bootstrap import safe_ratio, bootstrap_ci
from .missing import MissingRuns, count_missing_runs, filled_item_means
from .power import PowerResult, power_analysis
from .results import BootstrapCI, FlipCounts, McNemarResult, PermutationResult, ResultMixin, TostResult, VarianceSplit
from .rules import DEFAULT_RULES, VerdictRules
from .summaries import changed_items, expected_flip_rate, flip_counts, item_means, variance_split
from .tests import mcnemar_exact, permutation_test, tost


@dataclass(frozen=True)
class BenchmarkComparison(ResultMixin):
    """Everything measured for one benchmark, before the multiple-benchmark adjustment."""

    n_items: int
    n_runs_a: int
    n_runs_b: int
    score_a: float
    score_b: float
    diff: float
    rel_diff: float
    bootstrap: BootstrapCI
    permutation: PermutationResult
    mcnemar: McNemarResult | None
    tost: TostResult
    flips: FlipCounts
    variance: VarianceSplit
    power: PowerResult
    n_changed: int  # items whose mean score differs at all
    missing: MissingRuns
    note: str | None = None  # why a verdict cannot be reached, when that is known up front
    worst_case_tost_p: float | None = None  # the TOST with every missing run scored worst case for B
    # The reverse test with every missing run scored against "different" (None: no missing runs): missing runs
    # may not make a difference any more than hide one.
    tipping_beyond_p: float | None = None
    score_bounds: tuple[float, float] | None = (0.0, 1.0)  # the metric's declared range; None = unknown

    @property
    def n_missing(self) -> int:
        """Items without any run on at least one side (left out of the estimates)."""
        return len(self.missing.items)

    @property
    def missing_items(self) -> tuple[int, ...]:
        return self.missing.items

    @property
    def p_beyond(self) -> float:
        """The reverse test's p-value that ``different`` reads: with missing runs, the larger of the observed one
        and its tipping-point version (unbounded missing runs, an unknown range, never make a difference)."""
        return beyond_with_missing(self.tost.p_beyond, self.tipping_beyond_p)

    def summary(self) -> str:
        lo, hi = self.bootstrap.rel_diff_ci
        return (
            f"n={self.n_items} A={self.score_a:.4f} B={self.score_b:.4f} diff={self.diff:+.4f} "
            f"rel={self.rel_diff:+.2%} CI=[{lo:+.2%}, {hi:+.2%}] p={self.permutation.p_value:.3g} "
            f"tost_p={self.tost.p_value:.3g} flips={self.flips.rate:.2%}"
        )


# ----------------------------------------------------------------------------------------------
# One benchmark


def _compare_paired_iv(
    scores_a: np.ndarray, scores_b: np.ndarray, score_bounds: tuple[float, float] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Input validation of ``compare_paired``: 2-D float matrices with as many rows, inside the declared range."""
    scores_a = np.atleast_2d(np.asarray(scores_a, float).T).T
    scores_b = np.atleast_2d(np.asarray(scores_b, float).T).T
    if scores_a.shape[0] != scores_b.shape[0]:
        raise ValueError(f"item counts differ: {scores_a.shape[0]} vs {scores_b.shape[0]}")
    if score_bounds is not None:
        low, high = score_bounds
        observed = np.concatenate([scores_a[~np.isnan(scores_a)], scores_b[~np.isnan(scores_b)]])
        if observed.size and (observed.min() < low or observed.max() > high):
            raise ValueError(
                f"scores range over [{observed.min():g}, {observed.max():g}], outside the metric's declared range "
                f"[{low:g}, {high:g}]"
            )
    return scores_a, scores_b


def compare_paired(
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    rules: VerdictRules = DEFAULT_RULES,
    *,
    score_bounds: tuple[float, float] | None = (0.0, 1.0),
    ci_method: Literal["BCa", "percentile"] = "BCa",
    seed_level_bootstrap: bool = False,
    rng: np.random.Generator | int | None = None,
) -> BenchmarkComparison:
    """Compare two environments on one benchmark from aligned (n_items, n_seeds) score matrices, under ``rules``
    (margin, alpha, mode, resamples).

    A missing run (NaN) is counted, never averaged away: ``missing`` counts each side's missing runs. Items
    with no run on a side are left out of the estimates, the others are estimated from the runs they have; then
    the TOST is repeated with every missing run scored worst case for B (A's at the top of ``score_bounds``,
    B's at the bottom: ``worst_case_tost_p``), and the reverse test with every missing run scored against the
    difference it found (``tipping_beyond_p``), so that missing runs can neither hide a loss nor make one.
    ``score_bounds`` is the metric's declared range (None: unknown); scores outside it are an error.
    """
    all_a, all_b = _compare_paired_iv(scores_a, scores_b, score_bounds)
    rng = np.random.default_rng(rng)
    missing, scores_a, scores_b, mean_a, mean_b = complete_items(all_a, all_b)
    score_a, score_b = float(mean_a.mean()), float(mean_b.mean())
    diff = score_b - score_a
    boot = bootstrap_ci(
        mean_a,
        mean_b,
        n_resamples=rules.n_resamples,
        confidence=1 - rules.alpha,
        method=ci_method,
        rng=rng,
        seed_level=(scores_a, scores_b) if seed_level_bootstrap else None,
    )
    perm = permutation_test(mean_a, mean_b, n_resamples=rules.n_resamples, rng=rng)
    binary = np.isin(scores_a, (0.0, 1.0)).all() and np.isin(scores_b, (0.0, 1.0)).all()
    mcnemar = (
        mcnemar_exact(scores_a[:, 0], scores_b[:, 0])
        if binary and scores_a.shape[1] == 1 and scores_b.shape[1] == 1
        else None
    )
    options = margin_options(rules, score_bounds)
    equivalence = tost(mean_a, mean_b, **options)
    worst_case_tost_p, tipping_beyond_p = tipping_point(all_a, all_b, missing, diff, options)
    variance = variance_split(scores_a, scores_b)
    return BenchmarkComparison(
        n_items=int(mean_a.size),
        n_runs_a=int(scores_a.shape[1]),
        n_runs_b=int(scores_b.shape[1]),
        score_a=score_a,
        score_b=score_b,
        diff=diff,
        rel_diff=safe_ratio(diff, score_a),
        bootstrap=boot,
        permutation=perm,
        mcnemar=mcnemar,
        tost=equivalence,
        flips=flip_counts(mean_a, mean_b, expected_flip_rate(scores_a, scores_b)),
        variance=variance,
        power=_power(mean_a, mean_b, scores_a, scores_b, variance, equivalence, rules, score_bounds),
        n_changed=changed_items(mean_a, mean_b),
        missing=missing,
        note=margin_note(rules.margin_kind, score_a),
        worst_case_tost_p=worst_case_tost_p,
        tipping_beyond_p=tipping_beyond_p,
        score_bounds=score_bounds,
    )


def complete_items(
    scores_a: np.ndarray, scores_b: np.ndarray
) -> tuple[MissingRuns, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(missing runs, A's and B's rows of the items with a run on both sides, their item means); a ValueError
    below 2 such items."""
    missing = count_missing_runs(scores_a, scores_b)
    present = np.ones(scores_a.shape[0], bool)
    present[list(missing.items)] = False
    scores_a, scores_b = scores_a[present], scores_b[present]
    mean_a, mean_b = item_means(scores_a), item_means(scores_b)
    if mean_a.size < 2:
        raise ValueError(f"need at least 2 paired items with results on both sides, got {int(mean_a.size)}")
    return missing, scores_a, scores_b, mean_a, mean_b


def margin_options(rules: VerdictRules, score_bounds: tuple[float, float] | None) -> dict:
    """The keyword arguments of ``tost`` (and ``tipping_point``) under ``rules`` for a metric's declared range."""
    return dict(
        tolerance=rules.tolerance, margin_kind=rules.margin_kind, mode=rules.mode, alpha=rules.alpha, score_bounds=score_bounds
    )


def margin_note(margin_kind: str, score_a: float) -> str | None:
    """Why no verdict can be reached up front: a relative margin of a zero score is zero."""
    if margin_kind == "relative" and score_a <= 0:
        return "score_a is 0, so a relative margin is 0: use an absolute margin"
    return None


def _power(
    mean_a: np.ndarray,
    mean_b: np.ndarray,
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    variance: VarianceSplit,
    equivalence: TostResult,
    rules: VerdictRules,
    score_bounds: tuple[float, float] | None,
) -> PowerResult:
    """``power_analysis`` of one comparison: what a conclusive verdict needs, unless the tests already concluded."""
    return power_analysis(
        mean_a,
        mean_b,
        variance,
        tolerance=rules.tolerance,
        margin=equivalence.margin,
        margin_kind=rules.margin_kind,
        mode=rules.mode,
        alpha=rules.alpha,
        seeds_per_side=max(scores_a.shape[1], scores_b.shape[1]),
        conclusive=equivalence.p_value < rules.alpha or equivalence.p_beyond < rules.alpha,
        score_range=None if score_bounds is None else float(score_bounds[1] - score_bounds[0]),
    )


def beyond_with_missing(p_beyond: float, tipping_beyond_p: float | None) -> float:
    """The reverse test's p-value with missing runs: the larger of the observed one and its tipping-point version
    (missing runs that cannot be bounded, under an unknown range, never make a difference)."""
    if tipping_beyond_p is None:
        return p_beyond
    return 1.0 if math.isnan(tipping_beyond_p) else max(p_beyond, tipping_beyond_p)


def tipping_point(
    scores_a: np.ndarray, scores_b: np.ndarray, missing: MissingRuns, diff: float, margin_options: dict
) -> tuple[float | None, float | None]:
    """(worst_case_tost_p, tipping_beyond_p) of ``compare_paired`` for the full score matrices: (None, None)
    without missing runs, NaN where the metric's range is unknown (so no missing run can be bounded)."""
    if not missing.any:
        return None, None
    bounds = margin_options["score_bounds"]
    if bounds is None:
        return float("nan"), float("nan")
    worst = tost(*filled_item_means(scores_a, scores_b, bounds, b_missing_at="low"), **margin_options)
    # A difference below the margin must survive B's missing runs scored at the top; one above it, at the bottom.
    against = worst if diff >= 0 else tost(*filled_item_means(scores_a, scores_b, bounds, b_missing_at="high"), **margin_options)
    return worst.p_value, against.p_beyond


def compare_many(
    score_pairs: dict[str, tuple[np.ndarray, np.ndarray]],
    rules: VerdictRules = DEFAULT_RULES,
    *,
    rng_seed: int | None = 0,
    score_bounds: dict[str, tuple[float, float] | None] | None = None,
    **options,
) -> dict[str, BenchmarkComparison]:
    """``compare_paired`` under one set of ``rules`` for several benchmarks, in parallel threads (numpy releases
    the GIL in the resampling), each with its own RNG stream spawned from ``rng_seed`` so results do not depend
    on scheduling. ``score_bounds`` gives each benchmark's declared metric range (default [0, 1]), which
    ``rules.score_range`` overrides; a ValueError names the benchmark it came from."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    names = sorted(score_pairs)
    streams = np.random.SeedSequence(rng_seed).spawn(len(names))

    def one(index: int) -> BenchmarkComparison:
        name = names[index]
        a, b = score_pairs[name]
        bounds = rules.score_bounds((score_bounds or {}).get(name, (0.0, 1.0)))
        try:
            return compare_paired(a, b, rules, rng=np.random.default_rng(streams[index]), score_bounds=bounds, **options)
        except ValueError as error:
            raise ValueError(f"benchmark {name!r}: {error}") from None

    workers = max(1, min(len(names), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, range(len(names))))
    return dict(zip(names, results))
