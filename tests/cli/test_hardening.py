"""Hardening (issue 7): endpoint faults, kills, concurrent runs, full or read-only disks, bad inputs, secrets.

Runs go through the real CLI in a subprocess with the fast stub harness (tests/support/stub_harness.py, a plugin
through its entry point while tests/support is on PYTHONPATH); endpoint faults come from the fault-injecting fake OpenAI server
(tests/support/fakes). See docs/hardening.md for what each test proves.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fakes import FakeOpenAI
from statrepro.cli import app
from statrepro.envfile import validate_env
from statrepro.errors import InputError
from statrepro.run.plan import Job
from statrepro.run.store import ResultStore

TESTS_DIR = Path(__file__).resolve().parents[1]
SUPPORT_DIR = TESTS_DIR / "support"
PACKAGE_DIR = TESTS_DIR.parent / "statrepro"
STATREPRO = [sys.executable, "-c", "from statrepro.cli import app; app()"]
CLI_TIMEOUT = 180


# --------------------------------------------------------------------------- helpers


def cli_environment(**extra: str) -> dict[str, str]:
    """The environment of a `statrepro` subprocess that loads the stub harness."""
    python_path = os.pathsep.join(filter(None, [str(SUPPORT_DIR), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": python_path, **extra}


def statrepro(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*STATREPRO, *map(str, args)], env=env or cli_environment(), cwd=cwd, capture_output=True, text=True,
        timeout=CLI_TIMEOUT,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A model dir and a data dir with the benchmark folders (the stub reads neither, the run path checks both)."""
    (tmp_path / "model").mkdir()
    for name in ("gsm8k", "ceval"):
        (tmp_path / "data" / name).mkdir(parents=True)
    return tmp_path


def stub_env(workspace: Path, name: str, *, benchmarks: dict | None = None, seeds=1, extra_args=(), engine=None) -> dict:
    env = {
        "name": name,
        "model": {"path": str(workspace / "model")},
        "harness": {"name": "stub", "extra_args": [str(arg) for arg in extra_args]},
        "benchmarks": benchmarks or {"gsm8k": {"limit": 6}},
        "seeds": seeds,
        "data_dir": str(workspace / "data"),
    }
    if engine:
        env["engine"] = engine
    return env


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def job_dirs(store: Path) -> dict[str, Path]:
    """Job key (relative path) -> job dir, for every job with a manifest."""
    return {str(m.parent.relative_to(store)): m.parent for m in sorted(store.rglob("manifest.json"))}


def done_jobs(store: Path) -> set[str]:
    done = set()
    for key, directory in job_dirs(store).items():
        manifest = json.loads((directory / "manifest.json").read_text())  # must parse: never half-written
        if manifest["status"] == "done":
            done.add(key)
    return done


def records_of(directory: Path) -> list[dict]:
    """A job's records without the 'source' column (it holds the store's absolute path)."""
    rows = [json.loads(line) for line in (directory / "records.jsonl").read_text().splitlines() if line.strip()]
    return [{k: v for k, v in row.items() if k != "source"} for row in rows]


def temp_files(root: Path) -> list[Path]:
    return sorted(root.rglob(".*.tmp"))


# --------------------------------------------------------------------------- endpoint faults

ITEMS = 20
WRONG = {3, 7, 11, 15}  # items both fake servers answer wrongly ("41" instead of "42")


@contextmanager
def two_fake_servers() -> Iterator[tuple[FakeOpenAI, FakeOpenAI]]:
    """A: a clean endpoint. B: one whose faults the test scripts. Both answer the WRONG items wrongly."""
    fakes = [FakeOpenAI(answers={f"gsm8k item {i}": "41" for i in WRONG}, slow_seconds=0.1).start() for _ in range(2)]
    try:
        yield fakes[0], fakes[1]
    finally:
        for fake in fakes:
            fake.stop()


def openai_env(workspace: Path, name: str, fake: FakeOpenAI, *, api_key: str | None = None, max_tries: int = 3) -> Path:
    engine = {"kind": "openai", "base_url": fake.base_url, "served_model": "fake-model"}
    if api_key:
        engine["api_key"] = api_key
    data = stub_env(workspace, name, benchmarks={"gsm8k": {"limit": ITEMS}}, extra_args=["--max-tries", max_tries], engine=engine)
    return write_yaml(workspace / f"{name}.yaml", data)


def compare_fakes(workspace: Path, fake_a: FakeOpenAI, fake_b: FakeOpenAI, *extra: str, api_key: str | None = None):
    """`statrepro compare` of A (clean fake endpoint) against B (a scripted one), with JSON and report."""
    env_a = openai_env(workspace, "side-a", fake_a, api_key=api_key)
    env_b = openai_env(workspace, "side-b", fake_b, api_key=api_key)
    verdict_path = workspace / "verdict.json"
    result = statrepro(
        "compare", env_a, env_b, "--store", workspace / "store", "--json", verdict_path, "--report", workspace / "report", *extra
    )
    verdict = json.loads(verdict_path.read_text()) if verdict_path.exists() else None
    return result, verdict


