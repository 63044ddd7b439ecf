"""The result store: every per-item record of every finished job, resumable and safe to kill.

Layout (all names are validated or hashed, so nothing escapes the root)::

    <root>/.lock                                  one `run` at a time
    <root>/store.json                             the store format (refused when newer than this statrepro's)
    <root>/quarantine/<time>/                     damaged jobs `statrepro store verify --repair` moved aside
    <root>/<env>-<fingerprint>/env.json           the environment, secrets redacted
    <root>/<env>-<fingerprint>/<benchmark>-<spec>/seed-<n>/
    <root>/designs/<comparison>.json              a sequential comparison's pre-registered design
        records.jsonl                             normalised per-item records (written first)
        manifest.json                             status done|failed, versions, hashes, timings, the store
                                                  format and the sha256 of every file above (written last)
        harness/                                  the harness's own output, kept for provenance
        harness.log                               the harness's stdout and stderr

A job is finished when its manifest says ``done``; both files are written atomically, so a kill at any
point leaves either a finished job or none. Every read of a finished job's records checks them against the
manifest's checksum, so a file damaged afterwards (a bad disk, a stray edit, a truncating copy) is one error
naming it, never a wrong verdict.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd

from .. import __version__
from ..errors import InputError
from ..harness.records import READ_DTYPES, concat_records
from ..atomic import atomic_write_text
from .plan import Job

MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
HARNESS_DIR = "harness"
HARNESS_LOG = "harness.log"
STORE_FILE = "store.json"
QUARANTINE = "quarantine"
STORE_FORMAT = 2
"""1: no store.json, no checksums (statrepro before it had them); 2: the sha256 and size of every file of a
finished job in its manifest. A store or a job of a higher format is refused: its layout may mean other things."""


def file_checksum(path: Path) -> dict:
    """sha256 and size of a file, read in chunks (harness outputs can be large)."""
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
    return {"sha256": digest.hexdigest(), "bytes": path.stat().st_size}


def damage(path: Path, expected: dict) -> str | None:
    """Why the file at ``path`` is not what its checksum ``expected`` recorded; None when it is."""
    try:
        size = path.stat().st_size
        if size < expected.get("bytes", 0):
            return f"truncated to {size} of its {expected['bytes']} bytes"
        if size == expected.get("bytes") and file_checksum(path)["sha256"] == expected.get("sha256"):
            return None
    except FileNotFoundError:
        return "missing"
    except OSError as error:
        return f"unreadable ({error.strerror or error})"
    return "changed since it was written (its sha256 differs from the manifest's)"


def _newer_format(found: object) -> bool:
    return isinstance(found, int) and found > STORE_FORMAT


def _newer_format_error(path: Path, found: int) -> InputError:
    return InputError(
        f"written by a newer statrepro (store format {found}; statrepro {__version__} reads formats up to "
        f"{STORE_FORMAT}): upgrade statrepro or use another --store",
        path=path,
    )


def read_manifest(path: Path) -> dict | None:
    """A job's manifest; None when there is none (or it is not one: never half-written by us, so the job is
    unfinished and redone). A manifest of a newer store format is refused."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(manifest, dict):
        return None
    if _newer_format(manifest.get("store_format")):
        raise _newer_format_error(path, manifest["store_format"])
    return manifest


def harness_checksums(directory: Path) -> dict[str, dict]:
    """The checksum of the harness's log and of every file of its output in a job directory, by relative path."""
    files = [directory / HARNESS_LOG, *sorted((directory / HARNESS_DIR).rglob("*"))]
    return {str(path.relative_to(directory)): file_checksum(path) for path in files if path.is_file()}


def job_damage(directory: Path, manifest: dict, *, only=lambda name: True) -> tuple[Path, str] | None:
    """The first damaged file of a finished job (among the names ``only`` accepts) and why; None when all
    match their checksums. A job of a statrepro before checksums has none: its records must at least parse."""
    checksums = manifest.get("checksums")
    if not isinstance(checksums, dict):
        return _unparseable_records(directory / RECORDS) if only(RECORDS) else None
    for name, expected in sorted(checksums.items()):
        if only(name) and isinstance(expected, dict):
            why = damage(directory / name, expected)
            if why:
                return directory / name, why
    return None


def _unparseable_records(path: Path) -> tuple[Path, str] | None:
    try:
        _parse_records(path)
    except FileNotFoundError:
        return path, "missing"
    except ValueError:
        return path, "not valid JSON lines (truncated or corrupt)"
    return None


def _parse_records(path: Path) -> pd.DataFrame:
    """ValueError (UnicodeDecodeError included) when the file is not JSON lines."""
    return pd.read_json(path, lines=True, dtype=READ_DTYPES)


def damaged_error(root: Path, path: Path, why: str) -> InputError:
    return InputError(
        f"damaged: {why}; `statrepro store verify {root} --repair` sets the damaged runs aside so that the next "
        "run redoes them",
        path=path,
    )


