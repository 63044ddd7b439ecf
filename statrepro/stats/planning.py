"""Planning a comparison before it is run: the items a benchmark needs to pass when B equals A, and the smallest
margin certifiable with the items at hand, beside what TensorRT-LLM's unpaired gate certifies with the same
guarantees (``statrepro plan`` and the planning table of every report).

The input is the A/A noise of a benchmark (``AANoise``): how much the per-item scores of two runs of the same
environment differ. It comes from a stated flip rate (greedy engines), from an A/A pilot (two runs of A, item
by item) or from a baseline's seeds. The guarantees are the verdict's: the margin test is held to ``alpha`` at
the margin (so a true loss of the margin passes at most ``alpha`` of the time), and the plan asks for 80% power
to pass when B equals A. The power is ``stats.power``'s: the TOST's normal approximation with each one-sided
test's own SD, or the exact changed-share test's binomial power where fewer than 10 changed items are expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from .power import POWER, _exact_share_power, _smallest, _tost_power
from .results import ResultMixin
from .rules import DEFAULT_RULES, MarginKind, Mode
from .tests import MIN_CHANGED_ITEMS_FOR_T

# TensorRT-LLM's accuracy gate assumes an SD of 50 points per item on a 0-100 scale (the largest a 0/1 score
# can have), and an unpaired comparison: Var(score_B - reference) = 2 sigma^2 / n.
TRT_SIGMA = 0.5


@dataclass(frozen=True)
class AANoise(ResultMixin):
    """How two runs of the same environment differ on one benchmark, item by item (``d_i = b_i - a_i``)."""

    accuracy: float  # mean of A's item scores
    var_a: float  # between-item variance of A's item means
    var_d: float  # variance of d_i when B equals A
    cov_da: float  # cov(d_i, a_i): a relative margin's one-sided tests use d_i -/+ tolerance * a_i
    changed_share: float  # share of items whose score differs (the flip rate of a greedy engine)
    source: str  # "stated" (a flip rate), "A/A pilot", "baseline seeds" or "A vs B" (a report)


def noise_from_flip_rate(accuracy: float, flip_rate: float) -> AANoise:
    """A greedy engine at ``accuracy`` whose A/A runs flip ``flip_rate`` of the items, half each way (as
    ``simulate.GreedyScenario``): d_i is -1 or +1 with probability flip_rate / 2 each, and the -1s are items A got
    right, so cov(d, a) = -flip_rate / 2."""
    if not 0 <= flip_rate <= 1:
        raise ValueError(f"flip rate must be in [0, 1], got {flip_rate}")
    if not 0 < accuracy < 1:
        raise ValueError(f"accuracy must be in (0, 1), got {accuracy}")
    if flip_rate > 2 * min(accuracy, 1 - accuracy):
        raise ValueError(f"flip rate {flip_rate:g} is not reachable at accuracy {accuracy:g} (half the flips go each way)")
    return AANoise(accuracy, accuracy * (1 - accuracy), flip_rate, -flip_rate / 2, flip_rate, "stated")


def noise_from_pair(mean_a: np.ndarray, mean_b: np.ndarray, source: str = "A/A pilot") -> AANoise:
    """The noise of an A/A pilot: A's and A''s item means (items in the same order, at least 2). A report plans
    from its own A vs B (``source``), taking their differences as the noise a rerun would see."""
    a, b = np.asarray(mean_a, float), np.asarray(mean_b, float)
    if a.size < 2 or a.shape != b.shape:
        raise ValueError("an A/A pilot needs at least 2 items, paired")
    d = b - a
    cov = float(np.cov(d, a, ddof=1)[0, 1])
    changed = float(np.mean(np.round(np.abs(d), 12) > 0))
    return AANoise(float(a.mean()), float(a.var(ddof=1)), float(d.var(ddof=1)), cov, changed, source)


def noise_from_baseline(scores: np.ndarray, flip_rate: float | None = None) -> AANoise:
    """The noise of A against a fresh run of itself, from one baseline's score matrix (items x runs, NaN = missing).

    The entry point for baselines: with ``flip_rate`` it is ``noise_from_flip_rate`` at the baseline's accuracy.
    Otherwise the runs of an item are its replicates: with seed variance s_i^2 and k runs, a fresh k-run mean
    differs by Var(d_i) = 2 s_i^2 / k and cov(d_i, a_i) = -s_i^2 / k; for 0/1 scores the share of items that change
    comes from a Beta fit of the item rates (``_changed_share_of_rates``). A greedy baseline (every run of every
    item agrees) says nothing about flips, so it needs ``flip_rate``.
    """
    scores = np.asarray(scores, float)
    scores = scores[:, None] if scores.ndim == 1 else scores
    runs = np.sum(~np.isnan(scores), axis=1)
    scores, runs = scores[runs > 0], runs[runs > 0]
    if runs.size < 2:
        raise ValueError("a baseline needs at least 2 items with a result")
    means = np.nanmean(scores, axis=1)
    if flip_rate is not None:
        return noise_from_flip_rate(float(means.mean()), flip_rate)
    replicated = runs >= 2
    seed_var = np.zeros(runs.size)
    seed_var[replicated] = np.nanvar(scores[replicated], axis=1, ddof=1)
    if not np.any(seed_var > 0):
        raise ValueError("the baseline's runs agree on every item (a greedy engine): state a flip rate")
    binary = bool(np.isin(scores[~np.isnan(scores)], (0.0, 1.0)).all())
    changed = _changed_share_of_rates(means[replicated], runs[replicated]) if binary else float(np.mean(seed_var > 0))
    return AANoise(
        float(means.mean()), float(means.var(ddof=1)), float(np.mean(2 * seed_var / runs)), float(-np.mean(seed_var / runs)),
        changed, "baseline seeds",
    )


def _changed_share_of_rates(rates: np.ndarray, runs: np.ndarray) -> float:
    """P(two fresh k-run means of an item differ) for 0/1 scores, k the usual run count. Plugging each item's
    observed rate in says an item right in every run never changes, so the item rates p are fitted a Beta
    distribution by moments (E[p] and E[p^2] estimated without bias from the counts), and
    P(same) = sum_j C(k, j)^2 B(a + 2j, b + 2k - 2j) / B(a, b) in closed form."""
    k = int(np.bincount(runs).argmax())
    counts = rates * runs
    mean = float(np.mean(rates))
    second = float(np.mean(counts * (counts - 1) / (runs * (runs - 1))))
    spread = second - mean**2
    j = np.arange(k + 1)
    if spread <= 0 or mean in (0.0, 1.0):  # every item at the same rate: binomial
        return float(1 - np.sum(stats.binom.pmf(j, k, mean) ** 2))
    concentration = mean * (1 - mean) / spread - 1
    a, b = mean * concentration, (1 - mean) * concentration
    log_terms = 2 * special.gammaln(k + 1) - 2 * special.gammaln(j + 1) - 2 * special.gammaln(k - j + 1)
    log_terms += special.betaln(a + 2 * j, b + 2 * k - 2 * j) - special.betaln(a, b)
    return float(1 - np.exp(log_terms).sum())


@dataclass(frozen=True)
class BenchmarkPlan(ResultMixin):
    """One benchmark's plan. Margins are on the score's scale (a relative margin is tolerance x accuracy); the
    TensorRT-LLM figures are its unpaired test held to the same guarantees (alpha at the margin, 80% power)."""

    n_items: int | None  # items at hand (None: none yet)
    margin: float  # the margin planned for, on the score's scale
    items_needed: int | None  # for 80% power to pass when B equals A (None: no finite size)
    power_at_n: float | None  # power to pass at the items at hand
    certifiable_margin: float | None  # smallest margin with 80% power at the items at hand (None: none within the range)
    trt_items_needed: int | None
    trt_certifiable_margin: float | None
    noise: AANoise
    score_range: float = 1.0  # width of the metric's range

    def cells(self) -> list[str]:
        """The plan as text, in the order of PLANNING_COLUMNS after the benchmark's name (margins in points:
        hundredths of the metric's range)."""

        def items(value: int | None) -> str:
            return "none" if value is None else f"{value:,}"

        def points(value: float | None) -> str:
            return "n/a" if self.n_items is None else "none" if value is None else f"{100 * value / self.score_range:.2f}"

        return [
            "n/a" if self.n_items is None else f"{self.n_items:,}", f"{self.noise.changed_share:.1%} ({self.noise.source})",
            f"{100 * self.margin / self.score_range:.2f}", items(self.items_needed), points(self.certifiable_margin),
            items(self.trt_items_needed), points(self.trt_certifiable_margin),
        ]


