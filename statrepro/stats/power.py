"""Power of the verdict's tests: the minimum detectable difference and the items or seeds a conclusive
verdict needs (``power_analysis``, called by ``compare_paired``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from .advice import placed_need
from .results import ResultMixin, VarianceSplit
from .summaries import changed_items
from .tests import MIN_CHANGED_ITEMS_FOR_T

POWER = 0.8


@dataclass(frozen=True)
class PowerResult(ResultMixin):
    """Minimum detectable difference and the data a conclusive verdict would need.

    The needs are ranges because they depend on the true difference, which is only estimated: the first
    figure assumes the observed difference is the truth, the range spans the difference +/- one standard error.
    A need is given only where the pilot places it (``advice.placed_need``); otherwise it is None and
    ``items_withheld`` / ``seeds_withheld`` say why, and the MDE is what the data supports.
    """

    mde: float  # absolute, two-sided, at 80% power
    rel_mde: float | None
    items_needed: int | None  # total items (at the current seeds) for 80% power to conclude; None if conclusive
    seeds_needed: int | None  # total seeds per side (at the current items); None if seeds cannot suffice
    items_needed_range: tuple[int | None, int | None] | None = None  # None inside: no finite size suffices
    seeds_needed_range: tuple[int | None, int | None] | None = None
    items_withheld: str | None = None  # why no items_needed is given for an inconclusive result (stats/advice.py)
    seeds_withheld: str | None = None


def _tost_power(
    n: int, delta: float, margin: float, sd_lower: float, sd_upper: float, alpha: float, mode: str
) -> float:
    """Normal-approximation power of the two one-sided tests at n items, for a true difference delta."""
    z = float(special.ndtri(1 - alpha))
    lower = special.ndtr((delta + margin) * math.sqrt(n) / sd_lower - z)
    if mode == "non-inferiority":
        return float(lower)
    upper = special.ndtr((margin - delta) * math.sqrt(n) / sd_upper - z)
    return float(max(0.0, lower + upper - 1))


def _binomial_critical(n: int, share_bound: float, alpha: float) -> int:
    """The largest count c with BinomCDF(c; n, share_bound) < alpha (-1 when there is none)."""
    guess = special.bdtrik(alpha, n, share_bound)
    critical = int(math.floor(guess)) if math.isfinite(guess) else -1
    critical = min(max(critical, -1), n)
    while critical >= 0 and special.bdtr(critical, n, share_bound) >= alpha:
        critical -= 1
    while critical < n and special.bdtr(critical + 1, n, share_bound) < alpha:
        critical += 1
    return critical


def _exact_share_power(n: int, worse_share: float, better_share: float, share_bound: float, alpha: float, mode: str) -> float:
    """Power of the exact changed-share test at n items: each side passes when its count is at most the
    binomial critical value against share_bound."""
    critical = _binomial_critical(n, share_bound, alpha)
    if critical < 0:
        return 0.0
    lower = float(special.bdtr(critical, n, worse_share))
    return lower if mode == "non-inferiority" else lower * float(special.bdtr(critical, n, better_share))


def _smallest(predicate, start: int, cap: int = 10_000_000) -> int | None:
    """The smallest integer >= start meeting a predicate that is monotone beyond it (None above cap)."""
    low, high = start, max(start, 2)
    while not predicate(high):
        low, high = high, high * 2
        if high > cap:
            return None
    while low < high:
        middle = (low + high) // 2
        if predicate(middle):
            high = middle
        else:
            low = middle + 1
    return high


def power_analysis(
    mean_a: np.ndarray,
    mean_b: np.ndarray,
    variance: VarianceSplit,
    *,
    tolerance: float,
    margin: float,
    margin_kind: str,
    mode: str,
    alpha: float,
    seeds_per_side: int,
    conclusive: bool,
    score_range: float | None,
) -> PowerResult:
    """The MDE at 80% power, and the items or seeds a conclusive verdict needs (as ranges).

    Passing needs both one-sided tests of the TOST, each on its own e_i (their SDs differ for a relative
    margin); when fewer than MIN_CHANGED_ITEMS_FOR_T changed items are expected the exact changed-share test
    applies instead, whose power is binomial. A difference beyond the margin needs the reverse test at alpha/2.
    Seeds shrink only the seed part of var(d_i) (its item part stays), which bounds what more seeds can do.
    The MDE's standard error is floored at the rule-of-three bound (3/n), so no changed items do not claim 0.
    """
    a, b = np.asarray(mean_a, float), np.asarray(mean_b, float)
    d = b - a
    n = d.size
    score_a = float(np.mean(a)) if n else float("nan")
    if n < 2:
        return PowerResult(float("nan"), None, None, None)
    sd = max(float(d.std(ddof=1)), 3.0 / n)
    se = sd / math.sqrt(n)
    z_power = float(special.ndtri(POWER))
    z_two_sided = float(special.ndtri(1 - alpha / 2))
    mde = (z_two_sided + z_power) * se
    rel_mde = mde / score_a if score_a > 0 else None
    observed = float(d.mean())
    if conclusive or not margin > 0 or (observed == 0 and sd <= 3.0 / n and margin <= 0):
        return PowerResult(mde, rel_mde, None, None)
    if margin_kind == "relative":
        sd_lower = max(float(np.std(b - (1 - tolerance) * a, ddof=1)), 3.0 / n)
        sd_upper = max(float(np.std(b - (1 + tolerance) * a, ddof=1)), 3.0 / n)
    else:
        sd_lower = sd_upper = sd
    worse_share = float(np.mean(np.round(a - b, 12) > 0))
    better_share = float(np.mean(np.round(b - a, 12) > 0))
    seed_part = variance.diff_seed_var  # of var(d_i) at the current seeds
    item_part = variance.diff_item_var

    def conclusive_power(items: int, delta: float, scale: float = 1.0) -> float:
        """Chance of a conclusive verdict at ``items`` items, SDs scaled by ``scale`` (fewer seed noise)."""
        beyond = delta < -margin if mode == "non-inferiority" else abs(delta) > margin
        if beyond:
            return float(special.ndtr((abs(delta) - margin) * math.sqrt(items) / (sd * scale) - z_two_sided))
        if (worse_share + better_share) * items < MIN_CHANGED_ITEMS_FOR_T and score_range:
            return _exact_share_power(items, worse_share, better_share, min(1.0, margin / score_range), alpha, mode)
        return _tost_power(items, delta, margin, sd_lower * scale, sd_upper * scale, alpha, mode)

    def items_for(delta: float) -> int | None:
        if abs(abs(delta) - margin) < 1e-12:
            return None  # exactly at the margin neither verdict is reachable with 80% power
        return _smallest(lambda items: conclusive_power(items, delta) >= POWER, 2)

    def seeds_for(delta: float) -> int | None:
        if seed_part <= 0 or abs(abs(delta) - margin) < 1e-12:
            return None
        total = item_part + seed_part

        def scale(seeds: int) -> float:
            return math.sqrt((item_part + seed_part * seeds_per_side / seeds) / total) if total > 0 else 1.0

        found = _smallest(lambda seeds: conclusive_power(n, delta, scale(seeds)) >= POWER, seeds_per_side, cap=10_000)
        return found

    # Across the difference's plausible range the need is unbounded where that range reaches the margin.
    low, high = observed - se, observed + se
    unbounded = any(low <= edge <= high for edge in (-margin, margin))
    central_items, central_seeds = items_for(observed), seeds_for(observed)
    changed = changed_items(a, b)
    items = placed_need(central_items, _needs_range([central_items, items_for(low), items_for(high)], unbounded),
                        changed, MIN_CHANGED_ITEMS_FOR_T)
    seeds = placed_need(central_seeds, _needs_range([central_seeds, seeds_for(low), seeds_for(high)], unbounded),
                        changed, MIN_CHANGED_ITEMS_FOR_T)
    return PowerResult(
        mde, rel_mde, items.need, seeds.need, items.need_range, seeds.need_range, items.withheld, seeds.withheld
    )


def _needs_range(needs: list[int | None], unbounded: bool) -> tuple[int | None, int | None]:
    """(fewest, most) of a list of needs where None means no finite amount suffices."""
    finite = [need for need in needs if need is not None]
    return (min(finite) if finite else None, None if unbounded or len(finite) < len(needs) else max(finite))
