"""Verdicts per benchmark and overall, with multiple-benchmark control. Pure: results in, results out.

Rules (one set, documented in docs/methodology.md):

* ``equivalent``: the TOST passes (p < alpha) and no significant difference (adjusted p >= alpha).
* ``within_tolerance``: the TOST passes, but a difference is statistically detectable.
* ``different``: a significant difference (adjusted p < alpha) whose point estimate lies beyond the
  margin (in non-inferiority mode: below the lower margin).
* ``inconclusive``: anything else, including too many missing items.

Overall: pass (``equivalent``/``within_tolerance``) only if every benchmark passes (intersection-union,
so no correction is needed); ``different`` if any benchmark is ``different`` after Holm (or BH)
adjustment of the permutation p-values; otherwise ``inconclusive``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from statsmodels.stats.multitest import multipletests

from .paired import BenchmarkComparison
from .results import ResultMixin

Verdict = Literal["equivalent", "within_tolerance", "different", "inconclusive"]
VERDICTS: tuple[str, ...] = ("equivalent", "within_tolerance", "different", "inconclusive")
PASSING: frozenset[str] = frozenset({"equivalent", "within_tolerance"})
EXIT_CODES: dict[str, int] = {"equivalent": 0, "within_tolerance": 0, "different": 3, "inconclusive": 4}
Correction = Literal["holm", "bh"]
_STATSMODELS_METHOD = {"holm": "holm", "bh": "fdr_bh"}


@dataclass(frozen=True)
class BenchmarkVerdict(ResultMixin):
    """A benchmark's comparison with its adjusted p-value and verdict."""

    name: str
    comparison: BenchmarkComparison
    p_adjusted: float
    verdict: str
    reason: str


@dataclass(frozen=True)
class Decision(ResultMixin):
    """The overall verdict across benchmarks."""

    verdict: str
    benchmarks: tuple[BenchmarkVerdict, ...]
    alpha: float
    tolerance: float
    mode: str
    correction: str
    max_missing_share: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def summary(self) -> str:
        lines = [f"overall: {self.verdict} (alpha={self.alpha}, tolerance={self.tolerance}, mode={self.mode})"]
        lines += [f"  {b.name}: {b.verdict} - {b.reason}" for b in self.benchmarks]
        return "\n".join(lines)


def classify(
    comparison: BenchmarkComparison, p_adjusted: float, *, alpha: float, mode: str, max_missing_share: float
) -> tuple[str, str]:
    """Verdict and a one-line reason for one benchmark."""
    total = comparison.n_items + comparison.n_missing
    missing_share = comparison.n_missing / total if total else 1.0
    if missing_share > max_missing_share:
        return "inconclusive", (
            f"{comparison.n_missing} of {total} items have no result on one side "
            f"({missing_share:.1%} > {max_missing_share:.0%} allowed)"
        )
    if comparison.note:
        return "inconclusive", comparison.note
    significant = p_adjusted < alpha
    tost_pass = comparison.tost.p_value < alpha
    margin = comparison.tost.margin
    diff = comparison.diff
    beyond = diff < -margin if mode == "non-inferiority" else abs(diff) > margin
    if tost_pass and not significant:
        return "equivalent", f"TOST p={comparison.tost.p_value:.3g} < {alpha}; no detectable difference"
    if tost_pass and significant:
        return "within_tolerance", (
            f"TOST p={comparison.tost.p_value:.3g} < {alpha}, but the difference is detectable (p_adj={p_adjusted:.3g})"
        )
    if significant and beyond:
        return "different", f"p_adj={p_adjusted:.3g} < {alpha} and |diff|={abs(diff):.4f} exceeds margin {margin:.4f}"
    if significant and mode == "non-inferiority" and diff > 0:
        return "within_tolerance", f"B is significantly better (p_adj={p_adjusted:.3g}); non-inferiority holds"
    return "inconclusive", (
        f"TOST p={comparison.tost.p_value:.3g} and p_adj={p_adjusted:.3g}: not enough evidence either way"
    )


def decide(
    comparisons: dict[str, BenchmarkComparison],
    *,
    alpha: float = 0.05,
    mode: str = "equivalence",
    correction: Correction = "holm",
    max_missing_share: float = 0.05,
) -> Decision:
    """Adjust the per-benchmark p-values and combine the per-benchmark verdicts into one."""
    if not comparisons:
        raise ValueError("no benchmarks to decide on")
    names = sorted(comparisons)
    raw = np.array([comparisons[name].permutation.p_value for name in names])
    # With one benchmark every adjustment is the identity; skipping statsmodels there also skips its
    # gc.collect() call, which dominates the cost of a single decision in simulations.
    adjusted = raw if raw.size == 1 else multipletests(raw, alpha=alpha, method=_STATSMODELS_METHOD[correction])[1]
    tolerance = comparisons[names[0]].tolerance
    verdicts = []
    for name, p_adj in zip(names, adjusted):
        verdict, reason = classify(
            comparisons[name], float(p_adj), alpha=alpha, mode=mode, max_missing_share=max_missing_share
        )
        verdicts.append(BenchmarkVerdict(name, comparisons[name], float(p_adj), verdict, reason))
    labels = [v.verdict for v in verdicts]
    if all(label in PASSING for label in labels):
        overall = "equivalent" if all(label == "equivalent" for label in labels) else "within_tolerance"
    elif "different" in labels:
        overall = "different"
    else:
        overall = "inconclusive"
    return Decision(overall, tuple(verdicts), alpha, tolerance, mode, correction, max_missing_share)
