"""The accuracy gates that inference engines run in their CI, re-implemented from their sources (docs/gates.md
cites each file) so that `statrepro bench gates` can set them beside statrepro's paired test on the same
simulated data.

Each gate compares a measured score with a stored reference score, one number each: none of them sees the
items, so none can pair them. Every function takes arrays (one element per simulated comparison) and returns
whether the gate passes.
"""

from __future__ import annotations

import numpy as np
from scipy import special

# The defaults each project ships with.
TRT_ALPHA = 0.05
TRT_BETA = 0.2
TRT_SIGMA_POINTS = 50.0  # per-item SD on a 0-100 scale; 0.5 on a 0-1 scale
VLLM_RTOL = 0.08
SGLANG_RATIO = 0.98
LM_EVAL_ALPHA = 0.05


def trt_threshold(reference, n_items: int, *, sigma: float = TRT_SIGMA_POINTS / 100, alpha: float = TRT_ALPHA):
    """TensorRT-LLM (higher is better): the reference lowered by z_(1-alpha) standard errors of an unpaired
    difference, whose variance it takes as 2 sigma^2 / n."""
    scale = np.sqrt(2 * sigma**2 / n_items)
    return np.asarray(reference, float) + special.ndtri(alpha) * scale


def trt_theta(n_items: int, *, sigma: float = TRT_SIGMA_POINTS / 100, alpha: float = TRT_ALPHA, beta: float = TRT_BETA) -> float:
    """TensorRT-LLM's stated minimum detectable effect: (z_(1-alpha) + z_(1-beta)) standard errors of that
    unpaired difference."""
    return float(-(special.ndtri(alpha) + special.ndtri(beta)) * np.sqrt(2 * sigma**2 / n_items))


def trt_gate(reference, measured, n_items: int, **settings) -> np.ndarray:
    """TensorRT-LLM passes when the measured score is at least its threshold."""
    return np.asarray(measured, float) >= trt_threshold(reference, n_items, **settings)


def vllm_gate(reference, measured, *, rtol: float = VLLM_RTOL) -> np.ndarray:
    """vLLM passes when numpy calls the two scores close: |reference - measured| <= 1e-8 + rtol |measured| (the
    band is relative to the measured score, numpy's second argument, and two-sided)."""
    return np.isclose(np.asarray(reference, float), np.asarray(measured, float), rtol=rtol)


def sglang_gate(reference, measured, *, ratio: float = SGLANG_RATIO) -> np.ndarray:
    """SGLang passes when measured / reference is at least ``ratio``. Python's float division raises on a zero
    reference, and so does this."""
    reference = np.asarray(reference, float)
    if np.any(reference == 0):
        raise ZeroDivisionError("float division by zero (a reference score of 0)")
    return np.asarray(measured, float) / reference >= ratio


def lm_eval_stderr(score, n_items: int):
    """lm-eval's standard error of a mean of 0/1 scores: the sample SD (ddof 1) over sqrt(n)."""
    score = np.asarray(score, float)
    return np.sqrt(score * (1 - score) / (n_items - 1))


def lm_eval_gate(reference, measured, stderr_reference, stderr_measured, *, alpha: float = LM_EVAL_ALPHA) -> np.ndarray:
    """lm-eval's model comparator: an unpaired two-sided z test of the two scores with their reported standard
    errors; the models pass (a tick) when p > alpha. Two zero standard errors make z = 0/0 = NaN, and NaN > alpha
    is false: two runs that both scored 0% are "different"."""
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (np.asarray(reference, float) - np.asarray(measured, float)) / np.sqrt(
            np.asarray(stderr_reference, float) ** 2 + np.asarray(stderr_measured, float) ** 2
        )
        p_value = 2 * special.ndtr(-np.abs(z))
        return p_value > alpha
