"""Managed servers die with statrepro, however it ends: the watchdog process and the orphan sweep.

``python watchdog.py PARENT_PID PGID TOKEN GRACE`` (started by engines/process.py beside every managed server, in
its own session, so a kill of statrepro's process group does not take it along) waits until its parent, statrepro,
is gone (SIGKILL, the OOM killer, a cancelled CI job all reparent it), then stops every process tagged with the
server's TOKEN (the environment variable STATREPRO_SERVER_TOKEN, inherited by the server's own workers) and the
server's process group: SIGTERM, then SIGKILL after GRACE seconds. It exits on its own once the server is gone.

Stdlib only, and run as a file rather than a module, so it starts fast and needs no statrepro on sys.path.
"""

from __future__ import annotations

import os
import signal
import sys
import time

TOKEN_VARIABLE = "STATREPRO_SERVER_TOKEN"
POLL_SECONDS = 0.25


def tagged_pids(token: str) -> list[int]:
    """Processes whose environment carries ``STATREPRO_SERVER_TOKEN=token`` (a recycled pid never does)."""
    marker = f"{TOKEN_VARIABLE}={token}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if marker in handle.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def stop_tagged(token: str, pgid: int | None, grace_seconds: float) -> int:
    """SIGTERM the tagged processes and the group, SIGKILL what is left after the grace; how many were found."""
    targets = [pid for pid in tagged_pids(token) if pid != os.getpid()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in targets:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        if pgid is not None:
            try:
                os.killpg(pgid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + (grace_seconds if sig == signal.SIGTERM else 2.0)
        while time.monotonic() < deadline and (any(_alive(pid) for pid in targets) or (pgid is not None and _group_alive(pgid))):
            time.sleep(0.05)
        if not any(_alive(pid) for pid in targets) and not (pgid is not None and _group_alive(pgid)):
            break
    return len(targets)


def main(argv: list[str]) -> int:
    parent, pgid, token, grace = int(argv[0]), int(argv[1]), argv[2], float(argv[3])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal Ctrl-C is statrepro's to handle
    while os.getppid() == parent:
        if not _group_alive(pgid) and not tagged_pids(token):
            return 0  # the server was stopped normally
        time.sleep(POLL_SECONDS)
    stop_tagged(token, pgid, grace)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
