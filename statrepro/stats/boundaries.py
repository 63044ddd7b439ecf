"""Group-sequential boundaries: Lan-DeMets alpha spending and the nominal levels of each look, computed by
numerical integration of the canonical joint distribution (see ``stats.sequential``)."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal

import numpy as np
from scipy import optimize, special, stats

Spending = Literal["obrien-fleming", "pocock"]

# Grid of the numerical integration on the score scale: points per look, and the lower cut-off in SDs.
_GRID_POINTS = 801
_GRID_SDS = 10.0


def spending_function(kind: Spending, level: float, fraction: float) -> float:
    """Lan-DeMets spending: the type I error a one-sided test at ``level`` spends by information ``fraction``."""
    t = min(1.0, max(0.0, fraction))
    if t == 0.0:
        return 0.0
    if kind == "obrien-fleming":
        return float(2 * special.ndtr(-special.ndtri(1 - level / 2) / math.sqrt(t)))
    return float(level * math.log1p((math.e - 1) * t))


def nominal_levels(max_rounds: int, level: float, spending: Spending) -> tuple[float, ...]:
    """One-sided nominal p-value thresholds per round for equally spaced information (round / K)."""
    return boundary_levels(tuple(k / max_rounds for k in range(1, max_rounds + 1)), level, spending)


@lru_cache(maxsize=256)
def boundary_levels(fractions: tuple[float, ...], level: float, spending: Spending) -> tuple[float, ...]:
    """One-sided nominal p-value thresholds per look at information ``fractions`` (increasing, the last 1).

    Look k's boundary c_k solves P(Z_1 < c_1, ..., Z_{k-1} < c_{k-1}, Z_k >= c_k) = spent(t_k) - spent(t_{k-1})
    for the canonical joint distribution (Z_k = S(t_k) / sqrt(t_k), S a Brownian motion), integrated
    numerically on a grid of the score S(t_k) over the continuation region. Information is scaled to
    K * t_k so that equally spaced looks integrate the unit-increment random walk.
    """
    looks = len(fractions)
    information = [looks * t for t in fractions]
    spent = [0.0] + [spending_function(spending, level, t) for t in fractions]
    levels = [spent[1]]
    # -ndtri(p), not ndtri(1 - p): an early look at a small fraction spends ~1e-20, which 1 - p rounds away.
    c_first = float(-special.ndtri(spent[1])) if spent[1] > 0 else math.inf
    root = math.sqrt(information[0])
    # Sub-density of S_1 on its continuation region (-L, c_1 * sqrt(I_1)).
    grid = np.linspace(-_GRID_SDS * root, min(c_first, _GRID_SDS) * root, _GRID_POINTS)
    density = stats.norm.pdf(grid / root) / root
    for k in range(2, looks + 1):
        weights = _trapezoid_weights(grid) * density
        increment = spent[k] - spent[k - 1]
        root_k = math.sqrt(information[k - 1])
        step_sd = math.sqrt(information[k - 1] - information[k - 2])

        def crossing(c: float, weights=weights, grid=grid, root_k=root_k, step_sd=step_sd) -> float:
            return float(weights @ special.ndtr((grid - c * root_k) / step_sd))

        if increment <= 0:
            levels.append(0.0)
            c_k = math.inf
        else:
            c_k = optimize.brentq(lambda c: crossing(c) - increment, -10.0, 40.0, xtol=1e-10)
            levels.append(float(special.ndtr(-c_k)))
        upper = c_k * root_k if math.isfinite(c_k) else _GRID_SDS * root_k
        new_grid = np.linspace(-_GRID_SDS * root_k, upper, _GRID_POINTS)
        density = (stats.norm.pdf((new_grid[:, None] - grid[None, :]) / step_sd) / step_sd) @ weights
        grid = new_grid
    return tuple(levels)


def _trapezoid_weights(grid: np.ndarray) -> np.ndarray:
    step = grid[1] - grid[0]
    weights = np.full(grid.size, step)
    weights[[0, -1]] = step / 2
    return weights


def spending_increments(fractions: tuple[float, ...], level: float, spending: Spending) -> tuple[float, ...]:
    """Alpha spent at each look alone: a Bonferroni split over looks, valid under any dependence."""
    spent = [0.0] + [spending_function(spending, level, t) for t in fractions]
    return tuple(spent[k] - spent[k - 1] for k in range(1, len(fractions) + 1))
