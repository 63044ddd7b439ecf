"""A and B read from different harnesses: items pair on a stable identity (the shared item key of statrepro's
prepared tasks, else the document hash, else the benchmark's key map checked by the reference answers), and the
harness difference is reported with what was matched.

The LiveBench A/A uses format-exact synthetic outputs of both harnesses (lm-eval samples from
tests/support/harness_output.py, evalscope general_qa reviews dumped by evalscope's own classes) over the same
prepared items, answered alike. Both harnesses run for real by statrepro's runner against the fake endpoint in
test_evalscope_livebench.py's `model`-marked test (about 2 minutes), which checks the same harness note.

The key-map tests (mmlu_redux, gsm8k) use format-exact synthetic outputs too: lm-eval samples lines as lm-eval
logs them (a clp task's target is the option index, a generate_until task's the rendered doc_to_target, here
gsm8k's whole solution), and evalscope reviews dumped by evalscope's ReviewResult with the target its own
adapters set (mmlu_redux: the answer's letter; gsm8k: the text after '####'), over statrepro's prepared items."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harness_output import (
    choice_samples,
    evalscope_review,
    general_qa_review,
    generation_samples,
    write_evalscope_run,
    write_lm_eval_run,
)
from statrepro.analysis import pair
from statrepro.benchmarks import get_benchmark
from statrepro.benchmarks import livebench as lb
from statrepro.benchmarks import mmlu_redux
from statrepro.benchmarks.choice import LETTERS
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


MMLU_SUBJECTS, MMLU_LIMIT = ["anatomy", "astronomy"], 5


def _right(row: int) -> bool:
    """Right on even rows, wrong on odd ones: both scores occur, and items paired off by one would disagree."""
    return row % 2 == 0


def _log_likelihoods(row: int, gold: int) -> list[float]:
    """Option log-likelihoods whose argmax is the gold option on right rows and the next option on wrong ones."""
    best = gold if _right(row) else (gold + 1) % 4
    return [-1.0 if option == best else -5.0 for option in range(4)]


def _mmlu_redux_lm_eval_clp(out: Path, task_of_subject=lambda subject: mmlu_redux.task_name(subject, "clp")) -> None:
    """lm-eval clp samples of the prepared items (the row index is the doc_id), answered as ``_right`` says."""
    tasks = {}
    for subject, rows in get_benchmark("mmlu_redux").load_items(DATA_DIR, MMLU_SUBJECTS).items():
        golds = [row["target_index"] for row in rows[:MMLU_LIMIT]]
        task = task_of_subject(subject)
        tasks[task] = choice_samples(task, [_log_likelihoods(row, gold) for row, gold in enumerate(golds)], golds)
    write_lm_eval_run(out, "2026-01-01T10-00-00.000001", 0, tasks)


def _mmlu_redux_evalscope(out: Path, rows_of_subject: dict[str, list[dict]]) -> None:
    """evalscope mmlu_redux reviews (target: the letter of `answer`, as its adapter sets for unflagged items)."""
    reviews = {
        f"mmlu_redux_{subject}": [
            evalscope_review(index, index, 0, {"acc": float(_right(index))}, target=LETTERS[row["answer"]])
            for index, row in enumerate(rows[:MMLU_LIMIT])
        ]
        for subject, rows in rows_of_subject.items()
    }
    write_evalscope_run(out, "20260101_100000", reviews)


def _prepared_rows(tmp_path: Path) -> dict[str, list[dict]]:
    """The rows of statrepro's prepared evalscope copies of the subjects, as evalscope reads them."""
    prepared = get_benchmark("mmlu_redux").evalscope_dataset_args(
        tmp_path / "tasks", data_dir=DATA_DIR, limit=MMLU_LIMIT, subsets=MMLU_SUBJECTS
    )
    root = Path(prepared.dataset_args["mmlu_redux"]["dataset_id"])
    return {
        subject: [json.loads(line) for line in (root / f"{subject}_test.jsonl").read_text(encoding="utf-8").splitlines()]
        for subject in MMLU_SUBJECTS
    }


def _analyze(tmp_path: Path):
    verdict = tmp_path / "verdict.json"
    result = CliRunner().invoke(app, ["analyze", str(tmp_path / "lm-eval"), str(tmp_path / "evalscope"),
                                      "--resamples", "200", "--json", str(verdict)])
    return result, verdict


