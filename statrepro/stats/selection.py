"""One reference, many candidates: which candidates may ship, with the error of the decision users make.

Users quantize to several schemes and ship the smallest that holds. Testing each candidate at alpha and shipping
the smallest that passes inflates the chance of shipping one that is truly beyond the margin: with five
candidates at the margin it approaches 1 - (1 - alpha)^5. The candidates are therefore tested as a **fixed
sequence** (Maurer, Hothorn and Lehmacher 1995): in the pre-registered order from the safest to the most
aggressive, each candidate's own verdict at alpha, stopping at the first that does not pass. The candidates
before the stop are *cleared*, and the last of them is the one to ship. The family-wise error of clearing any
candidate that is truly beyond the margin is at most alpha, whatever the dependence between the comparisons
(they share the reference's runs), so the shipped one is truly beyond the margin with probability at most alpha.
The price: a candidate after a failing one is never cleared, even if it passes on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .results import ResultMixin
from .rules import VerdictRules
from .verdict import PASSING


@dataclass(frozen=True)
class Selection(ResultMixin):
    """The fixed-sequence selection over candidates in their pre-registered order."""

    order: tuple[str, ...]  # the candidates, from the safest to the most aggressive
    verdicts: tuple[str, ...]  # each candidate's own verdict (reference vs candidate)
    cleared: tuple[str, ...]  # the candidates the fixed sequence clears: a prefix of ``order``
    shipped: str | None  # the most aggressive cleared candidate; None when the first one fails
    stopped_at: str | None  # the first candidate that did not pass (None: all passed)
    procedure: str = "fixed-sequence"

    @property
    def passing_out_of_sequence(self) -> tuple[str, ...]:
        """Candidates that pass on their own after the sequence stopped: not cleared, whatever their verdict."""
        return tuple(name for name, verdict in zip(self.order, self.verdicts) if verdict in PASSING and name not in self.cleared)

    def summary(self) -> str:
        if self.shipped is None:
            return f"no candidate is cleared: the first, {self.order[0]!r}, does not pass ({self.verdicts[0]})"
        text = f"ship {self.shipped!r}: cleared {', '.join(self.cleared)} in the fixed sequence"
        if self.stopped_at is not None:
            text += f"; stopped at {self.stopped_at!r}"
        if self.passing_out_of_sequence:
            text += f" ({', '.join(self.passing_out_of_sequence)} pass on their own but come after it, so are not cleared)"
        return text


def select_in_sequence(order: list[str] | tuple[str, ...], verdicts: list[str] | tuple[str, ...]) -> Selection:
    """The fixed-sequence selection: ``verdicts[i]`` is candidate ``order[i]``'s own verdict at alpha."""
    if len(order) != len(verdicts) or not order:
        raise ValueError(f"need one verdict per candidate, got {len(order)} candidates and {len(verdicts)} verdicts")
    if len(set(order)) != len(order):
        raise ValueError("candidate names must differ")
    cleared: list[str] = []
    stopped_at = None
    for name, verdict in zip(order, verdicts):
        if verdict not in PASSING:
            stopped_at = name
            break
        cleared.append(name)
    return Selection(tuple(order), tuple(verdicts), tuple(cleared), cleared[-1] if cleared else None, stopped_at)


@dataclass(frozen=True)
class ShippingErrors(ResultMixin):
    """How often "ship one" picks a candidate truly at or beyond the margin, by each rule, over simulations."""

    truths: tuple[float, ...]  # each candidate's true difference, in the order they are tested
    sims: int
    each_on_its_own: float  # ship the smallest that passes, wherever it stands
    fixed_sequence: float  # ship the last cleared by the fixed sequence

    def standard_error(self, rate: float) -> float:
        """One Monte Carlo SE of a rate (at least that of one event in ``sims``)."""
        rate = max(rate, 1 / self.sims)
        return float(np.sqrt(rate * (1 - rate) / self.sims))


def greedy_candidates(
    rng: np.random.Generator, truths: tuple[float, ...], *, n_items: int = 400, accuracy: float = 0.6, churn: float = 0.04
) -> tuple[np.ndarray, list[np.ndarray]]:
    """A greedy reference (one 0/1 outcome per item) and one greedy candidate per true difference: each flips
    right items down and wrong items up so that its expected difference is the truth, at ``churn`` flips in an
    A/A. The reference is shared, as in a quantization ladder."""
    a = (rng.random(n_items) < accuracy).astype(float)
    candidates = []
    for truth in truths:
        down = churn / 2 + max(0.0, -truth) / accuracy
        up = churn / 2 * accuracy / (1 - accuracy) + max(0.0, truth) / (1 - accuracy)
        b = a.copy()
        b[(a == 1) & (rng.random(n_items) < down)] = 0.0
        b[(a == 0) & (rng.random(n_items) < up)] = 1.0
        candidates.append(b)
    return a, candidates


def shipping_errors(truths: tuple[float, ...], rules: VerdictRules, *, sims: int, rng: np.random.Generator) -> ShippingErrors:
    """Simulate ``sims`` ladders of greedy candidates at ``truths`` (absolute differences) and count how often each
    rule ships a candidate truly at or beyond ``rules.tolerance`` (an absolute margin)."""
    from .paired import compare_paired
    from .verdict import decide

    beyond = [abs(truth) >= rules.tolerance - 1e-12 for truth in truths]
    names = [f"c{index}" for index in range(len(truths))]
    naive = sequence = 0
    for _ in range(sims):
        a, candidates = greedy_candidates(rng, truths)
        verdicts = [decide({"x": compare_paired(a, b, rules, rng=rng)}, rules).verdict for b in candidates]
        passing = [index for index, verdict in enumerate(verdicts) if verdict in PASSING]
        naive += bool(passing) and beyond[passing[-1]]
        shipped = select_in_sequence(names, verdicts).shipped
        sequence += shipped is not None and beyond[names.index(shipped)]
    return ShippingErrors(tuple(truths), sims, naive / sims, sequence / sims)
