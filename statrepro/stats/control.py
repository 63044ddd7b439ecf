"""The A/A control: how much B's flips exceed what a second run of A (A') gives, item by item.

Arrays in, frozen result objects out; no I/O. Inputs are score matrices of shape (n_items, n_runs) of A, of A'
(A's environment run again, with its own run-to-run nondeterminism) and of B, rows aligned by item, NaN for a
missing run. An item is right when its mean score is above 0.5 and wrong below it (as in ``flip_counts``).

The excess-flip test. Per item i, ``flip_ab_i`` says that B's majority outcome differs from A's and ``flip_aa_i``
that A''s does. Under "B behaves like another run of A's environment", A' and B are exchangeable given the item
(whatever A is, ties and thirds included), so swapping them, which swaps the two indicators, leaves the joint law
unchanged: ``d_i = flip_ab_i - flip_aa_i`` is symmetric about 0 and independent across items. The exact one-sided
sign-flip test of ``sum(d)`` (``resampling.sign_flip_tails``, here McNemar's exact test on the discordant items)
is therefore valid at any n, without assuming anything about A. See docs/methodology.md, "The A/A control".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from .bootstrap import paired_score_interval
from .paired import BenchmarkComparison
from .resampling import sign_flip_tails
from .results import ResultMixin
from .summaries import item_means
from .verdict import BenchmarkVerdict


@dataclass(frozen=True)
class RateInterval(ResultMixin):
    """A share of items with its Wilson score interval (items are the sampling unit)."""

    count: int
    n_items: int
    rate: float
    ci: tuple[float, float]


@dataclass(frozen=True)
class FlipDecomposition(ResultMixin):
    """One pair's flips split by direction, and the answer churn that left correctness alone."""

    flips: RateInterval  # majority outcome changed either way
    harmful: RateInterval  # right in A, wrong in the other
    beneficial: RateInterval  # wrong in A, right in the other
    churn: RateInterval | None  # extracted answer changed, correctness did not; None without both answers


@dataclass(frozen=True)
class ExcessRate(ResultMixin):
    """The other pair's rate minus the control's on the same items, with Tango's paired score interval."""

    excess: float
    ci: tuple[float, float]
    more_in_candidate: int  # items with the event in A vs B but not in A vs A'
    more_in_control: int  # the reverse


@dataclass(frozen=True)
class ExcessFlipTest(ResultMixin):
    """Exact one-sided test that A vs B flips more items than A vs A' (the paired indicators' sign-flip test)."""

    statistic: int  # more_in_candidate - more_in_control
    p_value: float
    exact: bool
    method: str


@dataclass(frozen=True)
class ControlComparison(ResultMixin):
    """A vs A' beside A vs B on one benchmark: flips, their excess over the control, and the baseline's stability."""

    n_items: int  # items with results in A, A' and B
    n_runs_control: int
    control: FlipDecomposition  # A vs A'
    candidate: FlipDecomposition  # A vs B
    excess_flips: ExcessRate
    excess_harmful: ExcessRate
    excess_beneficial: ExcessRate
    excess_churn: ExcessRate | None
    excess_test: ExcessFlipTest
    control_diff: float  # score(A') - score(A)
    control_diff_ci: tuple[float, float]
    candidate_diff: float  # score(B) - score(A)
    candidate_diff_ci: tuple[float, float]
    baseline_verdict: str  # A vs A' under the one verdict rule set (stats.verdict.classify)
    baseline_reason: str
    baseline: str  # "stable" (A' equivalent to A), "unstable" (A' detectably differs) or "unestablished"
    warning: str | None  # what an unstable or unestablished baseline means for the A-vs-B verdict
    confidence: float

    def summary(self) -> str:
        control, candidate = self.control.flips, self.candidate.flips
        text = (
            f"flips A/A' {control.rate:.1%} [{control.ci[0]:.1%}, {control.ci[1]:.1%}], "
            f"A/B {candidate.rate:.1%} [{candidate.ci[0]:.1%}, {candidate.ci[1]:.1%}], "
            f"excess {self.excess_flips.excess:+.1%} [{self.excess_flips.ci[0]:+.1%}, {self.excess_flips.ci[1]:+.1%}] "
            f"p={self.excess_test.p_value:.3g}; baseline {self.baseline}"
        )
        return text + (f" ({self.warning})" if self.warning else "")