@needs_data
def test_mmlu_redux_lm_eval_clp_against_evalscope_pairs_every_item_on_the_benchmark_key_map(tmp_path):
    pytest.importorskip("evalscope")
    _mmlu_redux_lm_eval_clp(tmp_path / "lm-eval")
    _mmlu_redux_evalscope(tmp_path / "evalscope", _prepared_rows(tmp_path))

    result, verdict = _analyze(tmp_path)
    assert result.exit_code in (0, 3, 4), result.output
    payload = json.loads(verdict.read_text())
    items = len(MMLU_SUBJECTS) * MMLU_LIMIT
    assert payload["benchmarks"]["mmlu_redux"]["n_items"] == items
    assert payload["benchmarks"]["mmlu_redux"]["diff"] == 0.0  # the same items answered alike; a shifted pairing differs
    differences = {d["factor"]: d["detail"] for d in payload["config_differences"]}
    assert differences["harness"] == (
        f"A is lm-eval output, B is evalscope output; {items} items matched on the benchmark key map, 0 of A and 0 of B "
        f"unmatched; reference answers agree on {items} of the matched items"
    )
    assert differences["metric"] == "A is scored with acc,none, B with acc"


@needs_data
def test_gsm8k_lm_eval_against_evalscope_pairs_every_item_on_the_benchmark_key_map(tmp_path):
    pytest.importorskip("evalscope")
    limit = 6
    rows = get_benchmark("gsm8k").load_items(DATA_DIR)["main"][:limit]
    scores = [float(_right(row)) for row in range(limit)]
    samples = generation_samples("statrepro_gsm8k", {"strict-match": [0.0] * limit, "flexible-extract": scores},
                                 targets=[row["answer"] for row in rows])
    write_lm_eval_run(tmp_path / "lm-eval", "2026-01-01T10-00-00.000001", 0, {"statrepro_gsm8k": samples})
    # evalscope's gsm8k adapter: target = the answer's text after the last '####', stripped.
    reviews = [evalscope_review(index, index, 0, {"acc": scores[index]}, target=row["answer"].split("####")[-1].strip())
               for index, row in enumerate(rows)]
    write_evalscope_run(tmp_path / "evalscope", "20260101_100000", {"gsm8k_main": reviews})

    result, verdict = _analyze(tmp_path)
    assert result.exit_code in (0, 3, 4), result.output
    payload = json.loads(verdict.read_text())
    assert payload["benchmarks"]["gsm8k"]["n_items"] == limit
    assert payload["benchmarks"]["gsm8k"]["diff"] == 0.0
    [harness] = [d["detail"] for d in payload["config_differences"] if d["factor"] == "harness"]
    assert harness == (f"A is lm-eval output, B is evalscope output; {limit} items matched on the benchmark key map, "
                       f"0 of A and 0 of B unmatched; reference answers agree on {limit} of the matched items")


@needs_data
def test_a_side_not_run_on_the_prepared_items_is_refused_by_its_reference_answers(tmp_path):
    """A native evalscope run keeps the items statrepro drops as flagged, so its indices name other items."""
    pytest.importorskip("evalscope")
    _mmlu_redux_lm_eval_clp(tmp_path / "lm-eval")
    native = get_benchmark("mmlu_redux").load_items(DATA_DIR, MMLU_SUBJECTS, {"drop_flagged": False})
    _mmlu_redux_evalscope(tmp_path / "evalscope", native)

    result, _ = _analyze(tmp_path)
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in result.output
    # astronomy's first row is flagged: its rows 0, 1 and 3 then hold other answers; anatomy's first rows are all kept.
    assert "benchmark 'mmlu_redux': 3 items paired by the benchmark key map have different reference answers on A and B " \
           "(e.g. 'statrepro_mmlu_redux_astronomy/0'), so the two sides do not hold the same items" in message


@needs_data
def test_an_lm_eval_task_that_is_not_statrepros_is_not_key_mapped(tmp_path):
    pytest.importorskip("evalscope")
    _mmlu_redux_lm_eval_clp(tmp_path / "lm-eval", task_of_subject=lambda subject: f"mmlu_redux_{subject}")
    _mmlu_redux_evalscope(tmp_path / "evalscope", _prepared_rows(tmp_path))

    result, _ = _analyze(tmp_path)
    assert result.exit_code == 2, result.output
    items = len(MMLU_SUBJECTS) * MMLU_LIMIT
    assert (f"item sets differ in benchmark 'mmlu_redux' (lm-eval output against evalscope output): {items} items only "
            f"in A, {items} only in B") in result.stderr


def _gsm8k_records(harness: str, subset: str, rows: list[int], targets: list[str | None]):
    return make_records([
        {"benchmark": "gsm8k", "subset": subset, "item_key": f"{subset}/{row}", "run_id": "r1", "metric": "acc",
         "score": float(_right(row)), "target": target, "harness": harness, "source": f"{harness}-output"}
        for row, target in zip(rows, targets)
    ])


