"""Choice-level evidence (stats.choices) against a direct computation, ties included, and the evidence gates."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from statrepro.stats.choices import compare_choices, evidence_gates, item_choices, mean_interval
from statrepro.stats.rules import VerdictRules


def _direct(a: np.ndarray, b: np.ndarray, gold: np.ndarray) -> tuple[list[float], list[float], list[float]]:
    """Item by item, pair by pair, with plain Python: softmax, KL with 0 log 0 = 0, top-choice sets, gold means."""
    kls, changes, golds = [], [], []
    for item in range(a.shape[0]):
        runs_a = [row for row in a[item] if not np.isnan(row).any()]
        runs_b = [row for row in b[item] if not np.isnan(row).any()]
        pair_kl, pair_changed = [], []
        for row_a, row_b in itertools.product(runs_a, runs_b):
            p = [math.exp(x) for x in row_a]
            q = [math.exp(x) for x in row_b]
            p, q = [x / sum(p) for x in p], [x / sum(q) for x in q]
            pair_kl.append(sum(pi * math.log(pi / qi) for pi, qi in zip(p, q) if pi > 0))
            top_a = {c for c, x in enumerate(row_a) if x == max(row_a)}
            top_b = {c for c, x in enumerate(row_b) if x == max(row_b)}
            pair_changed.append(float(top_a != top_b))
        kls.append(float(np.mean(pair_kl)) if pair_kl else math.nan)
        changes.append(float(np.mean(pair_changed)) if pair_changed else math.nan)
        if runs_a and runs_b and gold[item] >= 0:
            golds.append(float(np.mean([r[gold[item]] for r in runs_b]) - np.mean([r[gold[item]] for r in runs_a])))
        else:
            golds.append(math.nan)
    return kls, changes, golds


def test_item_choices_match_a_direct_computation_with_ties_missing_runs_and_absent_choices() -> None:
    rng = np.random.default_rng(0)
    n, choices = 60, 4
    # log-likelihoods on a coarse grid, so ties at the top (and elsewhere) are common
    a = rng.integers(-4, 0, size=(n, 2, choices)).astype(float)
    b = rng.integers(-4, 0, size=(n, 3, choices)).astype(float)
    b[:10] = a[:10, :1]  # identical first runs on 10 items: those pairs give KL 0 and no change
    a[5, 1] = np.nan  # a missing run of A
    b[6] = np.nan  # an item without any run on B
    a[7:12, :, 3] = b[7:12, :, 3] = -np.inf  # items with three choices
    gold = rng.integers(0, choices, n)
    gold[8] = -1  # unknown gold
    ties = np.sum(a == a.max(axis=2, keepdims=True), axis=2) > 1
    assert ties.sum() > 10  # the data do test ties
    result = item_choices(a, b, gold)
    kls, changes, golds = _direct(a, b, gold)
    np.testing.assert_allclose(result.kl, kls, rtol=1e-12, atol=1e-15, equal_nan=True)
    np.testing.assert_array_equal(result.top_changed, changes)
    np.testing.assert_allclose(result.gold_delta, golds, rtol=1e-12, equal_nan=True)
    assert np.isnan(result.kl[6]) and np.isnan(result.gold_delta[8])


def test_a_tie_broken_alike_is_no_change_and_a_tie_on_one_side_is_one() -> None:
    tie = np.array([[[-1.0, -1.0, -3.0]]])
    assert item_choices(tie, tie).top_changed[0] == 0.0
    assert item_choices(tie, np.array([[[-1.0, -1.1, -3.0]]])).top_changed[0] == 1.0
    assert item_choices(tie, tie).kl[0] == 0.0


def test_a_choice_b_makes_impossible_gives_an_infinite_kl_that_is_never_dropped() -> None:
    a = np.array([[[-1.0, -2.0, -3.0]], [[-1.0, -2.0, -3.0]]])
    b = a.copy()
    b[1, 0, 2] = -np.inf
    result = compare_choices(a, b, np.array([2, 2]), n_resamples=200, rng=0)
    assert result.n_items == 2 and result.kl.mean == math.inf and result.kl.lower == math.inf
    assert result.gold_delta.mean == -math.inf
    gate = evidence_gates(VerdictRules(kl_margin=1.0), result, None, 0.05)[0]
    assert gate.outcome == "beyond"


def test_an_a_a_gives_exactly_zero() -> None:
    """Log-likelihood scoring repeats itself run after run: an A/A of such runs is exactly 0."""
    rng = np.random.default_rng(1)
    a = np.repeat(rng.normal(-3, 2, size=(200, 1, 5)), 3, axis=1)
    result = compare_choices(a, a.copy(), rng.integers(0, 5, 200), n_resamples=500, rng=0)
    assert result.kl.mean == 0.0 and result.kl.ci == (0.0, 0.0) and result.kl.upper == 0.0
    assert result.top_changed.mean == 0.0 and result.gold_delta.mean == 0.0


def test_runs_that_differ_within_a_side_give_an_a_a_its_noise_floor() -> None:
    """Every pair of runs counts, so two sides drawn alike show the run-to-run divergence (the control's floor)."""
    rng = np.random.default_rng(2)
    base = rng.normal(-3, 2, size=(200, 1, 5))
    a, again, control = (base + rng.normal(0, 0.1, size=(200, 3, 5)) for _ in range(3))
    noisy = compare_choices(a, again, n_resamples=500, rng=0, logprobs_control=control)
    assert 0 < noisy.kl.mean < 0.05
    assert noisy.control.kl.mean > 0 and noisy.excess_kl.ci[0] <= 0 <= noisy.excess_kl.ci[1]


def test_the_share_of_changed_tops_takes_exact_bounds_when_items_are_zero_or_one() -> None:
    values = np.zeros(100)
    values[:4] = 1
    share = mean_interval(values, alpha=0.05, beyond_alpha=0.01, n_resamples=500, rng=np.random.default_rng(0), share=True)
    from scipy import stats

    assert share.method == "clopper-pearson"
    assert share.upper == pytest.approx(stats.beta.ppf(0.95, 5, 96))
    assert share.lower == pytest.approx(stats.beta.ppf(0.01, 4, 97))
    assert share.ci == pytest.approx((stats.beta.ppf(0.025, 4, 97), stats.beta.ppf(0.975, 5, 96)))


def test_the_one_sided_upper_bound_of_a_skewed_mean_covers() -> None:
    """KL-like values (exponential, skewed): the upper bound lies above the true mean in about 1 - alpha of samples."""
    rng = np.random.default_rng(2)
    sims, covered = 300, 0
    for _ in range(sims):
        values = rng.exponential(0.05, size=150)
        bound = mean_interval(values, alpha=0.05, beyond_alpha=0.05, n_resamples=1000, rng=rng)
        covered += bound.upper >= 0.05
    # 0.95 with MC error ~0.013; BCa on a skewed mean at n = 150 sits a little below
    assert 0.91 <= covered / sims <= 0.99


def test_evidence_gates_read_the_reported_bounds() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(-2, 1, size=(80, 1, 4))
    b = a + rng.normal(0, 0.5, size=a.shape)
    choices = compare_choices(a, b, n_resamples=500, rng=0, beyond_alpha=0.025)
    rules = VerdictRules(kl_margin=0.5, top1_margin=0.2)
    kl_gate, top_gate = evidence_gates(rules, choices, None, 0.025)
    assert (kl_gate.upper, kl_gate.lower, kl_gate.margin) == (choices.kl.upper, choices.kl.lower, 0.5)
    assert (top_gate.upper, top_gate.estimate) == (choices.top_changed.upper, choices.top_changed.mean)
    with pytest.raises(ValueError, match="A/A control"):
        evidence_gates(VerdictRules(flip_margin=0.05), choices, None, 0.025)


@pytest.mark.parametrize("name", ["kl_margin", "top1_margin", "flip_margin"])
def test_gate_margins_must_be_positive(name: str) -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        VerdictRules(**{name: 0.0})
