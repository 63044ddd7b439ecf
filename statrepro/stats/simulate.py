"""Simulation with known truth: paired score matrices drawn from latent per-item probabilities.

Used by the calibration tests, `statrepro bench`, and the sequential design's checks. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scenario:
    """A population of items and the true effect of moving from A to B.

    Item difficulty p_i ~ Beta(a, b). B's probability is p_i * (1 + rel_shift) for a loss, or
    p_i + rel_shift * (1 - p_i) * mean/(1-mean) for a gain, so every probability stays in [0, 1]
    and the true relative difference of the population means is exactly ``rel_shift``.
    """

    n_items: int
    seeds_a: int = 1
    seeds_b: int = 1
    rel_shift: float = 0.0
    beta_a: float = 2.0
    beta_b: float = 2.0

    @property
    def mean_a(self) -> float:
        return self.beta_a / (self.beta_a + self.beta_b)

    @property
    def true_diff(self) -> float:
        return self.rel_shift * self.mean_a

    def probabilities_b(self, p_a: np.ndarray) -> np.ndarray:
        if self.rel_shift <= 0:
            return p_a * (1 + self.rel_shift)
        headroom = self.mean_a / (1 - self.mean_a)
        return p_a + self.rel_shift * headroom * (1 - p_a)

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One simulated comparison: 0/1 score matrices (n_items, seeds) for A and B."""
        p_a = rng.beta(self.beta_a, self.beta_b, size=self.n_items)
        p_b = self.probabilities_b(p_a)
        if self.rel_shift > 0 and np.any(p_b > 1):
            raise ValueError("rel_shift too large for this Beta population")
        a = (rng.random((self.n_items, self.seeds_a)) < p_a[:, None]).astype(float)
        b = (rng.random((self.n_items, self.seeds_b)) < p_b[:, None]).astype(float)
        return a, b
