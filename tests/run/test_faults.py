"""Faults during a run (docs/hardening.md, "Faults during a run"): through the real CLI, with the fault proxy
(statrepro/bench/fault_proxy.py) between lm-eval and the real llama.cpp server. Each fault is injected into every
try of one request (its retries spent: that item is a missing run with its reason) and the first try of the next
(retried and recovered); what is kept is scored exactly as the fault-free run scored it. A managed server killed
with SIGKILL mid-job is restarted once; an external endpoint that dies stops the run with one line.

The runs need lm-eval (about a minute each on 2 busy cores): CI's slow phase. The mapping from failed requests
to items is tested here in the default suite, the guard itself in tests/engines/test_relay.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from harness_output import choice_samples, generation_samples, repeated_reviews, write_evalscope_run, write_lm_eval_run
from statrepro.bench.fault_proxy import FAULTS, FaultProxy
from statrepro.engines.errors import EngineError
from statrepro.harness import get_harness
from statrepro.run.jobs import drop_failed_items

MAX_RETRIES, TIMEOUT = 2, 8.0
# Sampled requests on llama.cpp's one shared RNG run one job at a time, so a job can finish before the next starts.
SAMPLED = 0.7
LOGPROB_FAULTS = ("no-logprobs", "short-logprobs")
REASONS = {"429": "HTTP 429", "429-date": "HTTP 429", "500": "HTTP 500", "503": "HTTP 503", "reset": "connection failed",
           "stall": "timed out", "truncated": "malformed answer", "wrong-model": "wrong model",
           "no-logprobs": "logprobs missing", "short-logprobs": "logprobs of the wrong length"}


def test_failed_requests_drop_exactly_their_items_and_an_untraceable_one_keeps_nothing(tmp_path):
    gsm = generation_samples("statrepro_gsm8k", {"flexible-extract": [1.0, 0.0, 1.0, 1.0]})
    mmlu = choice_samples("statrepro_mmlu", [[-1.0, -2.0, -3.0, -4.0], [-5.0, -1.5, -9.0, -2.0]], [0, 1])
    write_lm_eval_run(tmp_path, "2026-01-01T10-00-00.000001", 0, {"statrepro_gsm8k": gsm, "statrepro_mmlu": mmlu})
    adapter = get_harness("lm-eval")
    records = adapter.load(tmp_path, metric_overrides={})
    failures = [
        {"prompt": "statrepro_gsm8k q2", "messages": None, "reason": "HTTP 503: busy; gave up after 3 tries"},
        # a log-likelihood request: context and one continuation, decoded from tokens by lm-eval (spacing may differ)
        {"prompt": "statrepro_mmlu q1  CCCCCCCC", "messages": None, "reason": "logprobs missing from the answer; gave up after 3 tries"},
    ]
    kept, missing = drop_failed_items(adapter, tmp_path, records, failures)
    assert missing == {"statrepro_gsm8k/2": failures[0]["reason"], "statrepro_mmlu/1": failures[1]["reason"]}
    assert set(records["item_key"]) - set(kept["item_key"]) == set(missing)
    assert len(kept) == len(records) - sum(records["item_key"].isin(missing))
    with pytest.raises(EngineError, match="matches no item"):
        drop_failed_items(adapter, tmp_path, records, [{"prompt": "statrepro_gsm8k q9", "messages": None, "reason": "HTTP 500"}])


def test_a_failed_chat_request_of_evalscope_drops_exactly_its_item(tmp_path):
    """evalscope logs each review's messages with fields of its own (ids, metadata); the guard records the
    messages as sent: roles and text are what match."""
    pytest.importorskip("evalscope")
    write_evalscope_run(tmp_path, "20260101_100000", {"gsm8k_main": repeated_reviews(3, 1, lambda d, g: 0.0)})
    adapter = get_harness("evalscope")
    records = adapter.load(tmp_path, metric_overrides={})
    sent = [{"role": "user", "content": "question 1"}]  # what the OpenAI client put on the wire
    failures = [{"path": "/chat/completions", "prompt": None, "messages": sent, "reason": "HTTP 500: busy; gave up after 3 tries"}]
    kept, missing = drop_failed_items(adapter, tmp_path, records, failures)
    assert missing == {"main/1": failures[0]["reason"]}
    assert sorted(kept["item_key"]) == ["main/0", "main/2"]
    other_text = [{**failures[0], "messages": [{"role": "user", "content": "question 9"}]}]
    other_role = [{**failures[0], "messages": [{"role": "system", "content": "question 1"}]}]
    for untraceable in (other_text, other_role):
        with pytest.raises(EngineError, match="matches no item"):
            drop_failed_items(adapter, tmp_path, records, untraceable)


def _easy_gsm8k(root: Path, n: int) -> Path:
    """One-step additions the 135M model answers in a few tokens."""
    folder = root / "gsm8k"
    folder.mkdir(parents=True)
    rows = [{"question": f"What is {2 + i % 5} plus {1 + (i * 3) % 4}?", "answer": f"#### {3 + i % 5 + (i * 3) % 4}"} for i in range(n + 5)]
    (folder / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows[5:]))
    (folder / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows[:5]))
    return root


def _env_file(root: Path, name: str, engine: dict, *, ppl: bool = False, seeds=1, temperature: float = 0.0, harness: str = "lm-eval") -> Path:
    benchmarks = {"mmlu_redux": {"mode": "ppl", "subsets": ["marketing"], "limit": 3}} if ppl else {"gsm8k": {"limit": 5, "num_fewshot": 0}}
    env = {"name": name, "model": {"path": "embedded", "quantization": "gguf"}, "engine": engine,
           "harness": {"name": harness} if harness != "lm-eval" else {"name": harness, "apply_chat_template": not ppl},
           "generation": {"temperature": temperature, "max_tokens": 8, "repeat_penalty": 1.0}, "benchmarks": benchmarks, "seeds": seeds}
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(env))
    return path


def _cli(root: Path, *args: str, data_dir: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if data_dir is not None:
        env["STATREPRO_DATA_DIR"] = str(data_dir)
    return subprocess.Popen([sys.executable, "-c", "from statrepro.cli import app; app()", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(root: Path, env_file: Path, data_dir: Path) -> tuple[int, str]:
    process = _cli(root, "run", str(env_file), "--store", str(root / "store"), data_dir=data_dir)
    out, err = process.communicate(timeout=1200)
    return process.returncode, out + err


def _records(root: Path, name: str) -> dict[tuple[int, str], tuple[str, str]]:
    found = {}
    for path in (root / "store").glob(f"{name}-*/*/seed-*/records.jsonl"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            found[(row["seed"], row["item_key"])] = (str(row["score"]), str(row.get("prediction")))
    return found


def _manifests(root: Path, name: str) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted((root / "store").glob(f"{name}-*/*/seed-*/manifest.json"))]


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory):
    """The real llama.cpp server with the fault proxy in front, the data, and the fault-free runs (made once)."""
    pytest.importorskip("llama_cpp")
    from statrepro.engines.llama_cpp import llama_cpp_server

    root = tmp_path_factory.mktemp("faults")
    data_dir = _easy_gsm8k(root / "data", 5)
    shared = os.environ.get("STATREPRO_DATA_DIR")
    with llama_cpp_server(work_dir=root, repeat_penalty=1.0) as server:
        with FaultProxy(server.base_url, stall_seconds=TIMEOUT + 3, retry_after=0.5) as proxy:
            # one request at a time: the scripted faults hit the requests in order
            engine = {"kind": "openai", "base_url": proxy.base_url, "served_model": server.served_model,
                      "max_retries": MAX_RETRIES, "timeout": TIMEOUT, "concurrency": 1}
            clean: dict[bool, dict] = {}

            def clean_run(ppl: bool) -> dict:
                if ppl not in clean:
                    code, output = _run(root, _env_file(root, f"clean-{ppl}", engine, ppl=ppl), Path(shared) if ppl and shared else data_dir)
                    assert code == 0, output
                    clean[ppl] = _records(root, f"clean-{ppl}")
                return clean[ppl]

            yield root, data_dir, Path(shared) if shared else None, proxy, engine, clean_run


@pytest.mark.model
@pytest.mark.slow  # a minute of lm-eval per fault on 2 cores
@pytest.mark.parametrize("fault", FAULTS)
def test_a_fault_during_a_cli_run_is_recovered_or_a_missing_run_with_its_reason_never_a_wrong_score(behind_proxy, fault):
    root, data_dir, shared, proxy, engine, clean_run = behind_proxy
    ppl = fault in LOGPROB_FAULTS  # logprobs are asked for only by log-likelihood requests
    if ppl and shared is None:
        pytest.skip("mmlu_redux needs the shared benchmark data ($STATREPRO_DATA_DIR)")
    clean = clean_run(ppl)
    # ppl: the capability probe's echo request passes first; then one request's every try, then the next one's first
    proxy.script(*([None] if ppl else []), *[fault] * (MAX_RETRIES + 1), fault)
    code, output = _run(root, _env_file(root, f"fault-{fault}", engine, ppl=ppl), shared if ppl else data_dir)
    proxy.clear()
    assert code == 0, output
    assert "and 1 missing run (requests that failed for good" in output  # said, never silent
    (manifest,) = _manifests(root, f"fault-{fault}")
    assert manifest["requests"]["failed"] == 1 and manifest["requests"]["recovered"] >= 1, manifest["requests"]
    (missing,) = manifest["missing_runs"]
    assert REASONS[fault] in missing["reason"] and f"gave up after {MAX_RETRIES + 1} tries" in missing["reason"]
    kept = _records(root, f"fault-{fault}")
    assert set(clean) - set(kept) == {(0, missing["item_key"])}  # the one missing run, nothing else dropped
    assert {key: clean[key] for key in kept} == kept  # scored wrong: 0


@pytest.mark.model
@pytest.mark.slow  # two evalscope runs: about a minute on 2 cores
def test_evalscope_goes_through_the_guard_a_fault_is_recovered_or_a_missing_run_never_a_wrong_score(behind_proxy):
    root, data_dir, _, proxy, engine, _ = behind_proxy
    code, output = _run(root, _env_file(root, "es-clean", engine, harness="evalscope"), data_dir)
    assert code == 0, output
    clean = _records(root, "es-clean")
    assert len(clean) == 5
    # One request's every try fails (its retries spent), the next one's first try (retried and recovered).
    proxy.script(*["500"] * (MAX_RETRIES + 1), "500")
    code, output = _run(root, _env_file(root, "es-fault", engine, harness="evalscope"), data_dir)
    proxy.clear()
    assert code == 0, output
    assert "and 1 missing run (requests that failed for good" in output
    (manifest,) = _manifests(root, "es-fault")
    assert manifest["requests"]["failed"] == 1 and manifest["requests"]["recovered"] == 1, manifest["requests"]
    assert manifest["requests"]["requests"] == 5  # evalscope retried nothing itself: the guard saw each request once
    (missing,) = manifest["missing_runs"]
    assert missing["reason"].startswith("HTTP 500") and f"gave up after {MAX_RETRIES + 1} tries" in missing["reason"]
    kept = _records(root, "es-fault")
    assert set(clean) - set(kept) == {(0, missing["item_key"])}  # the one missing run, nothing else dropped
    assert {key: clean[key] for key in kept} == kept  # scored wrong: 0


def _kill_when_second_job_requests(store: Path, act, done: threading.Event, acted: list[float]) -> None:
    while not done.wait(0.2):
        finished = list(store.glob("*/*/seed-*/manifest.json"))
        running = [log for log in store.glob("*/*/seed-*/harness.log") if not (log.parent / "manifest.json").exists()]
        if finished and any("Requesting API" in log.read_text(errors="replace") for log in running):
            act()
            acted.append(time.time())
            return


def _run_acting_in_second_job(root: Path, env_file: Path, data_dir: Path, act) -> tuple[int, str, list[float]]:
    """``_run``, calling ``act`` once, when the second job has sent its first request: (exit code, output, when it acted)."""
    done, acted = threading.Event(), []
    watcher = threading.Thread(target=_kill_when_second_job_requests, args=(root / "store", act, done, acted), daemon=True)
    watcher.start()
    try:
        code, output = _run(root, env_file, data_dir)
    finally:
        done.set()
        watcher.join()
    return code, output, acted


@pytest.mark.model
@pytest.mark.slow  # two jobs, a kill and a rerun through lm-eval: about 3 minutes on 2 cores
def test_a_managed_server_killed_mid_job_is_restarted_once_and_no_finished_job_is_lost(tmp_path):
    pytest.importorskip("llama_cpp")
    data_dir = _easy_gsm8k(tmp_path / "data", 5)
    env_file = _env_file(tmp_path, "managed", {"kind": "llama-cpp", "max_retries": MAX_RETRIES, "timeout": TIMEOUT}, seeds=[0, 1],
                         temperature=SAMPLED)
    store = tmp_path / "store"
    killed_pids: list[int] = []

    def kill_server() -> None:
        for pid_file in (store / "servers").rglob("*.pid"):
            pid = json.loads(pid_file.read_text())["pid"]
            os.kill(pid, signal.SIGKILL)
            killed_pids.append(pid)

    code, output, acted = _run_acting_in_second_job(tmp_path, env_file, data_dir, kill_server)
    assert killed_pids, "the server was never killed mid-job: " + output
    assert code == 0, output
    (line,) = [line for line in output.splitlines() if "restarting the server once" in line]
    assert "the managed server is gone (its process died" in line
    manifests = _manifests(tmp_path, "managed")
    assert [m["seed"] for m in manifests] == [0, 1]
    first, second = manifests
    assert first["started"] + first["seconds"] < acted[0] < second["started"]  # kept, and not run again
    assert first["endpoint"]["pid"] == killed_pids[0] != second["endpoint"]["pid"]
    assert len(_records(tmp_path, "managed")) == 10 and not any(m["missing_runs"] for m in manifests)


@pytest.mark.model
@pytest.mark.slow  # a minute and a half of lm-eval on 2 cores
def test_an_external_endpoint_that_dies_stops_the_run_with_one_line_and_keeps_finished_jobs(tmp_path):
    pytest.importorskip("llama_cpp")
    from statrepro.engines.llama_cpp import llama_cpp_server

    data_dir = _easy_gsm8k(tmp_path / "data", 5)
    with llama_cpp_server(work_dir=tmp_path, repeat_penalty=1.0) as server:
        endpoint = FaultProxy(server.base_url).__enter__()  # the "external server": stopped mid-run below
        engine = {"kind": "openai", "base_url": endpoint.base_url, "served_model": server.served_model, "max_retries": 1, "timeout": 20.0}
        env_file = _env_file(tmp_path, "external", engine, seeds=[0, 1], temperature=SAMPLED)
        try:
            code, output, acted = _run_acting_in_second_job(tmp_path, env_file, data_dir, lambda: endpoint.__exit__(None, None, None))
        finally:
            endpoint.__exit__(None, None, None)
    assert acted, "the endpoint was never stopped mid-job: " + output
    assert code == 2, output
    (line,) = [line for line in output.splitlines() if line.startswith("error:")]
    assert "stopped answering" in line and "finished jobs are kept" in line
    (manifest,) = _manifests(tmp_path, "external")  # the dead endpoint's job wrote nothing
    assert manifest["seed"] == 0 and len(_records(tmp_path, "external")) + len(manifest["missing_runs"]) == 5
