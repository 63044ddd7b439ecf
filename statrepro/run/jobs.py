"""Running one job: generate its tasks, invoke the harness in a subprocess, normalise, store.

The harness runs as its own process (its exact command line, with argument lists, never a shell), so a
harness crash or a kill cannot corrupt the store, and statrepro's overhead is only the work around it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..engines.errors import EngineError
from ..engines.kinds import engine_kind
from ..errors import InputError
from ..harness.contract import ROW_IDS_FILE, JobContext, row_key
from ..harness.records import messages_text
from ..redaction import redact_secrets, scrub_files
from ..machine import detect_hardware, package_versions
from . import progress
from .plan import Job
from .progress import HarnessProgress, LogProgress
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
    "server disconnected",  # aiohttp (lm-eval's API models)
    "session is closed",  # lm-eval's shared aiohttp session or connector, closed by a cut under the
    "connector is closed",  # other requests in flight
    "apiconnectionerror",  # the openai client (evalscope)
    "temporarily unavailable",
)


# Ctrl-C: the main thread sets this and stops every running harness; jobs then discard their partial output.
_CANCELLED = threading.Event()
_RUNNING: set[subprocess.Popen] = set()
_RUNNING_LOCK = threading.Lock()
# Exit statuses of a harness that a Ctrl-C (SIGINT to the foreground group) or our own stop ended.
_INTERRUPTED_CODES = {130, -signal.SIGINT, -signal.SIGTERM, -signal.SIGKILL, 128 + signal.SIGTERM}
HARNESS_STOP_GRACE = 3.0


class JobCancelled(Exception):
    """A job stopped by Ctrl-C: nothing was written for it, its partial harness output is gone."""


class EngineDown(EngineError):
    """The engine stopped answering during a job (a managed server's process died, or an endpoint refuses every
    connection): nothing was written for the job; the orchestrator restarts a managed server once."""


def _exit_at_once(signum, frame) -> None:
    # The second Ctrl-C: no more cleanup. Managed servers still stop (their watchdogs see us gone).
    os._exit(130)


def cancel_running_jobs() -> None:
    """Ctrl-C: stop every running job (``stop_running_jobs``). From the main thread, a second Ctrl-C from
    now on exits at once."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _exit_at_once)
    stop_running_jobs()


def stop_running_jobs() -> None:
    """Stop every running harness (SIGTERM, SIGKILL after a short grace) and refuse to start more; executors
    that wait on remote jobs poll ``jobs_cancelled`` and stop theirs."""
    _CANCELLED.set()
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for process in running:
        _stop(process)


def jobs_cancelled() -> bool:
    """Whether the run's jobs were stopped (Ctrl-C, or an environment run beside them failed)."""
    return _CANCELLED.is_set()


def reset_cancellation() -> None:
    """Before a run: no job is cancelled (a library caller may run again after a Ctrl-C)."""
    _CANCELLED.clear()


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=HARNESS_STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait(process: subprocess.Popen, log_path: Path, on_progress: Callable[[HarnessProgress], None] | None) -> int:
    """Wait for the harness; meanwhile a thread hands ``on_progress`` its request bar from its log, as it advances."""
    if on_progress is None:
        return process.wait()
    finished = threading.Event()
    watcher = threading.Thread(target=_watch_progress, args=(LogProgress(log_path), on_progress, finished), daemon=True)
    watcher.start()
    try:
        return process.wait()
    finally:
        finished.set()
        watcher.join()


def _watch_progress(log: LogProgress, on_progress: Callable[[HarnessProgress], None], finished: threading.Event) -> None:
    reported = None
    while not finished.wait(progress.POLL_SECONDS):
        latest = log.read()
        if latest is not None and latest != reported:
            on_progress(latest)
            reported = latest


