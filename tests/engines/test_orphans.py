"""A managed server never outlives statrepro: a SIGKILLed compare takes its server along (parent-death signal and
watchdog), and a pid record a killed run left in the store gets its orphan stopped by the next run.

The server is the faithful fake of `vllm serve` (tests/support/bin/vllm; the real one needs CUDA).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid

import pytest
from processes import wait_for

from test_managed_gpu_servers import FAKE_BIN, STATREPRO, cli_environment, gone, recorded, statrepro, workspace, write_env  # noqa: F401

from statrepro.engines.watchdog import TOKEN_VARIABLE


def test_a_sigkilled_compare_takes_its_managed_server_along(workspace):
    record = workspace / "servers.jsonl"
    env_a = write_env(workspace, "killed-a", {"kind": "vllm"}, extra_args=["--sleep", "60"])
    env_b = write_env(workspace, "killed-b", {"kind": "vllm"}, extra_args=["--sleep", "60"])
    process = subprocess.Popen(
        [*STATREPRO, "compare", str(env_a), str(env_b), "--store", str(workspace / "store")],
        env=cli_environment(record), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        wait_for(lambda: recorded(record) and list((workspace / "store").rglob("harness.log")), 60, "the server and a job")
        server_pid = recorded(record)[0]["pid"]
        assert not gone(server_pid)
        os.kill(process.pid, signal.SIGKILL)  # statrepro only, as the OOM killer would
        process.wait()
        # Seconds, not minutes: the stub would keep it busy for 60 s. 15 s leaves room for a loaded CI machine, where 5 s
        # was once too short (stop 28's final default run).
        wait_for(lambda: gone(server_pid), 15, "the orphaned server to stop")
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # the sleeping stub harness
        except ProcessLookupError:
            pass


def test_the_next_run_stops_an_orphan_a_killed_run_left_in_the_store(workspace):
    record = workspace / "servers.jsonl"
    token = uuid.uuid4().hex
    server_dir = workspace / "store" / "servers" / "old-run"
    server_dir.mkdir(parents=True)
    # An orphan as a killed run leaves it: its own session, reparented, no watchdog, only the pid record.
    orphan = subprocess.Popen(
        [str(FAKE_BIN / "vllm"), "serve", "m", "--host", "127.0.0.1", "--port", "0"],
        env={**cli_environment(record), TOKEN_VARIABLE: token}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: recorded(record), 30, "the orphan to start")
        (server_dir / "vllm-server.pid").write_text(
            json.dumps({"pid": orphan.pid, "pgid": orphan.pid, "token": token, "argv": ["vllm", "serve", "m"], "start_ticks": None}),
            encoding="utf-8",
        )
        # A stale record whose server is long gone is just removed.
        (server_dir / "stale.pid").write_text(json.dumps({"pid": 999999, "pgid": 999999, "token": "gone", "argv": []}), encoding="utf-8")
        env = write_env(workspace, "next-run", {"kind": "hf"})
        result = statrepro("run", env, "--store", workspace / "store", env=cli_environment(record))
        assert result.returncode == 0, result.stderr
        assert "stopped a managed server a killed run left behind: pid" in result.stderr
        orphan.wait(timeout=5)
        assert not list(server_dir.glob("*.pid"))
    finally:
        orphan.kill()
        orphan.wait()


def test_a_cleanly_stopped_server_leaves_no_pid_record(workspace):
    record = workspace / "servers.jsonl"
    env = write_env(workspace, "clean", {"kind": "vllm"})
    result = statrepro("run", env, "--store", workspace / "store", env=cli_environment(record))
    assert result.returncode == 0, result.stderr
    assert not list((workspace / "store" / "servers").rglob("*.pid"))
    assert gone(recorded(record)[0]["pid"])


@pytest.mark.model
def test_a_sigkilled_compare_takes_its_real_llama_cpp_server_along(workspace):
    pytest.importorskip("llama_cpp")
    envs = []
    for name in ("llama-a", "llama-b"):
        path = write_env(workspace, name, {"kind": "llama-cpp", "startup_timeout": 120}, extra_args=["--sleep", "60"])
        path.write_text(path.read_text().replace(str(workspace / "model"), "embedded").replace("bfloat16", "float32"))
        envs.append(path)
    process = subprocess.Popen(
        [*STATREPRO, "compare", *map(str, envs), "--store", str(workspace / "store")],
        env=cli_environment(workspace / "servers.jsonl"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        store = workspace / "store"
        wait_for(lambda: list(store.rglob("llama-cpp-server.pid")) and list(store.rglob("harness.log")), 180, "the server and a job")
        server_pid = json.loads(next(store.rglob("llama-cpp-server.pid")).read_text())["pid"]
        assert not gone(server_pid)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        wait_for(lambda: gone(server_pid), 15, "the orphaned llama.cpp server to stop")
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
