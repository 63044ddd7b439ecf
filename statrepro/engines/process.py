"""Start a local server subprocess, wait until it answers, and always stop its whole process group."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from .errors import EngineError
from .watchdog import TOKEN_VARIABLE, stop_tagged

PR_SET_PDEATHSIG = 1

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


def _die_with_parent(parent_pid: int):
    """preexec_fn: the server gets SIGTERM when statrepro dies (Linux prctl PR_SET_PDEATHSIG), and never
    outlives a parent that died while it was being started."""

    def preexec() -> None:
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # not Linux: the watchdog alone covers it
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _start_watchdog(server: subprocess.Popen, token: str, grace_seconds: float) -> subprocess.Popen | None:
    """The watchdog of engines/watchdog.py: stops the server's group and tagged workers once we are gone."""
    try:
        return subprocess.Popen(
            [sys.executable, "-S", str(Path(__file__).with_name("watchdog.py")), str(os.getpid()), str(server.pid), token, str(grace_seconds)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
    except OSError:
        return None


def _write_pid_file(pid_file: Path, process: subprocess.Popen, command: Sequence[str], token: str) -> None:
    record = {
        "pid": process.pid, "pgid": process.pid, "token": token, "argv": list(command), "start_ticks": _start_ticks(process.pid),
        "started": time.time(), "parent": os.getpid(),
    }
    try:
        pid_file.write_text(json.dumps(record), encoding="utf-8")
    except OSError:
        pass  # the record only helps a later run clean up; the watchdog still guards this one


def stop_orphans(directory: Path, grace_seconds: float = STOP_GRACE_SECONDS) -> list[str]:
    """Stop the managed servers that killed runs left behind: every ``*.pid`` record under ``directory``
    whose server still runs. Processes are found by the token in their environment, so a recycled pid is
    never touched. Returns one description per server stopped. Call it with the store locked."""
    stopped = []
    for pid_file in sorted(Path(directory).rglob("*.pid")) if Path(directory).is_dir() else []:
        try:
            record = json.loads(pid_file.read_text(encoding="utf-8"))
            token, pgid = str(record["token"]), int(record["pgid"])
        except (OSError, ValueError, KeyError, TypeError):
            pid_file.unlink(missing_ok=True)
            continue
        if stop_tagged(token, None, grace_seconds):
            stopped.append(f"pid {record.get('pid')} ({' '.join(map(str, record.get('argv', [])[:3]))} ...)")
        pid_file.unlink(missing_ok=True)
    return stopped


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
    process = watchdog = None
    token = uuid.uuid4().hex
    pid_file = log_path.with_suffix(".pid")
    server_env = {**(os.environ if env is None else env), TOKEN_VARIABLE: token}
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
                    env=server_env,
                    preexec_fn=_die_with_parent(os.getpid()),
                )
            _write_pid_file(pid_file, process, command, token)
            if watchdog is None:
                watchdog = _start_watchdog(process, token, grace_seconds)
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
            stop_tagged(token, None, grace_seconds)  # workers the server started outside its group
            pid_file.unlink(missing_ok=True)
        if watchdog is not None:
            watchdog.kill()
            watchdog.wait()