def failures_of(store: Path, env_name: str) -> list[dict]:
    lines = []
    for path in sorted(store.glob(f"{env_name}-*/**/failures.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines


def test_transient_faults_are_retried_and_permanent_ones_are_missing_items_with_reasons(workspace):
    with two_fake_servers() as (fake_a, fake_b):
        fake_b.script(
            "500", "ok", "429", "ok", "drop", "ok", "malformed", "ok", "bad_shape", "ok",  # items 0-4: one fault, then fine
            "400",  # item 5: rejected, permanent, not retried
            "500", "500", "500",  # item 6: transient on all 3 tries, then given up (bounded)
            "slow",  # item 7: slow but within the timeout
        )
        result, verdict = compare_fakes(workspace, fake_a, fake_b, "--max-missing", "0.2")
        requests_b = len(fake_b.generation_requests())
    assert verdict is not None, result.stderr
    gsm8k = verdict["benchmarks"]["gsm8k"]
    assert requests_b == ITEMS + 5 + 2  # five retries that succeeded, two more tries of item 6
    log = next((workspace / "store").glob("side-b-*/gsm8k-*/seed-0/harness.log")).read_text()
    assert log.count("retrying in") == 5 + 2  # every retry waited (backoff) and said why
    failures = {f["doc_id"]: f for f in failures_of(workspace / "store", "side-b")}
    assert set(failures) == {5, 6}
    assert "rejected: HTTP 400" in failures[5]["reason"] and failures[5]["tries"] == 1
    assert "gave up after 3 tries: HTTP 500" in failures[6]["reason"] and failures[6]["tries"] == 3
    # Missing items are counted as missing, not scored 0: 14 correct of the 18 answered, the same on both sides.
    assert gsm8k["n_missing"] == 2 and gsm8k["n_items"] == ITEMS - 2
    assert gsm8k["score_a"] == gsm8k["score_b"] == pytest.approx((ITEMS - 2 - len(WRONG)) / (ITEMS - 2))
    assert gsm8k["flip_rate"] == 0.0 and gsm8k["flips_down"] == 0
    assert "of the paired information is missing" not in gsm8k["reason"]  # 10% missing is within --max-missing 0.2


@pytest.fixture(scope="module")
def rejected_run(tmp_path_factory):
    """One compare where B's endpoint rejects 8 of 20 items with a 400 that echoes the Authorization header,
    with a unique API key planted in both env files."""
    workspace = tmp_path_factory.mktemp("rejected")
    (workspace / "model").mkdir()
    (workspace / "data" / "gsm8k").mkdir(parents=True)
    secret = f"sk-planted-{uuid.uuid4().hex}"
    with two_fake_servers() as (fake_a, fake_b):
        fake_b.script("500", "ok", *["400"] * 8)
        result, verdict = compare_fakes(workspace, fake_a, fake_b, api_key=secret)
        authorizations = [request.headers.get("Authorization", "") for request in fake_b.requests]
    return workspace, result, verdict, secret, authorizations


def test_many_missing_items_make_the_verdict_inconclusive(rejected_run):
    workspace, result, verdict, _, _ = rejected_run
    assert result.returncode == 4, result.stderr
    gsm8k = verdict["benchmarks"]["gsm8k"]
    assert gsm8k["n_missing"] == 8 and gsm8k["n_items"] == ITEMS - 8
    assert gsm8k["verdict"] == verdict["verdict"] == "inconclusive"
    assert "B lacks 8 of 20 runs (8 items entirely)" in gsm8k["reason"]
    assert len(failures_of(workspace / "store", "side-b")) == 8


def test_a_run_whose_every_item_fails_is_recorded_as_failed_with_its_reason(workspace, fake_openai):
    fake_openai.script(*["400"] * ITEMS)
    env = openai_env(workspace, "all-rejected", fake_openai)
    result = statrepro("run", env, "--store", workspace / "store")
    assert result.returncode == 1
    assert "failed" in result.stderr and "HTTP 400" in result.stderr
    (manifest_path,) = (workspace / "store").rglob("manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["status"] == "failed" and "HTTP 400" in manifest["stderr_tail"]
    assert manifest["attempts"] == 1  # a rejection is permanent: the job is not retried
    assert not (manifest_path.parent / "records.jsonl").exists()


# --------------------------------------------------------------------------- kill at any point


def _invocations(counters: Path, generation: str) -> int:
    return sum(path.read_text().split().count(generation) for path in counters.glob("*.count"))


def test_killed_runs_resume_to_the_uninterrupted_result_and_never_redo_finished_jobs(workspace):
    counters = workspace / "counts"
    env = write_yaml(
        workspace / "env.yaml",
        stub_env(
            workspace, "killme", benchmarks={"gsm8k": {"limit": 5}, "ceval": {"limit": 4}}, seeds=4,
            extra_args=["--sleep", "0.3", "--counter-dir", counters],
        ),
    )
    reference = statrepro("run", env, "--store", workspace / "reference", env=cli_environment(STUB_GENERATION="ref"))
    assert reference.returncode == 0, reference.stderr
    expected = done_jobs(workspace / "reference")
    assert len(expected) == 8

    store = workspace / "store"
    rng = random.Random(20240607)
    done_after_kill: list[set[str]] = []
    kills = 0
    for generation in range(10):
        if kills == 5:
            break
        process = subprocess.Popen(
            [*STATREPRO, "run", str(env), "--store", str(store)],
            env=cli_environment(STUB_GENERATION=str(generation)),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        # Kill at a random moment inside the run's first or second job (the CLI's own start-up is slow
        # here and not worth killing every time): while the harness sleeps, or while the store is written.
        target = rng.randrange(1, 3)
        deadline = time.time() + CLI_TIMEOUT
        while process.poll() is None and _invocations(counters, str(generation)) < target and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.8))
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # the whole group: the CLI and its harness subprocess
            kills += 1
        process.wait()
        done_after_kill.append(done_jobs(store))
    final = statrepro("run", env, "--store", store, env=cli_environment(STUB_GENERATION="final"))
    assert final.returncode == 0, final.stderr
    assert kills == 5

    assert done_jobs(store) == expected
    for key in expected:
        rows = records_of(store / key)
        assert rows == records_of(workspace / "reference" / key)
        assert len({row["item_key"] for row in rows}) == len(rows)  # no duplicates
    assert temp_files(store) == []
    # A job finished before kill k is never started again in a later generation.
    for key in expected:
        generations = (counters / (key.replace("/", "__") + ".count")).read_text().split()
        later = [g for g in generations if g != "ref"]
        for k, done in enumerate(done_after_kill):
            if key in done:
                assert all(g not in later for g in [str(n) for n in range(k + 1, 10)] + ["final"]), (key, later)
        assert 1 <= len(later) <= kills + 1
    runs = sum(_invocations(counters, str(g)) for g in range(len(done_after_kill))) + _invocations(counters, "final")
    interrupted = runs - len(expected)
    print(f"kill-and-resume: {kills} SIGKILLs, {interrupted} job runs killed mid-way and redone, done after each kill: "
          f"{[len(done) for done in done_after_kill]}")


# --------------------------------------------------------------------------- concurrency


def test_a_second_run_on_a_busy_store_refuses_or_waits_and_nothing_is_corrupted(workspace):
    counters = workspace / "counts"
    env = write_yaml(
        workspace / "env.yaml",
        stub_env(workspace, "busy", seeds=4, extra_args=["--sleep", "0.5", "--counter-dir", counters]),
    )
    store = workspace / "store"
    first = subprocess.Popen([*STATREPRO, "run", str(env), "--store", str(store)], env=cli_environment(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + CLI_TIMEOUT
    while not list(counters.glob("*.count")) and time.time() < deadline:  # the first run holds the lock by now
        time.sleep(0.1)
    refused = statrepro("run", env, "--store", store)
    waited = statrepro("run", env, "--store", store, "--wait")
    first_out, first_err = first.communicate(timeout=CLI_TIMEOUT)
    assert first.returncode == 0, first_err
    assert refused.returncode == 2
    message = refused.stderr.strip()
    assert "\n" not in message and "Traceback" not in refused.stderr
    assert str(store.resolve()) in message and "in use by another statrepro run" in message and "--wait" in message
    assert waited.returncode == 0, waited.stderr
    assert "4 of 4 runs already in" in waited.stderr
    assert len(done_jobs(store)) == 4 and temp_files(store) == []
    assert all(path.read_text().split() == ["0"] for path in counters.glob("*.count"))  # each job ran once
    assert len(list(counters.glob("*.count"))) == 4


# --------------------------------------------------------------------------- disk full, read-only store


def _snapshot(root: Path) -> dict[str, str]:
    """Hash of every file but the lock (which records the last holder's pid)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.mark.parametrize("fault", ["disk-full", "read-only"])
def test_full_or_read_only_store_gives_a_clear_error_and_keeps_results(workspace, tiny_tmpfs, fault):
    store = tiny_tmpfs / "store"
    env = stub_env(workspace, "disk", seeds=1)
    env_path = write_yaml(workspace / "env.yaml", env)
    assert statrepro("run", env_path, "--store", store).returncode == 0
    before = _snapshot(store)
    if fault == "disk-full":
        with open(tiny_tmpfs / "filler", "wb") as filler:
            try:
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
            except OSError as error:
                assert error.errno == errno.ENOSPC
    else:
        subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], check=True)
    result = statrepro("run", env_path, "--store", store, "--seeds", "0,1,2")
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr and message.startswith("error: ")
    expected = "No space left on device|disk is full" if fault == "disk-full" else "Read-only file system"
    assert re.search(expected, message), message
    assert str(store.resolve()) in message
    after = _snapshot(store)
    assert {k: v for k, v in after.items() if k in before} == before  # finished results intact
    assert done_jobs(store) == {key for key in done_jobs(store) if key.endswith("seed-0")}
    if fault == "disk-full":
        (tiny_tmpfs / "filler").unlink()
        resumed = statrepro("run", env_path, "--store", store, "--seeds", "0,1,2")
        assert resumed.returncode == 0, resumed.stderr
        assert "1 of 3 runs already in" in resumed.stderr and len(done_jobs(store)) == 3
        assert temp_files(store) == []


def test_a_failed_store_write_is_one_line_and_leaves_no_partial_job(workspace, monkeypatch):
    """The same without mount rights: atomic writes fail in-process with ENOSPC."""
    import statrepro.run.store as store_module

    env_path = write_yaml(workspace / "env.yaml", stub_env(workspace, "enospc", seeds=1))
    store = workspace / "store"
    runner = CliRunner()
    assert runner.invoke(app, ["run", str(env_path), "--store", str(store)]).exit_code == 0
    before = _snapshot(store)

    def no_space(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(store_module, "atomic_write_text", no_space)
    result = runner.invoke(app, ["run", str(env_path), "--store", str(store), "--seeds", "2"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    # The run had started (progress lines); the error is one line, the last.
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [result.stderr.strip().splitlines()[-1]]
    assert "disk is full" in errors[0] and "finished results are intact" in errors[0] and "Traceback" not in result.output
    assert {k: v for k, v in _snapshot(store).items() if k in before} == before
    assert len(done_jobs(store)) == 1


# --------------------------------------------------------------------------- the bad-input corpus

DATE = "2025-01-02T03-04-05.678901"
TASK = "gsm8k"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sample_line(doc_id: int, score, *, filter_name: str = "flexible-extract") -> dict:
    return {
        "doc_id": doc_id, "filter": filter_name, "metrics": ["exact_match"], "exact_match": score,
        "target": str(doc_id), "filtered_resps": [str(doc_id)], "doc_hash": _sha(f"doc{doc_id}"),
        "prompt_hash": _sha(f"prompt{doc_id}"),
    }


def lm_eval_side(root: Path, *, model: str = "m", date: str = DATE, scores=(1, 0, 1, 1, 0, 1), samples_text: str | None = None,
                 results: bool = True, samples: bool = True) -> Path:
    """A hand-made lm-eval --output_path tree with one gsm8k run."""
    directory = root / model
    directory.mkdir(parents=True, exist_ok=True)
    if results:
        payload = {
            "results": {TASK: {"alias": TASK, "exact_match,flexible-extract": sum(scores) / len(scores)}},
            "configs": {TASK: {"task": TASK}},
            "model_name": model,
            "config": {"model": "hf"},
        }
        (directory / f"results_{date}.json").write_text(json.dumps(payload))
    if samples:
        text = samples_text if samples_text is not None else "".join(
            json.dumps(sample_line(i, s)) + "\n" for i, s in enumerate(scores)
        )
        (directory / f"samples_{TASK}_{date}.jsonl").write_text(text, encoding="utf-8", errors="surrogateescape")
    return root


def samples_path(root: Path, model: str = "m") -> Path:
    return root / model / f"samples_{TASK}_{DATE}.jsonl"


def _good_env(ws: Path, **changes) -> dict:
    env = stub_env(ws, "good")
    for dotted, value in changes.items():
        node = env
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return env


def _env_case(text_or_data, *extra: str):
    """A `run` case on an env file given as YAML text or data."""

    def build(ws: Path) -> list[str]:
        path = ws / "env.yaml"
        if isinstance(text_or_data, (bytes, str)):
            path.write_bytes(text_or_data if isinstance(text_or_data, bytes) else text_or_data.encode())
        else:
            write_yaml(path, text_or_data(ws) if callable(text_or_data) else text_or_data)
        return ["run", str(path), "--store", str(ws / "store"), *extra]

    return build


def _analyze_case(make_b, *extra: str):
    """An `analyze` case: a valid side A against the bad side B that ``make_b(ws)`` builds."""

    def build(ws: Path) -> list[str]:
        side_a = lm_eval_side(ws / "a")
        return ["analyze", str(side_a), str(make_b(ws)), "--resamples", "200", *extra]

    return build


def _mixed_models(ws: Path) -> Path:
    lm_eval_side(ws / "b", model="m")
    return lm_eval_side(ws / "b", model="other", date="2025-01-03T00-00-00.000000")


def _symlink_loop(ws: Path) -> Path:
    side = lm_eval_side(ws / "b")
    (side / "m" / "loop").symlink_to(side, target_is_directory=True)
    return side


def _huge_sparse(ws: Path) -> Path:
    side = lm_eval_side(ws / "b")
    with open(samples_path(side), "r+b") as handle:
        handle.truncate(4 << 30)  # 4 GiB hole of NUL bytes after the valid lines: one endless "line"
    return side


def _evalscope_without_reviews(ws: Path) -> Path:
    root = ws / "b" / "20250102_030405"
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "task_config.yaml").write_text("model: m\ndatasets: [gsm8k]\n")
    (root / "predictions" / "m").mkdir(parents=True)
    (root / "predictions" / "m" / "gsm8k_main.jsonl").write_text("{}\n")
    return ws / "b"


def _truncated_inspect_eval(ws: Path) -> Path:
    """An inspect .eval zip cut short (a copy interrupted mid-file)."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("header.json", json.dumps({"version": 2, "status": "success", "eval": {"task": "arith"}}))
        archive.writestr("samples/q0_epoch_1.json", json.dumps({"id": "q0", "epoch": 1, "scores": {"match": {"value": "C"}}}))
    (ws / "b").mkdir()
    (ws / "b" / "run.eval").write_bytes(buffer.getvalue()[:-40])
    return ws / "b"


def _truncated_lighteval_details(ws: Path) -> Path:
    """A lighteval details parquet cut short after its magic bytes."""
    details = ws / "b" / "details" / "m" / DATE
    details.mkdir(parents=True)
    (details / f"details_gsm8k|0_{DATE}.parquet").write_bytes(b"PAR1\x15\x04\x15")
    return ws / "b"


def _truncated_opencompass_predictions(ws: Path) -> Path:
    """An OpenCompass predictions file cut off mid-item."""
    predictions = ws / "b" / "20250102_030405" / "predictions" / "m"
    predictions.mkdir(parents=True)
    (predictions / "gsm8k.json").write_text('{\n    "0": {\n        "origin_prompt": "q0",\n        "predic')
    return ws / "b"


def _opencompass_config_syntax_error(ws: Path) -> list[str]:
    """`doctor` on an OpenCompass work dir whose dumped config (configs/<timestamp>_<pid>.py) is cut off mid-call."""
    run = ws / "b" / "20250102_030405"
    (run / "predictions" / "m").mkdir(parents=True)
    (run / "predictions" / "m" / "gsm8k.json").write_text(json.dumps({"0": {"origin_prompt": "q0", "prediction": "1", "gold": "1"}}))
    (run / "configs").mkdir()
    (run / "configs" / "20250102_030405_4242.py").write_text("models = [\n    dict(\n        abbr='m',\n        path='/models/m'\n]\n")
    return ["doctor", str(lm_eval_side(ws / "a")), str(ws / "b")]


def _unrelated_dir(ws: Path) -> Path:
    (ws / "b").mkdir()
    (ws / "b" / "notes.txt").write_text("hello")
    return ws / "b"


def _empty_dir(ws: Path) -> Path:
    (ws / "b").mkdir()
    return ws / "b"


def _lines(*lines) -> str:
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)


# (case id, build(workspace) -> CLI args, regexes the one-line error must match)
BAD_INPUTS = [
    # -- environment YAML
    ("yaml-syntax", _env_case("name: x\nmodel:\n  path: [unclosed\nseeds: 2\n"), [r"env\.yaml:\d+", "YAML syntax error"]),
    ("yaml-tab-indent", _env_case("name: x\nmodel:\n\tpath: embedded\n"), [r"env\.yaml:3", "YAML syntax error"]),
    ("yaml-not-mapping", _env_case("- a\n- b\n"), [r"env\.yaml", "must be a YAML mapping"]),
    ("yaml-empty", _env_case(""), [r"env\.yaml", "must be a YAML mapping"]),
    ("yaml-non-utf8", _env_case(b"name: x\nhardware: \xff\xfe\n"), [r"env\.yaml:2", "not valid UTF-8"]),
    ("env-missing-file", lambda ws: ["run", str(ws / "nope.yaml"), "--store", str(ws / "s")], [r"nope\.yaml", "not found"]),
    ("unknown-top-key", _env_case(lambda ws: {**_good_env(ws), "seed": 3}), [r"env\.yaml:\d+ \[seed\]", "did you mean 'seeds'"]),
    ("unknown-nested-key", _env_case(lambda ws: _good_env(ws, **{"model.dtpye": "float32"})), [r"\[model\.dtpye\]", "did you mean 'dtype'"]),
    ("wrong-type", _env_case(lambda ws: _good_env(ws, batch_size="many")), [r"env\.yaml:\d+ \[batch_size\]", "integer"]),
    ("bad-literal", _env_case(lambda ws: _good_env(ws, **{"model.dtype": "float8"})), [r"\[model\.dtype\]", "float32"]),
    ("zero-seeds", _env_case(lambda ws: _good_env(ws, seeds=0)), [r"\[seeds\]", "at least 1"]),
    ("negative-seeds", _env_case(lambda ws: _good_env(ws, seeds=-3)), [r"\[seeds\]", "at least 1"]),
    ("empty-seed-list", _env_case(lambda ws: _good_env(ws, seeds=[])), [r"\[seeds\]", "empty"]),
    ("negative-seed-in-list", _env_case(lambda ws: _good_env(ws, seeds=[0, -1])), [r"\[seeds\]", "non-negative"]),
    ("negative-temperature", _env_case(lambda ws: _good_env(ws, **{"generation.temperature": -1})), [r"\[generation\.temperature\]"]),
    ("unknown-benchmark", _env_case(lambda ws: _good_env(ws, benchmarks={"gsm9k": {}})), [r"\[benchmarks\]", "did you mean 'gsm8k'"]),
    ("mode-on-a-generative-benchmark", _env_case(lambda ws: _good_env(ws, benchmarks={"gsm8k": {"mode": "ppl"}})), [r"\[benchmarks\]", "no mode 'ppl'"]),
    ("mode-unknown", _env_case(lambda ws: _good_env(ws, benchmarks={"mmlu_redux": {"mode": "logprob"}})), [r"\[benchmarks\.mmlu_redux\.mode\]", "ppl"]),
    ("generative-and-mode", _env_case(lambda ws: _good_env(ws, benchmarks={"mmlu_redux": {"mode": "ppl", "generative": True}})), [r"\[benchmarks\.mmlu_redux\]", "replaced by `mode`"]),
    ("loglikelihood-mode-without-prompt-logprobs", _env_case(lambda ws: _good_env(ws, engine={"kind": "transformers-serve"}, benchmarks={"mmlu_redux": {"mode": "clp"}})), [r"env\.yaml", r"benchmarks\.mmlu_redux\.mode 'clp' needs prompt log-likelihoods", "mode: gen"]),
    ("unknown-harness", _env_case(lambda ws: _good_env(ws, **{"harness.name": "lm-evl"})), [r"\[harness\.name\]", "did you mean 'lm-eval'"]),
    ("zero-concurrency", _env_case(lambda ws: _good_env(ws, **{"engine.concurrency": 0})), [r"env\.yaml:\d+ \[engine\.concurrency\]", "greater than or equal to 1"]),
    ("in-process-concurrency", _env_case(lambda ws: _good_env(ws, **{"engine.concurrency": 4})), [r"env\.yaml:\d+ \[engine\]", "one request at a time"]),
    ("openai-without-url", _env_case(lambda ws: _good_env(ws, engine={"kind": "openai"})), [r"\[engine\]", "needs base_url"]),
    ("deterministic-sampling", _env_case(lambda ws: _good_env(ws, engine={"deterministic": True}, generation={"temperature": 0.8})),
     [r"env\.yaml", r"engine\.deterministic", r"generation\.temperature is 0\.8"]),
    ("bad-device", _env_case(lambda ws: _good_env(ws, engine={"device": "tpu"})), [r"env\.yaml:\d+ \[engine\.device\]", "cuda:N"]),
    ("device-on-a-server", _env_case(lambda ws: _good_env(ws, engine={"kind": "vllm", "device": "cuda"})), [r"\[engine\]", r"engine\.device applies to in-process"]),
    ("name-path-escape", _env_case(lambda ws: _good_env(ws, name="../../etc")), [r"\[name\]", "letters, digits"]),
    ("missing-model-path", _env_case(lambda ws: _good_env(ws, **{"model.path": str(ws / "no-model")})), [r"no-model \[model\.path\]", "does not exist"]),
    ("data-dir-without-benchmark", _env_case(lambda ws: _good_env(ws, data_dir=str(ws)), ), [r"\[data_dir\]", "no folder for benchmark 'gsm8k'"]),
    ("data-dir-missing", _env_case(lambda ws: _good_env(ws, data_dir=str(ws / "nodata"))), [r"nodata \[data_dir\]", "does not exist"]),
    # -- command-line arguments
    ("cli-seeds-zero", _env_case(lambda ws: _good_env(ws), "--seeds", "0"), [r"seeds", "at least 1"]),
    ("cli-seeds-text", _env_case(lambda ws: _good_env(ws), "--seeds", "three"), [r"--seeds", "count or a comma-separated list"]),
    ("cli-limit-zero", _env_case(lambda ws: _good_env(ws), "--limit", "0"), [r"--limit", "at least 1"]),
    ("cli-unknown-benchmark", _env_case(lambda ws: _good_env(ws), "--benchmarks", "gsm8k,mmlu"), [r"benchmarks", "unknown benchmark 'mmlu'"]),
    ("cli-unknown-executor", _env_case(lambda ws: _good_env(ws), "--executor", "slurm"), [r"--executor", "unknown executor 'slurm'"]),
    ("cli-duplicate-env-names", lambda ws: _env_case(lambda w: _good_env(w))(ws)[:2] + [str(ws / "env.yaml"), "--store", str(ws / "s")], [r"two environments share the name 'good'"]),
    ("cli-tolerance-above-1", _analyze_case(lambda ws: lm_eval_side(ws / "b"), "--tolerance", "1.5"), [r"--tolerance", r"\(0\.0, 1\.0\)"]),
    ("cli-tolerance-zero", _analyze_case(lambda ws: lm_eval_side(ws / "b"), "--tolerance", "0"), [r"--tolerance"]),
    ("cli-alpha-half", _analyze_case(lambda ws: lm_eval_side(ws / "b"), "--alpha", "0.5"), [r"--alpha", r"\(0\.0, 0\.5\)"]),
    ("cli-alpha-zero", _analyze_case(lambda ws: lm_eval_side(ws / "b"), "--alpha", "0"), [r"--alpha"]),
    ("cli-metric-syntax", _analyze_case(lambda ws: lm_eval_side(ws / "b"), "--metric", "exact_match"), [r"--metric", "BENCHMARK=METRIC"]),
    ("cli-compare-tolerance", lambda ws: ["compare", "a.yaml", "b.yaml", "--tolerance", "-0.1"], [r"--tolerance"]),
    ("cli-missing-input", lambda ws: ["analyze", str(ws / "nowhere"), str(ws / "nowhere2"), "--resamples", "200"], [r"nowhere", "no such file"]),
    # -- harness outputs
    ("samples-truncated", _analyze_case(lambda ws: lm_eval_side(ws / "b", samples_text=_lines(sample_line(0, 1), sample_line(1, 0)) + '{"doc_id": 2, "filt')),
     [r"samples_gsm8k_.*\.jsonl:3", "truncated JSON line"]),
    ("samples-empty", _analyze_case(lambda ws: lm_eval_side(ws / "b", samples_text="")), [r"samples_gsm8k_.*\.jsonl", "empty file"]),
    ("samples-not-object", _analyze_case(lambda ws: lm_eval_side(ws / "b", samples_text=_lines(sample_line(0, 1), "[1, 2]"))),
     [r"\.jsonl:2", "expected a JSON object"]),
    ("results-without-samples", _analyze_case(lambda ws: lm_eval_side(ws / "b", samples=False)), [r"results_.*\.json", "without per-item samples"]),
    ("samples-without-results", _analyze_case(lambda ws: lm_eval_side(ws / "b", results=False)), [r"samples_gsm8k_.*\.jsonl", "samples without results"]),
    ("results-invalid-json", _analyze_case(lambda ws: (lm_eval_side(ws / "b"), (ws / "b" / "m" / f"results_{DATE}.json").write_text('{"results": {'))[0]),
     [r"results_.*\.json:\d+", "invalid JSON"]),
    ("evalscope-without-reviews", _analyze_case(_evalscope_without_reviews), [r"20250102_030405", "without reviews"]),
    ("mixed-models", _analyze_case(_mixed_models), [r"mixes models 'm' and 'other'"]),
    ("duplicate-doc-id", _analyze_case(lambda ws: lm_eval_side(ws / "b", samples_text=_lines(sample_line(0, 1), sample_line(1, 0), sample_line(1, 1)))),
     [r"\.jsonl:3", "duplicate doc_id 1"]),
    ("score-nan", _analyze_case(lambda ws: lm_eval_side(ws / "b", samples_text=_lines(sample_line(0, 1), sample_line(1, float("nan"))))),
     [r"\.jsonl:2", "not a finite number"]),
    ("score-inf", _analyze_case(lambda ws: lm_eval_side(ws / "b", samples_text=_lines(sample_line(0, float("inf")), sample_line(1, 1)))),
     [r"\.jsonl:1", "not a finite number"]),
    ("score-string", _analyze_case(lambda ws: lm_eval_side(ws / "b", samples_text=_lines(sample_line(0, 1), sample_line(1, "n/a")))),
     [r"\.jsonl:2", "'n/a' is not a number"]),
    ("samples-non-utf8", _analyze_case(lambda ws: lm_eval_side(ws / "b", samples_text=_lines(sample_line(0, 1)) + '{"doc_id": 1, "x": "\udcff"}\n')),
     [r"\.jsonl:2", "not UTF-8"]),
    ("symlink-loop", _analyze_case(_symlink_loop), [r"loop", "symlink loop"]),
    ("huge-sparse-samples", _analyze_case(_huge_sparse), [r"\.jsonl:\d+", "line longer than 64 MiB"]),
    ("inspect-eval-truncated", _analyze_case(_truncated_inspect_eval), [r"b/run\.eval: ", "inspect_ai"]),
    ("inspect-json-malformed", _analyze_case(lambda ws: (ws / "b").mkdir() or (ws / "b" / "log.json").write_text('{"version": 2, "eval": {"task": "arith", ') and ws / "b"),
     [r"b/log\.json: ", "inspect_ai"]),
    ("lighteval-details-truncated", _analyze_case(_truncated_lighteval_details),
     [r"details_gsm8k\|0_.*\.parquet: ", "not a readable lighteval details parquet"]),
    ("opencompass-predictions-truncated", _analyze_case(_truncated_opencompass_predictions),
     [r"predictions/m/gsm8k\.json:\d+", "invalid JSON"]),
    ("opencompass-config-syntax", _opencompass_config_syntax_error,
     [r"configs/20250102_030405_4242\.py:\d+: ", "not a readable OpenCompass config"]),
    ("empty-dir", _analyze_case(_empty_dir), [r"b: directory is empty"]),
    ("unrelated-dir", _analyze_case(_unrelated_dir), [r"b: no recognisable run"]),
]


@pytest.mark.parametrize("case_id, build, patterns", BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_gives_one_line_error_and_exit_2(tmp_path, monkeypatch, case_id, build, patterns):
    (tmp_path / "model").mkdir()
    (tmp_path / "data" / "gsm8k").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    args = build(tmp_path)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit)  # no exception escaped the CLI
    assert "Traceback" not in result.output
    message = result.stderr.strip()
    assert message.startswith("error: ") and "\n" not in message, message
    for pattern in patterns:
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"


def test_the_corpus_covers_at_least_30_bad_inputs():
    assert len(BAD_INPUTS) >= 30


def test_a_huge_input_file_is_streamed_with_bounded_memory(tmp_path):
    """A 4 GiB sparse samples file: the reader stops at the 64 MiB line cap instead of loading it whole."""
    side_a = lm_eval_side(tmp_path / "a")
    side_b = _huge_sparse(tmp_path)
    probe = (
        "import resource, subprocess, sys\n"
        "result = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(result.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.stderr.write(result.stderr)\n"
    )
    measured = subprocess.run(
        [sys.executable, "-c", probe, *STATREPRO, "analyze", str(side_a), str(side_b)],
        capture_output=True, text=True, timeout=CLI_TIMEOUT, env=cli_environment(),
    )
    returncode, max_rss_kib = map(int, measured.stdout.split())
    assert returncode == 2 and "line longer than 64 MiB" in measured.stderr
    assert max_rss_kib < 1024 * 1024, f"peak RSS {max_rss_kib} KiB"


# --------------------------------------------------------------------------- secrets and safety


def test_a_planted_api_key_appears_in_no_output_file(rejected_run):
    workspace, result, verdict, secret, authorizations = rejected_run
    assert verdict is not None, result.stderr
    assert any(secret in header for header in authorizations)  # the key was really used
    bad_env = workspace / "bad.yaml"
    bad_env.write_text(f"name: bad\nengine:\n  kind: openai\n  api_key: {secret}\n  base_url: [\n")
    bad = statrepro("run", bad_env, "--store", workspace / "store")
    assert bad.returncode == 2
    doctor = statrepro("doctor", workspace / "side-a.yaml", workspace / "side-b.yaml", "--json", workspace / "doctor.json")
    inputs = {workspace / "side-a.yaml", workspace / "side-b.yaml", bad_env}
    outputs = [path for path in workspace.rglob("*") if path.is_file() and path not in inputs]
    assert len(outputs) > 15 and (workspace / "report").is_dir() and (workspace / "doctor.json").is_file()
    leaking = [str(path) for path in outputs if secret.encode() in path.read_bytes()]
    streams = {"compare": result.stdout + result.stderr, "bad env": bad.stdout + bad.stderr, "doctor": doctor.stdout + doctor.stderr}
    assert leaking == [] and [name for name, text in streams.items() if secret in text] == []
    # The server echoed the key in its error bodies; it reached the store redacted.
    assert all("Bearer ***" in f["reason"] for f in failures_of(workspace / "store", "side-b"))


def _python_sources() -> list[Path]:
    return sorted(PACKAGE_DIR.rglob("*.py"))


def test_no_config_value_can_reach_a_shell():
    shell = re.compile(r"shell\s*=\s*True|os\.system\(|os\.popen\(|subprocess\.getoutput|subprocess\.getstatusoutput")
    offenders = [f"{p}:{n}" for p in _python_sources() for n, line in enumerate(p.read_text().splitlines(), 1) if shell.search(line)]
    assert len(_python_sources()) > 20 and offenders == []


def test_yaml_is_only_loaded_safely():
    unsafe = re.compile(r"yaml\.(load|load_all|unsafe_load|full_load)\(|Loader\s*=\s*yaml\.(Loader|FullLoader|UnsafeLoader)")
    sources = {p: p.read_text() for p in _python_sources()}
    offenders = [str(p) for p, text in sources.items() if unsafe.search(text)]
    assert offenders == [] and any("yaml.safe_load" in text for text in sources.values())


def test_yaml_tags_cannot_construct_objects(tmp_path):
    env = tmp_path / "env.yaml"
    env.write_text("name: !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(InputError, match="YAML syntax error"):
        from statrepro.envfile import load_env

        load_env(env)
    assert not (tmp_path / "pwned").exists()


def test_store_paths_cannot_escape_the_store(tmp_path):
    env = validate_env(dict(name="fine", model={"path": str(tmp_path)}))
    escaping = env.model_copy(update={"name": "../../outside"})  # bypasses validation, as a bug elsewhere might
    job = Job(escaping, "gsm8k", env.benchmarks["gsm8k"], 0)
    with pytest.raises(InputError, match="escapes the store"):
        ResultStore(tmp_path / "store").job_dir(job)


def test_managed_servers_bind_loopback_only():
    from statrepro.engines.process import LOOPBACK

    assert LOOPBACK == "127.0.0.1"
    sources = "\n".join(p.read_text() for p in (PACKAGE_DIR / "engines").rglob("*.py"))
    assert "0.0.0.0" not in sources
    hosts = re.findall(r'"--host",\s*([A-Za-z_."0-9]+)', sources)
    assert hosts and set(hosts) == {"LOOPBACK"}