class ResultStore:
    """A directory of finished and failed jobs. ``check_harness_files``: loading records also checks the
    harness output kept beside them (for readers of that output, such as ``explain``)."""

    def __init__(self, root: str | Path, *, check_harness_files: bool = False) -> None:
        self.root = Path(root).expanduser().resolve()
        self.check_harness_files = check_harness_files

    def job_dir(self, job: Job) -> Path:
        path = (self.root / job.key).resolve()
        if self.root not in path.parents:
            raise InputError(f"job path {job.key!r} escapes the store", path=self.root)
        return path

    def manifest(self, job: Job) -> dict | None:
        return read_manifest(self.job_dir(job) / MANIFEST)

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
            self.write_file(env_file, json.dumps(job.env.public_dict(), indent=2, sort_keys=True))

    def write_done(self, job: Job, records: pd.DataFrame, manifest: dict) -> None:
        """Records first, the manifest (with every file's checksum) last. A stale ``done`` manifest goes first:
        should a write below fail (a full disk), the job reads as unfinished, not as damaged."""
        directory = self.job_dir(job)
        if (self.manifest(job) or {}).get("status") == "done":
            (directory / MANIFEST).unlink()
        self.write_file(directory / RECORDS, records.to_json(orient="records", lines=True, force_ascii=False))
        checksums = {RECORDS: file_checksum(directory / RECORDS), **harness_checksums(directory)}
        self._write_manifest(directory, {**manifest, "status": "done", "checksums": checksums})

    def write_failed(self, job: Job, manifest: dict) -> None:
        directory = self.job_dir(job)
        (directory / RECORDS).unlink(missing_ok=True)
        self._write_manifest(directory, {**manifest, "status": "failed"})

    def _write_manifest(self, directory: Path, manifest: dict) -> None:
        manifest = {**manifest, "store_format": STORE_FORMAT}
        self.write_file(directory / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, default=str))

    def write_file(self, path: Path, text: str) -> None:
        """Write a file of the store atomically: a failure (a full disk) leaves the old file, removes the temp
        file and is one line naming the path."""
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
        self.write_file(self._design_path(comparison), json.dumps(design, indent=2, sort_keys=True))

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
        """The records of the finished jobs among ``jobs``, each file checked against its manifest's checksum
        (and, with ``check_harness_files``, the harness output the records point to as well)."""
        self.check_format()
        frames = []
        for job in jobs:
            if not self.is_done(job):
                continue
            directory = self.job_dir(job)
            manifest = self.manifest(job) or {}
            frame = self._read_records(directory, manifest)
            if self.check_harness_files:
                found = job_damage(directory, manifest, only=lambda name: name.startswith(f"{HARNESS_DIR}/"))
                if found:
                    raise damaged_error(self.root, *found)
            frames.append(frame)
        return concat_records(frames)

    def _read_records(self, directory: Path, manifest: dict) -> pd.DataFrame:
        path = directory / RECORDS
        checksums = manifest.get("checksums")
        expected = checksums.get(RECORDS) if isinstance(checksums, dict) else None
        why = damage(path, expected) if isinstance(expected, dict) else None
        if why:
            raise damaged_error(self.root, path, why)
        try:
            return _parse_records(path)
        except FileNotFoundError:
            raise damaged_error(self.root, path, "missing") from None
        except ValueError:
            raise damaged_error(self.root, path, "not valid JSON lines (truncated or corrupt)") from None

    def check_format(self) -> int:
        """The store's format (1 for a store of a statrepro before store.json); refuse a newer one."""
        path = self.root / STORE_FILE
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, NotADirectoryError):  # no store yet, or not a directory: said where it is opened
            return 1
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError("unreadable store description (not JSON)", path=path) from None
        form = found.get("format") if isinstance(found, dict) else None
        if not isinstance(form, int) or form < 1:
            raise InputError("no store format in the store description", path=path, key="format")
        if _newer_format(form):
            raise _newer_format_error(path, form)
        return form

    def _remove_stale_temp_files(self) -> None:
        """A SIGKILL between an atomic write's temp file and its rename leaves ``.<name>.<random>.tmp``;
        with the lock held nobody else is writing, so any such file is debris of a killed run."""
        for temp in self.root.rglob(".*.tmp"):
            temp.unlink(missing_ok=True)

    @contextmanager
    def locked(self, *, wait: bool = False) -> Iterator[None]:
        """Hold the store's lock: a second `run` on the same store waits (``wait``) or refuses clearly. A store
        of a newer format is refused before anything is written to it."""
        self.check_format()
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
            if self.check_format() < STORE_FORMAT:
                description = {"format": STORE_FORMAT, "written_by": f"statrepro {__version__}"}
                self.write_file(self.root / STORE_FILE, json.dumps(description) + "\n")
            try:
                handle.seek(0)
                handle.truncate()
                handle.write(f"pid {os.getpid()}")
                handle.flush()
            except OSError as error:
                raise InputError(f"cannot write to the store ({error.strerror or error})", path=self.root / ".lock") from None
            self._remove_stale_temp_files()
            yield
        finally:
            handle.close()