def rate_interval(indicators: np.ndarray, confidence: float) -> RateInterval:
    """The share of true indicators with its Wilson score interval."""
    indicators = np.asarray(indicators, bool)
    n, count = int(indicators.size), int(indicators.sum())
    if n == 0:
        return RateInterval(0, 0, float("nan"), (float("nan"), float("nan")))
    interval = stats.binomtest(count, n).proportion_ci(confidence_level=confidence, method="wilson")
    return RateInterval(count, n, count / n, (float(interval.low), float(interval.high)))


def excess_rate(candidate: np.ndarray, control: np.ndarray, confidence: float) -> ExcessRate:
    """rate(candidate) - rate(control) of paired per-item indicators, with Tango's score interval."""
    candidate, control = np.asarray(candidate, bool), np.asarray(control, bool)
    more_in_candidate, more_in_control = int(np.sum(candidate & ~control)), int(np.sum(control & ~candidate))
    n = int(candidate.size)
    if n == 0:
        return ExcessRate(float("nan"), (float("nan"), float("nan")), 0, 0)
    interval = paired_score_interval(more_in_candidate, more_in_control, n, confidence)
    return ExcessRate((more_in_candidate - more_in_control) / n, interval, more_in_candidate, more_in_control)


def excess_flip_test(flip_candidate: np.ndarray, flip_control: np.ndarray, *, rng: np.random.Generator | int | None = None) -> ExcessFlipTest:
    """Exact one-sided test of H0 "A' and B are exchangeable runs" against "A vs B flips more than A vs A'".

    ``d_i = flip_candidate_i - flip_control_i`` lies in {-1, 0, 1}; its sign-flip null is enumerated exactly
    on the unit lattice (ties and items with d = 0 included), and the p-value is ``P(T >= t)``.
    """
    differences = np.asarray(flip_candidate, float) - np.asarray(flip_control, float)
    tails = sign_flip_tails(differences, 0, np.random.default_rng(rng), lattice_scale=1)
    return ExcessFlipTest(int(differences.sum()), float(min(1.0, tails.greater)), tails.exact, tails.method)


def flip_indicators(mean_a: np.ndarray, mean_other: np.ndarray) -> dict[str, np.ndarray]:
    """Per item: harmful (right in A, wrong in the other), beneficial (the reverse) and flips (either)."""
    harmful = (mean_a > 0.5) & (mean_other < 0.5)
    beneficial = (mean_a < 0.5) & (mean_other > 0.5)
    return {"flips": harmful | beneficial, "harmful": harmful, "beneficial": beneficial}


def decompose_flips(
    mean_a: np.ndarray, mean_other: np.ndarray, answer_changed: np.ndarray | None, confidence: float
) -> tuple[FlipDecomposition, dict[str, np.ndarray]]:
    """Flip, harmful, beneficial and churn rates of A vs another run set, with the per-item indicators behind them.

    ``answer_changed`` is per item 1.0 (the extracted answer changed), 0.0 (it did not) or NaN (unknown: a side
    logged no answer); churn counts the known items whose answer changed while their majority outcome did not.
    """
    indicators = flip_indicators(mean_a, mean_other)
    flips, harmful, beneficial = indicators["flips"], indicators["harmful"], indicators["beneficial"]
    churn = None
    if answer_changed is not None:
        answer_changed = np.asarray(answer_changed, float)
        known = np.isfinite(answer_changed)
        if known.any():
            indicators["churn"] = (answer_changed == 1.0) & ~flips
            indicators["churn_known"] = known
            churn = rate_interval(indicators["churn"][known], confidence)
    decomposition = FlipDecomposition(
        rate_interval(flips, confidence), rate_interval(harmful, confidence), rate_interval(beneficial, confidence), churn
    )
    return decomposition, indicators


