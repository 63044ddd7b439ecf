"""Environments side by side: the orchestrator runs each environment's block (server and jobs) in a thread of
its own when the executor says so, one after another otherwise; a failure or a Ctrl-C stops both blocks.

The executor here is a fake that runs no harness: it logs when each environment's ``run`` starts and ends,
and meets the other environment's ``run`` at a barrier, which only passes when both are running at once.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from statrepro.config import EnvConfig
from statrepro.envfile import validate_env
from statrepro.run import jobs
from statrepro.run.jobs import JobCancelled, JobOutcome, jobs_cancelled
from statrepro.run.orchestrate import RunInterrupted, run_environments
from statrepro.run.store import ResultStore

BARRIER_TIMEOUT = 30.0  # only bounds a hang; no assertion depends on it


def _env(name: str, tmp_path: Path) -> EnvConfig:
    return validate_env(
        {"name": name, "model": {"path": str(tmp_path)}, "benchmarks": {"gsm8k": {"limit": 2}}, "seeds": 2}
    )


class FakeExecutor:
    """Logs ``start <env>`` / ``end <env>``; with ``side_by_side``, every run waits for the other at a barrier.
    ``behaviour`` maps an env name to what its run does after the barrier: "done", "fail", "wait for cancel"
    (poll ``jobs_cancelled`` as the Ray executor does) or "interrupt" (Ctrl-C to the main thread, then wait)."""

    name = "fake"

    def __init__(self, side_by_side: bool, behaviour: dict[str, str] | None = None) -> None:
        self.side_by_side = side_by_side
        self.behaviour = behaviour or {}
        self.log: list[str] = []
        self.barrier = threading.Barrier(2, timeout=BARRIER_TIMEOUT)

    def runs_side_by_side(self, envs) -> bool:
        return self.side_by_side

    def run(self, job_list, run_one, on_done):
        env = job_list[0].env.name
        self.log.append(f"start {env}")
        try:
            if self.side_by_side:
                self.barrier.wait()
            what = self.behaviour.get(env, "done")
            if what == "fail":
                raise RuntimeError(f"{env} broke")
            if what == "interrupt":  # a terminal's Ctrl-C: the kernel hands SIGINT to the main thread
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            if what in ("wait for cancel", "interrupt"):
                while not jobs_cancelled():
                    threading.Event().wait(0.01)
                raise JobCancelled()
            outcomes = [JobOutcome(job, "done", items=2) for job in job_list]
            for outcome in outcomes:
                on_done(outcome)
            return outcomes
        finally:
            self.log.append(f"end {env}")


def test_environments_overlap_when_the_executor_runs_them_side_by_side(tmp_path):
    envs = [_env("a100", tmp_path), _env("h100", tmp_path)]
    executor = FakeExecutor(side_by_side=True)
    summary = run_environments(envs, ResultStore(tmp_path / "store"), executor)
    # Both runs started before either ended (the barrier would have broken otherwise).
    assert sorted(executor.log[:2]) == ["start a100", "start h100"]
    assert sorted(executor.log[2:]) == ["end a100", "end h100"]
    # Outcomes keep the environments' order, whichever finished first.
    assert [o.job.env.name for o in summary.outcomes] == ["a100"] * 2 + ["h100"] * 2
    assert summary.summary() == "4 run, 0 already in the store, 0 failed"


def test_environments_run_one_after_another_otherwise(tmp_path):
    envs = [_env("a100", tmp_path), _env("h100", tmp_path)]
    executor = FakeExecutor(side_by_side=False)
    summary = run_environments(envs, ResultStore(tmp_path / "store"), executor)
    assert executor.log == ["start a100", "end a100", "start h100", "end h100"]
    assert len(summary.outcomes) == 4


def test_a_failing_environment_stops_the_other_and_its_error_is_raised(tmp_path):
    envs = [_env("a100", tmp_path), _env("h100", tmp_path)]
    executor = FakeExecutor(side_by_side=True, behaviour={"a100": "wait for cancel", "h100": "fail"})
    with pytest.raises(RuntimeError, match="h100 broke"):
        run_environments(envs, ResultStore(tmp_path / "store"), executor)
    assert sorted(executor.log[2:]) == ["end a100", "end h100"]  # both blocks ended before the error surfaced


def test_ctrl_c_stops_both_environments_and_says_what_was_kept(tmp_path, monkeypatch):
    # Keep pytest's own Ctrl-C handling: the run would make a second Ctrl-C exit the process at once.
    monkeypatch.setattr(jobs.signal, "signal", lambda *args: None)
    envs = [_env("a100", tmp_path), _env("h100", tmp_path)]
    executor = FakeExecutor(side_by_side=True, behaviour={"a100": "interrupt", "h100": "wait for cancel"})
    with pytest.raises(RunInterrupted, match=r"^interrupted: kept 0 finished runs"):
        run_environments(envs, ResultStore(tmp_path / "store"), executor)
    assert sorted(executor.log[2:]) == ["end a100", "end h100"]
