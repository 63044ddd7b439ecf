"""stats.token_kld against brute force (loops over the vocabulary, llama.cpp's formulas written out), with ties."""

from __future__ import annotations

import math

import numpy as np
import pytest

from statrepro.stats.token_kld import TokenFigures, clustered_mean_ci, summarize_token_kld, token_figures, topk_token_figures


def _brute(logits_ref, logits_cand, targets):
    """Per token, by plain loops: KL(ref||cand), same first argmax, the two NLLs of the actual next token."""
    out = []
    for row_ref, row_cand, target in zip(logits_ref.tolist(), logits_cand.tolist(), targets.tolist()):
        z_ref = math.fsum(math.exp(v) for v in row_ref)
        z_cand = math.fsum(math.exp(v) for v in row_cand)
        p = [math.exp(v) / z_ref for v in row_ref]
        q = [math.exp(v) / z_cand for v in row_cand]
        kld = math.fsum(pi * math.log(pi / qi) for pi, qi in zip(p, q) if pi > 0)
        same = row_ref.index(max(row_ref)) == row_cand.index(max(row_cand))
        out.append((kld, same, -math.log(p[target]), -math.log(q[target])))
    return [np.array(column) for column in zip(*out)]


def _tied_logits(rng, n, vocab):
    """Logits rounded to a coarse grid, so rows hold exact ties, with some rows entirely equal."""
    logits = np.round(rng.normal(0, 2, size=(n, vocab)) * 2) / 2
    logits[::7] = 0.0  # uniform rows: every token tied
    return logits


def test_per_token_figures_match_brute_force_with_ties():
    rng = np.random.default_rng(1)
    ref = _tied_logits(rng, 40, 9)
    cand = ref + np.round(rng.normal(0, 0.6, size=ref.shape) * 2) / 2
    cand[3] = ref[3]
    targets = rng.integers(0, 9, size=40)
    figures = token_figures(ref, cand, targets)
    kld, same, nll_ref, nll_cand = _brute(ref, cand, targets)
    np.testing.assert_allclose(figures.kld, kld, rtol=1e-10, atol=1e-13)
    np.testing.assert_array_equal(figures.same_top, same)
    np.testing.assert_allclose(figures.nll_ref, nll_ref, rtol=1e-12)
    np.testing.assert_allclose(figures.nll_cand, nll_cand, rtol=1e-12)
    assert not same.all() and same.any()


def test_a_tie_broken_the_same_way_is_the_same_top_and_a_tie_on_one_side_follows_the_first_argmax():
    ref = np.array([[1.0, 3.0, 3.0, 0.0], [1.0, 3.0, 3.0, 0.0], [1.0, 3.0, 3.0, 0.0]])
    cand = np.array([[1.0, 3.0, 3.0, 0.0], [1.0, 3.0, 2.9, 0.0], [1.0, 2.9, 3.0, 0.0]])
    figures = token_figures(ref, cand, np.array([0, 1, 2]))
    assert figures.same_top.tolist() == [True, True, False]  # llama.cpp's argmax takes the first maximal logit
    assert figures.kld[0] == 0.0 and figures.kld[1] > 0 and figures.kld[2] > 0


def test_a_against_a_is_exactly_zero():
    rng = np.random.default_rng(2)
    logits = _tied_logits(rng, 60, 11)
    figures = token_figures(logits, logits.copy(), rng.integers(0, 11, size=60))
    result = summarize_token_kld(figures, np.array([20, 25, 15]))
    assert (figures.kld == 0).all()
    assert result.mean_kld == 0 and result.kld_se == 0 and result.kld_ci == (0.0, 0.0) and result.max_kld == 0
    assert all(value == 0 for value in result.kld_percentiles.values())
    assert result.same_top == 1 and result.rms_dp == 0 and result.ln_ppl_ratio == 0 and result.ln_ppl_ratio_se == 0


