"""The run path: planning, the store, and end-to-end `compare` on the real small model."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from statrepro.cli import app
from statrepro.envfile import load_env, validate_env
from statrepro.errors import InputError
from statrepro.harness.records import make_records
from statrepro.run.orchestrate import check_comparable
from statrepro.run.plan import effective_env, plan_jobs
from statrepro.run.store import ResultStore

REPO = Path(__file__).resolve().parents[2]


def _env_file(tmp_path: Path, name: str, **fields) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, **fields}, sort_keys=False), encoding="utf-8")
    return path


def test_plan_orders_seeds_outermost_and_applies_overrides(tmp_path):
    env = load_env(_env_file(tmp_path, "a", benchmarks={"gsm8k": {}, "ceval": {}}, seeds=[3, 7]))
    jobs = plan_jobs([env])
    assert [(j.benchmark, j.seed) for j in jobs] == [("gsm8k", 3), ("ceval", 3), ("gsm8k", 7), ("ceval", 7)]
    overridden = effective_env(env, benchmarks=["gsm8k"], seeds=1, limit=5)
    assert overridden.seed_list == [0] and list(overridden.benchmarks) == ["gsm8k"]
    assert overridden.benchmarks["gsm8k"].limit == 5
    with pytest.raises(InputError, match="--limit"):
        effective_env(env, limit=0)


def test_job_keys_separate_what_changes_scores(tmp_path):
    base = load_env(_env_file(tmp_path, "a"))
    other_dtype = base.model_copy(update={"model": base.model.model_copy(update={"dtype": "bfloat16"})})
    limited = effective_env(base, limit=3)
    keys = {plan_jobs([env])[0].key for env in (base, other_dtype, limited)}
    assert len(keys) == 3
    # Adding seeds must not invalidate finished runs of the old seeds.
    assert plan_jobs([effective_env(base, seeds=5)])[0].key == plan_jobs([base])[0].key


def test_store_refuses_a_changed_sequential_design(tmp_path):
    store = ResultStore(tmp_path / "store")
    design = {"max_rounds": 5, "alpha": 0.05}
    store.register_design("a--b", design)
    store.register_design("a--b", dict(design))  # the same design again: a resumed run
    with pytest.raises(InputError, match="pre-registered with max_rounds=5, not 8"):
        store.register_design("a--b", {**design, "max_rounds": 8})
    store.register_design("a--c", {**design, "max_rounds": 8})  # another comparison is free


def test_store_done_failed_and_reload(tmp_path):
    env = load_env(_env_file(tmp_path, "a", seeds=2))
    first, second = plan_jobs([env])
    store = ResultStore(tmp_path / "store")
    records = make_records(
        [{"benchmark": "gsm8k", "subset": "t", "item_key": f"t/{i}", "run_id": "seed-0", "seed": 0, "metric": "m", "score": i % 2}
         for i in range(4)]
    )
    store.write_done(first, records, {"items": 4})
    store.write_failed(second, {"error": "boom"})
    assert store.is_done(first) and not store.is_done(second)
    assert store.manifest(second)["status"] == "failed"
    loaded = store.load_records([first, second])
    assert list(loaded["score"]) == [0.0, 1.0, 0.0, 1.0]
    assert not list((tmp_path / "store").rglob(".*.tmp"))


def test_a_side_whose_first_two_seeds_are_bitwise_identical_needs_no_third(tmp_path):
    """Seeds 0 and 1 of side a score and answer every item alike (a deterministic engine): its seed 2 is not
    needed. Side b's two runs differ in one answer with equal scores: its seed 2 still runs. Equal scores
    without recorded answers prove nothing (side c)."""
    from statrepro.run.orchestrate import unneeded_seeds

    a, b, c = (load_env(_env_file(tmp_path, name, seeds=3)) for name in ("a", "b", "c"))
    jobs = plan_jobs([a, b, c])
    store = ResultStore(tmp_path / "store")

    def records(seed: int, answers: list[str]):
        return make_records([
            {"benchmark": "gsm8k", "subset": "t", "item_key": f"t/{i}", "run_id": f"seed-{seed}", "seed": seed, "metric": "m",
             "score": float(i % 2), "prediction": answer} for i, answer in enumerate(answers)
        ])

    for job in jobs:
        if job.seed < 2:
            answers = ["1", "2", "3"] if job.env is a or job.seed == 0 else ["1", "2", "4"]
            store.write_done(job, records(job.seed, [None] * 3 if job.env is c else answers), {"items": 3})
    third = [job for job in jobs if job.seed == 2]
    unneeded = unneeded_seeds(jobs, third, store)
    assert list(unneeded) == [third[0].key] and third[0].env is a
    assert "seeds 0 and 1 scored and answered every item identically" in unneeded[third[0].key]


def test_store_lock_refuses_a_second_run(tmp_path):
    store = ResultStore(tmp_path / "store")
    with store.locked():
        with pytest.raises(InputError, match="in use"):
            with ResultStore(tmp_path / "store").locked():
                pass


def test_sides_must_select_the_same_items(tmp_path):
    a = load_env(_env_file(tmp_path, "a", benchmarks={"gsm8k": {"limit": 5}}))
    b = load_env(_env_file(tmp_path, "b", benchmarks={"gsm8k": {"limit": 6}}))
    with pytest.raises(InputError, match="different items"):
        check_comparable(a, b)


def test_secret_never_serialised(tmp_path):
    env = validate_env(
        {"name": "s", "engine": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "sk-planted-123"}}
    )
    assert "sk-planted-123" not in json.dumps(env.public_dict())
    assert "sk-planted-123" not in repr(env)
    assert env.secrets() == ["sk-planted-123"]


# ------------------------------------------------------------------------------------------------
# End to end on the real model


def _write_easy_gsm8k(root: Path, n: int) -> Path:
    """A gsm8k-format data dir of one-step additions the 135M model can actually answer."""
    folder = root / "gsm8k"
    folder.mkdir(parents=True)
    rows = []
    for i in range(n + 5):
        x, y = 2 + i % 5, 1 + (i * 3) % 4
        rows.append({"question": f"What is {x} plus {y}?", "answer": f"{x} plus {y} is {x + y}.\n#### {x + y}"})
    (folder / "test.jsonl").write_text("\n".join(json.dumps(r) for r in rows[5:]) + "\n")
    (folder / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows[:5]) + "\n")
    return root


def _compare(tmp_path: Path, a: Path, b: Path, *extra: str, data_dir: str | None = None) -> tuple[int, dict, str]:
    out = tmp_path / "verdict.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if data_dir:
        env["STATREPRO_DATA_DIR"] = data_dir
    completed = subprocess.run(
        [sys.executable, "-c", "from statrepro.cli import app; app()", "compare", str(a), str(b),
         "--store", str(tmp_path / "store"), "--json", str(out), *extra],
        capture_output=True, text=True, env=env, timeout=1200,
    )
    verdict = json.loads(out.read_text()) if out.exists() else {}
    return completed.returncode, verdict, completed.stdout + completed.stderr


@pytest.mark.model
@pytest.mark.slow  # minutes of real-model runs: CI's end-to-end phase
def test_aa_fp32_vs_fp32_passes_and_resumes(tmp_path):
    spec = {"mmlu_redux": {"subsets": ["anatomy", "astronomy", "marketing"], "limit": 12}}
    a = _env_file(tmp_path, "fp32-a", benchmarks=spec, seeds=1, batch_size=4)
    b = _env_file(tmp_path, "fp32-b", benchmarks=spec, seeds=1, batch_size=4)
    code, verdict, output = _compare(tmp_path, a, b, "--margin", "absolute", "--tolerance", "0.1")
    assert code == 0, output
    bench = verdict["benchmarks"]["mmlu_redux"]
    assert verdict["verdict"] == "equivalent" and bench["n_items"] >= 30 and bench["diff"] == 0.0
    manifests = sorted((tmp_path / "store").rglob("manifest.json"))
    assert len(manifests) == 2 and all(json.loads(m.read_text())["status"] == "done" for m in manifests)
    stamps = [m.stat().st_mtime_ns for m in manifests]
    # A second compare finds everything in the store and redoes nothing.
    code, again, output = _compare(tmp_path, a, b, "--margin", "absolute", "--tolerance", "0.1")
    assert code == 0 and "2 of 2 runs already" in output
    assert [m.stat().st_mtime_ns for m in manifests] == stamps
    assert again["benchmarks"] == verdict["benchmarks"]
    # Sequentially (budget 5 seeds), fp32 vs fp32 stops early with a pass: identical seeds add nothing.
    code, sequential, output = _compare(
        tmp_path, a, b, "--margin", "absolute", "--tolerance", "0.1", "--sequential", "--max-seeds", "5"
    )
    assert code == 0, output
    assert sequential["verdict"] == "equivalent"
    assert sequential["sequential"]["rounds"] < 5
    assert sequential["sequential"]["calls_spent"] < sequential["sequential"]["fixed_design_calls"]
    # The budget was pre-registered: a larger one for the same comparison is refused, not silently used.
    code, _, output = _compare(
        tmp_path, a, b, "--margin", "absolute", "--tolerance", "0.1", "--sequential", "--max-seeds", "6"
    )
    assert code == 2 and "pre-registered with max_rounds=5" in output and "Traceback" not in output


@pytest.mark.model
@pytest.mark.slow  # minutes of real-model runs: CI's end-to-end phase
def test_broken_environment_is_different_on_gsm8k(tmp_path):
    data_dir = _write_easy_gsm8k(tmp_path / "data", 24)
    spec = {"gsm8k": {"num_fewshot": 3}}
    good = _env_file(tmp_path, "good", benchmarks=spec, seeds=1, generation={"max_tokens": 24})
    broken = _env_file(tmp_path, "broken", benchmarks=spec, seeds=1, generation={"max_tokens": 1})
    code, verdict, output = _compare(tmp_path, good, broken, data_dir=str(data_dir))
    bench = verdict["benchmarks"]["gsm8k"]
    assert bench["score_a"] >= 0.4, output  # the reference really solves these
    assert bench["score_b"] == 0.0
    assert verdict["verdict"] == "different" and code == 3, output


@pytest.mark.model
@pytest.mark.slow
def test_killed_compare_resumes_without_redoing_finished_runs(tmp_path):
    spec = {"mmlu_redux": {"subsets": ["anatomy"], "limit": 8}}  # (1 - 0.5)^8 < alpha: enough to pass
    a = _env_file(tmp_path, "k-a", benchmarks=spec, seeds=2)
    b = _env_file(tmp_path, "k-b", benchmarks=spec, seeds=2)
    command = [sys.executable, "-c", "from statrepro.cli import app; app()", "compare", str(a), str(b),
               "--store", str(tmp_path / "store"), "--margin", "absolute", "--tolerance", "0.5"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    import time

    deadline = time.time() + 600
    while time.time() < deadline and not list((tmp_path / "store").rglob("manifest.json")):
        time.sleep(0.5)
    os.killpg(process.pid, 9)
    process.wait()
    finished = {m: m.stat().st_mtime_ns for m in (tmp_path / "store").rglob("manifest.json")}
    assert finished, "no job finished before the kill"
    completed = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert all(m.stat().st_mtime_ns == stamp for m, stamp in finished.items())
    assert len(list((tmp_path / "store").rglob("manifest.json"))) == 4
    assert not list((tmp_path / "store").rglob(".*.tmp"))


def _raw_responses(store: Path, env_name: str, seed: int) -> list[str]:
    """The model's raw generations (before answer extraction) as lm-eval logged them for one run."""
    [env_dir] = [d for d in store.iterdir() if re.fullmatch(rf"{re.escape(env_name)}-[0-9a-f]{{12}}", d.name)]
    [samples] = list(env_dir.glob(f"gsm8k-*/seed-{seed}/harness/output/**/samples_*.jsonl"))
    rows = [json.loads(line) for line in samples.read_text().splitlines() if line.strip()]
    return [json.dumps(row["resps"]) for row in sorted(rows, key=lambda r: r["doc_id"])]


