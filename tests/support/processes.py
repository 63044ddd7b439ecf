"""Process checks shared by the tests that start and stop servers and harnesses."""

from __future__ import annotations

import os
from pathlib import Path


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited: no such process, or a zombie nobody reaped yet (it still answers kill(0))."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True
