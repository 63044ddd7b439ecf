"""Ctrl-C stops a run promptly: the running harness is stopped and its partial output discarded, finished jobs
are kept, managed servers are stopped, one line says what was kept, and the exit code is 130; a second Ctrl-C
exits at once. SIGINT goes to the whole foreground process group, as a terminal sends it.

The harness is the stub (tests/support/stub_harness.py) told to sleep; the managed server is the faithful fake of
`vllm serve` (tests/support/bin/vllm; the real one needs CUDA).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engines"))
from processes import group_gone, wait_for  # noqa: E402
from test_managed_gpu_servers import STATREPRO, cli_environment, gone, recorded, workspace, write_env  # noqa: E402,F401


def start_run(workspace: Path, *envs: Path, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*STATREPRO, "run", *map(str, envs), "--store", str(workspace / "store")],
        env=cli_environment(workspace / "servers.jsonl", **extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )


def test_ctrl_c_stops_the_running_job_keeps_finished_ones_and_stops_the_server(workspace):
    quick = write_env(workspace, "quick", {"kind": "hf"})  # 2 seeds, done in a moment
    slow = write_env(workspace, "slow", {"kind": "vllm"}, extra_args=["--sleep", "120"])
    process = start_run(workspace, quick, slow)
    try:
        wait_for(lambda: list((workspace / "store").glob("slow-*/**/harness.log")), 90, "the slow job to start")
        time.sleep(0.5)
        started = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        if not group_gone(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, stderr
    assert elapsed < 8, f"Ctrl-C took {elapsed:.1f} s"
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted: kept 2 finished runs") and "(2 from this run)" in last, stderr
    assert "Traceback" not in stderr
    slow_jobs = [path.parent for path in (workspace / "store").glob("slow-*/**/harness.log")]
    assert slow_jobs and all(not (job / "manifest.json").exists() and not (job / "harness").exists() for job in slow_jobs)
    assert group_gone(process.pid)  # statrepro and its harness subprocesses
    assert gone(recorded(workspace / "servers.jsonl")[0]["pid"])


def test_a_second_ctrl_c_exits_at_once_and_the_server_still_stops(workspace):
    slow = write_env(workspace, "stubborn", {"kind": "vllm"}, extra_args=["--sleep", "120"])
    slow.write_text(slow.read_text().replace("seeds: 2", "seeds: 1"))
    process = start_run(workspace, slow, FAKE_SERVER_MODE="stubborn")  # the server ignores SIGTERM: stopping it takes 10 s
    try:
        wait_for(lambda: list((workspace / "store").glob("stubborn-*/**/harness.log")), 90, "the job to start")
        time.sleep(0.5)
        os.killpg(process.pid, signal.SIGINT)
        time.sleep(2.0)
        assert process.poll() is None  # still waiting for the stubborn server
        started = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)
        process.communicate(timeout=10)
        assert time.monotonic() - started < 3
    finally:
        if not group_gone(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130
    server = recorded(workspace / "servers.jsonl")[0]["pid"]
    wait_for(lambda: gone(server), 25, "the watchdog to kill the stubborn server")


def test_sigterm_stops_the_harness_and_the_server_too(workspace):
    slow = write_env(workspace, "terminated", {"kind": "vllm"}, extra_args=["--sleep", "120"])
    process = start_run(workspace, slow)
    try:
        wait_for(lambda: list((workspace / "store").glob("terminated-*/**/harness.log")), 90, "the job to start")
        time.sleep(0.5)
        started = time.monotonic()
        os.kill(process.pid, signal.SIGTERM)  # statrepro only, as a scheduler's stop
        process.communicate(timeout=30)
        assert time.monotonic() - started < 10
        wait_for(lambda: group_gone(process.pid), 5, "the harness to stop")
    finally:
        if not group_gone(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 128 + signal.SIGTERM
    assert gone(recorded(workspace / "servers.jsonl")[0]["pid"])