@pytest.mark.model
@pytest.mark.slow  # minutes of real-model runs: CI's end-to-end phase
def test_seeds_reach_a_real_engine_through_the_harness(tmp_path):
    """lm-eval's --seed does not reach API models; statrepro puts the seed into every request."""
    def env(name, temperature, seeds):
        return _env_file(
            tmp_path, name, model={"path": "embedded", "quantization": "gguf"}, engine={"kind": "llama-cpp"},
            generation={"temperature": temperature, "max_tokens": 12}, benchmarks={"gsm8k": {"limit": 2, "num_fewshot": 0}},
            seeds=seeds,
        )

    store = tmp_path / "store"
    command = [sys.executable, "-c", "from statrepro.cli import app; app()", "run", "--store", str(store)]
    files = [env("hot", 1.0, [1, 2]), env("hot-again", 1.0, [1]), env("cold", 0.0, [1, 2])]
    completed = subprocess.run(command[:4] + [str(f) for f in files] + command[4:], capture_output=True, text=True, timeout=1200)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert _raw_responses(store, "hot", 1) != _raw_responses(store, "hot", 2)  # different seeds, different samples
    assert _raw_responses(store, "hot", 1) == _raw_responses(store, "hot-again", 1)  # same seed, same samples
    assert _raw_responses(store, "cold", 1) == _raw_responses(store, "cold", 2)  # greedy ignores the seed


