"""Shared behaviour of the frozen result objects returned by the statistics core."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, NamedTuple


def _plain(value: Any) -> Any:
    """JSON-ready value: tuples become lists, NaN/inf become None, numpy scalars become Python numbers."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class ResultMixin:
    """``to_dict()`` for JSON and a one-paragraph ``summary()`` for humans."""

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    def summary(self) -> str:
        parts = []
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            if isinstance(value, float):
                parts.append(f"{field.name}={value:.4g}")
            elif not dataclasses.is_dataclass(value):
                parts.append(f"{field.name}={value}")
        return f"{type(self).__name__}(" + ", ".join(parts) + ")"


class ConfidenceInterval(NamedTuple):
    """An interval (low, high): unpacks and serialises (``to_dict``: a list) as the plain tuple it replaces."""

    low: float
    high: float

    def __repr__(self) -> str:
        # Summaries print intervals as they always did: (low, high).
        return repr(tuple(self))


@dataclass(frozen=True)
class BootstrapCI(ResultMixin):
    """Bootstrap confidence intervals of the paired difference and the relative difference."""

    diff_ci: ConfidenceInterval
    rel_diff_ci: ConfidenceInterval
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
    ci: ConfidenceInterval  # the difference's interval at 1 - 2 alpha: the one the TOST corresponds to
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
