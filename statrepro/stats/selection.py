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

from .results import ResultMixin
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