@pytest.mark.model
@pytest.mark.slow  # minutes of real-model runs: CI's end-to-end phase
def test_evalscope_through_a_managed_llama_cpp_server_aa(tmp_path):
    """evalscope cannot run in-process on transformers 5.x: statrepro serves the GGUF with llama.cpp on
    127.0.0.1, drives evalscope against it, and stops the server."""
    data_dir = _write_easy_gsm8k(tmp_path / "data", 24)

    def env(name):
        return _env_file(
            tmp_path, name, model={"path": "embedded", "quantization": "gguf"}, engine={"kind": "llama-cpp"},
            harness={"name": "evalscope"}, generation={"temperature": 0.0, "max_tokens": 48, "repeat_penalty": 1.0},
            benchmarks={"gsm8k": {"num_fewshot": 0}}, seeds=1,
        )

    code, verdict, output = _compare(
        tmp_path, env("es-a"), env("es-b"), "--margin", "absolute", "--tolerance", "0.15", data_dir=str(data_dir)
    )
    bench = verdict["benchmarks"]["gsm8k"]
    assert bench["n_items"] == 24 and bench["diff"] == 0.0, output
    assert code == 0 and verdict["verdict"] == "equivalent", output
    manifests = [json.loads(m.read_text()) for m in (tmp_path / "store").rglob("manifest.json")]
    assert {m["harness"] for m in manifests} == {"evalscope"}
    assert all(m["endpoint"]["base_url"].startswith("http://127.0.0.1:") for m in manifests)
    leftover = subprocess.run(["pgrep", "-f", "statrepro.engines.llama_server"], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", "the managed server was not stopped"


# Multiple choice by log-likelihood over an endpoint (issue 13): the capability probe at job start


def _run_cli(tmp_path: Path, *files: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", "from statrepro.cli import app; app()", "run", *map(str, files), "--store", str(tmp_path / "store")]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200)


@pytest.mark.model
def test_endpoint_without_prompt_logprobs_stops_a_ppl_job_with_one_line(tmp_path, fake_openai):
    env = _env_file(
        tmp_path, "no-logprobs", engine={"kind": "openai", "base_url": fake_openai.base_url, "served_model": "fake-model"},
        harness={"name": "lm-eval", "apply_chat_template": False}, benchmarks={"mmlu_redux": {"mode": "ppl", "subsets": ["marketing"], "limit": 2}},
        seeds=1,
    )
    completed = _run_cli(tmp_path, env)
    assert completed.returncode != 0
    (line,) = [line for line in completed.stderr.splitlines() if "cannot score by log-likelihood" in line]
    assert fake_openai.base_url in line and "benchmarks.mmlu_redux.mode: gen" in line
    probes = [r.body for r in fake_openai.generation_requests()]
    assert probes and all(body["echo"] is True and body["max_tokens"] == 1 for body in probes)


@pytest.mark.model
@pytest.mark.slow
def test_ppl_mode_through_the_managed_llama_cpp_server(tmp_path):
    """mmlu_redux in ppl mode against the real llama-cpp-python server: probed, then scored through lm-eval's
    local-completions with prompt log-likelihoods (about 2 minutes on 2 cores)."""
    env = _env_file(
        tmp_path, "llama-ppl", model={"path": "embedded", "quantization": "gguf"}, engine={"kind": "llama-cpp"},
        harness={"name": "lm-eval", "apply_chat_template": False}, generation={"repeat_penalty": 1.0},
        benchmarks={"mmlu_redux": {"mode": "ppl", "subsets": ["marketing"], "limit": 3}}, seeds=1,
    )
    completed = _run_cli(tmp_path, env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    (manifest_path,) = (tmp_path / "store").rglob("manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["mode"] == "ppl" and manifest["logprob_probe"]["usable"] is True
    assert "--align_echo_logprobs" in manifest["endpoint"]["command"]
    records = [json.loads(line) for line in (manifest_path.parent / "records.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(r["item_key"].startswith("statrepro_mmlu_redux_marketing_ppl/") for r in records)
    # This run's server (by its recorded pid: other runs may share the machine) was stopped.
    assert not Path(f"/proc/{manifest['endpoint']['pid']}").exists(), "the managed server was not stopped"


@pytest.mark.model
@pytest.mark.slow
def test_dropped_connections_under_concurrency_are_retried_then_missing_never_wrong(tmp_path, fake_openai):
    """An endpoint that cuts connections while 4 requests are in flight (the fault-injecting fake endpoint;
    the harness is the real lm-eval behind statrepro's request guard). A few cuts are retried away and every item
    is scored; when an endpoint keeps cutting, every item is a missing run, so the job fails with the reason and
    stores no score at all."""
    def env(name):
        return _env_file(
            tmp_path, name, engine={"kind": "openai", "base_url": fake_openai.base_url, "served_model": "fake-model", "concurrency": 4,
                                    "max_retries": 2, "timeout": 10},
            generation={"temperature": 0.0, "max_tokens": 16}, benchmarks={"gsm8k": {"limit": 8}}, seeds=1,
        )

    fake_openai.script(*["drop"] * 6)
    completed = _run_cli(tmp_path, env("flaky"))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    (records_path,) = (tmp_path / "store").rglob("flaky*/**/records.jsonl")
    assert len(records_path.read_text().splitlines()) == 8

    fake_openai.script(*["drop"] * 10_000)
    completed = _run_cli(tmp_path, env("broken"))
    assert completed.returncode != 0
    (line,) = [line for line in completed.stderr.splitlines() if "broken gsm8k seed 0: FAILED" in line]
    assert "every item's request failed: connection failed" in line and "gave up after 3 tries" in line
    (manifest_path,) = (tmp_path / "store").rglob("broken*/**/manifest.json")
    assert json.loads(manifest_path.read_text())["attempts"] == 1  # each request was retried; the job is not rerun
    assert not list(manifest_path.parent.glob("records.jsonl"))  # missing, never scored as wrong


@pytest.mark.model
@pytest.mark.slow
def test_in_process_against_llama_cpp_at_the_same_precision_is_equivalent(tmp_path):
    """The A/A of an engine change alone: in-process transformers (float32) against the real llama.cpp
    server on the same float32 weights, mmlu_redux by log-likelihood over HTTP (20 subjects x 4 items: with
    no flips, 80 items are enough to bound the difference inside the 5-point margin)."""
    verdict_path = tmp_path / "verdict.json"
    command = [
        sys.executable, "-c", "from statrepro.cli import app; app()", "compare",
        str(REPO / "configs/quickstart/fp32-ppl.yaml"), str(REPO / "configs/engine/llama-cpp-fp32-ppl.yaml"),
        "--limit", "4", "--margin", "absolute", "--tolerance", "0.05",
        "--store", str(tmp_path / "store"), "--json", str(verdict_path),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=1800)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    benchmark = json.loads(verdict_path.read_text())["benchmarks"]["mmlu_redux"]
    assert benchmark["verdict"] == "equivalent", benchmark
    manifests = [json.loads(p.read_text()) for p in (tmp_path / "store").rglob("manifest.json")]
    (served,) = [m["endpoint"]["model_path"] for m in manifests if m.get("endpoint")]
    assert served.endswith(".F32.gguf")
