"""Ship the smallest candidate that passes: the fixed sequence keeps the chance of shipping one truly beyond the
margin at or below alpha, where testing each candidate on its own does not (issue 23)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from statrepro.stats.rules import VerdictRules
from statrepro.stats.selection import select_in_sequence, shipping_errors

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


def _rates(truths, sims, seed):
    errors = shipping_errors(tuple(truths), RULES, sims=sims, rng=np.random.default_rng(seed))
    return errors.each_on_its_own, errors.fixed_sequence


def _mc_error(rate, sims):
    rate = max(rate, 1 / sims)
    return 2 * math.sqrt(rate * (1 - rate) / sims)


def test_five_candidates_at_the_margin_ship_one_at_most_alpha_of_the_time():
    naive, sequence = _rates([-MARGIN] * 5, sims=300, seed=1)
    assert sequence <= ALPHA + _mc_error(ALPHA, 300)
    assert naive > sequence  # each on its own passes some of the five far more often


def test_a_ladder_that_degrades_ships_a_bad_rung_at_most_alpha_of_the_time():
    _, sequence = _rates([0.0, -0.5 * MARGIN, -MARGIN, -1.5 * MARGIN, -2 * MARGIN], sims=200, seed=2)
    assert sequence <= ALPHA + _mc_error(ALPHA, 200)
