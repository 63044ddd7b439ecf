"""Running one job: generate its tasks, invoke the harness in a subprocess, normalise, store.

The harness runs as its own process (its exact command line, with argument lists, never a shell), so a
harness crash or a kill cannot corrupt the store, and statrepro's overhead is only the work around it.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..engines.kinds import engine_kind
from ..errors import InputError
from ..harness.contract import JobContext
from ..redaction import redact_secrets, scrub_files
from ..machine import detect_hardware, package_versions
from .plan import Job
from .store import ResultStore

if TYPE_CHECKING:
    from ..engines.servers import ServerInfo

STDERR_TAIL_LINES = 40
MAX_ATTEMPTS = 3
# Failures worth another try: the endpoint or the machine hiccupped, not the config.
TRANSIENT_MARKERS = (
    "connection refused",
    "connection reset",
    "connecterror",
    "readtimeout",
    "timed out",
    "503 service unavailable",
    "502 bad gateway",
    "429",
    "remotedisconnected",
    "temporarily unavailable",
)


@dataclass(frozen=True)
class JobOutcome:
    """What happened to one job."""

    job: Job
    status: str  # done | failed | skipped (already done)
    items: int = 0
    seconds: float = 0.0
    attempts: int = 0
    error: str | None = None


def _tail(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64_000))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _is_transient(log_tail: str) -> bool:
    lowered = log_tail.lower()
    return any(marker in lowered for marker in TRANSIENT_MARKERS)


def execute_job(
    job: Job,
    store: ResultStore,
    *,
    data_dir: Path,
    model_path: Path,
    endpoint: ServerInfo | None,
    on_attempt: Callable[[int], None] | None = None,
    backoff_seconds: float = 2.0,
) -> JobOutcome:
    """Run one job to completion (with bounded retries of transient failures) and record the outcome."""
    from ..harness import get_harness

    if store.is_done(job):
        return JobOutcome(job, "skipped")
    adapter = get_harness(job.env.harness.name)
    store.write_env(job)
    secrets = job.env.secrets()
    started = time.time()
    log_path = store.job_dir(job) / "harness.log"
    error = "unknown error"
    for attempt in range(1, MAX_ATTEMPTS + 1):
        if on_attempt:
            on_attempt(attempt)
        work_dir = store.scratch_dir(job)
        context = JobContext(job, data_dir, work_dir, model_path, endpoint)
        invocation = adapter.build_invocation(context)
        with open(log_path, "wb") as log:
            completed = subprocess.run(
                invocation.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **invocation.env},
                cwd=work_dir,
            )
        scrub_files([log_path, *work_dir.rglob("*")], secrets)
        tail = redact_secrets(_tail(log_path), secrets)
        if completed.returncode == 0:
            try:
                records = adapter.load(invocation.output_dir, metric_overrides={})
            except InputError as parse_error:
                error = f"harness output unreadable: {parse_error}"
                break
            records = records.assign(seed=job.seed, run_id=f"seed-{job.seed}")
            manifest = {
                "job": job.key,
                "env": job.env.public_dict(),
                "benchmark": job.benchmark,
                "seed": job.seed,
                "harness": job.env.harness.name,
                "argv": [redact_secrets(arg, secrets) for arg in invocation.argv],
                "versions": package_versions(),
                "hardware": {"label": job.env.hardware, **detect_hardware()},
                "endpoint": endpoint.to_dict() if endpoint else None,
                "concurrency": engine_kind(job.env.engine.kind).requests_in_flight(job.env),
                "started": started,
                "seconds": time.time() - started,
                "attempts": attempt,
                "items": int(records["item_key"].nunique()),
                "prompt_hashes": int(records["prompt_hash"].nunique()),
                **invocation.manifest,
            }
            store.write_done(job, records, manifest)
            return JobOutcome(job, "done", manifest["items"], manifest["seconds"], attempt)
        error = f"harness exited with code {completed.returncode}: {tail.splitlines()[-1] if tail else 'no output'}"
        if not _is_transient(tail) or attempt == MAX_ATTEMPTS:
            break
        time.sleep(backoff_seconds * 2 ** (attempt - 1) * (1 + random.random() / 2))
    store.write_failed(
        job,
        {
            "job": job.key,
            "env": job.env.public_dict(),
            "error": error,
            "stderr_tail": redact_secrets(_tail(log_path), secrets),
            "started": started,
            "seconds": time.time() - started,
            "attempts": attempt,
        },
    )
    return JobOutcome(job, "failed", 0, time.time() - started, attempt, error)
