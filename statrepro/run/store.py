"""The result store: every per-item record of every finished job, resumable and safe to kill.

Layout (all names are validated or hashed, so nothing escapes the root)::

    <root>/.lock                                  one `run` at a time
    <root>/<env>-<fingerprint>/env.json           the environment, secrets redacted
    <root>/<env>-<fingerprint>/<benchmark>-<spec>/seed-<n>/
    <root>/designs/<comparison>.json              a sequential comparison's pre-registered design
        records.jsonl                             normalised per-item records (written first)
        manifest.json                             status done|failed, versions, hashes, timings (written last)
        harness/                                  the harness's own output, kept for provenance
        harness.log                               the harness's stdout and stderr

A job is finished when its manifest says ``done``; both files are written atomically, so a kill at any
point leaves either a finished job or none.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd

from ..errors import InputError
from ..harness.records import RECORD_COLUMNS, make_records
from ..atomic import atomic_write_text
from .plan import Job

MANIFEST = "manifest.json"
RECORDS = "records.jsonl"


class ResultStore:
    """A directory of finished and failed jobs."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def job_dir(self, job: Job) -> Path:
        path = (self.root / job.key).resolve()
        if self.root not in path.parents:
            raise InputError(f"job path {job.key!r} escapes the store", path=self.root)
        return path

    def manifest(self, job: Job) -> dict | None:
        path = self.job_dir(job) / MANIFEST
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # never written by us half-way; treat as not finished and redo

    def is_done(self, job: Job) -> bool:
        manifest = self.manifest(job)
        return bool(manifest and manifest.get("status") == "done" and (self.job_dir(job) / RECORDS).is_file())

    def scratch_dir(self, job: Job) -> Path:
        """A fresh directory for the harness output of a new attempt (leftovers of a killed one are removed)."""
        scratch = self.job_dir(job) / "harness"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True, exist_ok=True)
        return scratch

    def write_env(self, job: Job) -> None:
        env_file = self.job_dir(job).parents[1] / "env.json"
        if not env_file.exists():
            self._write(env_file, json.dumps(job.env.public_dict(), indent=2, sort_keys=True))

    def write_done(self, job: Job, records: pd.DataFrame, manifest: dict) -> None:
        directory = self.job_dir(job)
        self._write(directory / RECORDS, records.to_json(orient="records", lines=True, force_ascii=False))
        self._write(directory / MANIFEST, json.dumps({**manifest, "status": "done"}, indent=2, sort_keys=True, default=str))

    def write_failed(self, job: Job, manifest: dict) -> None:
        directory = self.job_dir(job)
        (directory / RECORDS).unlink(missing_ok=True)
        self._write(directory / MANIFEST, json.dumps({**manifest, "status": "failed"}, indent=2, sort_keys=True, default=str))

    def _write(self, path: Path, text: str) -> None:
        try:
            atomic_write_text(path, text)
        except OSError as error:
            reason = "disk is full" if error.errno == errno.ENOSPC else (error.strerror or str(error))
            raise InputError(f"cannot write to the store ({reason}); finished results are intact", path=path) from None

    def register_design(self, comparison: str, design: dict) -> None:
        """Pre-register a sequential comparison's design (its budget above all) the first time it runs, and
        refuse a different one later: raising the budget after an inconclusive result inflates false passes."""
        registered = self.registered_design(comparison)
        if registered is not None:
            changed = sorted(key for key in set(registered) | set(design) if registered.get(key) != design.get(key))
            if changed:
                key = changed[0]
                raise InputError(
                    f"this comparison was pre-registered with {key}={registered.get(key)!r}, not {design.get(key)!r}: "
                    "changing a sequential design after seeing results voids its error rates; "
                    "use a new --store to start a new comparison",
                    path=self._design_path(comparison),
                    key=key,
                )
            return
        self._write(self._design_path(comparison), json.dumps(design, indent=2, sort_keys=True))

    def _design_path(self, comparison: str) -> Path:
        return self.root / "designs" / f"{comparison}.json"

    def registered_design(self, comparison: str) -> dict | None:
        """The design ``register_design`` recorded for ``comparison``, None when it never ran sequentially."""
        path = self._design_path(comparison)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError("unreadable pre-registered design", path=path) from None

    def load_records(self, jobs: list[Job]) -> pd.DataFrame:
        """The records of the finished jobs among ``jobs``."""
        frames = []
        for job in jobs:
            if not self.is_done(job):
                continue
            path = self.job_dir(job) / RECORDS
            frame = pd.read_json(path, lines=True, dtype={"item_key": str, "run_id": str, "subset": str})
            if len(frame):
                frames.append(frame)
        if not frames:
            return make_records([])
        combined = pd.concat(frames, ignore_index=True)
        return combined[[column for column in RECORD_COLUMNS if column in combined.columns]]

    def _remove_stale_temp_files(self) -> None:
        """A SIGKILL between an atomic write's temp file and its rename leaves ``.<name>.<random>.tmp``;
        with the lock held nobody else is writing, so any such file is debris of a killed run."""
        for temp in self.root.rglob(".*.tmp"):
            temp.unlink(missing_ok=True)

    @contextmanager
    def locked(self, *, wait: bool = False) -> Iterator[None]:
        """Hold the store's lock: a second `run` on the same store waits (``wait``) or refuses clearly."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = open(self.root / ".lock", "a+")
        except OSError as error:
            raise InputError(f"cannot open the store: {error.strerror or error}", path=self.root) from None
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise InputError(
                    f"the store is in use by another statrepro run ({holder}); wait for it or pass --wait",
                    path=self.root,
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}")
            handle.flush()
            self._remove_stale_temp_files()
            yield
        finally:
            handle.close()
