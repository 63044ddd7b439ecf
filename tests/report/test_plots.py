"""The report's plots of where items moved: the flip matrix, the per-subset differences, the log-likelihood changes."""

from __future__ import annotations

import numpy as np

from statrepro.analysis import AnalysisOptions, analyze, item_choice_changes
from statrepro.harness.records import make_records
from statrepro.report.items import item_data, item_subsets
from statrepro.report.plots import flip_matrix, loglik_plot, subset_differences, subset_plot
from statrepro.stats.rules import VerdictRules

SUBSETS = ("anatomy", "law", "physics")


def _records(scores: dict[str, np.ndarray], *, choice_logprobs=None):
    """One side's records of benchmark "mmlu": item i in subset SUBSETS[i % 3], runs as columns."""
    rows = []
    matrix = scores["mmlu"]
    for item in range(matrix.shape[0]):
        for run in range(matrix.shape[1]):
            if np.isnan(matrix[item, run]):
                continue
            rows.append({
                "benchmark": "mmlu", "subset": SUBSETS[item % 3], "item_key": f"mmlu/{item}", "run_id": f"s{run}",
                "metric": "acc", "score": float(matrix[item, run]), "target": "1", "model": "m", "source": "x.jsonl",
                "choice_logprobs": None if choice_logprobs is None else list(choice_logprobs[item]),
            })
    return make_records(rows)


def _analysis(a, b, *, extra_a=None, extra_b=None):
    records_a, records_b = _records({"mmlu": a}, **(extra_a or {})), _records({"mmlu": b}, **(extra_b or {}))
    options = AnalysisOptions(rules=VerdictRules(n_resamples=300), unpaired="missing")
    return analyze(records_a, records_b, options), records_a, records_b


def test_flip_matrix_cells_are_the_verdicts_flips_and_leave_ties_and_missing_out():
    rng = np.random.default_rng(3)
    a = (rng.random((90, 2)) < 0.6).astype(float)
    b = a.copy()
    b[:20] = 1 - b[:20]
    b[20:25, 1] = np.nan  # missing runs: these items' B means rest on one run
    b[25, :] = np.nan  # an item missing on B altogether
    analysis, _, _ = _analysis(a, b)
    cells = flip_matrix(analysis.pairing.benchmarks["mmlu"])
    flips = analysis.to_json().benchmarks["mmlu"]
    assert cells[0, 1] == flips.flips_down and cells[1, 0] == flips.flips_up and cells[0, 1] + cells[1, 0] > 0
    mean_a = a.mean(axis=1)
    mean_b = np.array([np.nan if np.isnan(row).all() else np.nanmean(row) for row in b])
    decided = np.sum((mean_a != 0.5) & (mean_b != 0.5) & ~np.isnan(mean_b))
    assert cells.sum() == decided < 89  # ties at 0.5 and the item missing on B are in no cell


def test_a_regression_in_one_subset_comes_first_with_an_interval_below_zero():
    rng = np.random.default_rng(5)
    a = (rng.random((150, 3)) < 0.7).astype(float)
    b = a.copy()
    law = np.arange(150)[np.arange(150) % 3 == 1]
    b[law[a[law].mean(axis=1) > 0.5]] = 0.0  # B loses every item of law that A gets right
    analysis, records_a, records_b = _analysis(a, b)
    subsets = {"mmlu": item_subsets(analysis.pairing.benchmarks["mmlu"], records_a, records_b)}
    panels = subset_differences(analysis.pairing, subsets, alpha=0.05, n_resamples=500, rng_seed=0)
    (name, found), = panels
    assert name == "mmlu" and [subset for subset, _ in found][0] == "law"
    assert found[0][1].ci[1] < 0 and all(interval.mean == 0 for _, interval in found[1:])
    assert [interval.n_items for _, interval in found] == [50, 50, 50]
    assert subset_plot(panels, 0.05).startswith(b"\x89PNG")
    assert subset_differences(analysis.pairing, {"mmlu": ["one"] * 150}, alpha=0.05, n_resamples=100, rng_seed=0) == []
    assert subset_plot([], 0.05) is None


def test_log_likelihood_changes_are_the_gold_choices_per_item():
    rng = np.random.default_rng(8)
    logprobs_a = rng.normal(-2, 1, (30, 4))
    shift = np.zeros((30, 4))
    shift[:, 1] = rng.normal(-0.5, 0.2, 30)  # the gold choice (target "1") loses log-likelihood in B
    a = (rng.random((30, 1)) < 0.5).astype(float)
    analysis, records_a, records_b = _analysis(a, a.copy(), extra_a={"choice_logprobs": logprobs_a}, extra_b={"choice_logprobs": logprobs_a + shift})
    bench = analysis.pairing.benchmarks["mmlu"]
    changes = item_choice_changes(bench, records_a, records_b)
    order = [int(key.split("/")[1]) for key in bench.item_keys]
    np.testing.assert_allclose(changes.gold_delta, shift[order, 1])
    assert loglik_plot({"mmlu": changes}).startswith(b"\x89PNG")
    # The item browser shows each run's choice log-likelihoods beside the other side's (-inf as null in JSON).
    logprobs_b = logprobs_a + shift
    logprobs_a[3, 2] = -np.inf
    data = item_data(analysis, _records({"mmlu": a}, choice_logprobs=logprobs_a), records_b)
    third = next(item for item in data["items"] if item["key"] == "mmlu/3")
    assert third["a"][0][-1] == [logprobs_a[3, 0], logprobs_a[3, 1], None, logprobs_a[3, 3]]
    assert third["b"][0][-1] == list(logprobs_b[3])
    plain_a, plain_b = _records({"mmlu": a}), _records({"mmlu": a})
    assert item_choice_changes(bench, plain_a, plain_b) is None
    assert loglik_plot({}) is None
