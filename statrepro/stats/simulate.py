"""Simulation with known truth: paired score matrices drawn from latent per-item probabilities.

Used by the calibration tests, `statrepro bench`, and the sequential design's checks. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .rules import DEFAULT_RULES


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

    @classmethod
    def from_accuracy(
        cls, n_items: int, accuracy: float, *, seeds: int = 1, diff: float = 0.0, concentration: float = 3.0
    ) -> "Scenario":
        """Stochastic engines at population accuracy ``accuracy``: p_i ~ Beta(accuracy * c, (1 - accuracy) * c)
        with concentration ``c`` (item variance mu (1 - mu) / (c + 1)), ``seeds`` independent Bernoulli(p_i)
        runs per side, and a true population difference ``diff`` (B - A, a loss: ``diff <= 0``)."""
        if not 0 < accuracy < 1:
            raise ValueError(f"accuracy must be in (0, 1), got {accuracy}")
        if diff > 0 or -diff > accuracy:
            raise ValueError(f"diff must be a loss no larger than the accuracy, got {diff}")
        return cls(
            n_items=n_items,
            seeds_a=seeds,
            seeds_b=seeds,
            rel_shift=diff / accuracy,
            beta_a=accuracy * concentration,
            beta_b=(1 - accuracy) * concentration,
        )

    def draw_many(self, rng: np.random.Generator, sims: int) -> tuple[np.ndarray, np.ndarray]:
        """``sims`` independent comparisons at once: 0/1 arrays (sims, n_items, seeds) for A and B."""
        p_a = rng.beta(self.beta_a, self.beta_b, size=(sims, self.n_items))
        p_b = self.probabilities_b(p_a)
        if self.rel_shift > 0 and np.any(p_b > 1):
            raise ValueError("rel_shift too large for this Beta population")
        a = (rng.random((sims, self.n_items, self.seeds_a)) < p_a[..., None]).astype(float)
        b = (rng.random((sims, self.n_items, self.seeds_b)) < p_b[..., None]).astype(float)
        return a, b


@dataclass(frozen=True)
class GreedyScenario:
    """Deterministic (greedy, fp32-like) engines: every item has one fixed 0/1 outcome per side.

    Estimand: items are drawn from a population; ``true_diff`` is the population mean of B's outcome minus
    A's, E[y_B - y_A], exactly. A's outcome is Bernoulli(accuracy) per item (for a deterministic engine an
    item's difficulty only matters through this marginal). B copies A except for rare flips:

    * ``diff == 0`` (A/A): flips in both directions with equal expected counts, ``flip_rate / 2`` of all items
      each way (right -> wrong with probability flip_rate / (2 mu), wrong -> right with flip_rate / (2 (1 - mu))).
    * ``diff < 0``: flips go one way only, right -> wrong with probability -diff / mu, so E[y_B - y_A] = diff;
      with ``churn_at_shift`` the A/A flips stay on top of that loss (right -> wrong with
      (flip_rate / 2 - diff) / mu, wrong -> right with flip_rate / (2 (1 - mu))), an engine that both churns and loses.

    The outcome is copied to ``seeds`` identical columns per side: a greedy engine repeats itself, and a user
    who runs the default 3 seeds sends 3 identical runs.
    """

    n_items: int
    accuracy: float
    diff: float = 0.0
    flip_rate: float = 0.03
    seeds: int = 3
    churn_at_shift: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.accuracy < 1:
            raise ValueError(f"accuracy must be in (0, 1), got {self.accuracy}")
        if self.diff > 0 or -self.diff > self.accuracy:
            raise ValueError(f"diff must be a loss no larger than the accuracy, got {self.diff}")
        if not 0 <= self.flip_rate <= 2 * min(self.accuracy, 1 - self.accuracy):
            raise ValueError(f"flip_rate {self.flip_rate} is not reachable at accuracy {self.accuracy}")
        if self.churn_at_shift and self.flip_rate / 2 - self.diff > self.accuracy:
            raise ValueError(f"flip_rate {self.flip_rate} plus the loss {-self.diff} exceed the accuracy {self.accuracy}")

    @property
    def mean_a(self) -> float:
        return self.accuracy

    @property
    def true_diff(self) -> float:
        return self.diff

    def _flip_probabilities(self) -> tuple[float, float]:
        """P(right -> wrong), P(wrong -> right)."""
        if self.diff < 0 and self.churn_at_shift:
            return (self.flip_rate / 2 - self.diff) / self.accuracy, self.flip_rate / (2 * (1 - self.accuracy))
        if self.diff < 0:
            return -self.diff / self.accuracy, 0.0
        return self.flip_rate / (2 * self.accuracy), self.flip_rate / (2 * (1 - self.accuracy))

    def draw_many(self, rng: np.random.Generator, sims: int) -> tuple[np.ndarray, np.ndarray]:
        """``sims`` independent comparisons at once: 0/1 arrays (sims, n_items, seeds) for A and B."""
        down, up = self._flip_probabilities()
        a = rng.random((sims, self.n_items)) < self.accuracy
        flip = rng.random((sims, self.n_items)) < np.where(a, down, up)
        b = a ^ flip
        shape = (sims, self.n_items, self.seeds)
        return np.broadcast_to(a[..., None], shape).astype(float), np.broadcast_to(b[..., None], shape).astype(float)

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One simulated comparison: 0/1 score matrices (n_items, seeds) for A and B."""
        a, b = self.draw_many(rng, 1)
        return a[0], b[0]


# ----------------------------------------------------------------------------------------------
# The calibration grid: cells (accuracy x items x engine) and the shifts simulated in each.

GREEDY = 0  # ``GridCell.seeds`` value that means a greedy (deterministic) engine
SHIFTS: dict[str, float] = {"aa": 0.0, "half": 0.5, "margin": 1.0, "beyond": 1.2}  # multiples of the margin


@dataclass(frozen=True)
class GridCell:
    """One row of the calibration grid: base accuracy, item count, and engine (greedy, or stochastic with
    ``seeds`` independent runs per side)."""

    accuracy: float
    n_items: int
    seeds: int  # GREEDY (0) for a deterministic engine

    @property
    def engine(self) -> str:
        return "greedy" if self.seeds == GREEDY else f"{self.seeds} seed" + ("s" if self.seeds > 1 else "")

    @property
    def label(self) -> str:
        return f"acc {self.accuracy:g} | {self.n_items} items | {self.engine}"

    def true_diff(self, shift: float, *, tolerance: float, margin_kind: str = "relative") -> float:
        """The population difference B - A at ``shift`` multiples of the margin, always a loss for B.
        Relative margin: tolerance x mu_A; absolute: tolerance in score points."""
        margin = tolerance * self.accuracy if margin_kind == "relative" else tolerance
        return -shift * margin

    def scenario(
        self,
        shift: float,
        *,
        tolerance: float,
        margin_kind: str = "relative",
        concentration: float = 3.0,
        flip_rate: float = 0.03,
        greedy_seeds: int = 3,
    ) -> "Scenario | GreedyScenario":
        diff = self.true_diff(shift, tolerance=tolerance, margin_kind=margin_kind)
        if self.seeds == GREEDY:
            return GreedyScenario(self.n_items, self.accuracy, diff=diff, flip_rate=flip_rate, seeds=greedy_seeds)
        return Scenario.from_accuracy(
            self.n_items, self.accuracy, seeds=self.seeds, diff=diff, concentration=concentration
        )

    def seed_key(self, shift_name: str) -> tuple[int, ...]:
        """A stable key for this cell and shift, so a cell draws the same data whatever else is in the grid."""
        return (round(self.accuracy * 1000), self.n_items, self.seeds, list(SHIFTS).index(shift_name))


def calibration_grid(
    accuracies=(0.3, 0.6, 0.9), items=(200, 1000), engines=(GREEDY, 1, 3, 5)
) -> list[GridCell]:
    """The full grid of issue 11: accuracy 0.3 / 0.6 / 0.9 x 200 / 1,000 items x greedy and 1 / 3 / 5 seeds."""
    return [GridCell(acc, n, seeds) for acc in accuracies for n in items for seeds in engines]


def draw_control(
    scenario: Scenario, rng: np.random.Generator, *, excess_flips: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A, A' and B of an A/A/A population (``scenario`` with no shift), B then made to flip ``excess_flips`` of
    the items more: that share of the items, drawn among those B did not flip and A did not tie, get every run of
    B set to the opposite of A's majority. Returns 0/1 matrices (n_items, seeds) of A, A' and B."""
    p = rng.beta(scenario.beta_a, scenario.beta_b, size=scenario.n_items)
    a, control, b = ((rng.random((scenario.n_items, scenario.seeds_a)) < p[:, None]).astype(float) for _ in range(3))
    if excess_flips > 0:
        mean_a, mean_b = a.mean(axis=1), b.mean(axis=1)
        unflipped = np.flatnonzero((mean_a != 0.5) & ((mean_a > 0.5) == (mean_b > 0.5)) & ((mean_a < 0.5) == (mean_b < 0.5)))
        chosen = rng.choice(unflipped, size=min(unflipped.size, round(excess_flips * scenario.n_items)), replace=False)
        b[chosen] = (mean_a[chosen] < 0.5).astype(float)[:, None]
    return a, control, b


def excess_flip_rejections(
    scenario: Scenario, rng: np.random.Generator, *, sims: int, excess_flips: float = 0.0, alpha: float = DEFAULT_RULES.alpha
) -> float:
    """Share of ``sims`` simulated A, A', B (``draw_control``) in which the excess-flip test rejects at ``alpha``."""
    from .control import excess_flip_test, flip_indicators

    rejections = 0
    for _ in range(sims):
        a, control, b = draw_control(scenario, rng, excess_flips=excess_flips)
        mean_a = a.mean(axis=1)
        candidate, baseline = flip_indicators(mean_a, b.mean(axis=1)), flip_indicators(mean_a, control.mean(axis=1))
        rejections += excess_flip_test(candidate["flips"], baseline["flips"]).p_value <= alpha
    return rejections / sims