def test_key_mapped_items_without_comparable_answers_pair_and_say_so():
    side_a = _gsm8k_records("lm-eval", "statrepro_gsm8k", [0, 1, 2], [None, None, None])
    side_b = _gsm8k_records("evalscope", "main", [2, 0, 1], [None, None, None])
    pairing = pair(side_a, side_b)
    assert pairing.benchmarks["gsm8k"].item_keys == ["statrepro_gsm8k/0", "statrepro_gsm8k/1", "statrepro_gsm8k/2"]
    np.testing.assert_array_equal(pairing.benchmarks["gsm8k"].scores_b[:, 0], [1.0, 0.0, 1.0])
    [difference] = [d for d in pairing.config_differences if d.factor == "harness"]
    assert difference.detail == ("A is lm-eval output, B is evalscope output; 3 items matched on the benchmark key map, "
                                 "0 of A and 0 of B unmatched; reference answers could not be checked")


def test_a_side_with_two_keys_for_one_item_is_not_key_mapped():
    """Two modes of one subject on a side would fold two items into one identity: no key map then."""
    clp, gen = mmlu_redux.task_name("anatomy", "clp"), mmlu_redux.task_name("anatomy", "gen")
    side_a = make_records([
        {"benchmark": "mmlu_redux", "subset": task, "item_key": f"{task}/0", "run_id": "r1", "metric": "acc", "score": 1.0,
         "harness": "lm-eval", "source": "lm-eval-output"}
        for task in (clp, gen)
    ])
    side_b = make_records([
        {"benchmark": "mmlu_redux", "subset": "anatomy", "item_key": f"anatomy/{row}", "run_id": "r1", "metric": "acc",
         "score": 1.0, "harness": "evalscope", "source": "evalscope-output"}
        for row in (0, 1)
    ])
    with pytest.raises(InputError, match=r"item sets differ in benchmark 'mmlu_redux' \(lm-eval output against evalscope output\)"):
        pair(side_a, side_b)


def test_metrics_named_apart_compare_only_across_harnesses_and_within_one_declared_range():
    side_a = _records("lm-eval", ["qa/0", "qa/1"], ["d0", "d1"], [1, 0])
    [difference] = [d for d in pair(side_a, side_a.assign(metric="acc,none", harness="evalscope")).config_differences
                    if d.factor == "metric"]
    assert difference.detail == "A is scored with acc, B with acc,none"
    for side_b in (side_a.assign(metric="acc,none"), side_a.assign(metric="bleu", harness="evalscope")):
        with pytest.raises(InputError, match=r"benchmark 'qa' is scored with different metrics"):
            pair(side_a, side_b)


@pytest.mark.model  # lm-eval over an endpoint reads the embedded model's tokenizer
@pytest.mark.slow  # both real harnesses end to end: CI's end-to-end phase
def test_real_lm_eval_and_evalscope_runs_of_gsm8k_pair_on_the_key_map(tmp_path, fake_openai):
    """Both harnesses run for real (statrepro's runner) against one fake endpoint that answers "42" to every
    prompt: items whose answer is 42 are right on both harnesses, the others wrong, so the A/A has both scores
    and a verdict only if every item pairs with its own twin."""
    import subprocess
    import sys

    import yaml

    pytest.importorskip("evalscope")
    folder = tmp_path / "data" / "gsm8k"
    folder.mkdir(parents=True)
    answers = [42 if index % 3 == 0 else 50 + index for index in range(9)]
    rows = [{"question": f"Question number {index}?", "answer": f"It is {answer}.\n#### {answer}"} for index, answer in enumerate(answers)]
    (folder / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows[:1]))
    files = []
    for name, harness in (("lm", "lm-eval"), ("es", "evalscope")):
        env = {"name": name, "engine": {"kind": "openai", "base_url": fake_openai.base_url, "served_model": fake_openai.model},
               "harness": {"name": harness}, "benchmarks": {"gsm8k": {"num_fewshot": 0}}, "seeds": 1}
        files.append(tmp_path / f"{name}.yaml")
        files[-1].write_text(yaml.safe_dump(env))
    command = [sys.executable, "-c", "from statrepro.cli import app; app()", "compare", *map(str, files),
               "--store", str(tmp_path / "store"), "--data-dir", str(tmp_path / "data"), "--json", str(tmp_path / "verdict.json"),
               "--margin", "absolute", "--tolerance", "0.5"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    output = completed.stdout + completed.stderr
    assert (tmp_path / "verdict.json").is_file(), output
    payload = json.loads((tmp_path / "verdict.json").read_text())
    bench = payload["benchmarks"]["gsm8k"]
    assert bench["n_items"] == 9 and bench["score_a"] == bench["score_b"] == pytest.approx(3 / 9) and bench["diff"] == 0.0, output
    [harness] = [d for d in payload["config_differences"] if d["factor"] == "harness"]
    assert harness["detail"] == ("A is lm-eval output, B is evalscope output; 9 items matched on the benchmark key map, "
                                 "0 of A and 0 of B unmatched; reference answers agree on 9 of the matched items")
