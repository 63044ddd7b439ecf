"""Per-item summaries of paired score matrices: item means, changed items, the item/seed variance split and
the flips of the majority outcome."""

from __future__ import annotations

import numpy as np
from scipy import stats

from .results import FlipCounts, VarianceSplit


def item_means(scores: np.ndarray) -> np.ndarray:
    """Mean over seeds per item, ignoring missing (NaN) runs. Rows with no runs give NaN."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim == 1:
        return scores.copy()
    counts = np.sum(~np.isnan(scores), axis=1)
    sums = np.nansum(scores, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


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
