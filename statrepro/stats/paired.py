"""Paired, item-level comparison of two environments on one benchmark.

Arrays in, frozen result objects out; no I/O. Inputs are score matrices of shape (n_items, n_seeds)
with rows aligned by item; NaN marks a missing (failed) run of an item. See ``docs/methodology.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np
from scipy import optimize, special, stats

from .advice import placed_need
from .missing import MissingRuns, count_missing_runs, filled_item_means
from .resampling import bootstrap_item_sums, jackknife_item_sums, sign_flip_tails
from .results import ResultMixin
from .rules import DEFAULT_RULES, MarginKind, Mode, VerdictRules


# Below this many items whose score changed, the t-based TOST is not trusted (its standard error is
# estimated from a handful of non-zero differences) and the exact changed-share bound is used instead.
MIN_CHANGED_ITEMS_FOR_T = 10
# Below this many changed items BCa's bias and acceleration estimates rest on a few atoms (measured: greedy
# A/A at 200 items covered 0.82-0.89), so the interval falls back to a score or percentile interval.
MIN_CHANGED_ITEMS_FOR_BCA = 30
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
    method: str | None = None  # exact-lattice, exact-enumeration or monte-carlo
    lattice_scale: int | None = None  # S with every S * d_i integral, when there is one


@dataclass(frozen=True)
class McNemarResult(ResultMixin):
    """Exact McNemar test on one 0/1 run per side."""

    a_only: int  # items right in A, wrong in B
    b_only: int  # items wrong in A, right in B
    p_value: float


@dataclass(frozen=True)
class TostResult(ResultMixin):
    """Tests of the difference against the margin, in both directions.

    The equivalence side (TOST) asks "is B within the margin?"; the reverse side asks "is B clearly beyond it?"
    (the claim behind ``different``). Each side is a pair of one-sided tests of the same statistic.
    """

    p_value: float  # TOST: max(p_lower, p_upper), or p_lower alone for non-inferiority
    p_lower: float  # H0: B is at or below the lower margin
    p_upper: float  # H0: B is at or above the upper margin
    p_beyond: float  # H0: B lies within the margin (two-sided; small = B is clearly outside it)
    margin: float  # absolute margin on the score scale at score_a
    margin_kind: str
    mode: str
    method: str  # "skew-corrected-t", "restricted-score", "exact-changed-share", "undefined-margin", "no-score-range"
    ci: tuple[float, float]  # the difference's interval at 1 - 2 alpha: the one the TOST corresponds to
    ci_level: float


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
    """Minimum detectable difference and the data a conclusive verdict would need.

    The needs are ranges because they depend on the true difference, which is only estimated: the first
    figure assumes the observed difference is the truth, the range spans the difference +/- one standard error.
    A need is given only where the pilot places it (``advice.placed_need``); otherwise it is None and
    ``items_withheld`` / ``seeds_withheld`` say why, and the MDE is what the data supports.
    """

    mde: float  # absolute, two-sided, at 80% power
    rel_mde: float | None
    items_needed: int | None  # total items (at the current seeds) for 80% power to conclude; None if conclusive
    seeds_needed: int | None  # total seeds per side (at the current items); None if seeds cannot suffice
    items_needed_range: tuple[int | None, int | None] | None = None  # None inside: no finite size suffices
    seeds_needed_range: tuple[int | None, int | None] | None = None
    items_withheld: str | None = None  # why no items_needed is given for an inconclusive result (stats/advice.py)
    seeds_withheld: str | None = None


@dataclass(frozen=True)
class FlipCounts(ResultMixin):
    """Items whose majority outcome changed between A and B.

    An item is right when its mean score is above 0.5 and wrong below it; exactly 0.5 (a tie of an even
    number of seeds) is neither, so moving to or from a tie is not a flip.
    """

    up: int  # wrong in A, right in B
    down: int  # right in A, wrong in B
    n_items: int
    expected_rate: float | None = None  # flip rate expected from seed noise alone (A/A), for 0/1 scores

    @property
    def rate(self) -> float:
        return (self.up + self.down) / self.n_items if self.n_items else float("nan")


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
    differences = mean_b - mean_a
    changed = changed_items(mean_a, mean_b)
    if method == "BCa" and seed_level is None:
        if np.isin(differences, (-1.0, 0.0, 1.0)).all():
            # Flips of 0/1 outcomes (one run, or a greedy engine): paired proportions, for which Tango's score
            # interval is the well-calibrated one; BCa on these sparse atoms undercovered (0.82-0.93 measured).
            up, down = int(np.sum(differences > 0)), int(np.sum(differences < 0))
            return BootstrapCI(
                paired_score_interval(up, down, n, confidence), _percentile_interval(boot_rel, alpha),
                "score", confidence, n_resamples,
            )
        if changed < MIN_CHANGED_ITEMS_FOR_BCA:
            # Few changed items: the bootstrap distribution is a handful of atoms and BCa's z0 and acceleration
            # are unstable.
            method = "percentile"
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


def paired_score_interval(
    up: int, down: int, n: int, confidence: float, *, skewness_guard: bool = True
) -> tuple[float, float]:
    """Tango's (1998) score interval for p_up - p_down of n paired 0/1 outcomes.

    Inverts Z(delta) = (up - down - n delta) / sqrt(n (2 q + delta (1 - delta))), with q the maximum likelihood
    estimate of p_down under delta; it stays well-behaved with few or no discordant pairs, where Wald and
    bootstrap intervals collapse to a point.

    With ``skewness_guard`` each bound is moved out to where the skewness-corrected statistic crosses its
    Cornish-Fisher critical value, when that is wider. When the flips go mostly one way, up - down is skewed and
    Tango's far bound is too close (the truth lay beyond it in up to 4% of draws against 2.5%); at one or two
    expected flips the correction itself overshoots, so it only ever widens.
    """
    critical = float(stats.norm.ppf(1 - (1 - confidence) / 2))

    def z_and_skew(delta: float) -> tuple[float, float]:
        quad_b = -up - down + delta * (2 * n - up + down)
        quad_c = -down * delta * (1 - delta)
        q = (-quad_b + math.sqrt(max(0.0, quad_b**2 - 8 * n * quad_c))) / (4 * n)
        per_item = 2 * q + delta * (1 - delta)  # variance of one item's up - down indicator under delta
        residual = up - down - n * delta
        if per_item <= 0:
            return (0.0 if residual == 0 else math.copysign(math.inf, residual)), 0.0
        third = (q + delta) * (1 - delta) ** 3 - q * (1 + delta) ** 3 + (1 - 2 * q - delta) * (-delta) ** 3
        return residual / math.sqrt(n * per_item), third / per_item**1.5 / math.sqrt(n)

    estimate = (up - down) / n
    edge = 1 - 1e-12

    def bound(target: Callable[[float], float], start: float, stop: float) -> float:
        def gap(delta: float) -> float:
            return z_and_skew(delta)[0] - target(delta)

        if gap(stop) * gap(start) > 0:
            return stop
        return float(optimize.brentq(gap, start, stop, xtol=1e-12))

    low = bound(lambda delta: critical, estimate, -edge)
    high = bound(lambda delta: -critical, estimate, edge)
    if skewness_guard:
        shift = (critical**2 - 1) / 6
        low = min(low, bound(lambda delta: critical + z_and_skew(delta)[1] * shift, estimate, -edge))
        high = max(high, bound(lambda delta: -critical + z_and_skew(delta)[1] * shift, estimate, edge))
    return (low, high)


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
    # Resamples equal to the estimate count one half: with few changed items most resamples tie it, and
    # leaving them out biased z0 so far that intervals collapsed onto [0, 0].
    share_below = np.mean(draws < estimate) + 0.5 * np.mean(draws == estimate)
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
    mean_a: np.ndarray,
    mean_b: np.ndarray,
    *,
    n_resamples: int = 10_000,
    rng: np.random.Generator,
    lattice_scale: int | None = None,
) -> PermutationResult:
    """Two-sided paired sign-flip test of mean(d), d_i = mean_b(i) - mean_a(i).

    Exact on the integer lattice ``d = j / S`` that seed-averaged scores live on (``S`` the lcm of the seed
    counts times the scores' denominator; inferred from the data up to 5040, or given as ``lattice_scale``),
    at any n: the null is convolved, by FFT when large. Without a lattice (continuous scores): exact
    enumeration for few items, else ``n_resamples`` Monte Carlo draws. The p-value is defined as in
    ``scipy.stats.permutation_test``: ``min(1, 2 * min(P(T <= t), P(T >= t)))``. The item means must be finite.
    """

    differences = np.asarray(mean_b, float) - np.asarray(mean_a, float)
    n = differences.size
    tails = sign_flip_tails(differences, n_resamples, rng, lattice_scale=lattice_scale)
    p_value = min(1.0, 2 * min(tails.less, tails.greater))
    return PermutationResult(
        float(differences.sum()) / n if n else 0.0,
        p_value,
        tails.exact,
        tails.n_resamples,
        method=tails.method,
        lattice_scale=tails.lattice_scale,
    )


def mcnemar_exact(score_a: np.ndarray, score_b: np.ndarray) -> McNemarResult:
    """Exact (binomial) McNemar test on paired 0/1 outcomes."""
    a = np.asarray(score_a) > 0.5
    b = np.asarray(score_b) > 0.5
    a_only = int(np.sum(a & ~b))
    b_only = int(np.sum(~a & b))
    discordant = a_only + b_only
    p_value = 1.0 if discordant == 0 else min(1.0, 2 * stats.binom.cdf(min(a_only, b_only), discordant, 0.5))
    return McNemarResult(a_only, b_only, float(p_value))


def _skew_moments(values: np.ndarray) -> tuple[float, float, float] | None:
    """(mean, standard error, skewness) of the values; None when they do not vary."""
    n = values.size
    mean = float(values.mean())
    centred = values - mean
    second = float(np.mean(centred**2))
    if second <= 1e-24:
        return None
    standard_error = math.sqrt(second / (n - 1))  # sd with ddof=1, over sqrt(n)
    return mean, standard_error, float(np.mean(centred**3)) / second**1.5


def _hall_transform(t_stat: float, skew: float, n: int) -> float:
    """Hall's (1992) monotone cubic transformation of a t statistic, removing its n^-1/2 skewness term."""
    return t_stat + skew * (2 * t_stat**2 + 1) / (6 * math.sqrt(n)) + skew**2 * t_stat**3 / (27 * n)


def _skew_corrected_p(values: np.ndarray, greater: bool) -> float:
    """One-sided p of H0: E[v] <= 0 (greater=True) or E[v] >= 0, by a skewness-corrected t statistic.

    The plain t statistic is skewed whenever the item differences are (high accuracy, rare flips that go one
    way), which made the TOST oversized at the margin; Hall's transformation corrects that.
    """
    n = values.size
    if n < 2:
        return 1.0
    moments = _skew_moments(values)
    if moments is None:
        mean = float(values.mean())
        if mean == 0.0:
            return 1.0
        return 0.0 if (mean > 0) == greater else 1.0
    mean, standard_error, skew = moments
    corrected = _hall_transform(mean / standard_error, skew, n)
    cdf = float(special.stdtr(n - 1, corrected))
    return 1.0 - cdf if greater else cdf


def _restricted_score_p(values: np.ndarray, greater: bool) -> float | None:
    """One-sided p of H0: E[v] <= 0 (greater=True) or E[v] >= 0 by the score statistic whose variance is the
    maximum-likelihood one under E[v] = 0; None when 0 is not strictly inside the range of the values.

    For 0/1 item means, ``v`` takes one value per cell of the paired 2 x 2 table, and the restricted maximum
    likelihood cell shares are w_j = x_j / (n (1 + lam v_j)) with sum_j w_j v_j = 0 (Tango's restricted estimate
    for an absolute margin, its ratio analogue for a relative one). The sample SD of rare flips moves with their
    count, which left the skew-corrected t oversized at a relative margin for greedy engines that churn (0.052
    pooled over 80,000 simulations, 0.054 in the audit); the restricted variance does not.
    """
    support, counts = np.unique(np.round(values, 12), return_counts=True)
    if not (support.min() < 0 < support.max()):
        return None
    n = int(counts.sum())
    low, high = -1 / support.max(), -1 / support.min()

    def restricted_mean(lam: float) -> float:
        return float(np.sum(counts * support / (1 + lam * support)))

    span = high - low
    lam = optimize.brentq(restricted_mean, low + 1e-12 * span, high - 1e-12 * span, xtol=1e-14)
    variance = float(np.sum(counts / (n * (1 + lam * support)) * support**2))
    z = float(support @ counts) / math.sqrt(n * variance)
    return float(special.ndtr(-z)) if greater else float(special.ndtr(z))


def _binary_one_sided_p(values: np.ndarray, greater: bool) -> float:
    """A one-sided test of the TOST for 0/1 item means: the restricted score test, or the skew-corrected t when
    every value lies on one side of 0 (no flip against the tested direction)."""
    p_value = _restricted_score_p(values, greater)
    return _skew_corrected_p(values, greater) if p_value is None else p_value


def _inverted_interval(differences: np.ndarray, level: float) -> tuple[float, float]:
    """The interval of mean(d) whose bounds the one-sided skew-corrected tests at ``level`` just reject.

    Shifting d moves its mean but not its SD or skewness, so each bound solves the monotone cubic once.
    """
    n = differences.size
    moments = _skew_moments(differences) if n > 1 else None
    if moments is None:
        mean = float(differences.mean()) if n else math.nan
        return (mean, mean)
    mean, standard_error, skew = moments
    critical = float(special.stdtrit(n - 1, 1 - level))

    def solve(target: float) -> float:
        span = 1.0
        while _hall_transform(-span, skew, n) > target or _hall_transform(span, skew, n) < target:
            span *= 2
        return float(optimize.brentq(lambda t: _hall_transform(t, skew, n) - target, -span, span, xtol=1e-12))

    return (mean - solve(critical) * standard_error, mean - solve(-critical) * standard_error)


def _changed_share_interval(
    worse: int, better: int, n: int, score_range: float, level: float
) -> tuple[float, float]:
    """mean(d) lies in [-R * P(worse), R * P(better)]: bound each share by its exact one-sided upper limit."""
    def upper(count: int) -> float:
        return 1.0 if count >= n else float(stats.beta.ppf(1 - level, count + 1, n - count))

    return (-score_range * upper(worse), score_range * upper(better))


def tost(
    mean_a: np.ndarray,
    mean_b: np.ndarray,
    *,
    tolerance: float,
    margin_kind: MarginKind = "relative",
    mode: Mode = "equivalence",
    alpha: float = 0.05,
    score_bounds: tuple[float, float] | None = (0.0, 1.0),
) -> TostResult:
    """Tests of B against the margin around A: equivalence (TOST) or non-inferiority, and the reverse tests.

    Relative margin: H0_lower: mu_B <= (1 - tol) mu_A, H0_upper: mu_B >= (1 + tol) mu_A, each tested on
    e_i = b_i - (1 -/+ tol) a_i, which carries the uncertainty of mu_A instead of plugging in score_a.
    Absolute margin: e_i = d_i +/- tol. Each one-sided test is a skewness-corrected t.

    With fewer than MIN_CHANGED_ITEMS_FOR_T changed items the standard error is unreliable, so the TOST uses
    exact bounds instead: mu_B - mu_A >= -R * P(item got worse) and <= R * P(item got better), each share
    tested against margin / R by a binomial tail, where R is the width of the metric's declared range
    (``score_bounds``; None = unknown, and then no exact test is possible).
    """
    a = np.asarray(mean_a, float)
    b = np.asarray(mean_b, float)
    n = a.size
    score_a = float(a.mean()) if n else float("nan")
    differences = b - a
    if margin_kind == "relative":
        margin = tolerance * score_a
        lower_terms, upper_terms = b - (1 - tolerance) * a, b - (1 + tolerance) * a
    else:
        margin = tolerance
        lower_terms, upper_terms = differences + tolerance, differences - tolerance
    changed = changed_items(a, b)
    ci_level = 1 - 2 * alpha
    if n < 2:
        return TostResult(1.0, 1.0, 1.0, 1.0, margin, margin_kind, mode, "undefined-margin", (math.nan, math.nan), ci_level)
    # The reverse tests are defined whatever the margin: B is clearly below (1 - tol) A, or above (1 + tol) A.
    p_below = _skew_corrected_p(lower_terms, greater=False)
    p_above = _skew_corrected_p(upper_terms, greater=True)
    p_beyond = min(1.0, 2 * (p_below if mode == "non-inferiority" else min(p_below, p_above)))
    if not margin > 0:
        p_lower = p_upper = 1.0
        method = "undefined-margin"
        ci = _inverted_interval(differences, alpha)
    elif changed < MIN_CHANGED_ITEMS_FOR_T:
        if score_bounds is None:
            p_lower = p_upper = 1.0
            method = "no-score-range"
            ci = _inverted_interval(differences, alpha)
        else:
            score_range = float(score_bounds[1] - score_bounds[0])
            share_bound = min(1.0, margin / score_range)
            worse = int(np.sum(np.round(a - b, 12) > 0))
            p_lower = float(stats.binom.cdf(worse, n, share_bound))
            p_upper = float(stats.binom.cdf(changed - worse, n, share_bound))
            method = "exact-changed-share"
            ci = _changed_share_interval(worse, changed - worse, n, score_range, alpha)
    elif np.isin(a, (0.0, 1.0)).all() and np.isin(b, (0.0, 1.0)).all():
        # Flips of 0/1 outcomes (one run, or a greedy engine): the restricted score test, whose inversion for
        # an absolute margin is Tango's interval, the one reported.
        p_lower = _binary_one_sided_p(lower_terms, greater=True)
        p_upper = _binary_one_sided_p(upper_terms, greater=False)
        method = "restricted-score"
        up, down = int(np.sum(differences > 0)), int(np.sum(differences < 0))
        ci = paired_score_interval(up, down, n, ci_level, skewness_guard=False)
    else:
        p_lower = _skew_corrected_p(lower_terms, greater=True)
        p_upper = _skew_corrected_p(upper_terms, greater=False)
        method = "skew-corrected-t"
        ci = _inverted_interval(differences, alpha)
    p_value = p_lower if mode == "non-inferiority" else max(p_lower, p_upper)
    return TostResult(p_value, p_lower, p_upper, p_beyond, margin, margin_kind, mode, method, ci, ci_level)


def changed_items(mean_a: np.ndarray, mean_b: np.ndarray) -> int:
    """Items whose mean score differs at all between the sides."""
    return int(np.sum(np.round(np.abs(np.asarray(mean_b) - np.asarray(mean_a)), 12) > 0))


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


def _tost_power(
    n: int, delta: float, margin: float, sd_lower: float, sd_upper: float, alpha: float, mode: str
) -> float:
    """Normal-approximation power of the two one-sided tests at n items, for a true difference delta."""
    z = float(special.ndtri(1 - alpha))
    lower = special.ndtr((delta + margin) * math.sqrt(n) / sd_lower - z)
    if mode == "non-inferiority":
        return float(lower)
    upper = special.ndtr((margin - delta) * math.sqrt(n) / sd_upper - z)
    return float(max(0.0, lower + upper - 1))


def _binomial_critical(n: int, share_bound: float, alpha: float) -> int:
    """The largest count c with BinomCDF(c; n, share_bound) < alpha (-1 when there is none)."""
    guess = special.bdtrik(alpha, n, share_bound)
    critical = int(math.floor(guess)) if math.isfinite(guess) else -1
    critical = min(max(critical, -1), n)
    while critical >= 0 and special.bdtr(critical, n, share_bound) >= alpha:
        critical -= 1
    while critical < n and special.bdtr(critical + 1, n, share_bound) < alpha:
        critical += 1
    return critical


def _exact_share_power(n: int, worse_share: float, better_share: float, share_bound: float, alpha: float, mode: str) -> float:
    """Power of the exact changed-share test at n items: each side passes when its count is at most the
    binomial critical value against share_bound."""
    critical = _binomial_critical(n, share_bound, alpha)
    if critical < 0:
        return 0.0
    lower = float(special.bdtr(critical, n, worse_share))
    return lower if mode == "non-inferiority" else lower * float(special.bdtr(critical, n, better_share))


def _smallest(predicate, start: int, cap: int = 10_000_000) -> int | None:
    """The smallest integer >= start meeting a predicate that is monotone beyond it (None above cap)."""
    low, high = start, max(start, 2)
    while not predicate(high):
        low, high = high, high * 2
        if high > cap:
            return None
    while low < high:
        middle = (low + high) // 2
        if predicate(middle):
            high = middle
        else:
            low = middle + 1
    return high


def power_analysis(
    mean_a: np.ndarray,
    mean_b: np.ndarray,
    variance: VarianceSplit,
    *,
    tolerance: float,
    margin: float,
    margin_kind: str,
    mode: str,
    alpha: float,
    seeds_per_side: int,
    conclusive: bool,
    score_range: float | None,
) -> PowerResult:
    """The MDE at 80% power, and the items or seeds a conclusive verdict needs (as ranges).

    Passing needs both one-sided tests of the TOST, each on its own e_i (their SDs differ for a relative
    margin); when fewer than MIN_CHANGED_ITEMS_FOR_T changed items are expected the exact changed-share test
    applies instead, whose power is binomial. A difference beyond the margin needs the reverse test at alpha/2.
    Seeds shrink only the seed part of var(d_i) (its item part stays), which bounds what more seeds can do.
    The MDE's standard error is floored at the rule-of-three bound (3/n), so no changed items do not claim 0.
    """
    a, b = np.asarray(mean_a, float), np.asarray(mean_b, float)
    d = b - a
    n = d.size
    score_a = float(np.mean(a)) if n else float("nan")
    if n < 2:
        return PowerResult(float("nan"), None, None, None)
    sd = max(float(d.std(ddof=1)), 3.0 / n)
    se = sd / math.sqrt(n)
    z_power = float(special.ndtri(POWER))
    z_two_sided = float(special.ndtri(1 - alpha / 2))
    mde = (z_two_sided + z_power) * se
    rel_mde = mde / score_a if score_a > 0 else None
    observed = float(d.mean())
    if conclusive or not margin > 0 or (observed == 0 and sd <= 3.0 / n and margin <= 0):
        return PowerResult(mde, rel_mde, None, None)
    if margin_kind == "relative":
        sd_lower = max(float(np.std(b - (1 - tolerance) * a, ddof=1)), 3.0 / n)
        sd_upper = max(float(np.std(b - (1 + tolerance) * a, ddof=1)), 3.0 / n)
    else:
        sd_lower = sd_upper = sd
    worse_share = float(np.mean(np.round(a - b, 12) > 0))
    better_share = float(np.mean(np.round(b - a, 12) > 0))
    seed_part = variance.diff_seed_var  # of var(d_i) at the current seeds
    item_part = variance.diff_item_var

    def conclusive_power(items: int, delta: float, scale: float = 1.0) -> float:
        """Chance of a conclusive verdict at ``items`` items, SDs scaled by ``scale`` (fewer seed noise)."""
        beyond = delta < -margin if mode == "non-inferiority" else abs(delta) > margin
        if beyond:
            return float(special.ndtr((abs(delta) - margin) * math.sqrt(items) / (sd * scale) - z_two_sided))
        if (worse_share + better_share) * items < MIN_CHANGED_ITEMS_FOR_T and score_range:
            return _exact_share_power(items, worse_share, better_share, min(1.0, margin / score_range), alpha, mode)
        return _tost_power(items, delta, margin, sd_lower * scale, sd_upper * scale, alpha, mode)

    def items_for(delta: float) -> int | None:
        if abs(abs(delta) - margin) < 1e-12:
            return None  # exactly at the margin neither verdict is reachable with 80% power
        return _smallest(lambda items: conclusive_power(items, delta) >= POWER, 2)

    def seeds_for(delta: float) -> int | None:
        if seed_part <= 0 or abs(abs(delta) - margin) < 1e-12:
            return None
        total = item_part + seed_part

        def scale(seeds: int) -> float:
            return math.sqrt((item_part + seed_part * seeds_per_side / seeds) / total) if total > 0 else 1.0

        found = _smallest(lambda seeds: conclusive_power(n, delta, scale(seeds)) >= POWER, seeds_per_side, cap=10_000)
        return found

    # Across the difference's plausible range the need is unbounded where that range reaches the margin.
    low, high = observed - se, observed + se
    unbounded = any(low <= edge <= high for edge in (-margin, margin))
    central_items, central_seeds = items_for(observed), seeds_for(observed)
    changed = changed_items(a, b)
    items = placed_need(central_items, _needs_range([central_items, items_for(low), items_for(high)], unbounded),
                        changed, MIN_CHANGED_ITEMS_FOR_T)
    seeds = placed_need(central_seeds, _needs_range([central_seeds, seeds_for(low), seeds_for(high)], unbounded),
                        changed, MIN_CHANGED_ITEMS_FOR_T)
    return PowerResult(
        mde, rel_mde, items.need, seeds.need, items.need_range, seeds.need_range, items.withheld, seeds.withheld
    )


def _needs_range(needs: list[int | None], unbounded: bool) -> tuple[int | None, int | None]:
    """(fewest, most) of a list of needs where None means no finite amount suffices."""
    finite = [need for need in needs if need is not None]
    return (min(finite) if finite else None, None if unbounded or len(finite) < len(needs) else max(finite))


def flip_counts(mean_a: np.ndarray, mean_b: np.ndarray, expected_rate: float | None = None) -> FlipCounts:
    """Count items whose majority outcome changed between right (> 0.5) and wrong (< 0.5), by direction."""
    mean_a, mean_b = np.asarray(mean_a), np.asarray(mean_b)
    up = int(np.sum((mean_a < 0.5) & (mean_b > 0.5)))
    down = int(np.sum((mean_a > 0.5) & (mean_b < 0.5)))
    return FlipCounts(up, down, int(mean_a.size), expected_rate)


def expected_flip_rate(scores_a: np.ndarray, scores_b: np.ndarray) -> float | None:
    """The flip rate that seed noise alone gives two runs of one environment (the A/A expectation).

    Under "A and B are the same", an item's runs on both sides are exchangeable: given its pooled runs, A's share
    of the successes is hypergeometric, and the chance that the two majorities disagree follows exactly. Only
    for 0/1 scores with at least two runs per side (one run each cannot tell seed noise from a real change).
    """
    present_a, present_b = ~np.isnan(scores_a), ~np.isnan(scores_b)
    if not (np.isin(scores_a[present_a], (0.0, 1.0)).all() and np.isin(scores_b[present_b], (0.0, 1.0)).all()):
        return None
    runs_a, runs_b = present_a.sum(axis=1), present_b.sum(axis=1)
    if runs_a.min() < 2 or runs_b.min() < 2:
        return None
    successes = (np.nansum(scores_a, axis=1) + np.nansum(scores_b, axis=1)).astype(int)
    cases, counts = np.unique(np.column_stack([runs_a, runs_b, successes]), axis=0, return_counts=True)
    total = 0.0
    for (k_a, k_b, s), count in zip(cases, counts):
        in_a = np.arange(max(0, s - k_b), min(k_a, s) + 1)
        weights = stats.hypergeom.pmf(in_a, k_a + k_b, s, k_a)
        right_a, wrong_a = 2 * in_a > k_a, 2 * in_a < k_a
        right_b, wrong_b = 2 * (s - in_a) > k_b, 2 * (s - in_a) < k_b
        total += count * float(weights @ ((right_a & wrong_b) | (wrong_a & right_b)))
    return total / len(successes)


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
    rng = np.random.default_rng(rng)
    scores_a, scores_b = _compare_paired_iv(scores_a, scores_b, score_bounds)
    tolerance, alpha, mode, margin_kind = rules.tolerance, rules.alpha, rules.mode, rules.margin_kind
    missing = count_missing_runs(scores_a, scores_b)
    all_a, all_b = scores_a, scores_b
    present = np.ones(scores_a.shape[0], bool)
    present[list(missing.items)] = False
    scores_a, scores_b = scores_a[present], scores_b[present]
    mean_a, mean_b = item_means(scores_a), item_means(scores_b)
    n = int(mean_a.size)
    if n < 2:
        raise ValueError(f"need at least 2 paired items with results on both sides, got {n}")
    score_a, score_b = float(mean_a.mean()), float(mean_b.mean())
    diff = score_b - score_a
    boot = bootstrap_ci(
        mean_a,
        mean_b,
        n_resamples=rules.n_resamples,
        confidence=1 - alpha,
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
    margin_options = dict(tolerance=tolerance, margin_kind=margin_kind, mode=mode, alpha=alpha, score_bounds=score_bounds)
    equivalence = tost(mean_a, mean_b, **margin_options)
    worst_case_tost_p, tipping_beyond_p = tipping_point(all_a, all_b, missing, diff, margin_options)
    variance = variance_split(scores_a, scores_b)
    note = None
    if margin_kind == "relative" and score_a <= 0:
        note = "score_a is 0, so a relative margin is 0: use an absolute margin"
    conclusive_hint = equivalence.p_value < alpha or equivalence.p_beyond < alpha
    power = power_analysis(
        mean_a,
        mean_b,
        variance,
        tolerance=tolerance,
        margin=equivalence.margin,
        margin_kind=margin_kind,
        mode=mode,
        alpha=alpha,
        seeds_per_side=max(scores_a.shape[1], scores_b.shape[1]),
        conclusive=conclusive_hint,
        score_range=None if score_bounds is None else float(score_bounds[1] - score_bounds[0]),
    )
    return BenchmarkComparison(
        n_items=n,
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
        flips=flip_counts(mean_a, mean_b, expected_flip_rate(scores_a, scores_b)),
        variance=variance,
        power=power,
        n_changed=changed_items(mean_a, mean_b),
        missing=missing,
        note=note,
        worst_case_tost_p=worst_case_tost_p,
        tipping_beyond_p=tipping_beyond_p,
        score_bounds=score_bounds,
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
