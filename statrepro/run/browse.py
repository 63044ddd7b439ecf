"""Reading a result store without writing to it: what `statrepro view` lists and pairs.

Everything here only reads: no lock is taken, no directory is created. Names come from the directories the
store wrote (``<env>-<fingerprint>/<benchmark>-<spec>/seed-<n>``), never from a caller's path, so nothing is read
outside the root.
"""

from __future__ import annotations

import fcntl
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import InputError
from ..harness.records import concat_records, make_records
from .plan import CONTROL_SUFFIX
from .store import MANIFEST, RECORDS

ENV_FILE = "env.json"
# Files that are the store's own, never a verdict someone saved into it.
_STORE_FILES = {ENV_FILE, MANIFEST}
_VERDICT_KEYS = {"schema_version", "verdict", "benchmarks"}
VERDICT_SCAN_DEPTH = 3  # how deep below the root (outside the environments) saved verdicts are looked for


@dataclass(frozen=True)
class StoredRun:
    """One benchmark of one environment, with one set of benchmark options: its seeds, finished or failed."""

    directory: str
    """``<benchmark>-<spec fingerprint>``: runs with the same name on two sides selected the same items."""
    benchmark: str
    done: tuple[int, ...]
    failed: tuple[int, ...]
    items: int
    """Items of its largest finished seed."""


@dataclass(frozen=True)
class StoredEnvironment:
    directory: str
    """``<env>-<fingerprint>``, the key the pages use."""
    name: str
    config: dict
    runs: tuple[StoredRun, ...]

    @property
    def finished(self) -> bool:
        return any(run.done for run in self.runs)

    @property
    def control_of(self) -> str | None:
        """The environment name this one is the A/A control of (``compare --control``), else None."""
        return self.name[: -len(CONTROL_SUFFIX)] if self.name.endswith(CONTROL_SUFFIX) else None


@dataclass(frozen=True)
class StoredVerdict:
    path: str
    """Relative to the store root."""
    verdict: str
    inputs: dict = field(default_factory=dict)
    report: str | None = None
    """The report.html beside it (``--report DIR`` writes both), relative to the root."""


@dataclass(frozen=True)
class StoreListing:
    root: Path
    environments: tuple[StoredEnvironment, ...]
    verdicts: tuple[StoredVerdict, ...]
    lock_holder: str | None
    """Who holds the store's lock (a running `run` or `compare` writing it), None when nobody does."""

    @property
    def finished(self) -> tuple[StoredEnvironment, ...]:
        return tuple(env for env in self.environments if env.finished)

    def environment(self, directory: str) -> StoredEnvironment:
        for env in self.environments:
            if env.directory == directory:
                return env
        raise InputError(f"the store has no environment {directory!r}", path=self.root)


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _inside(root: Path, path: Path) -> bool:
    """Whether ``path`` (symlinks followed) lies within ``root``."""
    resolved = path.resolve()
    return resolved == root or root in resolved.parents


def _stored_run(root: Path, directory: Path) -> StoredRun | None:
    benchmark, _, spec = directory.name.rpartition("-")
    if not benchmark or not spec:
        return None
    done, failed, items = [], [], 0
    for seed_dir in sorted(directory.glob("seed-*")):
        if not _inside(root, seed_dir) or not seed_dir.name[5:].lstrip("-").isdigit():
            continue
        manifest = (_inside(root, seed_dir / MANIFEST) and _read_json(seed_dir / MANIFEST)) or {}
        seed = int(seed_dir.name[5:])
        if manifest.get("status") == "done" and (seed_dir / RECORDS).is_file() and _inside(root, seed_dir / RECORDS):
            done.append(seed)
            items = max(items, int(manifest.get("items") or 0))
        elif manifest.get("status") == "failed":
            failed.append(seed)
    if not done and not failed:
        return None
    return StoredRun(directory.name, benchmark, tuple(sorted(done)), tuple(sorted(failed)), items)


