"""Ship the smallest candidate that passes: the fixed sequence keeps the chance of shipping one truly beyond the
margin at or below alpha, where testing each candidate on its own does not (issue 23)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from statrepro.stats import compare_paired, decide
from statrepro.stats.rules import VerdictRules
from statrepro.stats.selection import select_in_sequence

ALPHA = 0.05
MARGIN = 0.05
RULES = VerdictRules(tolerance=MARGIN, margin_kind="absolute", n_resamples=100)


def test_the_sequence_clears_a_prefix_and_ships_its_last():
    selection = select_in_sequence(["q8", "q6", "q4", "q3", "q2"], ["equivalent", "within_tolerance", "inconclusive", "equivalent", "different"])
    assert selection.cleared == ("q8", "q6") and selection.shipped == "q6" and selection.stopped_at == "q4"
    assert selection.passing_out_of_sequence == ("q3",)
    assert "q3 pass on their own" in selection.summary()
    assert select_in_sequence(["q8"], ["inconclusive"]).shipped is None
    with pytest.raises(ValueError, match="differ"):
        select_in_sequence(["q8", "q8"], ["equivalent", "equivalent"])


def _candidates(rng, truths, n_items=400, accuracy=0.6, churn=0.04):
    """A greedy reference and one greedy candidate per true difference: each candidate flips right items down and
    wrong items up so that its expected difference is ``truth`` (the reference's runs are shared, as in a ladder)."""
    a = (rng.random(n_items) < accuracy).astype(float)
    candidates = []
    for truth in truths:
        down = churn / 2 + max(0.0, -truth) / accuracy
        up = churn / 2 * accuracy / (1 - accuracy) + max(0.0, truth) / (1 - accuracy)
        b = a.copy()
        b[(a == 1) & (rng.random(n_items) < down)] = 0.0
        b[(a == 0) & (rng.random(n_items) < up)] = 1.0
        candidates.append(b)
    return a, candidates


def _shipping_errors(truths, sims, seed):
    """Rates of shipping a candidate truly at or beyond the margin: each on its own vs the fixed sequence."""
    rng = np.random.default_rng(seed)
    beyond = [abs(truth) >= MARGIN - 1e-12 for truth in truths]
    names = [f"c{index}" for index in range(len(truths))]
    naive = sequence = 0
    for _ in range(sims):
        a, candidates = _candidates(rng, truths)
        verdicts = [decide({"x": compare_paired(a, b, RULES, rng=rng)}, RULES).verdict for b in candidates]
        passing = [index for index, verdict in enumerate(verdicts) if verdict in ("equivalent", "within_tolerance")]
        naive += bool(passing) and beyond[passing[-1]]  # the smallest that passes, wherever it stands
        shipped = select_in_sequence(names, verdicts).shipped
        sequence += shipped is not None and beyond[names.index(shipped)]
    return naive / sims, sequence / sims


def _mc_error(rate, sims):
    rate = max(rate, 1 / sims)
    return 2 * math.sqrt(rate * (1 - rate) / sims)


def test_five_candidates_at_the_margin_ship_one_at_most_alpha_of_the_time():
    naive, sequence = _shipping_errors([-MARGIN] * 5, sims=300, seed=1)
    assert sequence <= ALPHA + _mc_error(ALPHA, 300)
    assert naive > sequence  # each on its own passes some of the five far more often


def test_a_ladder_that_degrades_ships_a_bad_rung_at_most_alpha_of_the_time():
    _, sequence = _shipping_errors([0.0, -0.5 * MARGIN, -MARGIN, -1.5 * MARGIN, -2 * MARGIN], sims=200, seed=2)
    assert sequence <= ALPHA + _mc_error(ALPHA, 200)