def flip_decomposition(
    scores_a: np.ndarray, scores_other: np.ndarray, answer_changed: np.ndarray | None = None, *, confidence: float = 0.95
) -> FlipDecomposition:
    """``decompose_flips`` of two aligned (n_items, n_runs) matrices, over the items with results on both sides."""
    mean_a, mean_other = (item_means(np.atleast_2d(np.asarray(m, float).T).T) for m in (scores_a, scores_other))
    present = np.isfinite(mean_a) & np.isfinite(mean_other)
    changed = None if answer_changed is None else np.asarray(answer_changed, float)[present]
    return decompose_flips(mean_a[present], mean_other[present], changed, confidence)[0]


def baseline_status(baseline: BenchmarkVerdict) -> tuple[str, str | None]:
    """Whether A' showed A's environment to be stable, and what it means for the A-vs-B verdict if not.

    Reads the A-vs-A' verdict reached by the one rule set; it never changes the A-vs-B verdict.
    """
    if baseline.verdict == "equivalent":
        return "stable", None
    if baseline.verdict == "inconclusive":
        return "unestablished", (
            "the control could not show that two runs of A score alike (" + baseline.reason + "); the A-vs-B verdict "
            "stands, but how much of B's change is A's own run-to-run variation is unknown"
        )
    return "unstable", (
        f"two runs of A's environment already differ ({baseline.verdict}: {baseline.reason}); the baseline is "
        "unstable, so part of any A-vs-B difference may be A's own nondeterminism: read the A-vs-B verdict against "
        "the excess over the control, and fix A's run-to-run variation before signing off"
    )


def compare_control(
    scores_a: np.ndarray,
    scores_control: np.ndarray,
    scores_b: np.ndarray,
    *,
    baseline: BenchmarkVerdict,
    candidate: BenchmarkComparison,
    answer_changed_control: np.ndarray | None = None,
    answer_changed_b: np.ndarray | None = None,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = None,
) -> ControlComparison:
    """A vs A' beside A vs B on one benchmark, from aligned (n_items, n_runs) matrices.

    ``baseline`` is A vs A' decided by ``verdict.decide`` and ``candidate`` the A-vs-B comparison; they supply the
    score differences and their intervals. ``answer_changed_*``
    are per-item 1.0 / 0.0 / NaN (see ``decompose_flips``). Items missing from any of the three are left out.
    """
    mean_a, mean_control, mean_b = (item_means(np.atleast_2d(np.asarray(m, float).T).T) for m in (scores_a, scores_control, scores_b))
    present = np.isfinite(mean_a) & np.isfinite(mean_control) & np.isfinite(mean_b)
    mean_a, mean_control, mean_b = mean_a[present], mean_control[present], mean_b[present]

    def changed(answers: np.ndarray | None) -> np.ndarray | None:
        return None if answers is None else np.asarray(answers, float)[present]

    control_flips, control_items = decompose_flips(mean_a, mean_control, changed(answer_changed_control), confidence)
    candidate_flips, candidate_items = decompose_flips(mean_a, mean_b, changed(answer_changed_b), confidence)
    excess = {kind: excess_rate(candidate_items[kind], control_items[kind], confidence) for kind in ("flips", "harmful", "beneficial")}
    excess_churn = None
    if "churn" in control_items and "churn" in candidate_items:
        both = control_items["churn_known"] & candidate_items["churn_known"]
        excess_churn = excess_rate(candidate_items["churn"][both], control_items["churn"][both], confidence)
    status, warning = baseline_status(baseline)
    return ControlComparison(
        n_items=int(present.sum()),
        n_runs_control=int(np.atleast_2d(np.asarray(scores_control).T).T.shape[1]),
        control=control_flips,
        candidate=candidate_flips,
        excess_flips=excess["flips"],
        excess_harmful=excess["harmful"],
        excess_beneficial=excess["beneficial"],
        excess_churn=excess_churn,
        excess_test=excess_flip_test(candidate_items["flips"], control_items["flips"], rng=rng),
        control_diff=baseline.comparison.diff,
        control_diff_ci=baseline.comparison.bootstrap.diff_ci,
        candidate_diff=candidate.diff,
        candidate_diff_ci=candidate.bootstrap.diff_ci,
        baseline_verdict=baseline.verdict,
        baseline_reason=baseline.reason,
        baseline=status,
        warning=warning,
        confidence=confidence,
    )
