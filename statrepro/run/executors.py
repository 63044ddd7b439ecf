"""The executor seam: a planned list of jobs goes in, outcomes come out. Executors never decide *what*
runs (planning does) nor *how* one job runs (``execute_job`` does); they only decide where and when."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

from .jobs import JobCancelled, JobOutcome, cancel_running_jobs, execute_job
from .plan import Job
from .store import ResultStore

if TYPE_CHECKING:
    from ..config import EnvConfig
    from ..engines.servers import ServerInfo
    from .progress import HarnessProgress

RunOne = Callable[[Job], JobOutcome]
OnDone = Callable[[JobOutcome], None]


@dataclass(frozen=True)
class JobRunner:
    """Runs one environment's jobs into a store. Plain data apart from ``describe`` and ``on_progress``, so remote
    executors can ship it to other machines (without those two, which only feed this process's progress)."""

    store_root: Path
    data_dir: Path
    model_path: Path
    endpoint: ServerInfo | None
    describe: Callable[[str], None] | None = field(default=None, compare=False)
    on_progress: Callable[[Job, HarnessProgress], None] | None = field(default=None, compare=False)

    def __call__(self, job: Job) -> JobOutcome:
        if self.describe:
            self.describe(job.label)
        return execute_job(
            job, ResultStore(self.store_root), data_dir=self.data_dir, model_path=self.model_path, endpoint=self.endpoint,
            on_progress=(lambda progress: self.on_progress(job, progress)) if self.on_progress else None,
        )


class Executor(Protocol):
    """Runs ``run_one`` for every job and reports each outcome as it arrives. ``run`` covers one environment;
    the orchestrator calls it for several environments at once (from threads) when ``runs_side_by_side``
    says their jobs use separate hardware."""

    name: str

    def runs_side_by_side(self, envs: list[EnvConfig]) -> bool: ...

    def run(self, jobs: list[Job], run_one: RunOne, on_done: OnDone) -> list[JobOutcome]: ...


class LocalExecutor:
    """Jobs on this machine. Each job is a harness subprocess, so threads are enough to run several at once;
    in-process models run one at a time because parallel copies would compete for memory and cores."""

    name = "local"

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers or os.cpu_count() or 1

    def runs_side_by_side(self, envs: list[EnvConfig]) -> bool:
        return False  # one machine: environments would compete for its memory and accelerator

    def workers_for(self, jobs: list[Job]) -> int:
        from ..engines.kinds import engine_kind

        kinds = [engine_kind(job.env.engine.kind) for job in jobs]
        if any(kind.capabilities.in_process for kind in kinds):
            return 1
        # Where sampled requests share one server RNG, seeds only reproduce one request at a time.
        if any(job.env.generation.temperature > 0 and not kind.capabilities.concurrent_sampling for job, kind in zip(jobs, kinds)):
            return 1
        return max(1, min(self.max_workers, len(jobs)))

    def run(self, jobs: list[Job], run_one: RunOne, on_done: OnDone) -> list[JobOutcome]:
        workers = self.workers_for(jobs)
        outcomes = []
        if workers == 1:
            for job in jobs:
                outcome = run_one(job)
                on_done(outcome)
                outcomes.append(outcome)
            return outcomes
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            for outcome in pool.map(run_one, jobs):
                on_done(outcome)
                outcomes.append(outcome)
        except BaseException as error:  # Ctrl-C, SIGTERM's SystemExit, a failing on_done
            # Stop the running harnesses first: shutting the pool down waits for its threads.
            cancel_running_jobs()
            pool.shutdown(wait=True, cancel_futures=True)
            if isinstance(error, JobCancelled):
                raise KeyboardInterrupt from None
            raise
        pool.shutdown()
        return outcomes