# The planning table's columns, shared by `statrepro plan` and the reports.
PLANNING_COLUMNS = (
    "benchmark", "items", "A/A flips", "margin (points)", "items needed", "certifiable margin at n",
    "TensorRT-LLM: items needed", "TensorRT-LLM: certifiable margin at n",
)


def _pass_power(
    noise: AANoise, items: int, margin: float, *, margin_kind: MarginKind, mode: Mode, alpha: float, paired: bool,
    score_range: float,
) -> float:
    """Power to pass at ``items`` items and a margin of ``margin`` (on the score's scale) when B equals A."""
    if not paired:
        sd = TRT_SIGMA * score_range * math.sqrt(2)
        return _tost_power(items, 0.0, margin, sd, sd, alpha, mode)
    if noise.changed_share * items < MIN_CHANGED_ITEMS_FOR_T:
        half = noise.changed_share / 2
        return _exact_share_power(items, half, half, min(1.0, margin / score_range), alpha, mode)
    tau = margin / noise.accuracy if margin_kind == "relative" else 0.0
    var_lower = noise.var_d + tau**2 * noise.var_a + 2 * tau * noise.cov_da
    var_upper = noise.var_d + tau**2 * noise.var_a - 2 * tau * noise.cov_da
    floor = 3.0 / items  # power.py's rule-of-three floor: no changed item does not mean no noise
    return _tost_power(items, 0.0, margin, max(math.sqrt(max(var_lower, 0.0)), floor),
                       max(math.sqrt(max(var_upper, 0.0)), floor), alpha, mode)