def _environment(root: Path, directory: Path) -> StoredEnvironment | None:
    config = _read_json(directory / ENV_FILE) if _inside(root, directory / ENV_FILE) else None
    if config is None or not isinstance(config.get("name"), str):
        return None
    runs = [run for child in sorted(directory.iterdir()) if child.is_dir() and _inside(root, child)
            for run in [_stored_run(root, child)] if run is not None]
    return StoredEnvironment(directory.name, config["name"], config, tuple(runs))


def _verdicts(root: Path, directory: Path, depth: int) -> list[StoredVerdict]:
    found = []
    for child in sorted(directory.iterdir()):
        if child.name.startswith(".") or not _inside(root, child):
            continue
        if child.is_dir() and depth > 0 and not (child / ENV_FILE).is_file() and child.name != "designs":
            found.extend(_verdicts(root, child, depth - 1))
        elif child.is_file() and child.suffix == ".json" and child.name not in _STORE_FILES:
            value = _read_json(child)
            if value is not None and _VERDICT_KEYS <= set(value):
                inputs = value.get("inputs") if isinstance(value.get("inputs"), dict) else {}
                report = child.parent / "report.html"
                report_path = report.relative_to(root).as_posix() if report.is_file() and _inside(root, report) else None
                found.append(StoredVerdict(child.relative_to(root).as_posix(), str(value["verdict"]), inputs, report_path))
    return found


def lock_holder(root: Path) -> str | None:
    """Who holds the store's lock (``ResultStore.locked``), tested with a shared lock that is let go at once."""
    try:
        handle = open(root / ".lock", encoding="utf-8")
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "another process"
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def list_store(root: str | Path) -> StoreListing:
    """The environments, runs and saved verdicts of the store at ``root``."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise InputError("no such store directory", path=root)
    environments = []
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.name.startswith(".") and _inside(root, child):
            env = _environment(root, child)
            if env is not None:
                environments.append(env)
    return StoreListing(root, tuple(environments), tuple(_verdicts(root, root, VERDICT_SCAN_DEPTH)), lock_holder(root))


def _read_records(path: Path) -> pd.DataFrame:
    """One finished run's records; a cut or corrupted file is a located InputError, never a traceback."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"unreadable records ({error})", path=path) from None
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise InputError("the records are truncated or corrupted (not a JSON object); rerun this job", path=path, line=number) from None
        if not isinstance(row, dict) or not {"benchmark", "item_key", "run_id", "score"} <= set(row):
            raise InputError("the records are truncated or corrupted (a row lacks its columns); rerun this job", path=path, line=number)
        rows.append(row)
    frame = make_records(rows)
    for column in ("item_key", "run_id", "subset"):
        frame[column] = frame[column].map(lambda value: None if value is None else str(value))
    return frame


def load_runs(root: Path, env: StoredEnvironment, run_directories: list[str]) -> pd.DataFrame:
    """The records of every finished seed of ``env``'s runs named in ``run_directories``."""
    return concat_records(
        _read_records(root / env.directory / run.directory / f"seed-{seed}" / RECORDS)
        for run in env.runs
        if run.directory in run_directories
        for seed in run.done
    )


def run_manifest(root: Path, env: StoredEnvironment, run_directories: list[str]) -> dict | None:
    """The manifest of one finished seed among ``run_directories`` (versions, hardware) for the provenance."""
    for run in env.runs:
        if run.directory in run_directories and run.done:
            return _read_json(root / env.directory / run.directory / f"seed-{run.done[0]}" / MANIFEST)
    return None


def store_file(root: Path, relative: str) -> Path:
    """The file at ``relative`` (a URL path, already percent-decoded) inside the store, refused (InputError) when
    any part is ``..``, hidden (``.lock``, temp files) or when it resolves outside the root (a symlink out)."""
    parts = relative.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") or "\\" in part or "\0" in part for part in parts):
        raise InputError(f"refused path {relative!r}: only plain paths inside the store", path=root)
    target = root.joinpath(*parts)
    if not _inside(root, target):
        raise InputError(f"refused path {relative!r}: it leads outside the store", path=root)
    if not target.is_file():
        raise FileNotFoundError(relative)
    return target.resolve()
