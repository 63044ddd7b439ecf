"""Managed ``vllm`` and ``sglang`` engine kinds through the real CLI.

vLLM and SGLang need CUDA, so these tests put faithful fakes of their executables on PATH
(tests/support/bin/vllm and tests/support/bin/sglang, implemented in tests/support/fake_gpu_server.py): they
take the real command-line spelling, answer the real health and version endpoints, serve the fake OpenAI
server under ``--served-model-name``, and record their argv and environment in ``$FAKE_SERVER_RECORD``.
The harness is the fast stub (tests/support/stub_harness.py), which sends one request per item.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from processes import gone

SUPPORT_DIR = Path(__file__).resolve().parents[1] / "support"
FAKE_BIN = SUPPORT_DIR / "bin"
STATREPRO = [sys.executable, "-c", "from statrepro.cli import app; app()"]
CLI_TIMEOUT = 120


def cli_environment(record: Path, *, path: str | None = None, **extra: str) -> dict[str, str]:
    python_path = os.pathsep.join(filter(None, [str(SUPPORT_DIR), os.environ.get("PYTHONPATH")]))
    return {
        **os.environ, "PYTHONPATH": python_path, "FAKE_SERVER_RECORD": str(record),
        "PATH": path if path is not None else os.pathsep.join([str(FAKE_BIN), os.environ.get("PATH", "")]), **extra,
    }


def statrepro(*args, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*STATREPRO, *map(str, args)], env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "model").mkdir()
    (tmp_path / "data" / "gsm8k").mkdir(parents=True)
    return tmp_path


def write_env(workspace: Path, name: str, engine: dict, *, generation: dict | None = None, extra_args=()) -> Path:
    data = {
        "name": name,
        "model": {"path": str(workspace / "model"), "dtype": "bfloat16"},
        "engine": {"startup_timeout": 30, **engine},
        "harness": {"name": "stub", "extra_args": [str(arg) for arg in extra_args]},
        "benchmarks": {"gsm8k": {"limit": 4}},
        "seeds": 2,
        "data_dir": str(workspace / "data"),
    }
    if generation:
        data["generation"] = generation
    path = workspace / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def recorded(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def manifests(store: Path, env_name: str) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(store.glob(f"{env_name}-*/**/manifest.json"))]


def test_vllm_and_sglang_are_started_checked_recorded_and_stopped(workspace):
    record = workspace / "servers.jsonl"
    env_a = write_env(workspace, "on-vllm", {"kind": "vllm", "served_model": "smol", "extra_args": ["--max-model-len", "2048"]})
    env_b = write_env(workspace, "on-sglang", {"kind": "sglang"}, extra_args=())
    result = statrepro(
        "compare", env_a, env_b, "--store", workspace / "store", "--margin", "absolute", "--tolerance", "0.5",
        env=cli_environment(record),
    )
    # 4 items cannot make a verdict (exit 4, inconclusive); what matters here is that every job ran.
    assert result.returncode in (0, 4) and "4 run, 0 already in the store, 0 failed" in result.stderr, result.stderr
    starts = recorded(record)
    assert [start["flavour"] for start in starts] == ["vllm", "sglang"]  # one server per environment, not per job
    vllm, sglang = starts
    model = str(workspace / "model")
    assert vllm["argv"][:2] == ["serve", model]
    for flag, value in (("--host", "127.0.0.1"), ("--dtype", "bfloat16"), ("--seed", "0"), ("--served-model-name", "smol")):
        assert vllm["argv"][vllm["argv"].index(flag) + 1] == value
    assert vllm["argv"][-2:] == ["--max-model-len", "2048"]  # engine.extra_args go last, unchanged
    assert sglang["argv"][:3] == ["serve", "--model-path", model]
    for flag, value in (("--host", "127.0.0.1"), ("--random-seed", "0"), ("--served-model-name", "model")):
        assert sglang["argv"][sglang["argv"].index(flag) + 1] == value
    assert "--no-enable-prefix-caching" not in vllm["argv"] and vllm["env"] == {}
    # Both servers are gone once the compare returns.
    for start in starts:
        assert gone(start["pid"])
    # The manifest records the exact argv and the server's version.
    for env_name, flavour in (("on-vllm", "vllm"), ("on-sglang", "sglang")):
        found = manifests(workspace / "store", env_name)
        assert len(found) == 2 and all(m["status"] == "done" for m in found)
        endpoint = found[0]["endpoint"]
        assert endpoint["kind"] == flavour and endpoint["version"] == f"0.0.0-fake-{flavour}"
        assert endpoint["command"][1:] == next(s["argv"] for s in starts if s["flavour"] == flavour)
        assert endpoint["command"][0].endswith(f"bin/{flavour}")
        assert found[0]["determinism"]["requested"] is False


def test_deterministic_reaches_each_servers_argv_and_environment(workspace):
    record = workspace / "servers.jsonl"
    env_a = write_env(workspace, "det-vllm", {"kind": "vllm", "deterministic": True})
    env_b = write_env(workspace, "det-sglang", {"kind": "sglang", "deterministic": True, "extra_args": ["--attention-backend", "triton"]})
    result = statrepro("compare", env_a, env_b, "--store", workspace / "store", "--margin", "absolute", "--tolerance", "0.5",
                       env=cli_environment(record))
    assert result.returncode in (0, 4) and "0 failed" in result.stderr, result.stderr
    vllm, sglang = recorded(record)
    assert "--no-enable-prefix-caching" in vllm["argv"] and vllm["env"].get("VLLM_BATCH_INVARIANT") == "1"
    assert {"--enable-deterministic-inference", "--disable-radix-cache"} <= set(sglang["argv"])
    assert sglang["argv"][-2:] == ["--attention-backend", "triton"]
    determinism = manifests(workspace / "store", "det-vllm")[0]["determinism"]
    assert determinism["requested"] and determinism["prefix_cache_off"] and determinism["deterministic"]
    assert any("VLLM_BATCH_INVARIANT=1" in item for item in determinism["applied"])
    assert determinism["not_guaranteed"]
    # The doctor's checklist reads met / not met from the manifests instead of "unknown".
    manifest_a = next((workspace / "store").glob("det-vllm-*/**/manifest.json"))
    doctor = statrepro("doctor", manifest_a, env_a, "--json", workspace / "doctor.json", env=cli_environment(record))
    assert doctor.returncode in (0, 1), doctor.stderr
    checklist = {item["item"]: (item["a"], item["b"]) for item in json.loads((workspace / "doctor.json").read_text())["checklist"]}
    assert checklist["prefix cache off"] == ("met", "met")
    assert checklist["deterministic algorithms"] == ("met", "met")


@pytest.mark.parametrize("kind", ["vllm", "sglang"])
def test_a_server_that_crashes_at_startup_is_one_line_naming_its_log(workspace, kind):
    record = workspace / "servers.jsonl"
    env = write_env(workspace, "crashes", {"kind": kind})
    result = statrepro("run", env, "--store", workspace / "store", env=cli_environment(record, FAKE_SERVER_MODE="crash"))
    assert result.returncode == 2
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error:") and "exited with code 1 during startup" in error
    assert f"{kind}-server.log" in error and "no CUDA-capable device" in error
    assert "Traceback" not in result.stderr


def test_a_server_that_never_becomes_healthy_times_out_and_is_stopped(workspace):
    record = workspace / "servers.jsonl"
    env = write_env(workspace, "mute", {"kind": "vllm", "startup_timeout": 2})
    started = time.monotonic()
    result = statrepro("run", env, "--store", workspace / "store", env=cli_environment(record, FAKE_SERVER_MODE="never-healthy"))
    assert result.returncode == 2 and time.monotonic() - started < 60
    error = result.stderr.strip().splitlines()[-1]
    assert "did not answer" in error and "/health within 2 s" in error and "vllm-server.log" in error
    assert "Traceback" not in result.stderr
    assert gone(recorded(record)[0]["pid"])


def test_a_server_answering_another_model_name_is_a_clear_error(workspace):
    record = workspace / "servers.jsonl"
    env = write_env(workspace, "renamed", {"kind": "sglang", "served_model": "smol"})
    result = statrepro("run", env, "--store", workspace / "store", env=cli_environment(record, FAKE_SERVER_MODE="wrong-name"))
    assert result.returncode == 2
    error = result.stderr.strip().splitlines()[-1]
    assert "engine.served_model" in error and "'some-other-model'" in error and "'smol'" in error
    assert gone(recorded(record)[0]["pid"])


@pytest.mark.parametrize("kind", ["vllm", "sglang"])
def test_a_missing_executable_says_how_to_install_it_or_use_openai(workspace, kind):
    env = write_env(workspace, "nothing", {"kind": kind})
    result = statrepro("run", env, "--store", workspace / "store", env=cli_environment(workspace / "r", path="/nonexistent"))
    assert result.returncode == 2
    error = result.stderr.strip()
    assert len(error.splitlines()) == 1 and f"pip install {kind}" in error and "kind: openai" in error and "engine.kind" in error
