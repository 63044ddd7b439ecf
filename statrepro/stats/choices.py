"""Evidence beyond accuracy, from the same calls: how far B moved each item's choice distribution.

Arrays in, frozen results out; no I/O. In modes ppl and clp the harness scores every choice of an item by its
log-likelihood and grades the top one. Those log-likelihoods show what accuracy hides: a model near chance can
keep its accuracy while its choices move a lot (docs/methodology.md, "Choice-level evidence").

Inputs per side: an array of shape (n_items, n_runs, n_choices), rows aligned by item; a run without
log-likelihoods is a row of NaN, and a choice an item does not have (items with fewer choices than the widest)
is -inf (probability 0 on both sides). ``gold`` is each item's reference choice index, -1 where unknown.

Per item, over every pair (run of A, run of B), then averaged over the item's pairs (every pair, so unequal
run counts need no arbitrary matching, and identical runs give exactly 0):

* ``kl``: KL(A || B) of the choice distributions, softmax over the choices' log-likelihoods;
* ``top_changed``: whether the top choice differs; the top choice is the *set* of choices with the maximal
  log-likelihood, so a tie is compared as a tie (a tie broken the same way on both sides is no change, a tie
  on one side only is one);
* ``gold_delta``: the gold choice's log-likelihood in B minus in A (each averaged over its runs).

The means over items get bootstrap intervals over items (BCa, as in section 3 of the methodology); the share of
items whose top choice changed takes the exact Clopper-Pearson bounds when every item's value is 0 or 1 (a
bootstrap of a proportion with no event claims an upper bound of 0).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from .control import ControlComparison
from .bootstrap import _bca_interval, paired_score_interval
from .resampling import bootstrap_item_sums, jackknife_item_sums
from .results import ResultMixin
from .rules import DEFAULT_RULES, VerdictRules
from .verdict import EvidenceGate


@dataclass(frozen=True)
class ItemChoices:
    """Per-item choice evidence of one pair of sides (NaN where an item lacks log-likelihoods on a side)."""

    kl: np.ndarray
    top_changed: np.ndarray  # share of the item's run pairs whose top choice differs, in [0, 1]
    gold_delta: np.ndarray  # NaN where the gold choice is unknown


@dataclass(frozen=True)
class MeanInterval(ResultMixin):
    """A mean over items with its two-sided interval and the one-sided bounds the evidence gates read."""

    mean: float
    ci: tuple[float, float]  # two-sided, at 1 - alpha
    upper: float  # one-sided upper bound at 1 - alpha: the gates pass when it is within their margin
    lower: float  # one-sided lower bound at 1 - beyond_alpha: a gate is clearly failed when it lies beyond
    n_items: int
    method: str  # BCa (percentile where BCa is undefined), clopper-pearson, infinite, or none (no items)


@dataclass(frozen=True)
class ChoiceComparison(ResultMixin):
    """A vs B at the choice level on one benchmark; with a control, A vs A' beside it and the excess over it."""

    n_items: int  # items with choice log-likelihoods on both sides
    kl: MeanInterval
    top_changed: MeanInterval
    gold_delta: MeanInterval | None  # None when no item's gold choice is known
    alpha: float
    beyond_alpha: float
    control: ChoiceComparison | None = None  # A vs A' on the same items
    excess_kl: MeanInterval | None = None  # mean over items of KL(A || B) - KL(A || A')
    excess_top_changed: MeanInterval | None = None

    def summary(self) -> str:
        text = (
            f"choices on {self.n_items} items: KL(A||B) {self.kl.mean:.4g} [{self.kl.ci[0]:.4g}, {self.kl.ci[1]:.4g}], "
            f"top choice changed {self.top_changed.mean:.1%} [{self.top_changed.ci[0]:.1%}, {self.top_changed.ci[1]:.1%}]"
        )
        if self.gold_delta is not None:
            text += f", gold log-likelihood {self.gold_delta.mean:+.4g} [{self.gold_delta.ci[0]:+.4g}, {self.gold_delta.ci[1]:+.4g}]"
        if self.control is not None and self.excess_kl is not None:
            text += f"; A/A' KL {self.control.kl.mean:.4g}, excess {self.excess_kl.mean:+.4g} [{self.excess_kl.ci[0]:+.4g}, {self.excess_kl.ci[1]:+.4g}]"
        return text


