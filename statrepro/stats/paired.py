"""Paired, item-level comparison of two environments on one benchmark.

Arrays in, frozen result objects out; no I/O. Inputs are score matrices of shape (n_items, n_seeds)
with rows aligned by item; NaN marks a missing (failed) run of an item. See ``docs/methodology.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special, stats

from .resampling import bootstrap_item_sums, jackknife_item_sums, sign_flip_null
from .results import ResultMixin

Mode = Literal["equivalence", "non-inferiority"]
MarginKind = Literal["relative", "absolute"]

# Below this many items whose score changed, the t-based TOST is not trusted (its standard error is
# estimated from a handful of non-zero differences) and the exact changed-share bound is used instead.
MIN_CHANGED_ITEMS_FOR_T = 10
POWER = 0.8


@dataclass(frozen=True)
class BootstrapCI(ResultMixin):
    """Bootstrap confidence intervals of the paired difference and the relative difference."""

    diff_ci: tuple[float, float]
    rel_diff_ci: tuple[float, float]
    method: str
    confidence: float
    n_resamples: int


@dataclass(frozen=True)
class PermutationResult(ResultMixin):
    """Paired sign-flip permutation test of the mean difference."""

    statistic: float
    p_value: float
    exact: bool
    n_resamples: int


@dataclass(frozen=True)
class McNemarResult(ResultMixin):
    """Exact McNemar test on one 0/1 run per side."""

    a_only: int  # items right in A, wrong in B
    b_only: int  # items wrong in A, right in B
    p_value: float


@dataclass(frozen=True)
class TostResult(ResultMixin):
    """Equivalence (or non-inferiority) test against a margin."""

    p_value: float
    p_lower: float
    p_upper: float
    margin: float  # absolute margin on the score scale at score_a
    margin_kind: str
    mode: str
    method: str  # "paired-t" or "exact-changed-share"


@dataclass(frozen=True)
class VarianceSplit(ResultMixin):
    """How much of the noise comes from items and how much from seeds."""

    item_var_a: float
    item_var_b: float
    seed_var_a: float | None  # mean within-item variance across seeds; None with one seed
    seed_var_b: float | None
    diff_item_var: float  # between-item variance of d_i that more seeds cannot remove
    diff_seed_var: float  # part of var(d_i) that averaging over more seeds removes
    seed_share: float  # diff_seed_var / var(d_i)


@dataclass(frozen=True)
class PowerResult(ResultMixin):
    """Minimum detectable difference and the data needed to reach a conclusive verdict."""

    mde: float  # absolute, two-sided, at 80% power
    rel_mde: float | None
    items_needed: int | None  # total items (at the current seeds) for a conclusive verdict, if inconclusive
    seeds_needed: int | None  # total seeds per side (at the current items), None if seeds cannot suffice


@dataclass(frozen=True)
class FlipCounts(ResultMixin):
    """Items whose majority outcome (item mean > 0.5) changed between A and B."""

    up: int  # wrong in A, right in B
    down: int  # right in A, wrong in B
    n_items: int

    @property
    def rate(self) -> float:
        return (self.up + self.down) / self.n_items if self.n_items else float("nan")


@dataclass(frozen=True)
class BenchmarkComparison(ResultMixin):
    """Everything measured for one benchmark, before the multiple-benchmark adjustment."""

    n_items: int
    n_missing: int
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
    tolerance: float
    alpha: float
    note: str | None = None  # why a verdict cannot be reached, when that is known up front

    def summary(self) -> str:
        lo, hi = self.bootstrap.rel_diff_ci
        return (
            f"n={self.n_items} A={self.score_a:.4f} B={self.score_b:.4f} diff={self.diff:+.4f} "
            f"rel={self.rel_diff:+.2%} CI=[{lo:+.2%}, {hi:+.2%}] p={self.permutation.p_value:.3g} "
            f"tost_p={self.tost.p_value:.3g} flips={self.flips.rate:.2%}"
        )


# ----------------------------------------------------------------------------------------------
# Building blocks


def item_means(scores: np.ndarray) -> np.ndarray:
    """Mean over seeds per item, ignoring missing (NaN) runs. Rows with no runs give NaN."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim == 1:
        return scores.copy()
    counts = np.sum(~np.isnan(scores), axis=1)
    sums = np.nansum(scores, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def bootstrap_ci(
    mean_a: np.ndarray,
    mean_b: np.ndarray,
    *,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    method: Literal["BCa", "percentile"] = "BCa",
    rng: np.random.Generator,
    seed_level: tuple[np.ndarray, np.ndarray] | None = None,
) -> BootstrapCI:
    """Cluster bootstrap over items (each item carries its seeds) of diff and rel_diff.

    ``seed_level`` optionally passes the full (n_items, n_seeds) matrices to also resample seeds
    within each resampled item (a two-level bootstrap; percentile intervals).
    """
    mean_a = np.asarray(mean_a, float)
    mean_b = np.asarray(mean_b, float)
    n = mean_a.size
    columns = np.column_stack([mean_a, mean_b])
    if seed_level is not None:
        sums = _two_level_sums(*seed_level, n_resamples=n_resamples, rng=rng)
        method = "percentile"
    else:
        sums = bootstrap_item_sums(columns, n_resamples, rng)
    boot_diff = (sums[:, 1] - sums[:, 0]) / n
    with np.errstate(invalid="ignore", divide="ignore"):
        boot_rel = sums[:, 1] / sums[:, 0] - 1.0
    diff_hat = float(mean_b.mean() - mean_a.mean())
    rel_hat = _safe_ratio(mean_b.sum(), mean_a.sum()) - 1.0
    alpha = 1 - confidence
    if method == "BCa":
        loo_sums, weights = jackknife_item_sums(columns)
        loo_diff = (loo_sums[:, 1] - loo_sums[:, 0]) / (n - 1) if n > 1 else np.zeros(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            loo_rel = loo_sums[:, 1] / loo_sums[:, 0] - 1.0
        diff_ci = _bca_interval(boot_diff, diff_hat, loo_diff, weights, alpha)
        rel_ci = _bca_interval(boot_rel, rel_hat, loo_rel, weights, alpha)
    else:
        diff_ci = _percentile_interval(boot_diff, alpha)
        rel_ci = _percentile_interval(boot_rel, alpha)
    return BootstrapCI(diff_ci, rel_ci, method, confidence, n_resamples)


def _two_level_sums(
    scores_a: np.ndarray, scores_b: np.ndarray, *, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Resample items, then seeds within each resampled item, and sum the item means of each side."""
    n = scores_a.shape[0]
    sums = np.empty((n_resamples, 2))
    width = scores_a.shape[1] + scores_b.shape[1]
    chunk = max(1, 2_000_000 // max(1, n * width))
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        items = rng.integers(0, n, size=(stop - start, n))
        for side, scores in enumerate((scores_a, scores_b)):
            k = scores.shape[1]
            seeds = rng.integers(0, k, size=(stop - start, n, k))
            picked = scores[items[..., None], seeds]
            sums[start:stop, side] = item_means(picked.reshape(-1, k)).reshape(stop - start, n).sum(axis=1)
    return sums


def _safe_ratio(num: float, den: float) -> float:
    return float(num / den) if den != 0 else float("nan")


def _percentile_interval(draws: np.ndarray, alpha: float) -> tuple[float, float]:
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.percentile(draws, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return (float(lo), float(hi))


def _bca_interval(
    draws: np.ndarray, estimate: float, jackknife: np.ndarray, weights: np.ndarray, alpha: float
) -> tuple[float, float]:
    """Bias-corrected and accelerated interval (Efron 1987), with a weighted jackknife for acceleration."""
    finite = np.isfinite(draws)
    if not math.isfinite(estimate) or not finite.all():
        return _percentile_interval(draws, alpha)
    if np.ptp(draws) == 0:
        return (float(draws[0]), float(draws[0]))
    share_below = np.mean(draws < estimate)
    if share_below in (0.0, 1.0):
        return _percentile_interval(draws, alpha)
    z0 = special.ndtri(share_below)
    jackknife_ok = np.isfinite(jackknife)
    centred = np.average(jackknife[jackknife_ok], weights=weights[jackknife_ok]) - jackknife[jackknife_ok]
    w = weights[jackknife_ok]
    denominator = 6.0 * np.sum(w * centred**2) ** 1.5
    acceleration = float(np.sum(w * centred**3) / denominator) if denominator > 0 else 0.0
    bounds = []
    for z in (special.ndtri(alpha / 2), special.ndtri(1 - alpha / 2)):
        adjusted = special.ndtr(z0 + (z0 + z) / (1 - acceleration * (z0 + z)))
        bounds.append(float(np.percentile(draws, 100 * adjusted)))
    return (bounds[0], bounds[1])


def permutation_test(
    mean_a: np.ndarray, mean_b: np.ndarray, *, n_resamples: int = 10_000, rng: np.random.Generator
) -> PermutationResult:
    """Two-sided paired sign-flip test of mean(d), d_i = mean_b(i) - mean_a(i).

    Exact when the null distribution is small enough to enumerate (always for 0/1 scores), Monte Carlo
    otherwise, with the p-value defined as in ``scipy.stats.permutation_test``.
    """
    differences = np.asarray(mean_b, float) - np.asarray(mean_a, float)
    n = differences.size
    observed = float(differences.sum())
    support, weights, exact = sign_flip_null(differences, n_resamples, rng)
    # Relative tolerance so that float noise does not split ties (scipy does the same).
    gamma = abs(1e-14 * observed) + 1e-12
    if exact:
        less = float(weights[support <= observed + gamma].sum())
        greater = float(weights[support >= observed - gamma].sum())
    else:
        less = (np.sum(support <= observed + gamma) + 1) / (n_resamples + 1)
        greater = (np.sum(support >= observed - gamma) + 1) / (n_resamples + 1)
    p_value = min(1.0, 2 * min(less, greater))
    return PermutationResult(observed / n if n else 0.0, p_value, exact, 0 if exact else n_resamples)


def mcnemar_exact(score_a: np.ndarray, score_b: np.ndarray) -> McNemarResult:
    """Exact (binomial) McNemar test on paired 0/1 outcomes."""
    a = np.asarray(score_a) > 0.5
    b = np.asarray(score_b) > 0.5
    a_only = int(np.sum(a & ~b))
    b_only = int(np.sum(~a & b))
    discordant = a_only + b_only
    p_value = 1.0 if discordant == 0 else min(1.0, 2 * stats.binom.cdf(min(a_only, b_only), discordant, 0.5))
    return McNemarResult(a_only, b_only, float(p_value))


def _one_sided_t(values: np.ndarray, greater: bool) -> float:
    """p-value of H0: mean <= 0 (greater=True) or mean >= 0 (greater=False), one-sample t."""
    n = values.size
    mean = float(values.mean())
    sd = float(values.std(ddof=1)) if n > 1 else 0.0
    if n < 2:
        return 1.0
    if sd == 0.0:
        if mean == 0.0:
            return 1.0
        return 0.0 if (mean > 0) == greater else 1.0
    t_stat = mean / (sd / math.sqrt(n))
    return float(stats.t.sf(t_stat, n - 1) if greater else stats.t.cdf(t_stat, n - 1))


def tost(
    mean_a: np.ndarray,
    mean_b: np.ndarray,
    *,
    tolerance: float,
    margin_kind: MarginKind = "relative",
    mode: Mode = "equivalence",
) -> TostResult:
    """Two one-sided tests that B lies within the margin of A (or, non-inferiority, not below it).

    Relative margin: H0_lower: mu_B <= (1 - tol) mu_A, H0_upper: mu_B >= (1 + tol) mu_A, each tested
    as a paired one-sample t-test on e_i = b_i - (1 -/+ tol) a_i, which accounts for the uncertainty
    in mu_A instead of plugging in the observed score_a. Absolute margin: e_i = d_i +/- tol.

    With fewer than MIN_CHANGED_ITEMS_FOR_T changed items the t standard error is unreliable, so exact
    bounds are used: mu_B - mu_A >= -range * P(item got worse) and <= range * P(item got better), and
    each share is tested against margin/range by a binomial tail.
    """
    a = np.asarray(mean_a, float)
    b = np.asarray(mean_b, float)
    n = a.size
    score_a = float(a.mean()) if n else float("nan")
    if margin_kind == "relative":
        margin = tolerance * score_a
        lower_terms, upper_terms = b - (1 - tolerance) * a, b - (1 + tolerance) * a
    else:
        margin = tolerance
        lower_terms, upper_terms = b - a + tolerance, b - a - tolerance
    changed = int(np.sum(np.round(np.abs(b - a), 12) > 0))
    if n == 0 or not margin > 0:
        p_lower = p_upper = 1.0
        method = "undefined-margin"
    elif changed < MIN_CHANGED_ITEMS_FOR_T:
        # mu_B - mu_A >= -range * P(item got worse) and <= range * P(item got better): each side is an
        # exact binomial test that the share of worse (better) items is below margin / range.
        score_range = max(1.0, float(np.ptp(np.concatenate([a, b]))))
        share_bound = min(1.0, margin / score_range)
        worse = int(np.sum(np.round(a - b, 12) > 0))
        p_lower = float(stats.binom.cdf(worse, n, share_bound))
        p_upper = float(stats.binom.cdf(changed - worse, n, share_bound))
        method = "exact-changed-share"
    else:
        p_lower = _one_sided_t(lower_terms, greater=True)
        p_upper = _one_sided_t(upper_terms, greater=False)
        method = "paired-t"
    p_value = p_lower if mode == "non-inferiority" else max(p_lower, p_upper)
    return TostResult(p_value, p_lower, p_upper, margin, margin_kind, mode, method)


def variance_split(scores_a: np.ndarray, scores_b: np.ndarray) -> VarianceSplit:
    """Item vs seed variance per side, and the seed share of the variance of the paired differences."""

    def seed_variance(scores: np.ndarray) -> float | None:
        if scores.ndim < 2 or scores.shape[1] < 2:
            return None
        present = ~np.isnan(scores)
        counts = present.sum(axis=1)
        usable = counts >= 2
        if not usable.any():
            return None
        filled = np.where(present, scores, 0.0)[usable]
        counts = counts[usable]
        means = filled.sum(axis=1) / counts
        squares = (np.where(present[usable], filled - means[:, None], 0.0) ** 2).sum(axis=1)
        return float(np.mean(squares / (counts - 1)))

    mean_a, mean_b = item_means(scores_a), item_means(scores_b)
    k_a = scores_a.shape[1] if scores_a.ndim == 2 else 1
    k_b = scores_b.shape[1] if scores_b.ndim == 2 else 1
    seed_a, seed_b = seed_variance(scores_a), seed_variance(scores_b)
    diff_var = float(np.var(mean_b - mean_a, ddof=1)) if mean_a.size > 1 else 0.0
    seed_part = (seed_a or 0.0) / k_a + (seed_b or 0.0) / k_b
    item_part = max(0.0, diff_var - seed_part)
    return VarianceSplit(
        item_var_a=float(np.var(mean_a, ddof=1)) if mean_a.size > 1 else 0.0,
        item_var_b=float(np.var(mean_b, ddof=1)) if mean_b.size > 1 else 0.0,
        seed_var_a=seed_a,
        seed_var_b=seed_b,
        diff_item_var=item_part,
        diff_seed_var=min(seed_part, diff_var) if diff_var > 0 else seed_part,
        seed_share=min(1.0, seed_part / diff_var) if diff_var > 0 else 0.0,
    )


def power_analysis(
    mean_a: np.ndarray,
    mean_b: np.ndarray,
    variance: VarianceSplit,
    *,
    margin: float,
    alpha: float,
    seeds_per_side: int,
    conclusive: bool,
) -> PowerResult:
    """Normal-approximation power: the MDE at 80% power, and the items or seeds a conclusive verdict needs.

    The standard error is floored at the rule-of-three bound (3/n) so that a run with no changed items
    does not claim an MDE of zero.
    """
    d = np.asarray(mean_b, float) - np.asarray(mean_a, float)
    n = d.size
    score_a = float(np.mean(mean_a)) if n else float("nan")
    if n < 2:
        return PowerResult(float("nan"), None, None, None)
    sd = max(float(d.std(ddof=1)), 3.0 / n)
    se = sd / math.sqrt(n)
    z_power = stats.norm.ppf(POWER)
    mde = float((stats.norm.ppf(1 - alpha / 2) + z_power) * se)
    rel_mde = mde / score_a if score_a > 0 else None
    if conclusive:
        return PowerResult(mde, rel_mde, None, None)
    observed = abs(float(d.mean()))
    if margin > 0 and observed < margin:
        target_se = (margin - observed) / (stats.norm.ppf(1 - alpha) + z_power)  # to pass the TOST
    elif observed > 0:
        target_se = observed / (stats.norm.ppf(1 - alpha / 2) + z_power)  # to detect the difference
    else:
        return PowerResult(mde, rel_mde, None, None)
    items_needed = int(math.ceil((sd / target_se) ** 2)) if target_se > 0 else None
    seeds_needed = None
    seed_noise = (variance.seed_var_a or 0.0) + (variance.seed_var_b or 0.0)
    room = n * target_se**2 - variance.diff_item_var
    if seed_noise > 0 and room > 0:
        seeds_needed = max(seeds_per_side, int(math.ceil(seed_noise / room)))
    return PowerResult(mde, rel_mde, items_needed, seeds_needed)


def flip_counts(mean_a: np.ndarray, mean_b: np.ndarray) -> FlipCounts:
    """Count items whose majority outcome (item mean > 0.5) changed, by direction."""
    right_a = np.asarray(mean_a) > 0.5
    right_b = np.asarray(mean_b) > 0.5
    return FlipCounts(int(np.sum(~right_a & right_b)), int(np.sum(right_a & ~right_b)), int(right_a.size))


# ----------------------------------------------------------------------------------------------
# One benchmark


def compare_paired(
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    *,
    tolerance: float = 0.05,
    alpha: float = 0.05,
    mode: Mode = "equivalence",
    margin_kind: MarginKind = "relative",
    n_resamples: int = 10_000,
    n_permutations: int = 10_000,
    ci_method: Literal["BCa", "percentile"] = "BCa",
    seed_level_bootstrap: bool = False,
    rng: np.random.Generator | int | None = None,
) -> BenchmarkComparison:
    """Compare two environments on one benchmark from aligned (n_items, n_seeds) score matrices.

    Items with no successful run on either side are dropped and counted in ``n_missing``.
    """
    rng = np.random.default_rng(rng)
    scores_a = np.atleast_2d(np.asarray(scores_a, float).T).T
    scores_b = np.atleast_2d(np.asarray(scores_b, float).T).T
    if scores_a.shape[0] != scores_b.shape[0]:
        raise ValueError(f"item counts differ: {scores_a.shape[0]} vs {scores_b.shape[0]}")
    mean_a_all, mean_b_all = item_means(scores_a), item_means(scores_b)
    present = np.isfinite(mean_a_all) & np.isfinite(mean_b_all)
    n_missing = int((~present).sum())
    scores_a, scores_b = scores_a[present], scores_b[present]
    mean_a, mean_b = mean_a_all[present], mean_b_all[present]
    n = int(mean_a.size)
    if n < 2:
        raise ValueError(f"need at least 2 paired items with results on both sides, got {n}")
    score_a, score_b = float(mean_a.mean()), float(mean_b.mean())
    diff = score_b - score_a
    confidence = 1 - alpha
    boot = bootstrap_ci(
        mean_a,
        mean_b,
        n_resamples=n_resamples,
        confidence=confidence,
        method=ci_method,
        rng=rng,
        seed_level=(scores_a, scores_b) if seed_level_bootstrap else None,
    )
    perm = permutation_test(mean_a, mean_b, n_resamples=n_permutations, rng=rng)
    binary = np.isin(scores_a, (0.0, 1.0)).all() and np.isin(scores_b, (0.0, 1.0)).all()
    mcnemar = (
        mcnemar_exact(scores_a[:, 0], scores_b[:, 0])
        if binary and scores_a.shape[1] == 1 and scores_b.shape[1] == 1
        else None
    )
    equivalence = tost(mean_a, mean_b, tolerance=tolerance, margin_kind=margin_kind, mode=mode)
    variance = variance_split(scores_a, scores_b)
    note = None
    if margin_kind == "relative" and score_a <= 0:
        note = "score_a is 0, so a relative margin is 0: use an absolute margin"
    conclusive_hint = equivalence.p_value < alpha or perm.p_value < alpha
    power = power_analysis(
        mean_a,
        mean_b,
        variance,
        margin=equivalence.margin,
        alpha=alpha,
        seeds_per_side=max(scores_a.shape[1], scores_b.shape[1]),
        conclusive=conclusive_hint,
    )
    return BenchmarkComparison(
        n_items=n,
        n_missing=n_missing,
        n_runs_a=int(scores_a.shape[1]),
        n_runs_b=int(scores_b.shape[1]),
        score_a=score_a,
        score_b=score_b,
        diff=diff,
        rel_diff=_safe_ratio(diff, score_a),
        bootstrap=boot,
        permutation=perm,
        mcnemar=mcnemar,
        tost=equivalence,
        flips=flip_counts(mean_a, mean_b),
        variance=variance,
        power=power,
        n_changed=int(np.sum(np.round(np.abs(mean_b - mean_a), 12) > 0)),
        tolerance=tolerance,
        alpha=alpha,
        note=note,
    )


def compare_many(
    score_pairs: dict[str, tuple[np.ndarray, np.ndarray]], *, rng_seed: int | None = 0, **options
) -> dict[str, BenchmarkComparison]:
    """``compare_paired`` for several benchmarks, in parallel threads (numpy releases the GIL in the
    resampling), each with its own RNG stream spawned from ``rng_seed`` so results do not depend on
    scheduling."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    names = sorted(score_pairs)
    streams = np.random.SeedSequence(rng_seed).spawn(len(names))

    def one(index: int) -> BenchmarkComparison:
        a, b = score_pairs[names[index]]
        return compare_paired(a, b, rng=np.random.default_rng(streams[index]), **options)

    workers = max(1, min(len(names), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, range(len(names))))
    return dict(zip(names, results))