def _run_harness(argv, *, log_path: Path, env: dict, cwd: Path, on_progress: Callable[[HarnessProgress], None] | None = None) -> int:
    """Run the harness to its end and return its exit status; JobCancelled (or the KeyboardInterrupt itself,
    in the main thread) when Ctrl-C stopped it. Its output, progress bars included, goes to ``log_path`` only."""
    if _CANCELLED.is_set():
        raise JobCancelled()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    with _RUNNING_LOCK:
        _RUNNING.add(process)
    try:
        returncode = _wait(process, log_path, on_progress)
    except BaseException:  # KeyboardInterrupt while this thread waits (the sequential path runs in the main thread)
        _CANCELLED.set()
        _stop(process)
        raise
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(process)
    # A terminal Ctrl-C reaches the harness too, and may end it before the main thread has flagged the cancel.
    if _CANCELLED.is_set() or (returncode in _INTERRUPTED_CODES and _CANCELLED.wait(2.0)):
        raise JobCancelled()
    return returncode


@dataclass(frozen=True)
class JobOutcome:
    """What happened to one job."""

    job: Job
    status: str  # done | failed | skipped (already done) | unneeded (a deterministic side's further seed)
    items: int = 0
    seconds: float = 0.0
    attempts: int = 0
    error: str | None = None
    missing: int = 0  # items of the job left out as missing runs (their requests failed for good)


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


def _determinism(job: Job, endpoint: ServerInfo | None) -> dict:
    """What ``engine.deterministic`` applied and what the engine cannot guarantee (the doctor reads it)."""
    if endpoint is not None and endpoint.determinism:
        return endpoint.determinism
    from ..engines.kinds import engine_kind

    return engine_kind(job.env.engine.kind).determinism(job.env.hardware, job.env.engine.deterministic)


def _request_guard(adapter, job: Job, endpoint: ServerInfo | None):
    """The request guard (engines/relay.py) for a harness that declares ``guards_requests`` against a served
    engine, else None. A managed server's guard knows its process, so its death is told from a fault."""
    if endpoint is None or not adapter.guards_requests:
        return None
    from ..engines.client import RetryPolicy
    from ..engines.relay import RequestRelay, process_alive

    engine = job.env.engine
    alive = (lambda: process_alive(endpoint.pid)) if engine_kind(engine.kind).managed and endpoint.pid else None
    return RequestRelay(
        endpoint.base_url, policy=RetryPolicy.for_engine(engine.max_retries, engine.timeout), secrets=job.env.secrets(), engine_alive=alive
    )


def _squashed(text) -> str:
    return "".join(str(text).split())


def _sent(prompt, failure: dict) -> bool:
    """Whether a failed request is one of the item's: its chat messages (roles and text: a harness may log them
    with fields of its own, as evalscope's ids), its text (a generation) or its text and one continuation (a
    log-likelihood request, whose text the harness decodes from tokens: spacing may differ)."""
    if failure.get("messages") is not None:
        return prompt.messages is not None and messages_text(prompt.messages) == messages_text(failure["messages"])
    if prompt.text is None or not isinstance(failure.get("prompt"), str):
        return False
    sent = _squashed(failure["prompt"])
    return sent in {_squashed(prompt.text), *(_squashed(prompt.text + continuation) for continuation in prompt.continuations)}


def drop_failed_items(adapter, output_dir: Path, records, failures: list[dict]):
    """(records without the items of the failed requests, {item key: reason}); an EngineError when a failed
    request matches no item, since then a placeholder answer could have been scored."""
    sent = adapter.sent_prompts(output_dir)
    missing: dict[str, str] = {}
    for failure in failures:
        keys = [key for key, prompt in sent.items() if _sent(prompt, failure)]
        if not keys:
            raise EngineError(f"a failed request matches no item of the harness output, so the run cannot be kept ({failure['reason']})")
        for key in keys:
            missing.setdefault(key, failure["reason"])
    return records[~records["item_key"].isin(missing)], missing


