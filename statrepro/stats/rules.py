"""The verdict rules' settings: one object from the command-line flag to the decision.

``VerdictRules`` is built once (by the API from its options) and carried intact by ``compare_paired``,
``compare_many``, ``decide``, both sequential designs and the ``Decision`` the reports and the verdict JSON read.
Each default is written here and nowhere else. Import-light on purpose (no numpy), so that the CLI can show
these defaults in ``--help`` without loading the statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .results import ResultMixin

Mode = Literal["equivalence", "non-inferiority"]
MarginKind = Literal["relative", "absolute"]
Correction = Literal["holm", "bh"]


@dataclass(frozen=True)
class VerdictRules(ResultMixin):
    """How a verdict is reached: the margin, the error rate, how missing runs count and how much resampling."""

    tolerance: float = 0.05  # relative (margin = tolerance x score_A) or absolute score points, by margin_kind
    margin_kind: MarginKind = "relative"
    alpha: float = 0.05  # every test's level (sequential looks spend it over their boundaries)
    mode: Mode = "equivalence"  # two-sided equivalence, or one-sided non-inferiority of B
    correction: Correction = "holm"  # adjustment of "any benchmark differs" across benchmarks (Holm or BH)
    max_missing_share: float = 0.05  # paired information that missing runs may take before a verdict is inconclusive
    score_range: tuple[float, float] | None = None  # overrides every metric's declared range; None: the declared one
    n_resamples: int = 10_000  # bootstrap resamples, and Monte Carlo permutations where the exact test is too large
    # Optional evidence gates beside the score (None: off). Each bounds a mean over items by its one-sided
    # (1 - alpha) upper bound; see stats.choices.evidence_gates and docs/methodology.md, "Evidence gates".
    kl_margin: float | None = None  # mean choice KL(A||B), in nats
    top1_margin: float | None = None  # share of items whose top choice changed
    flip_margin: float | None = None  # excess of harmful flips over the A/A control (needs the control)

    def __post_init__(self) -> None:
        if not 0 < self.tolerance < 1:
            raise ValueError(f"tolerance must be in (0, 1), got {self.tolerance}")
        if not 0 < self.alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {self.alpha}")
        if not 0 <= self.max_missing_share < 1:
            raise ValueError(f"max_missing_share must be in [0, 1), got {self.max_missing_share}")
        if self.score_range is not None and not self.score_range[0] < self.score_range[1]:
            raise ValueError(f"score_range needs low < high, got {self.score_range}")
        for name, margin in (("kl_margin", self.kl_margin), ("top1_margin", self.top1_margin), ("flip_margin", self.flip_margin)):
            if margin is not None and not margin > 0:
                raise ValueError(f"{name} must be greater than 0, got {margin}")

    def evidence_margins(self) -> dict[str, float]:
        """The active evidence gates' margins, keyed kl, top1, flip."""
        margins = {"kl": self.kl_margin, "top1": self.top1_margin, "flip": self.flip_margin}
        return {name: margin for name, margin in margins.items() if margin is not None}

    @classmethod
    def from_dict(cls, fields: dict) -> VerdictRules:
        """The rules from their ``to_dict()`` (a pre-registered design read back from JSON)."""
        score_range = fields.get("score_range")
        return cls(**{**fields, "score_range": tuple(score_range) if score_range else None})

    def score_bounds(self, declared: tuple[float, float] | None) -> tuple[float, float] | None:
        """A benchmark's score range: the override, else its metric's declared range (None: unknown)."""
        return self.score_range or declared

    def summary(self) -> str:
        margin = f"{self.tolerance:.2%} relative" if self.margin_kind == "relative" else f"{self.tolerance:g} absolute"
        gates = "".join(f", {name} gate <= {value:g}" for name, value in self.evidence_margins().items())
        return f"margin {margin}, alpha {self.alpha:g}, {self.mode}, {self.correction}, missing <= {self.max_missing_share:.0%}{gates}"


DEFAULT_RULES = VerdictRules()
