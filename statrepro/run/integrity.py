"""`statrepro store verify`: every job of a store checked against its manifest's checksums, and the repair that
sets damaged jobs aside so that the next `run` or `compare` redoes exactly those.

Repair moves, never deletes: a damaged job directory goes whole to ``<store>/quarantine/<UTC time>/<job key>``
(with ``reasons.json`` saying why), where it stays until the user removes it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import InputError
from .store import MANIFEST, QUARANTINE, STORE_FORMAT, ResultStore, job_damage, read_manifest

OK = "ok"
DAMAGED = "damaged"
UNFINISHED = "unfinished"
# Top-level folders of a store that hold no jobs.
NOT_JOBS = {"designs", "servers", QUARANTINE}


@dataclass(frozen=True)
class JobCheck:
    """One job of a store: ``status`` ok, damaged or unfinished; ``file`` the damaged file; ``detail`` why."""

    key: str
    status: str
    detail: str = ""
    file: str | None = None

    def summary(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{self.status:<10}  {self.key}" + (f"  ({where}{self.detail})" if self.detail else "")

    def to_dict(self) -> dict:
        return {"job": self.key, "status": self.status, "file": self.file, "detail": self.detail}


@dataclass(frozen=True)
class StoreCheck:
    """Every job of a store, checked; ``quarantine``: where a repair moved the damaged ones (None: no repair)."""

    root: Path
    jobs: tuple[JobCheck, ...]
    quarantine: Path | None = None

    @property
    def damaged(self) -> list[JobCheck]:
        return [job for job in self.jobs if job.status == DAMAGED]

    def summary(self) -> str:
        counts = {status: sum(job.status == status for job in self.jobs) for status in (OK, DAMAGED, UNFINISHED)}
        text = f"{len(self.jobs)} jobs in {self.root}: {counts[OK]} ok, {counts[DAMAGED]} damaged, {counts[UNFINISHED]} unfinished"
        if self.quarantine is not None:
            text += (f"; moved the {counts[DAMAGED]} damaged to {self.quarantine}: "
                     "the next run or compare with the same environment files redoes them")
        elif counts[DAMAGED]:
            text += f"; `statrepro store verify {self.root} --repair` moves them aside so that the next run redoes them"
        return text

    def to_dict(self) -> dict:
        return {
            "store": str(self.root), "store_format": STORE_FORMAT, "jobs": [job.to_dict() for job in self.jobs],
            "quarantine": str(self.quarantine) if self.quarantine else None,
        }


def job_directories(root: Path) -> list[Path]:
    """Every job directory of a store, <env>-<fingerprint>/<benchmark>-<options>/seed-<n>, finished or not."""
    return sorted(
        path for path in root.glob("*/*/seed-*")
        if path.is_dir() and path.relative_to(root).parts[0] not in NOT_JOBS
    )


def check_job(root: Path, directory: Path) -> JobCheck:
    """A job directory against its manifest: every checksummed file present and unchanged."""
    key = str(directory.relative_to(root))
    manifest_path = directory / MANIFEST
    manifest = read_manifest(manifest_path)
    if manifest is None:
        if manifest_path.exists():
            return JobCheck(key, DAMAGED, "not a manifest (unreadable JSON)", MANIFEST)
        return JobCheck(key, UNFINISHED, "no manifest: stopped before it finished; the next run redoes it")
    if manifest.get("status") != "done":
        return JobCheck(key, UNFINISHED, f"failed: {manifest.get('error', 'no reason recorded')}; the next run retries it")
    found = job_damage(directory, manifest)
    if found is not None:
        path, why = found
        return JobCheck(key, DAMAGED, why, str(path.relative_to(directory)))
    if "checksums" not in manifest:
        return JobCheck(key, OK, "no checksums (an earlier statrepro wrote it); its records parse")
    return JobCheck(key, OK)


def verify_store(root: str | Path, *, repair: bool = False, on_job: Callable[[JobCheck], None] | None = None) -> StoreCheck:
    """Check every job of the store at ``root`` (``on_job`` hears of each as it is checked); with ``repair``,
    hold the store's lock and move the damaged jobs to the quarantine."""
    store = ResultStore(root)
    if not store.root.is_dir():
        raise InputError("no such store directory", path=store.root)
    store.check_format()
    if not repair:
        return StoreCheck(store.root, _check_all(store.root, on_job))
    with store.locked():
        checks = _check_all(store.root, on_job)
        damaged = [check for check in checks if check.status == DAMAGED]
        if not damaged:
            return StoreCheck(store.root, checks)
        return StoreCheck(store.root, checks, _quarantine(store, damaged))


def _check_all(root: Path, on_job: Callable[[JobCheck], None] | None) -> tuple[JobCheck, ...]:
    checks = []
    for directory in job_directories(root):
        check = check_job(root, directory)
        if on_job:
            on_job(check)
        checks.append(check)
    return tuple(checks)


def _quarantine(store: ResultStore, damaged: list[JobCheck]) -> Path:
    """Move the damaged jobs' directories (a rename, on the store's own filesystem) under one new folder."""
    folder = store.root / QUARANTINE / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    while folder.exists():  # two repairs within a second
        folder = folder.with_name(folder.name + "-1")
    store.write_file(folder / "reasons.json", json.dumps([check.to_dict() for check in damaged], indent=2) + "\n")
    for check in damaged:
        target = folder / check.key
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(store.root / check.key, target)
        except OSError as error:
            raise InputError(f"cannot move a damaged job aside ({error.strerror or error})", path=store.root / check.key) from None
    return folder
