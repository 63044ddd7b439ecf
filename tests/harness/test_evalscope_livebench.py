"""LiveBench through evalscope: general_qa generates, statrepro's LiveBench scorer scores on read, and the items
key exactly as on the lm-eval path, so the two harnesses pair."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness_output import general_qa_review, write_evalscope_run
from statrepro.benchmarks import get_benchmark
from statrepro.benchmarks import livebench as lb
from statrepro.engines.servers import ServerInfo
from statrepro.envfile import validate_env
from statrepro.errors import InputError
from statrepro.harness import load_side
from statrepro.harness.contract import JobContext
from statrepro.harness.evalscope import build_evalscope_invocation
from statrepro.run.plan import plan_jobs

DATA_DIR = os.environ.get("STATREPRO_DATA_DIR")
needs_data = pytest.mark.skipif(not DATA_DIR or not Path(DATA_DIR).is_dir(), reason="benchmark data dir not available")


def _lm_eval_items(subsets: list[str], limit: int, tmp_path: Path) -> dict[str, dict]:
    """item_key -> the doc lm-eval's process_results hook scores, for the same selection on the lm-eval path."""
    spec = get_benchmark("livebench")
    tasks = spec.write_lm_eval_tasks(tmp_path / "lm-eval-tasks", data_dir=DATA_DIR, limit=limit, subsets=subsets)
    items = {}
    for task, rows in spec.load_items(DATA_DIR, subsets).items():
        for doc_id, row in enumerate(rows[:limit]):
            items[f"{lb.task_name(task)}/{doc_id}"] = row
    assert set(tasks.task_names) == {key.split("/")[0] for key in items}
    return items


def _answer(row: dict) -> str:
    """Right for even rows, unusable for odd ones: both scores occur."""
    return f"**{row['ground_truth']}**" if row["row_index"] % 2 == 0 else "I do not know."


# --------------------------------------------------------------------------- saved evalscope output


@needs_data
def test_saved_general_qa_reviews_are_rescored_by_the_livebench_scorer(tmp_path):
    pytest.importorskip("evalscope")
    subsets = ["spatial", "web_of_lies_v2", "math_comp", "cta"]
    prepared = get_benchmark("livebench").evalscope_dataset_args(tmp_path / "tasks", data_dir=DATA_DIR, limit=2, subsets=subsets)
    root = Path(prepared.dataset_args["general_qa"]["dataset_id"])
    reviews = {}
    for subset in prepared.dataset_args["general_qa"]["subset_list"]:
        lines = [json.loads(line) for line in (root / f"{subset}_test.jsonl").read_text(encoding="utf-8").splitlines()]
        reviews[f"general_qa_{subset}"] = [
            general_qa_review(
                index, index, 0, question=line["question"], answer=line["answer"],
                prediction=_answer({"row_index": index, "ground_truth": json.loads(line["answer"])["ground_truth"]}), rouge=0.5,
            )
            for index, line in enumerate(lines)
        ]  # fmt: skip
    write_evalscope_run(tmp_path / "out", "20260101_100000", reviews, dataset_args=prepared.dataset_args)

    records = load_side(tmp_path / "out").set_index("item_key")
    expected = _lm_eval_items(subsets, 2, tmp_path)
    assert set(records.index) == set(expected)
    assert set(records["benchmark"]) == {"livebench"} and set(records["metric"]) == {lb.SCORE_METRIC}
    for key, row in expected.items():
        assert records.loc[key, "score"] == lb.process_results(row, [_answer(row)])["score"], key
        assert records.loc[key, "target"] == row["ground_truth"]
    assert set(records["score"]) == {0.0, 1.0}  # evalscope's own Rouge (0.5) is not the score
    assert set(load_side(tmp_path / "out", metric_overrides={"livebench": "Rouge-L-R"})["score"]) == {0.5}  # unless asked for


def test_a_review_statrepro_cannot_rescore_is_a_one_line_input_error(tmp_path):
    pytest.importorskip("evalscope")
    review = general_qa_review(0, 0, 0, question="q", answer="3", prediction="**3**")
    write_evalscope_run(tmp_path, "20260101_100000", {"general_qa_statrepro_livebench_spatial": [review]})
    with pytest.raises(InputError, match=r"general_qa_statrepro_livebench_spatial\.jsonl:1 \[target\]: target is not a LiveBench row") as error:
        load_side(tmp_path)
    assert "\n" not in str(error.value)


# --------------------------------------------------------------------------- the run side


def _context(tmp_path: Path, benchmarks: dict) -> JobContext:
    endpoint = ServerInfo(kind="openai", base_url="http://127.0.0.1:9/v1", served_model="m")
    config = validate_env(
        {"name": "e", "engine": {"kind": "openai", "base_url": endpoint.base_url, "served_model": "m"},
         "harness": {"name": "evalscope"}, "benchmarks": benchmarks, "seeds": [7]}
    )  # fmt: skip
    return JobContext(plan_jobs([config])[0], Path(DATA_DIR), tmp_path, tmp_path, endpoint)


@needs_data
def test_livebench_builds_a_general_qa_invocation_and_instruction_following_stays_unsupported(tmp_path):
    argv = build_evalscope_invocation(_context(tmp_path, {"livebench": {"limit": 2, "subsets": ["spatial"]}})).argv
    assert argv[argv.index("--datasets") + 1] == "general_qa"
    assert json.loads(argv[argv.index("--dataset-args") + 1])["general_qa"]["subset_list"] == ["statrepro_livebench_spatial"]
    with pytest.raises(InputError, match=r"no scorable LiveBench task selected: .*instruction_following: needs IFEval"):
        build_evalscope_invocation(_context(tmp_path, {"livebench": {"subsets": ["instruction_following"]}}))