def _llama_percentile(values, fraction):
    """llama.cpp's percentile, written out: linear between the order statistics around fraction * (n - 1)."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    index = int(position)
    weight = position - index
    return (1 - weight) * ordered[index] + weight * ordered[min(index + 1, len(ordered) - 1)]


def _llama_mean_se(values):
    n = len(values)
    mean = sum(values) / n
    spread = sum(v * v for v in values) / n - mean * mean
    return mean, math.sqrt(spread / (n - 1)) if spread > 0 and n > 10 else 0.0


def test_summary_figures_match_llama_cpp_formulas_written_out():
    rng = np.random.default_rng(3)
    ref = _tied_logits(rng, 120, 7)
    cand = ref + rng.normal(0, 0.5, size=ref.shape)
    targets = rng.integers(0, 7, size=120)
    result = summarize_token_kld(token_figures(ref, cand, targets), np.array([50, 40, 30]))
    kld, same, nll_ref, nll_cand = _brute(ref, cand, targets)
    n = len(kld)
    mean, se = _llama_mean_se(kld.tolist())
    assert result.mean_kld == pytest.approx(mean, rel=1e-10) and result.kld_se == pytest.approx(se, rel=1e-8)
    for key, fraction in (("90", 0.9), ("95", 0.95), ("99", 0.99), ("99.9", 0.999)):
        assert result.kld_percentiles[key] == pytest.approx(_llama_percentile(kld.tolist(), fraction), rel=1e-10)
    share = same.mean()
    assert result.same_top == share and result.same_top_se == pytest.approx(math.sqrt(share * (1 - share) / (n - 1)))
    dp2 = ((np.exp(-nll_cand) - np.exp(-nll_ref)) ** 2).tolist()
    mse, mse_se = _llama_mean_se(dp2)
    assert result.rms_dp == pytest.approx(math.sqrt(mse)) and result.rms_dp_se == pytest.approx(0.5 / math.sqrt(mse) * mse_se)
    (mean_c, se_c), (mean_r, se_r) = _llama_mean_se(nll_cand.tolist()), _llama_mean_se(nll_ref.tolist())
    cov = (float(np.mean(nll_cand * nll_ref)) - mean_c * mean_r) / (n - 1)
    assert result.ln_ppl_ratio == pytest.approx(mean_c - mean_r)
    assert result.ln_ppl_ratio_se == pytest.approx(math.sqrt(se_c**2 + se_r**2 - 2 * cov))
    assert result.ppl_ref == pytest.approx(math.exp(mean_r)) and result.ppl_cand == pytest.approx(math.exp(mean_c))


def test_the_interval_over_texts_covers_the_true_mean_where_the_per_token_error_does_not():
    """Known truth: each text has its own KLD level (a random effect), tokens scatter around it. The interval
    that treats texts as clusters covers the true mean about 95% of the time; llama.cpp's per-token SE does not."""
    rng = np.random.default_rng(4)
    truth, covered, covered_naive, reps = 0.05, 0, 0, 400
    for _ in range(reps):
        lengths = rng.integers(20, 80, size=30)
        levels = rng.gamma(2.0, truth / 2.0, size=30)  # mean = truth
        values = np.concatenate([rng.exponential(level, size=count) for level, count in zip(levels, lengths)])
        figures = TokenFigures(values, np.ones(values.size, bool), np.zeros(values.size), np.zeros(values.size))
        result = summarize_token_kld(figures, lengths)
        # The target of a ratio estimator is the length-weighted mean level; lengths are independent of levels.
        covered += result.kld_ci[0] <= truth <= result.kld_ci[1]
        covered_naive += abs(result.mean_kld - truth) <= 1.96 * result.kld_se
    assert 0.91 <= covered / reps <= 0.98
    assert covered_naive / reps < 0.75


def test_interval_needs_two_texts_and_lengths_that_add_up():
    assert all(math.isnan(bound) for bound in clustered_mean_ci(np.ones(5), np.array([5]), 0.95))
    with pytest.raises(ValueError):
        clustered_mean_ci(np.ones(5), np.array([2, 2]), 0.95)
    with pytest.raises(ValueError):
        token_figures(np.zeros((2, 3)), np.zeros((2, 4)), np.array([0, 1]))


def _topk(logits_row, k):
    """The top-k of one row as an endpoint returns it: token string -> log-probability, most likely first (ties by index)."""
    log_p = logits_row - np.log(np.sum(np.exp(logits_row - logits_row.max()))) - logits_row.max()
    order = sorted(range(len(log_p)), key=lambda v: (-log_p[v], v))[:k]
    return {f"t{v}": float(log_p[v]) for v in order}, log_p


def test_top_k_gives_a_lower_bound_that_grows_with_k_and_is_exact_over_the_whole_vocabulary():
    rng = np.random.default_rng(5)
    vocab = 12
    ref = _tied_logits(rng, 50, vocab)
    cand = ref + np.round(rng.normal(0, 0.8, size=ref.shape) * 2) / 2
    targets = rng.integers(0, vocab, size=50)
    exact = token_figures(ref, cand, targets)
    previous = np.zeros(50)
    for k in (1, 2, 4, 8, vocab):
        tops_ref, tops_cand, lp_ref, lp_cand = [], [], [], []
        for row_ref, row_cand, target in zip(ref, cand, targets):
            (top_ref, log_ref), (top_cand, log_cand) = _topk(row_ref, k), _topk(row_cand, k)
            tops_ref.append(top_ref)
            tops_cand.append(top_cand)
            lp_ref.append(log_ref[target])
            lp_cand.append(log_cand[target])
        bound = topk_token_figures(tops_ref, tops_cand, [f"t{t}" for t in targets], np.array(lp_ref), np.array(lp_cand))
        assert (bound.kld <= exact.kld + 1e-12).all()
        assert (bound.kld >= previous - 1e-12).all()  # a finer partition never lowers the bound
        np.testing.assert_array_equal(bound.same_top, exact.same_top)  # the first maximal logit, as in the full path
        np.testing.assert_allclose(bound.nll_ref, exact.nll_ref, rtol=1e-12)
        np.testing.assert_allclose(bound.nll_cand, exact.nll_cand, rtol=1e-12)
        previous = bound.kld
    np.testing.assert_allclose(previous, exact.kld, rtol=1e-9, atol=1e-12)
    assert (previous > 0).any() and summarize_token_kld(bound, np.array([50])).mean_kld > 0


def test_top_k_of_identical_sides_is_exactly_zero():
    tops = [{"a": -0.5, "b": -1.5}, {"b": -0.1, "c": -3.0}]
    figures = topk_token_figures(tops, [dict(top) for top in tops], ["b", "c"], np.array([-1.5, -3.0]), np.array([-1.5, -3.0]))
    assert (figures.kld == 0).all() and figures.same_top.all() and (figures.nll_ref == figures.nll_cand).all()
