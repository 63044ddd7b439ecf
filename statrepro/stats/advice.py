"""Whether an inconclusive pilot can say how much more data would make the verdict conclusive.

Pure: numbers in, frozen results out; no I/O. The need at the observed difference is only the need if that
difference were the truth. Sizes planned so on a 200-item pilot delivered 0.37-1.00 power, not 0.80, and a
simulation that resamples the pilot inherits the fault, since it too takes the observed difference as the truth
(docs/methodology.md section 10, ``statrepro bench advice``). So a size is given only where the pilot places it:
enough changed items to estimate the spread, and a need that barely moves across the difference +/- one SE.
Near the margin that takes the margin some 10 SE away, so after an inconclusive verdict the size is in practice
withheld, with the reason, and the MDE is what the data supports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .results import ResultMixin

# The most the need may move across the difference's +/- 1 SE, as high / low, for the central need to be given:
# then the truth's need lies within about this factor of the advice, and its power near the 80% planned
# (a 40,000-item pilot, whose need spans 1.38x, delivers 80% +/- MC error: tests/stats/test_verdict_edges.py).
MAX_NEED_SPREAD = 1.5

UNPLACED = "no reliable size: the pilot cannot place the need (it spans more than {spread:g}x, or is unbounded, " \
    "across the difference +/- one SE)"
ROUGH_PILOT = "no reliable size: the pilot's changed items ({changed}) are under {needed}, too few to estimate the " \
    "spread or flip shares a size is planned on"
NO_FINITE_NEED = "no finite amount reaches 80% power at the observed difference"


@dataclass(frozen=True)
class Advice(ResultMixin):
    """A need (items, or seeds per side) and its range, or why none is given."""

    need: int | None
    need_range: tuple[int | None, int | None] | None
    withheld: str | None  # the reason when need is None


def placed_need(
    central: int | None, need_range: tuple[int | None, int | None], changed_items: int, min_changed_items: int
) -> Advice:
    """The central need when the pilot has ``min_changed_items`` changed items and the range around the need is
    finite and within ``MAX_NEED_SPREAD``; else withheld. With fewer changed items the planned power rests on a
    handful of flips whose uncertainty the +/- one SE range does not carry (the exact path's power ignores the
    difference), and following such advice gave 0.37-0.39 at half the margin (greedy, accuracy 0.3 and 0.6)."""
    if changed_items < min_changed_items:
        return Advice(None, None, ROUGH_PILOT.format(changed=changed_items, needed=min_changed_items))
    if central is None:
        return Advice(None, None, NO_FINITE_NEED)
    low, high = need_range
    if low is None or high is None or high > MAX_NEED_SPREAD * low:
        return Advice(None, None, UNPLACED.format(spread=MAX_NEED_SPREAD))
    return Advice(central, need_range, None)


def advice_text(power, margin: float) -> str:
    """What an inconclusive result would need: '~N items (plausible range A-B)' where the pilot places the need,
    else why no reliable size can be given, and the MDE this data has instead."""

    def one(central, spread, unit):
        return f"~{central} {unit} (plausible range {spread[0]}-{spread[1]})"  # a given need has a finite range

    given = [one(power.items_needed, power.items_needed_range, "items")] if power.items_needed else []
    given += [one(power.seeds_needed, power.seeds_needed_range, "seeds per side")] if power.seeds_needed else []
    if given:
        return "likely need " + " or ".join(given)
    reason = power.items_withheld or power.seeds_withheld or "no reliable size can be given"
    if not math.isfinite(power.mde):
        return reason
    relative = f" ({power.rel_mde:.1%} of A)" if power.rel_mde is not None else ""
    return f"{reason}; this data detects differences of {power.mde:.4f}{relative} (MDE) against a margin of ±{margin:.4f}"