def _log_softmax(logprobs: np.ndarray) -> np.ndarray:
    """log of the choice distribution along the last axis; a row with NaN (no run) or no finite choice stays NaN."""
    with np.errstate(invalid="ignore"):
        top = np.max(logprobs, axis=-1, keepdims=True)
        shifted = logprobs - np.where(np.isfinite(top), top, np.nan)
        return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def item_choices(logprobs_a: np.ndarray, logprobs_b: np.ndarray, gold: np.ndarray | None = None) -> ItemChoices:
    """The per-item KL(A || B), top-choice change and gold log-likelihood change (see the module docstring)."""
    a, b = np.asarray(logprobs_a, float), np.asarray(logprobs_b, float)
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0] or a.shape[2] != b.shape[2]:
        raise ValueError(f"need (items, runs, choices) arrays with equal items and choices, got {a.shape} and {b.shape}")
    log_a, log_b = _log_softmax(a)[:, :, None, :], _log_softmax(b)[:, None, :, :]
    valid = np.isfinite(log_a).any(axis=-1) & np.isfinite(log_b).any(axis=-1)  # (items, runs A, runs B)
    with np.errstate(invalid="ignore", over="ignore"):
        p = np.exp(log_a)
        # 0 log 0 = 0: a choice A gives no mass adds nothing, whatever B gives it.
        terms = np.where(p > 0, p * (log_a - log_b), 0.0)
    kl = np.sum(terms, axis=-1)
    top_a, top_b = a == np.max(a, axis=-1, keepdims=True), b == np.max(b, axis=-1, keepdims=True)
    changed = np.any(top_a[:, :, None, :] != top_b[:, None, :, :], axis=-1).astype(float)
    pairs = valid.sum(axis=(1, 2))
    with np.errstate(invalid="ignore"):
        kl_item = np.where(pairs > 0, np.sum(np.where(valid, kl, 0.0), axis=(1, 2)) / pairs, np.nan)
        changed_item = np.where(pairs > 0, np.sum(np.where(valid, changed, 0.0), axis=(1, 2)) / pairs, np.nan)
    gold_delta = np.full(a.shape[0], np.nan)
    if gold is not None:
        gold = np.asarray(gold, int)
        known = (gold >= 0) & (gold < a.shape[2]) & (pairs > 0)
        index = np.where(known, gold, 0)[:, None, None]
        with warnings.catch_warnings():  # an item without runs on a side: its mean is NaN, and left out below
            warnings.simplefilter("ignore", RuntimeWarning)
            gold_a = np.nanmean(np.take_along_axis(a, np.broadcast_to(index, (a.shape[0], a.shape[1], 1)), axis=2)[:, :, 0], axis=1)
            gold_b = np.nanmean(np.take_along_axis(b, np.broadcast_to(index, (b.shape[0], b.shape[1], 1)), axis=2)[:, :, 0], axis=1)
        gold_delta = np.where(known & ~np.isnan(gold_a) & ~np.isnan(gold_b), gold_b - gold_a, np.nan)
    return ItemChoices(kl_item, changed_item, gold_delta)


def _clopper_pearson(count: int, n: int, tail: float) -> tuple[float, float]:
    """One-sided exact bounds of a binomial share, each at confidence 1 - tail."""
    lower = 0.0 if count == 0 else float(stats.beta.ppf(tail, count, n - count + 1))
    upper = 1.0 if count == n else float(stats.beta.ppf(1 - tail, count + 1, n - count))
    return lower, upper


def mean_interval(
    values: np.ndarray, *, alpha: float, beyond_alpha: float, n_resamples: int, rng: np.random.Generator, share: bool = False
) -> MeanInterval:
    """The mean of the finite ``values`` with its interval (two-sided at 1 - alpha) and one-sided bounds.

    ``share``: the values are per-item shares in [0, 1]; when all are 0 or 1 the bounds are exact (Clopper-Pearson).
    NaN values (items without log-likelihoods) are left out; an infinite one makes the mean and its bounds infinite.
    """
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]
    n = int(values.size)
    if n == 0:
        nan = float("nan")
        return MeanInterval(nan, (nan, nan), nan, nan, 0, "none")
    mean = float(values.mean())
    if not np.isfinite(values).all():  # B gives no mass to a choice A gives some: an infinite KL, never dropped
        return MeanInterval(mean, (mean, mean), mean, mean, n, "infinite")
    if share and np.all((values == 0) | (values == 1)):
        count = int(values.sum())
        low, high = _clopper_pearson(count, n, alpha / 2)
        return MeanInterval(mean, (low, high), _clopper_pearson(count, n, alpha)[1], _clopper_pearson(count, n, beyond_alpha)[0], n, "clopper-pearson")
    draws = bootstrap_item_sums(values[:, None], n_resamples, rng)[:, 0] / n
    sums, weights = jackknife_item_sums(values[:, None])
    jackknife = sums[:, 0] / max(n - 1, 1)

    def interval(level_alpha: float) -> tuple[float, float]:
        return _bca_interval(draws, mean, jackknife, weights.astype(float), level_alpha)

    # A one-sided bound at 1 - t is the matching end of the two-sided interval at 1 - 2t.
    return MeanInterval(mean, interval(alpha), interval(2 * alpha)[1], interval(2 * beyond_alpha)[0], n, "BCa")