def _statrepro(*args: str | Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", "from statrepro.cli import app; app()", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)


def _env_file(tmp_path: Path, name: str, harness: str, fake, subsets: list[str], limit: int) -> Path:
    path = tmp_path / f"{name}.yaml"
    env = {
        "name": name, "engine": {"kind": "openai", "base_url": fake.base_url, "served_model": fake.model},
        "harness": {"name": harness}, "benchmarks": {"livebench": {"limit": limit, "subsets": subsets}}, "seeds": 1,
    }  # fmt: skip
    path.write_text(yaml.safe_dump(env, sort_keys=False), encoding="utf-8")
    return path


def _stored_records(store: Path, env_name: str) -> pd.DataFrame:
    (path,) = store.glob(f"{env_name}-*/livebench-*/seed-*/records.jsonl")
    return pd.read_json(path, lines=True, dtype={"item_key": str}).set_index("item_key")


@needs_data
def test_livebench_runs_through_evalscope_and_scores_like_the_lm_eval_hook(tmp_path, fake_openai):
    pytest.importorskip("evalscope")
    subsets, limit = ["spatial", "web_of_lies_v2"], 3
    expected = _lm_eval_items(subsets, limit, tmp_path)
    fake_openai.answers.update({row["prompt"]: _answer(row) for row in expected.values()})

    completed = _statrepro("run", _env_file(tmp_path, "es", "evalscope", fake_openai, subsets, limit), "--store", tmp_path / "store")
    assert completed.returncode == 0, completed.stdout + completed.stderr

    records = _stored_records(tmp_path / "store", "es")
    assert set(records.index) == set(expected)  # the lm-eval path's item ids
    for key, row in expected.items():
        assert records.loc[key, "score"] == lb.process_results(row, [_answer(row)])["score"], key
        assert records.loc[key, "prediction"] == _answer(row)
    assert set(records["score"]) == {0.0, 1.0} and set(records["metric"]) == {lb.SCORE_METRIC}
    bodies = [request.body for request in fake_openai.generation_requests()]
    assert len(bodies) == len(expected) and {body["seed"] for body in bodies} == {0}
    assert {body["messages"][-1]["content"] for body in bodies} == {row["prompt"] for row in expected.values()}


@needs_data
def test_a_block_of_selected_rows_runs_through_evalscope_under_the_rows_keys(tmp_path, fake_openai):
    """What an item-sequential block does: only the selected rows reach evalscope (which numbers its samples
    0, 1, ...), and the stored items carry their row index, the key a full run gives them."""
    pytest.importorskip("evalscope")
    subsets, rows = ["spatial", "web_of_lies_v2"], {"spatial": [4, 1], "web_of_lies_v2": [2]}
    expected = {key: row for key, row in _lm_eval_items(subsets, 5, tmp_path).items()
                if int(key.rsplit("/", 1)[1]) in rows[row["task"]]}
    fake_openai.answers.update({row["prompt"]: _answer(row) for row in expected.values()})
    env_file = _env_file(tmp_path, "es", "evalscope", fake_openai, subsets, 5)
    env = yaml.safe_load(env_file.read_text())
    env["benchmarks"]["livebench"] = {"limit": 5, "item_rows": rows}
    env_file.write_text(yaml.safe_dump(env))

    completed = _statrepro("run", env_file, "--store", tmp_path / "store")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    records = _stored_records(tmp_path / "store", "es")
    assert sorted(records.index) == sorted(expected) == [
        "statrepro_livebench_spatial/1", "statrepro_livebench_spatial/4", "statrepro_livebench_web_of_lies_v2/2"
    ]
    for key, row in expected.items():
        assert records.loc[key, "score"] == lb.process_results(row, [_answer(row)])["score"], key
    assert len(fake_openai.generation_requests()) == 3


@needs_data
@pytest.mark.model  # lm-eval over an endpoint reads the embedded model's tokenizer
@pytest.mark.slow  # both harnesses end to end: CI's end-to-end phase
def test_lm_eval_and_evalscope_pair_on_livebench_against_one_endpoint(tmp_path, fake_openai):
    pytest.importorskip("evalscope")
    subsets, limit = ["spatial", "web_of_lies_v2"], 3
    expected = _lm_eval_items(subsets, limit, tmp_path)
    fake_openai.answers.update({row["prompt"]: _answer(row) for row in expected.values()})
    env_a = _env_file(tmp_path, "lm", "lm-eval", fake_openai, subsets, limit)
    env_b = _env_file(tmp_path, "es", "evalscope", fake_openai, subsets, limit)

    completed = _statrepro("compare", env_a, env_b, "--store", tmp_path / "store", "--json", tmp_path / "verdict.json")
    output = completed.stdout + completed.stderr
    assert (tmp_path / "verdict.json").is_file(), output
    payload = json.loads((tmp_path / "verdict.json").read_text())
    bench = payload["benchmarks"]["livebench"]
    assert bench["n_items"] == len(expected) and bench["diff"] == 0.0, output
    [harness] = [difference for difference in payload["config_differences"] if difference["factor"] == "harness"]
    assert harness["detail"] == (f"A is lm-eval output, B is evalscope output; {len(expected)} items matched on the item key, "
                                 "0 of A and 0 of B unmatched")
    lm_eval, evalscope = _stored_records(tmp_path / "store", "lm"), _stored_records(tmp_path / "store", "es")
    assert set(lm_eval.index) == set(evalscope.index) == set(expected)
    assert lm_eval["score"].sort_index().tolist() == evalscope["score"].sort_index().tolist()