def _smallest_margin(power_at, score_range: float) -> float | None:
    """The smallest margin up to the score's range with 80% power (power rises with the margin); None if none."""
    if power_at(score_range) < POWER:
        return None
    low, high = 0.0, score_range
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (low, middle) if power_at(middle) >= POWER else (middle, high)
    return high


def plan_benchmark(
    noise: AANoise,
    *,
    n_items: int | None,
    tolerance: float = DEFAULT_RULES.tolerance,
    margin_kind: MarginKind = DEFAULT_RULES.margin_kind,
    mode: Mode = DEFAULT_RULES.mode,
    alpha: float = DEFAULT_RULES.alpha,
    score_range: float = 1.0,
) -> BenchmarkPlan:
    """Items needed for 80% power to pass when B equals A at the margin, and the margin certifiable at ``n_items``,
    for statrepro's paired test and for TensorRT-LLM's unpaired one under the same guarantees. ``score_range`` is
    the width of the metric's declared range (the exact test's bound, TensorRT-LLM's sigma of half of it)."""
    if not tolerance > 0:
        raise ValueError(f"the margin must be greater than 0, got {tolerance}")
    margin = tolerance * noise.accuracy if margin_kind == "relative" else tolerance
    if not margin > 0:
        raise ValueError("a relative margin of a zero score is zero: use an absolute margin")
    rules = dict(margin_kind=margin_kind, mode=mode, alpha=alpha, score_range=score_range)

    def needed(paired: bool) -> int | None:
        return _smallest(lambda items: _pass_power(noise, items, margin, paired=paired, **rules) >= POWER, 2)

    def certifiable(paired: bool) -> float | None:
        if n_items is None:
            return None
        return _smallest_margin(lambda m: _pass_power(noise, n_items, m, paired=paired, **rules), score_range)

    power_at_n = None if n_items is None else _pass_power(noise, n_items, margin, paired=True, **rules)
    return BenchmarkPlan(n_items, margin, needed(True), power_at_n, certifiable(True), needed(False), certifiable(False),
                         noise, score_range)
