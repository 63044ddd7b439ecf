"""Start a local server subprocess, wait until it answers, and always stop its whole process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from .errors import EngineError

LOOPBACK = "127.0.0.1"
STOP_GRACE_SECONDS = 10.0
LOG_TAIL_LINES = 15
# A port picked as free can be taken by someone else before the server binds it; retry with a new one.
PORT_ATTEMPTS = 3


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a server log, joined with ' | ' so they fit an error message on one line."""
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(kept) or "(empty log)"


def stop_process_group(process: subprocess.Popen, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace_seconds``; never leaves it running."""
    if process.poll() is not None:
        _signal_group(process.pid, signal.SIGKILL)  # children may outlive the leader
        return
    try:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            pass
    finally:
        # Also reached when a second Ctrl-C interrupts the grace wait.
        _signal_group(process.pid, signal.SIGKILL)
        try:
            process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            pass


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_until_ready(
    process: subprocess.Popen,
    ready_url: str,
    log_path: Path,
    timeout_seconds: float,
    name: str,
) -> None:
    """Poll ``ready_url`` until it answers 200; fail fast with the log tail if the process exits."""
    import httpx  # a run extra; the engine registry imports this module without it

    deadline = time.monotonic() + timeout_seconds
    delay = 0.2
    with httpx.Client(timeout=2.0) as probe:
        while True:
            exit_code = process.poll()
            if exit_code is not None:
                raise EngineError(f"{name} exited with code {exit_code} during startup; log {log_path}: {log_tail(log_path)}")
            try:
                if probe.get(ready_url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass  # not listening yet
            if time.monotonic() >= deadline:
                raise EngineError(
                    f"{name} did not answer {ready_url} within {timeout_seconds:.0f} s; log {log_path}: {log_tail(log_path)}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)


@contextmanager
def managed_server(
    command_for_port,
    *,
    name: str,
    log_path: Path,
    ready_path: str = "/v1/models",
    startup_timeout: float = 180.0,
    env: Mapping[str, str] | None = None,
    grace_seconds: float = STOP_GRACE_SECONDS,
) -> Iterator[tuple[int, subprocess.Popen]]:
    """Run ``command_for_port(port)`` (an argument list) until it serves ``ready_path``; yield (port, process).

    The server gets its own session, so a terminal Ctrl-C reaches only us and we stop it in order.
    stdout and stderr go to ``log_path`` (appended, one file per server).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    process = None
    try:
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = free_port()
            command: Sequence[str] = command_for_port(port)
            with open(log_path, "ab") as log:
                log.write(f"\n# statrepro: starting {name} on {LOOPBACK}:{port}\n".encode())
                log.flush()
                process = subprocess.Popen(
                    list(command),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=dict(env) if env is not None else None,
                )
            try:
                wait_until_ready(process, f"http://{LOOPBACK}:{port}{ready_path}", log_path, startup_timeout, name)
                break
            except EngineError:
                stop_process_group(process, grace_seconds)
                lost_port_race = "address already in use" in log_tail(log_path, 5).lower()
                if not lost_port_race or attempt == PORT_ATTEMPTS:
                    raise
        yield port, process
    finally:
        if process is not None:
            stop_process_group(process, grace_seconds)
