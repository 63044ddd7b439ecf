"""Test environment: the shared benchmark data beside the repo, no Hugging Face Hub access, and the shared
test doubles of tests/support/ importable as top-level modules (``fakes``, ``stub_harness``, ...), which also
makes the stub harness the plugin harness ``stub`` (its entry point: tests/support/statrepro_test_doubles-0.dist-info)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

SUPPORT_DIR = Path(__file__).resolve().parent / "support"
sys.path.insert(0, str(SUPPORT_DIR))

_SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
if _SHARED_DATA.is_dir() and not os.environ.get("STATREPRO_DATA_DIR"):
    os.environ["STATREPRO_DATA_DIR"] = str(_SHARED_DATA)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

# CI runs the slow end-to-end tests only while time allows: past this Unix time (set by .ci/run) a slow test that
# has not started yet is skipped, with the reason in the summary, instead of running CI past its limit.
SLOW_DEADLINE_VARIABLE = "STATREPRO_SLOW_TESTS_UNTIL"


def pytest_runtest_setup(item: pytest.Item) -> None:
    deadline = os.environ.get(SLOW_DEADLINE_VARIABLE)
    if deadline and item.get_closest_marker("slow") and time.time() > float(deadline):
        pytest.skip(f"CI's time for slow tests is spent ({SLOW_DEADLINE_VARIABLE}); `pytest -m slow` runs it")


# The fault-injecting fake OpenAI server as a fixture for every test module.
from fakes import fake_openai  # noqa: E402,F401


@pytest.fixture
def tiny_tmpfs(tmp_path: Path):
    """A 1 MiB tmpfs (a real filesystem that fills up and can be remounted read-only); skipped without mount rights."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
