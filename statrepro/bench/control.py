"""`statrepro bench control`: false alarms and power of the control's excess-flip test."""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table

from ..stats.simulate import Scenario, excess_flip_rejections


def run_control_bench(
    *, sims: int, alpha: float, excess_flips: float, accuracies: tuple[float, ...] = (0.3, 0.6, 0.9),
    items: tuple[int, ...] = (200, 1000), seeds: tuple[int, ...] = (1, 3), seed: int = 0,
) -> dict[str, dict[str, float]]:
    """False alarm (A/A/A) and power (B flips ``excess_flips`` more items than the control) of the excess-flip
    test, per accuracy, item count and seed count, with Monte Carlo standard errors; prints one table."""
    console = Console(width=max(110, Console().width))
    table = Table(title=f"excess-flip test (alpha {alpha}): {sims} simulations per cell; power against +{excess_flips:.0%} flips")
    for column in ("accuracy", "items", "seeds", "false alarm", "± MC SE", "power", "± MC SE"):
        table.add_column(column, justify="right")
    rng = np.random.default_rng(seed)
    figures: dict[str, dict[str, float]] = {}
    for accuracy in accuracies:
        for n_items in items:
            for n_seeds in seeds:
                scenario = Scenario.from_accuracy(n_items, accuracy, seeds=n_seeds)
                false_alarm = excess_flip_rejections(scenario, rng, sims=sims, alpha=alpha)
                power = excess_flip_rejections(scenario, rng, sims=sims, alpha=alpha, excess_flips=excess_flips)
                errors = [float(np.sqrt(rate * (1 - rate) / sims)) for rate in (false_alarm, power)]
                figures[f"acc={accuracy} items={n_items} seeds={n_seeds}"] = {
                    "false_alarm": false_alarm, "false_alarm_se": errors[0], "power": power, "power_se": errors[1]
                }
                table.add_row(f"{accuracy:g}", str(n_items), str(n_seeds), f"{false_alarm:.3f}", f"{errors[0]:.3f}",
                              f"{power:.3f}", f"{errors[1]:.3f}")
    console.print(table)
    return figures
