"""A and B read from different harnesses: items pair on a stable identity (the shared item key of statrepro's
prepared tasks, else the document hash), and the harness difference is reported with what was matched.

The LiveBench A/A uses format-exact synthetic outputs of both harnesses (lm-eval samples from
tests/support/harness_output.py, evalscope general_qa reviews dumped by evalscope's own classes) over the same
prepared items, answered alike. Both harnesses run for real by statrepro's runner against the fake endpoint in
test_evalscope_livebench.py's `model`-marked test (about 2 minutes), which checks the same harness note."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harness_output import general_qa_review, generation_samples, write_evalscope_run, write_lm_eval_run
from statrepro.analysis import pair
from statrepro.benchmarks import get_benchmark
from statrepro.benchmarks import livebench as lb
from statrepro.cli import app
from statrepro.errors import InputError
from statrepro.harness.records import make_records

DATA_DIR = os.environ.get("STATREPRO_DATA_DIR")
needs_data = pytest.mark.skipif(not DATA_DIR or not Path(DATA_DIR).is_dir(), reason="benchmark data dir not available")


def _answer(row_index: int, ground_truth: str) -> str:
    """Right on even rows, unusable on odd ones: both scores occur."""
    return f"**{ground_truth}**" if row_index % 2 == 0 else "I do not know."


@needs_data
def test_lm_eval_against_evalscope_on_livebench_pairs_every_item_and_names_the_harness_difference(tmp_path):
    pytest.importorskip("evalscope")
    subsets, limit = ["spatial", "web_of_lies_v2", "cta"], 3
    spec = get_benchmark("livebench")
    lm_eval_tasks = {}
    for task, rows in spec.load_items(DATA_DIR, subsets).items():
        scores = [lb.process_results(row, [_answer(index, row["ground_truth"])])["score"] for index, row in enumerate(rows[:limit])]
        name = lb.task_name(task)
        lm_eval_tasks[name] = generation_samples(name, {"none": scores}, metric="score")
    write_lm_eval_run(tmp_path / "lm-eval", "2026-01-01T10-00-00.000001", 0, lm_eval_tasks)

    prepared = spec.evalscope_dataset_args(tmp_path / "tasks", data_dir=DATA_DIR, limit=limit, subsets=subsets)
    root = Path(prepared.dataset_args["general_qa"]["dataset_id"])
    reviews = {}
    for subset in prepared.dataset_args["general_qa"]["subset_list"]:
        lines = [json.loads(line) for line in (root / f"{subset}_test.jsonl").read_text(encoding="utf-8").splitlines()]
        reviews[f"general_qa_{subset}"] = [
            general_qa_review(index, index, 0, question=line["question"], answer=line["answer"],
                              prediction=_answer(index, json.loads(line["answer"])["ground_truth"]))
            for index, line in enumerate(lines)
        ]
    write_evalscope_run(tmp_path / "evalscope", "20260101_100000", reviews, dataset_args=prepared.dataset_args)

    verdict = tmp_path / "verdict.json"
    result = CliRunner().invoke(app, ["analyze", str(tmp_path / "lm-eval"), str(tmp_path / "evalscope"),
                                      "--resamples", "200", "--json", str(verdict)])
    assert result.exit_code in (0, 3, 4), result.output
    payload = json.loads(verdict.read_text())
    items = len(subsets) * limit
    assert payload["benchmarks"]["livebench"]["n_items"] == items
    assert payload["benchmarks"]["livebench"]["diff"] == 0.0  # the same answers score alike through either harness
    [harness] = [d for d in payload["config_differences"] if d["factor"] == "harness"]
    assert harness["detail"] == (f"A is lm-eval output, B is evalscope output; {items} items matched on the item key, "
                                 "0 of A and 0 of B unmatched")
    assert "harness: A is lm-eval output" in result.output


def _records(harness: str, keys: list[str], documents: list[str], scores: list[float]):
    return make_records([
        {"benchmark": "qa", "subset": "qa", "item_key": key, "run_id": "r1", "metric": "acc", "score": score,
         "doc_hash": document, "harness": harness, "source": f"{harness}-output"}
        for key, document, score in zip(keys, documents, scores)
    ])


def test_items_keyed_differently_pair_on_the_document_hash_and_the_unmatched_are_counted():
    side_a = _records("lm-eval", ["qa/0", "qa/1", "qa/2", "qa/3"], ["d0", "d1", "d2", "d3"], [1, 0, 1, 1])
    side_b = _records("plugin", ["x-d1", "x-d0", "x-d3", "x-d9"], ["d1", "d0", "d3", "d9"], [0, 1, 1, 0])
    pairing = pair(side_a, side_b, unpaired="missing")
    bench = pairing.benchmarks["qa"]
    assert bench.item_keys == ["doc_hash:d9", "qa/0", "qa/1", "qa/2", "qa/3"]
    np.testing.assert_array_equal(bench.scores_b[:, 0], [0.0, 1.0, 0.0, np.nan, 1.0])  # qa/2 has no document on B
    [difference] = [d for d in pairing.config_differences if d.factor == "harness"]
    assert difference.detail == "A is lm-eval output, B is plugin output; 3 items matched on the document hash, 1 of A and 1 of B unmatched"


def test_one_harness_on_both_sides_reports_no_harness_difference():
    side = _records("lm-eval", ["qa/0", "qa/1"], ["d0", "d1"], [1, 0])
    assert not [d for d in pair(side, side).config_differences if d.factor == "harness"]


def test_items_with_no_shared_identity_are_an_error_that_names_both_harnesses():
    side_a = _records("lm-eval", ["qa/0", "qa/1"], ["d0", "d1"], [1, 0])
    side_b = _records("inspect_ai", ["task/q0", "task/q1"], [None, None], [1, 0])
    with pytest.raises(InputError, match=r"item sets differ in benchmark 'qa' \(lm-eval output against inspect_ai output\): "
                                         r"2 items only in A, 2 only in B"):
        pair(side_a, side_b)
