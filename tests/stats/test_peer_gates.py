"""stats/peer_gates.py: each peer gate's rule on hand-computed cases (docs/gates.md cites the sources), and
stats/gate_simulation.py's reading of statrepro's test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from statrepro.stats.gate_simulation import GATES, STATREPRO, GateCell, gate_figures, gate_passes, statrepro_margins
from statrepro.stats.peer_gates import (
    lm_eval_gate,
    lm_eval_stderr,
    sglang_gate,
    trt_gate,
    trt_theta,
    trt_threshold,
    vllm_gate,
)
from statrepro.stats.tests import tost

Z_95, Z_80 = 1.6448536269514722, 0.8416212335729143


def test_tensorrt_llm_lowers_the_reference_by_an_unpaired_standard_error():
    # GSM8K's 1,319 items, sigma 50 points: scale = sqrt(2 * 0.5^2 / 1319) = 0.0194700..., threshold = ref - 1.645 scale
    scale = math.sqrt(2 * 0.25 / 1319)
    assert trt_threshold(0.6, 1319) == pytest.approx(0.6 - Z_95 * scale, abs=1e-12)
    assert 0.6 - Z_95 * scale == pytest.approx(0.567975, abs=1e-6)
    assert trt_gate([0.6, 0.6], [0.568, 0.5679], 1319).tolist() == [True, False]
    assert trt_theta(1319) == pytest.approx((Z_95 + Z_80) * scale, abs=1e-12)  # 4.84 points


def test_vllm_band_is_relative_to_the_measured_score_and_two_sided():
    # |0.6 - m| <= 1e-8 + 0.08 m: 0.556 passes (0.044 <= 0.04448), 0.555 fails (0.045 > 0.0444)
    assert vllm_gate([0.6] * 4, [0.556, 0.555, 0.652, 0.653]).tolist() == [True, False, True, False]


def test_sglang_ratio_and_its_zero_baseline():
    assert sglang_gate([0.6, 0.6], [0.588, 0.5879]).tolist() == [True, False]
    with pytest.raises(ZeroDivisionError):
        sglang_gate([0.0], [0.0])


def test_lm_eval_comparator_is_an_unpaired_z_test_that_calls_two_zero_scores_different():
    se = lm_eval_stderr(np.array([0.6, 0.55, 0.58]), 1000)
    assert se[0] == pytest.approx(math.sqrt(0.24 / 999))
    # z = 0.05 / sqrt(0.24/999 + 0.2475/999) = 2.263, p = 0.024: different; 0.58: z = 0.905, p = 0.37: the same
    assert lm_eval_gate([0.6, 0.6], [0.55, 0.58], [se[0], se[0]], [se[1], se[2]]).tolist() == [False, True]
    zero = lm_eval_stderr(np.array([0.0]), 1000)
    assert lm_eval_gate([0.0], [0.0], zero, zero).tolist() == [False]  # 0/0: NaN > alpha is false
    half = lm_eval_stderr(np.array([0.5]), 1000)
    assert lm_eval_gate([0.5], [0.5], half, half).tolist() == [True]


def test_the_smallest_passing_margin_is_where_statrepros_test_starts_to_pass():
    """statrepro_margins reads the test's interval: at a margin just above it the test passes, just below it fails
    (0/1 data, the restricted-score path, and a one-way loss)."""
    cell = GateCell(0.6, 400, 0.1, 0.03)
    a, b = cell.draw(0.01, 30, seed=7)
    for mode in ("non-inferiority", "equivalence"):
        smallest = statrepro_margins(a, b, alpha=0.05, mode=mode)
        for row, margin in enumerate(smallest):
            below = [(margin * 0.99 - 1e-9, False)] if margin > 0 else []  # 0: it passes at any positive margin
            for tolerance, passes in [(margin * 1.01 + 1e-9, True), *below]:
                result = tost(a[row], b[row], tolerance=tolerance, margin_kind="absolute", mode=mode, alpha=0.05)
                assert (result.p_value < 0.05) == passes


def test_gate_figures_of_every_gate_on_a_small_cell():
    cell = GateCell(0.6, 300, 0.1, 0.03)
    for gate in GATES:
        figures = gate_figures(gate, cell, sims=40, alpha=0.05, mode="non-inferiority")
        assert 0 <= figures["false_alarm"] <= 1 and 0 <= figures["false_pass"] <= 1
        assert figures["drop_80"] is None or 0 <= figures["drop_80"] <= cell.largest_drop
    a, b = cell.draw(0.0, 5, seed=0)
    assert gate_passes(STATREPRO, a, b, margin=0.5, alpha=0.05, mode="non-inferiority").all()
    with pytest.raises(ValueError, match="unknown gate"):
        gate_passes("nope", a, b, margin=0.03, alpha=0.05, mode="non-inferiority")
