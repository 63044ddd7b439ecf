"""`statrepro bench gates`: statrepro's paired margin test beside the accuracy gates of TensorRT-LLM, vLLM, SGLang
and lm-eval, on simulated greedy comparisons with known truth (``stats.gate_simulation``; docs/gates.md)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from ..stats.gate_simulation import GATES, STATREPRO, GateCell, gate_figures
from ..stats.rules import Mode


def _points(value: float | None, error: float | None) -> str:
    """A drop or margin in score points with its Monte Carlo error; '—' where there is none."""
    if value is None:
        return "—"
    return f"{100 * value:.2f}" if error is None else f"{100 * value:.2f} ± {100 * error:.2f}"


def run_gates_bench(
    *, accuracies: tuple[float, ...], items: tuple[int, ...], flip_rates: tuple[float, ...], tolerance: float,
    sims: int, alpha: float, mode: Mode, seed: int = 0,
) -> dict[str, dict[str, dict]]:
    """The figures of every gate per cell (accuracy x items x flip rate), the margin ``tolerance`` x accuracy in
    score points; prints one table, and a line on stderr per gate and cell as it goes.

    Returns {cell label: {gate: figures}} (``stats.gate_simulation.gate_figures``)."""
    cells = [GateCell(accuracy, n, flips, tolerance * accuracy) for accuracy in accuracies for n in items for flips in flip_rates]
    table = Table(title=(
        f"accuracy gates on greedy A vs B ({sims} simulations per figure, alpha {alpha}, statrepro {mode}; "
        f"margin {tolerance:g} x accuracy; drops and margins in points, ± 2 MC SE)"
    ))
    for column in ("cell", "gate", "false alarm (Δ=0)", "false pass (at margin)", "drop detected in 80%",
                   "certifiable margin", "vs statrepro"):
        table.add_column(column, justify="left" if column in ("cell", "gate") else "right")
    figures: dict[str, dict[str, dict]] = {}
    for number, cell in enumerate(cells, 1):
        label = f"acc {cell.accuracy:g} | {cell.n_items} items | {cell.flip_rate:.0%} flips | margin {100 * cell.margin:.2f}"
        figures[label] = {}
        for gate in GATES:  # a line per gate: a cell of 4,096 items can take longer than the 30 s between lines
            figures[label][gate] = gate_figures(gate, cell, sims=sims, alpha=alpha, mode=mode, seed=seed)
            print(f"bench gates: cell {number}/{len(cells)} ({label}): {gate} done", file=sys.stderr, flush=True)
        ours = figures[label][STATREPRO]["certifiable_margin"]
        for gate, row in figures[label].items():
            theirs = row["certifiable_margin"]
            ratio = f"{theirs / ours:.1f} x" if theirs is not None and ours else "—"
            table.add_row(label if gate == STATREPRO else "", gate,
                          f"{row['false_alarm']:.3f} ± {row['false_alarm_mc_error']:.3f}",
                          f"{row['false_pass']:.3f} ± {row['false_pass_mc_error']:.3f}",
                          _points(row["drop_80"], row["drop_80_mc_error"]),
                          _points(theirs, row["certifiable_margin_mc_error"]), ratio)
        table.add_section()
    Console(width=max(150, Console().width)).print(table)
    return figures