def _invoke(adapter, context: JobContext, guard, log_path: Path, on_progress: Callable[[HarnessProgress], None] | None = None):
    """Build and run the harness, through the request guard when there is one: (invocation, exit status). A stopped
    harness's partial output is never kept; EngineDown when the engine died under it."""
    with guard or nullcontext():
        if guard:
            context = replace(context, guard_url=guard.base_url)
        invocation = adapter.build_invocation(context)
        try:
            returncode = _run_harness(
                invocation.argv, log_path=log_path, env={**os.environ, **invocation.env}, cwd=context.work_dir, on_progress=on_progress,
            )
        except BaseException:  # JobCancelled, KeyboardInterrupt, SIGTERM's SystemExit
            shutil.rmtree(context.work_dir, ignore_errors=True)
            raise
    if guard and guard.engine_down:
        shutil.rmtree(context.work_dir, ignore_errors=True)
        raise EngineDown(f"{context.job.label}: {guard.engine_down}")
    return invocation, returncode


def _load_answered(adapter, output_dir: Path, guard, work_dir: Path):
    """The harness output's records without the items whose requests the guard gave up on, and those items'
    reasons; an EngineError when none is left or a failed request cannot be traced to its item."""
    records = adapter.load(output_dir, metric_overrides={})
    if guard is None or not guard.failures:
        return records, {}
    guard.write_failures(work_dir / "failed-requests.jsonl")
    records, missing = drop_failed_items(adapter, output_dir, records, guard.failures)
    if records.empty:
        raise EngineError(f"every item's request failed: {next(iter(missing.values()))}")
    return records, missing


def execute_job(
    job: Job,
    store: ResultStore,
    *,
    data_dir: Path,
    model_path: Path,
    endpoint: ServerInfo | None,
    on_attempt: Callable[[int], None] | None = None,
    on_progress: Callable[[HarnessProgress], None] | None = None,
    backoff_seconds: float = 2.0,
) -> JobOutcome:
    """Run one job to completion (with bounded retries of transient failures) and record the outcome.
    ``on_progress`` gets the harness's request bar (``run.progress``) as it advances."""
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
        guard = _request_guard(adapter, job, endpoint)
        invocation, returncode = _invoke(adapter, JobContext(job, data_dir, work_dir, model_path, endpoint), guard, log_path, on_progress)
        scrub_files([log_path, *work_dir.rglob("*")], secrets)
        tail = redact_secrets(_tail(log_path), secrets)
        if returncode == 0:
            try:
                records, missing = _load_answered(adapter, invocation.output_dir, guard, work_dir)
            except EngineError as unusable:
                error = str(unusable)
                break
            except InputError as parse_error:
                error = f"harness output unreadable: {parse_error}"
                break
            if invocation.row_ids:
                (work_dir / ROW_IDS_FILE).write_text(json.dumps(invocation.row_ids), encoding="utf-8")
                try:
                    records = records.assign(item_key=[row_key(key, invocation.row_ids) for key in records["item_key"]])
                    missing = {row_key(key, invocation.row_ids): reason for key, reason in missing.items()}
                except InputError as key_error:
                    error = f"harness output unreadable: {key_error}"
                    break
            records = records.assign(seed=job.seed, run_id=f"seed-{job.seed}", harness=adapter.name)
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
                "determinism": _determinism(job, endpoint),
                "concurrency": engine_kind(job.env.engine.kind).requests_in_flight(job.env),
                "started": started,
                "seconds": time.time() - started,
                "attempts": attempt,
                "items": int(records["item_key"].nunique()),
                "prompt_hashes": int(records["prompt_hash"].nunique()),
                **invocation.manifest,
            }
            if guard:  # what the guard saw, and each missing run with its reason
                manifest |= {"requests": guard.stats.to_dict(), "missing_runs": [{"item_key": k, "reason": r} for k, r in sorted(missing.items())]}
            store.write_done(job, records, manifest)
            return JobOutcome(job, "done", manifest["items"], manifest["seconds"], attempt, missing=len(missing))
        error = f"harness exited with code {returncode}: {tail.splitlines()[-1] if tail else 'no output'}"
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
