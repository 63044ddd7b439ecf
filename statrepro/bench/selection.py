"""`statrepro bench selection`: how often "ship one of several candidates" ships one truly beyond the margin."""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table

from ..stats.rules import VerdictRules
from ..stats.selection import shipping_errors

# Five candidates' true differences, in margins, from the safest to the most aggressive.
LADDERS: dict[str, tuple[float, ...]] = {
    "five at the margin": (-1.0, -1.0, -1.0, -1.0, -1.0),
    "a degrading ladder": (0.0, -0.5, -1.0, -1.5, -2.0),
    "three good, two at the margin": (0.0, 0.0, 0.0, -1.0, -1.0),
}


def run_selection_bench(*, sims: int, tolerance: float, alpha: float, seed: int = 0) -> dict[str, dict[str, float]]:
    """Shipping error of "the smallest that passes" against the fixed sequence, per ladder of greedy candidates
    (a shared reference at accuracy 0.6, 400 items, 4% churn, absolute margin ``tolerance``), with Monte Carlo SEs."""
    rules = VerdictRules(tolerance=tolerance, margin_kind="absolute", alpha=alpha, n_resamples=100)
    table = Table(title=f"shipping a candidate truly at or beyond the margin ({sims} simulations per ladder, alpha {alpha})")
    for column in ("ladder (true differences in margins)", "each on its own", "± MC SE", "fixed sequence", "± MC SE"):
        table.add_column(column, justify="left" if column.startswith("ladder") else "right")
    rng = np.random.default_rng(seed)
    figures = {}
    for label, margins in LADDERS.items():
        errors = shipping_errors(tuple(m * tolerance for m in margins), rules, sims=sims, rng=rng)
        figures[label] = {
            "each_on_its_own": errors.each_on_its_own, "each_on_its_own_se": errors.standard_error(errors.each_on_its_own),
            "fixed_sequence": errors.fixed_sequence, "fixed_sequence_se": errors.standard_error(errors.fixed_sequence),
        }
        row = figures[label]
        table.add_row(f"{label} {margins}", f"{row['each_on_its_own']:.3f}", f"{row['each_on_its_own_se']:.3f}",
                      f"{row['fixed_sequence']:.3f}", f"{row['fixed_sequence_se']:.3f}")
    Console(width=max(110, Console().width)).print(table)
    return figures
