"""Missing runs: the unit of missingness is the run (one item in one seed), never the whole item.

A failed run must not vanish into its item's mean: failures concentrate on hard items (timeouts, length
limits), so averaging over the runs that succeeded biases that side upward. Each side's missing runs are
counted here, the verdict's missing-share rule reads their share, and the tipping-point check fills every
one of them worst case for B within the metric's declared range. Pure: arrays in, results out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .results import ResultMixin


@dataclass(frozen=True)
class MissingRuns(ResultMixin):
    """Runs without a result on each side of one benchmark (NaN cells of its aligned score matrices).

    ``share`` is the paired information lost, in items: per item the larger of the two sides' missing
    fractions of its runs, averaged over the items. An item with no run on a side counts 1 (as a wholly
    missing item always has), one of its three runs lost counts 1/3.
    """

    runs_a: int  # missing runs of A
    runs_b: int
    expected_a: int  # runs A should have: items x A's runs per item
    expected_b: int
    per_run_a: tuple[int, ...]  # missing runs in each of A's run columns (seed order)
    per_run_b: tuple[int, ...]
    items: tuple[int, ...]  # rows without any run on at least one side: left out of the estimates
    partial_items: tuple[int, ...]  # rows that lost some, not all, runs on a side: estimated from the rest
    share: float

    @property
    def any(self) -> bool:
        return bool(self.runs_a or self.runs_b)

    def describe(self) -> str:
        """'B lacks 300 of 3000 runs (6 items entirely)', naming each side that lacks any ('' when none does)."""
        parts = [
            f"{side} lacks {lost} of {expected} runs"
            for side, lost, expected in (("A", self.runs_a, self.expected_a), ("B", self.runs_b, self.expected_b))
            if lost
        ]
        return " and ".join(parts) + (f" ({len(self.items)} items entirely)" if self.items else "")

    def summary(self) -> str:
        return f"{self.describe() or 'no missing runs'}; {self.share:.1%} of the paired information lost"


def count_missing_runs(scores_a: np.ndarray, scores_b: np.ndarray) -> MissingRuns:
    """Count the missing runs of two aligned (n_items, n_runs) score matrices (NaN = missing run)."""
    holes_a, holes_b = np.isnan(scores_a), np.isnan(scores_b)
    lost_a, lost_b = holes_a.mean(axis=1), holes_b.mean(axis=1)
    whole = (lost_a == 1.0) | (lost_b == 1.0)
    partial = ~whole & ((lost_a > 0) | (lost_b > 0))
    return MissingRuns(
        runs_a=int(holes_a.sum()),
        runs_b=int(holes_b.sum()),
        expected_a=int(holes_a.size),
        expected_b=int(holes_b.size),
        per_run_a=tuple(int(count) for count in holes_a.sum(axis=0)),
        per_run_b=tuple(int(count) for count in holes_b.sum(axis=0)),
        items=tuple(int(row) for row in np.flatnonzero(whole)),
        partial_items=tuple(int(row) for row in np.flatnonzero(partial)),
        share=float(np.maximum(lost_a, lost_b).mean()) if lost_a.size else 0.0,
    )


def filled_item_means(
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    score_bounds: tuple[float, float],
    *,
    b_missing_at: Literal["low", "high"],
) -> tuple[np.ndarray, np.ndarray]:
    """Item means with every missing run filled at an end of the declared range: B's at ``b_missing_at``,
    A's at the other end. ``"low"`` is the worst case for B (the tipping-point check of a pass); ``"high"``
    the best case (the check that a ``different`` below the margin is not made by B's missing runs)."""
    low, high = score_bounds
    fill_a, fill_b = (high, low) if b_missing_at == "low" else (low, high)
    return (
        np.where(np.isnan(scores_a), fill_a, scores_a).mean(axis=1),
        np.where(np.isnan(scores_b), fill_b, scores_b).mean(axis=1),
    )
