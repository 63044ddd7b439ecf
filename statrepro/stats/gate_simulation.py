"""statrepro's paired margin test against the peer gates (``peer_gates``) on simulated greedy comparisons with
known truth (``simulate.GreedyScenario``: B copies A but for flips, and loses ``drop`` points on top of them).

For each gate: the false alarm (an A/A comparison that does not pass), the false pass at the margin (a true loss
of the margin that passes), the drop it detects (fails) in 80% of runs, and the margin it certifies at this many
items under equal guarantees: the smallest loss it rejects in at least 1 - alpha of runs while passing at least
80% of A/A runs. For statrepro, whose test takes the margin as a parameter, that is the smallest margin at which
80% of the A/A runs pass (the test holds the false pass at any margin to alpha; the bench shows it at the
nominal one). Each drop is searched by bisection on common random numbers (every drop is simulated from the same
seed, so B's losses are nested across drops).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .calibration import mc_error
from .peer_gates import lm_eval_gate, lm_eval_stderr, sglang_gate, trt_gate, vllm_gate
from .power import POWER
from .rules import Mode
from .simulate import GreedyScenario
from .tests import tost

STATREPRO = "statrepro"
GATES = (STATREPRO, "TensorRT-LLM", "vLLM", "SGLang", "lm-eval")
_BISECTIONS = 14
_SLOPE_STEP = 0.005  # score points either side of a found drop, for its Monte Carlo error


@dataclass(frozen=True)
class GateCell:
    """One simulated setting: base accuracy, items, the A/A flip rate, and the margin in score points."""

    accuracy: float
    n_items: int
    flip_rate: float
    margin: float

    def draw(self, drop: float, sims: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """A's and B's 0/1 item scores, (sims, n_items) each, B losing ``drop`` points on top of the flips."""
        scenario = GreedyScenario(self.n_items, self.accuracy, diff=-drop, flip_rate=self.flip_rate, seeds=1, churn_at_shift=True)
        a, b = scenario.draw_many(np.random.default_rng(seed), sims)
        return a[..., 0], b[..., 0]

    @property
    def largest_drop(self) -> float:
        """The largest loss the scenario can simulate (B's right -> wrong flips cannot exceed A's right answers)."""
        return self.accuracy - self.flip_rate / 2


def statrepro_margins(a: np.ndarray, b: np.ndarray, *, alpha: float, mode: Mode) -> np.ndarray:
    """Per simulated comparison, the smallest absolute margin at which statrepro's test passes: with an absolute
    margin the test passes exactly when its 1 - 2 alpha interval lies inside the margin (docs/methodology.md §6)."""
    smallest = np.empty(a.shape[0])
    for row in range(a.shape[0]):
        interval = tost(a[row], b[row], tolerance=0.5, margin_kind="absolute", mode=mode, alpha=alpha).ci
        smallest[row] = -interval.low if mode == "non-inferiority" else max(-interval.low, interval.high)
    return np.maximum(smallest, 0.0)  # an interval above 0 passes at any positive margin


def gate_passes(gate: str, a: np.ndarray, b: np.ndarray, *, margin: float, alpha: float, mode: Mode) -> np.ndarray:
    """Whether ``gate`` passes each simulated comparison (rows of A's and B's item scores)."""
    if gate == STATREPRO:
        return statrepro_margins(a, b, alpha=alpha, mode=mode) < margin
    n_items = a.shape[1]
    reference, measured = a.mean(axis=1), b.mean(axis=1)
    if gate == "TensorRT-LLM":
        return trt_gate(reference, measured, n_items)
    if gate == "vLLM":
        return vllm_gate(reference, measured)
    if gate == "SGLang":
        return sglang_gate(reference, measured)
    if gate == "lm-eval":
        return lm_eval_gate(reference, measured, lm_eval_stderr(reference, n_items), lm_eval_stderr(measured, n_items))
    raise ValueError(f"unknown gate {gate!r}; known: {', '.join(GATES)}")


def _detected_drop(rejection_at, target: float, largest: float) -> float | None:
    """The smallest drop rejected in at least ``target`` of the runs (None: not even at ``largest``)."""
    if rejection_at(0.0) >= target:
        return 0.0
    if rejection_at(largest) < target:
        return None
    low, high = 0.0, largest
    for _ in range(_BISECTIONS):
        middle = (low + high) / 2
        low, high = (low, middle) if rejection_at(middle) >= target else (middle, high)
    return high


def _drop_error(rejection_at, drop: float | None, target: float, sims: int, largest: float) -> float | None:
    """Monte Carlo error of a found drop: the rejection rate's error over the rate's slope there."""
    if drop is None or drop == 0:
        return None  # none found, or already rejected at no change: a bound, not an estimate
    low, high = max(0.0, drop - _SLOPE_STEP), min(largest, drop + _SLOPE_STEP)
    slope = (rejection_at(high) - rejection_at(low)) / (high - low)
    return mc_error(target, sims) / slope if slope > 0 else math.inf


def _quantile_error(values: np.ndarray, level: float) -> float:
    """Monte Carlo error of an empirical quantile: the binomial error of the level times the quantile's local slope."""
    spread = 0.05
    width = float(np.quantile(values, min(1.0, level + spread)) - np.quantile(values, max(0.0, level - spread)))
    return width / (2 * spread) * mc_error(level, values.size)


def gate_figures(gate: str, cell: GateCell, *, sims: int, alpha: float, mode: Mode, seed: int = 0) -> dict:
    """The four figures of one gate in one cell (drops and margins in score points), each with its Monte Carlo
    error (``_mc_error``: two standard errors, as ``calibration.mc_error``; None where the figure is None)."""

    def rejection_at(drop: float) -> float:
        a, b = cell.draw(drop, sims, seed)
        return 1.0 - float(np.mean(gate_passes(gate, a, b, margin=cell.margin, alpha=alpha, mode=mode)))

    a, b = cell.draw(0.0, sims, seed)
    if gate == STATREPRO:
        margins = statrepro_margins(a, b, alpha=alpha, mode=mode)
        false_alarm = float(np.mean(margins >= cell.margin))
        certifiable: float | None = float(np.quantile(margins, POWER, method="higher"))
        certifiable_error: float | None = _quantile_error(margins, POWER)
    else:
        false_alarm = 1.0 - float(np.mean(gate_passes(gate, a, b, margin=cell.margin, alpha=alpha, mode=mode)))
        certifiable = _detected_drop(rejection_at, 1 - alpha, cell.largest_drop) if false_alarm <= 1 - POWER else None
        certifiable_error = _drop_error(rejection_at, certifiable, 1 - alpha, sims, cell.largest_drop)
    false_pass = 1.0 - rejection_at(cell.margin)
    drop_80 = _detected_drop(rejection_at, POWER, cell.largest_drop)
    return {
        "false_alarm": false_alarm, "false_alarm_mc_error": mc_error(false_alarm, sims),
        "false_pass": false_pass, "false_pass_mc_error": mc_error(false_pass, sims),
        "drop_80": drop_80, "drop_80_mc_error": _drop_error(rejection_at, drop_80, POWER, sims, cell.largest_drop),
        "certifiable_margin": certifiable, "certifiable_margin_mc_error": certifiable_error,
    }
