"""The one set of verdict rules, used by the fixed design (``decide``) and every sequential look alike.

Pure: results in, results out. The labels, the per-benchmark rules (``classify``) and the combination across
benchmarks (``combine``) live here and nowhere else; see docs/methodology.md, "Verdict rules".

Per benchmark, in order:

1. ``inconclusive`` when more runs lack a result than allowed: the share of paired information lost (per item
   the larger of the sides' missing fractions of its runs, averaged over items; see ``stats.missing``).
2. ``different`` when B lies clearly beyond the margin: the test that B is within the margin is rejected
   (adjusted across benchmarks), i.e. the whole confidence interval of the difference lies beyond the margin
   in the tested direction. This comes before the undefined-margin rule, so A = 0 vs B = 0.47 is
   ``different`` under a relative margin rather than hidden as ``inconclusive``.
3. ``inconclusive`` when the margin is undefined (a relative margin at score_a = 0) or the metric's range
   is unknown where the exact test needs it.
4. Passing when the TOST passes: ``equivalent`` if no difference from zero is detectable, else
   ``within_tolerance``; but ``inconclusive`` if it would not pass with every missing run scored worst case
   for B (the tipping-point check: missing runs must not hide a loss). Likewise step 2 holds only if B is still
   beyond the margin with every missing run scored against that claim.
5. ``inconclusive`` otherwise, saying whether a difference is detectable but not clearly beyond the margin.

Then the optional evidence gates (``apply_gates``; off by default, built by ``stats.choices.evidence_gates``):
a gate passes when its one-sided upper bound lies within its margin. A gate clearly beyond its margin (its
lower bound, at alpha split over benchmarks and gates, above it) makes the benchmark ``different``; a gate
that is neither shown within nor clearly beyond turns a pass into ``inconclusive``. The reason names the
evidence that failed.

Overall: passing only if every benchmark passes (intersection-union, so no correction is needed);
``different`` if any benchmark is ``different`` (the beyond-margin p-values are Holm or BH adjusted);
otherwise ``inconclusive``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .missing import MissingRuns
from .paired import BenchmarkComparison
from .results import ResultMixin
from .rules import DEFAULT_RULES, Correction, VerdictRules

# The verdict labels, spelled here only: everything outside stats/ (CLI colours, report texts, plot markers,
# benchmarks) keys on these constants (tests/test_architecture.py checks it).
EQUIVALENT = "equivalent"
WITHIN_TOLERANCE = "within_tolerance"
DIFFERENT = "different"
INCONCLUSIVE = "inconclusive"
Verdict = Literal["equivalent", "within_tolerance", "different", "inconclusive"]
VERDICTS: tuple[str, ...] = (EQUIVALENT, WITHIN_TOLERANCE, DIFFERENT, INCONCLUSIVE)
PASSING: frozenset[str] = frozenset({EQUIVALENT, WITHIN_TOLERANCE})
EXIT_CODES: dict[str, int] = {EQUIVALENT: 0, WITHIN_TOLERANCE: 0, DIFFERENT: 3, INCONCLUSIVE: 4}
_STATSMODELS_METHOD = {"holm": "holm", "bh": "fdr_bh"}
_MISSING_EXAMPLES = 3  # missing items named in a reason


@dataclass(frozen=True)
class Evidence(ResultMixin):
    """What the rules read about one benchmark at one analysis, with the level each test is held to.

    The fixed design holds every test to alpha (after the multiple-benchmark adjustment); a sequential look
    holds them to its spending boundaries. Everything else is the same.
    """

    n_items: int  # items with a run on both sides
    missing: MissingRuns
    max_missing_share: float
    diff: float
    margin: float
    margin_note: str | None  # why the margin is undefined, if it is
    tost_method: str
    tost_p: float
    tost_level: float
    difference_p: float  # against no difference at all
    difference_level: float
    beyond_p: float  # against "B lies within the margin"
    beyond_level: float
    worst_case_tost_p: float | None = None  # None: no missing runs
    missing_examples: tuple[str, ...] = ()  # keys of items that lost runs, for the reasons


def classify(evidence: Evidence) -> tuple[str, str]:
    """Verdict and a one-line reason for one benchmark (the rules in this module's docstring)."""
    e = evidence
    if e.missing.share > e.max_missing_share:
        return "inconclusive", (
            f"{e.missing.describe()}: {e.missing.share:.1%} of the paired information is missing "
            f"(> {e.max_missing_share:.0%} allowed)"
        )
    direction = "below the lower margin" if e.diff < 0 else "above the upper margin"
    if e.beyond_p < e.beyond_level:
        return "different", (
            f"B is clearly {direction}: diff={e.diff:+.4f} vs margin {e.margin:.4f}, "
            f"p={e.beyond_p:.3g} < {e.beyond_level:.3g} that it lies within"
        )
    if e.margin_note:
        return "inconclusive", e.margin_note
    if e.tost_method == "no-score-range":
        return "inconclusive", (
            "too few items changed for the t-based TOST, and the metric's score range is unknown, so the exact "
            "test cannot bound it: declare the range"
        )
    significant = e.difference_p < e.difference_level
    if e.tost_p < e.tost_level:
        if e.worst_case_tost_p is not None and not e.worst_case_tost_p < e.tost_level:
            named = ", ".join(e.missing_examples)
            lost_items = len(e.missing.items) + len(e.missing.partial_items)
            more = ", ..." if lost_items > len(e.missing_examples) else ""
            return "inconclusive", (
                f"passes on the runs with results (TOST p={e.tost_p:.3g}), but not if the missing runs "
                f"({e.missing.describe()}" + (f"; {named}{more}" if named else "") + ")"
                + f" went wrong for B (worst-case TOST p={e.worst_case_tost_p:.3g})"
            )
        if significant:
            return "within_tolerance", (
                f"TOST p={e.tost_p:.3g} < {e.tost_level:.3g}, but the difference is detectable (p={e.difference_p:.3g})"
            )
        return "equivalent", f"TOST p={e.tost_p:.3g} < {e.tost_level:.3g}; no detectable difference"
    if significant:
        return "inconclusive", (
            f"a difference is detectable (p={e.difference_p:.3g}) but not clearly beyond the margin "
            f"(diff={e.diff:+.4f}, margin {e.margin:.4f}, p={e.beyond_p:.3g} that it lies within)"
        )
    return "inconclusive", f"TOST p={e.tost_p:.3g} and difference p={e.difference_p:.3g}: not enough evidence either way"


SEVERITY: tuple[str, ...] = (EQUIVALENT, WITHIN_TOLERANCE, INCONCLUSIVE, DIFFERENT)  # from the best to the worst


def worst(labels: list[str]) -> str:
    """The worst of several verdicts (of candidates against one reference): different, then inconclusive."""
    return max(labels, key=SEVERITY.index)


@dataclass(frozen=True)
class EvidenceGate(ResultMixin):
    """One optional evidence gate of a benchmark: a mean over items that must be shown within a margin."""

    evidence: str  # what is bounded, named in the reason
    estimate: float
    upper: float  # one-sided upper bound at 1 - alpha
    lower: float  # one-sided lower bound at 1 - alpha / (benchmarks x gates)
    margin: float

    @property
    def outcome(self) -> str:
        """passed (upper bound within the margin), beyond (lower bound above it) or unshown (neither)."""
        if self.upper <= self.margin:
            return "passed"
        return "beyond" if self.lower > self.margin else "unshown"

    def describe(self) -> str:
        bound = {
            "passed": f"upper bound {self.upper:.4g} <= margin",
            "beyond": f"lower bound {self.lower:.4g} > margin",
            "unshown": f"upper bound {self.upper:.4g} > margin",
        }[self.outcome]
        return f"{self.evidence} {self.estimate:.4g} ({bound} {self.margin:g})"


def apply_gates(verdict: str, reason: str, gates: tuple[EvidenceGate, ...]) -> tuple[str, str]:
    """The score's verdict and reason after the evidence gates (the rule in this module's docstring)."""
    failed = [gate for gate in gates if gate.outcome != "passed"]
    if not failed:
        return verdict, reason
    named = "; ".join(gate.describe() for gate in failed)
    if verdict != DIFFERENT and any(gate.outcome == "beyond" for gate in failed):
        return DIFFERENT, f"evidence gate failed, clearly beyond its margin: {named} (the score alone: {verdict}, {reason})"
    if verdict in PASSING:
        return INCONCLUSIVE, f"evidence gate not shown within its margin: {named} (the score alone: {verdict}, {reason})"
    return verdict, f"{reason}; evidence gate failed: {named}"


def combine(labels: list[str | None]) -> str | None:
    """The overall verdict from the benchmarks' (None: still running, in a sequential design)."""
    if "different" in labels:
        return "different"
    if labels and all(label in PASSING for label in labels):
        return "equivalent" if all(label == "equivalent" for label in labels) else "within_tolerance"
    if any(label is None for label in labels):
        return None
    return "inconclusive"


def adjust(p_values: list[float], correction: Correction, alpha: float) -> np.ndarray:
    """Multiple-benchmark adjusted p-values (the identity for one benchmark)."""
    raw = np.asarray(p_values, float)
    if raw.size <= 1:
        # Skipping statsmodels here also skips its gc.collect(), which dominates single decisions in simulations.
        return raw
    from statsmodels.stats.multitest import multipletests

    return multipletests(raw, alpha=alpha, method=_STATSMODELS_METHOD[correction])[1]


@dataclass(frozen=True)
class BenchmarkVerdict(ResultMixin):
    """A benchmark's comparison with its adjusted p-values and verdict."""

    name: str
    comparison: BenchmarkComparison
    p_adjusted: float  # of the difference from zero
    verdict: str
    reason: str
    p_beyond_adjusted: float = float("nan")  # of "B lies within the margin"
    gates: tuple[EvidenceGate, ...] = ()  # the optional evidence gates it was held to


@dataclass(frozen=True)
class Decision(ResultMixin):
    """The overall verdict across benchmarks."""

    verdict: str
    benchmarks: tuple[BenchmarkVerdict, ...]
    rules: VerdictRules  # the settings every benchmark was decided under
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def summary(self) -> str:
        lines = [f"overall: {self.verdict} ({self.rules.summary()})"]
        lines += [f"  {b.name}: {b.verdict} - {b.reason}" for b in self.benchmarks]
        return "\n".join(lines)


def fixed_evidence(
    comparison: BenchmarkComparison,
    *,
    p_adjusted: float,
    p_beyond_adjusted: float,
    alpha: float,
    max_missing_share: float,
    item_keys: list[str] | None = None,
) -> Evidence:
    """The evidence of a fixed-design comparison: every test held to alpha."""
    missing = (comparison.missing.items + comparison.missing.partial_items)[:_MISSING_EXAMPLES]
    return Evidence(
        n_items=comparison.n_items,
        missing=comparison.missing,
        max_missing_share=max_missing_share,
        diff=comparison.diff,
        margin=comparison.tost.margin,
        margin_note=comparison.note,
        tost_method=comparison.tost.method,
        tost_p=comparison.tost.p_value,
        tost_level=alpha,
        difference_p=p_adjusted,
        difference_level=alpha,
        beyond_p=p_beyond_adjusted,
        beyond_level=alpha,
        worst_case_tost_p=comparison.worst_case_tost_p,
        missing_examples=tuple(item_keys[i] if item_keys else f"item {i}" for i in missing),
    )


def decide(
    comparisons: dict[str, BenchmarkComparison],
    rules: VerdictRules = DEFAULT_RULES,
    *,
    item_keys: dict[str, list[str]] | None = None,
    gates: dict[str, tuple[EvidenceGate, ...]] | None = None,
) -> Decision:
    """Adjust the per-benchmark p-values and combine the per-benchmark verdicts into one, under ``rules`` (alpha,
    correction, missing share; the comparisons were made under the same rules).

    ``item_keys`` (optional) names each benchmark's rows, so that reasons can name missing items; ``gates``
    (optional) holds each benchmark's evidence gates (``stats.choices.evidence_gates``), applied after the score's rules.
    """
    if not comparisons:
        raise ValueError("no benchmarks to decide on")
    alpha, correction = rules.alpha, rules.correction
    names = sorted(comparisons)
    adjusted = adjust([comparisons[name].permutation.p_value for name in names], correction, alpha)
    beyond = adjust([comparisons[name].p_beyond for name in names], correction, alpha)
    verdicts = []
    for name, p_adj, p_beyond in zip(names, adjusted, beyond):
        evidence = fixed_evidence(
            comparisons[name],
            p_adjusted=float(p_adj),
            p_beyond_adjusted=float(p_beyond),
            alpha=alpha,
            max_missing_share=rules.max_missing_share,
            item_keys=(item_keys or {}).get(name),
        )
        verdict, reason = classify(evidence)
        held_to = (gates or {}).get(name, ())
        verdict, reason = apply_gates(verdict, reason, held_to)
        verdicts.append(BenchmarkVerdict(name, comparisons[name], float(p_adj), verdict, reason, float(p_beyond), held_to))
    return Decision(combine([v.verdict for v in verdicts]), tuple(verdicts), rules)