def compare_choices(
    logprobs_a: np.ndarray,
    logprobs_b: np.ndarray,
    gold: np.ndarray | None = None,
    *,
    logprobs_control: np.ndarray | None = None,
    alpha: float = DEFAULT_RULES.alpha,
    beyond_alpha: float | None = None,
    n_resamples: int = DEFAULT_RULES.n_resamples,
    rng: np.random.Generator | int | None = None,
) -> ChoiceComparison:
    """A vs B at the choice level, and with ``logprobs_control`` (A' of the A/A control) A vs A' beside it.

    ``beyond_alpha`` is the level of the lower bounds the gates read for ``different`` (default alpha); the
    control and the excess are over the items that have log-likelihoods in A, A' and B.
    """
    rng = np.random.default_rng(rng)
    beyond_alpha = alpha if beyond_alpha is None else beyond_alpha
    candidate = item_choices(logprobs_a, logprobs_b, gold)
    levels = dict(alpha=alpha, beyond_alpha=beyond_alpha, n_resamples=n_resamples, rng=rng)

    def summarize(items: ItemChoices, present: np.ndarray) -> ChoiceComparison:
        gold_delta = items.gold_delta[present]
        return ChoiceComparison(
            n_items=int(present.sum()),
            kl=mean_interval(items.kl[present], **levels),
            top_changed=mean_interval(items.top_changed[present], share=True, **levels),
            gold_delta=mean_interval(gold_delta, **levels) if (~np.isnan(gold_delta)).any() else None,
            alpha=alpha,
            beyond_alpha=beyond_alpha,
        )

    result = summarize(candidate, ~np.isnan(candidate.kl))
    if logprobs_control is None:
        return result
    control = item_choices(logprobs_a, logprobs_control, gold)
    both = ~np.isnan(candidate.kl) & ~np.isnan(control.kl)
    return replace(
        result,
        control=summarize(control, both),
        excess_kl=mean_interval(candidate.kl[both] - control.kl[both], **levels),
        excess_top_changed=mean_interval(candidate.top_changed[both] - control.top_changed[both], **levels),
    )


def gates_beyond_alpha(rules: VerdictRules, n_benchmarks: int) -> float:
    """The level a gate's "clearly beyond its margin" is held to: alpha split over benchmarks and active gates
    (Bonferroni), so all gates together add at most alpha of false ``different`` to the score's."""
    return rules.alpha / (max(1, n_benchmarks) * max(1, len(rules.evidence_margins())))


def evidence_gates(
    rules: VerdictRules,
    choices: ChoiceComparison | None,
    control: ControlComparison | None,
    beyond_alpha: float,
) -> tuple[EvidenceGate, ...]:
    """The active gates of one benchmark, each a mean with its one-sided bounds and margin (stats.verdict applies them).

    ``choices`` must be given for the choice gates and ``control`` for the harmful-flip gate; their bounds come
    from the same intervals the reports show (the excess of harmful flips: Tango's paired score interval).
    """
    gates = []
    for name, margin in rules.evidence_margins().items():
        if name == "flip":
            if control is None:
                raise ValueError("the harmful-flip gate needs the A/A control")
            excess = control.excess_harmful
            n, more, fewer = control.n_items, excess.more_in_candidate, excess.more_in_control
            upper = paired_score_interval(more, fewer, n, 1 - 2 * rules.alpha)[1]
            lower = paired_score_interval(more, fewer, n, 1 - 2 * beyond_alpha)[0]
            gates.append(EvidenceGate("excess harmful flips over the A/A control", excess.excess, upper, lower, margin))
            continue
        if choices is None:
            raise ValueError(f"the {name} gate needs choice log-likelihoods")
        bounded = choices.kl if name == "kl" else choices.top_changed
        evidence = "mean choice KL(A‖B)" if name == "kl" else "share of items whose top choice changed"
        gates.append(EvidenceGate(evidence, bounded.mean, bounded.upper, bounded.lower, margin))
    return tuple(gates)
