"""Store integrity (issue 25): checksums in the manifest checked on every read, the store format, and failed
writes (ENOSPC) that leave the previous files intact.

Jobs are written in-process with ``ResultStore.write_done`` (no harness); `store verify` through the CLI is
tests/cli/test_store_verify.py. Full disks are simulated two ways: a real 1 MiB tmpfs filled to ENOSPC
(``tiny_tmpfs``, tests/conftest.py; skipped where `mount` is not permitted, it runs as root here) and, where
the kernel must not be involved, an ``os.fsync`` wrapper that raises ENOSPC (as NFS and delayed allocation do).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import pandas as pd
import pytest

import statrepro.atomic as atomic
from statrepro import __version__
from statrepro.atomic import atomic_write_bytes
from statrepro.envfile import validate_env
from statrepro.errors import InputError
from statrepro.harness.records import make_records
from statrepro.run.integrity import DAMAGED, OK, UNFINISHED, check_job, verify_store
from statrepro.run.plan import Job
from statrepro.run.store import MANIFEST, RECORDS, STORE_FILE, STORE_FORMAT, ResultStore


def make_job(tmp_path: Path, seed: int = 0) -> Job:
    env = validate_env({"name": "side", "model": {"path": str(tmp_path)}, "benchmarks": {"gsm8k": {"limit": 4}}})
    return Job(env, "gsm8k", env.benchmarks["gsm8k"], seed)


def records(seed: int, items: int = 4) -> pd.DataFrame:
    rows = [
        {"benchmark": "gsm8k", "item_key": f"gsm8k/{i}", "metric": "exact_match", "score": float((i + seed) % 2),
         "seed": seed, "run_id": f"seed-{seed}", "prediction": "x" * 40}
        for i in range(items)
    ]
    return make_records(rows)


def finish(store: ResultStore, job: Job, items: int = 4) -> Path:
    """A finished job as execute_job leaves it: harness output and log first, then records and manifest."""
    directory = store.job_dir(job)
    (directory / "harness" / "output").mkdir(parents=True, exist_ok=True)
    (directory / "harness" / "output" / "samples.jsonl").write_text('{"doc_id": 0}\n' * items, encoding="utf-8")
    (directory / "harness.log").write_text("harness ran\n", encoding="utf-8")
    store.write_done(job, records(job.seed, items), {"job": job.key, "seed": job.seed})
    return directory


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_finished_job_records_the_checksum_of_every_file_and_loads_back(tmp_path):
    store = ResultStore(tmp_path / "store")
    job = make_job(tmp_path)
    directory = finish(store, job)
    manifest = json.loads((directory / MANIFEST).read_text())
    assert manifest["store_format"] == STORE_FORMAT
    assert set(manifest["checksums"]) == {RECORDS, "harness.log", "harness/output/samples.jsonl"}
    for name, checksum in manifest["checksums"].items():
        data = (directory / name).read_bytes()
        assert checksum == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    loaded = store.load_records([job])
    assert list(loaded["item_key"]) == [f"gsm8k/{i}" for i in range(4)]
    assert check_job(store.root, directory).status == OK


def test_text_columns_read_back_as_written_and_records_from_before_them_still_load(tmp_path):
    """Texts that look like numbers stay text ("0018" would otherwise come back as 18); a job written before
    output and prompt existed loads beside a new one, its texts missing."""
    store = ResultStore(tmp_path / "store")
    new, old = make_job(tmp_path, 0), make_job(tmp_path, 1)
    texts = records(0).assign(prediction="18", output="0018", prompt="Question: 16 - 3 - 4 = ?\nAnswer:", target="18")
    store.write_done(new, texts, {"job": new.key, "seed": 0})
    store.write_done(old, records(1).drop(columns=["output", "prompt"]), {"job": old.key, "seed": 1})
    assert '"output"' not in (store.job_dir(old) / RECORDS).read_text()
    loaded = store.load_records([new, old]).set_index(["run_id", "item_key"])
    assert loaded.loc[("seed-0", "gsm8k/2"), ["prediction", "output", "prompt", "target"]].tolist() == [
        "18", "0018", "Question: 16 - 3 - 4 = ?\nAnswer:", "18"]
    assert loaded.loc["seed-1", "output"].isna().all() and loaded.loc["seed-1", "prompt"].isna().all()


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # still valid JSON lines: only the checksum can tell
    path.write_bytes(bytes(data))


def _truncate_at_a_line_end(path: Path) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))  # parses fine, one item short: only the checksum can tell


DAMAGE = {
    "corrupt byte": (_flip_one_byte, "changed since it was written"),
    "truncated": (_truncate_at_a_line_end, "truncated to"),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_damaged_records_are_one_line_naming_the_file_on_read(tmp_path, kind):
    store = ResultStore(tmp_path / "store")
    jobs = [make_job(tmp_path, seed) for seed in (0, 1)]
    directories = [finish(store, job) for job in jobs]
    damage_file, reason = DAMAGE[kind]
    damage_file(directories[1] / RECORDS)
    with pytest.raises(InputError) as raised:
        store.load_records(jobs)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{directories[1] / RECORDS}: damaged: {reason}")
    assert f"statrepro store verify {store.root} --repair" in message
    assert len(store.load_records(jobs[:1])) == 4  # the intact job still loads
    check = check_job(store.root, directories[1])
    assert (check.status, check.file) == (DAMAGED, RECORDS) and reason in check.detail


def test_a_damaged_or_deleted_harness_file_is_caught_where_harness_output_is_read(tmp_path):
    store = ResultStore(tmp_path / "store")
    job = make_job(tmp_path)
    directory = finish(store, job)
    samples = directory / "harness" / "output" / "samples.jsonl"
    _flip_one_byte(samples)
    assert len(store.load_records([job])) == 4  # the records are intact: analysis reads only them
    explaining = ResultStore(store.root, check_harness_files=True)  # explain reads the harness output too
    with pytest.raises(InputError, match=rf"^{samples}: damaged: changed since it was written"):
        explaining.load_records([job])
    samples.unlink()
    with pytest.raises(InputError, match=rf"^{samples}: damaged: missing;"):
        explaining.load_records([job])
    assert check_job(store.root, directory).file == "harness/output/samples.jsonl"


def test_a_deleted_records_file_makes_the_job_unfinished_for_runs_and_damaged_for_verify(tmp_path):
    store = ResultStore(tmp_path / "store")
    job = make_job(tmp_path)
    directory = finish(store, job)
    (directory / RECORDS).unlink()
    assert not store.is_done(job)  # the next run redoes it
    assert store.load_records([job]).empty
    check = check_job(store.root, directory)
    assert (check.status, check.file, check.detail) == (DAMAGED, RECORDS, "missing")
    finish(store, job)  # the redo replaces the stale manifest
    assert check_job(store.root, directory).status == OK


def _as_written_before_checksums(directory: Path) -> None:
    manifest = json.loads((directory / MANIFEST).read_text())
    del manifest["checksums"], manifest["store_format"]
    (directory / MANIFEST).write_text(json.dumps(manifest))


def test_a_store_of_an_earlier_statrepro_still_loads_and_resumes(tmp_path):
    store = ResultStore(tmp_path / "store")
    job = make_job(tmp_path)
    directory = finish(store, job)
    _as_written_before_checksums(directory)
    assert store.check_format() == 1  # no store.json: the earlier layout
    assert store.is_done(job) and len(store.load_records([job])) == 4
    check = check_job(store.root, directory)
    assert check.status == OK and "no checksums" in check.detail
    with store.locked():  # a run on it records the format it now has
        pass
    assert json.loads((store.root / STORE_FILE).read_text())["format"] == STORE_FORMAT
    assert store.is_done(job)
    # Without checksums, damage that breaks the JSON lines is still one line naming the file.
    (directory / RECORDS).write_bytes((directory / RECORDS).read_bytes()[:-30])
    with pytest.raises(InputError, match=rf"^{directory / RECORDS}: damaged: not valid JSON lines"):
        store.load_records([job])
    assert check_job(store.root, directory).status == DAMAGED


def test_a_store_or_job_of_a_newer_format_is_refused_naming_the_file_and_both_versions(tmp_path):
    store = ResultStore(tmp_path / "store")
    job = make_job(tmp_path)
    directory = finish(store, job)
    manifest = json.loads((directory / MANIFEST).read_text())
    (directory / MANIFEST).write_text(json.dumps({**manifest, "store_format": STORE_FORMAT + 1}))
    newer = rf"written by a newer statrepro \(store format {STORE_FORMAT + 1}; statrepro {__version__} reads formats up to {STORE_FORMAT}\)"
    with pytest.raises(InputError, match=rf"^{directory / MANIFEST}: {newer}"):
        store.load_records([job])
    with pytest.raises(InputError, match=rf"^{directory / MANIFEST}: {newer}"):
        store.is_done(job)
    (directory / MANIFEST).write_text(json.dumps(manifest))
    (store.root / STORE_FILE).write_text(json.dumps({"format": STORE_FORMAT + 1}))
    before = snapshot(store.root)
    for refused in (lambda: store.locked().__enter__(), lambda: store.load_records([job]), lambda: verify_store(store.root)):
        with pytest.raises(InputError, match=rf"^{store.root / STORE_FILE}: {newer}"):
            refused()
    assert snapshot(store.root) == before  # nothing was written to it


# --------------------------------------------------------------------------- failed writes (ENOSPC)


def _fill(mount_point: Path) -> None:
    with open(mount_point / "filler", "wb", buffering=0) as filler:
        with pytest.raises(OSError) as full:
            while True:
                filler.write(b"\0" * 4096)
        assert full.value.errno == errno.ENOSPC


def test_enospc_on_a_real_full_tmpfs_keeps_every_finished_file(tiny_tmpfs, tmp_path):
    """A real full filesystem: a 1 MiB tmpfs filled to ENOSPC, so the kernel fails the write itself."""
    store = ResultStore(tiny_tmpfs / "store")
    finished = make_job(tmp_path, 0)
    finish(store, finished)
    with store.locked():
        pass
    before = snapshot(store.root)
    _fill(tiny_tmpfs)
    new = make_job(tmp_path, 1)
    with pytest.raises(InputError) as raised:
        store.write_done(new, records(1, items=500), {"job": new.key})
    message = str(raised.value)
    assert "\n" not in message
    assert message == f"{store.job_dir(new) / RECORDS}: cannot write to the store (disk is full); finished results are intact"
    assert snapshot(store.root) == before  # no temp file, nothing half-written
    assert store.is_done(finished) and not store.is_done(new)
    assert len(store.load_records([finished, new])) == 4
    (tiny_tmpfs / "filler").unlink()
    store.write_done(new, records(1, items=500), {"job": new.key})  # space again: the job finishes
    assert store.is_done(new)


def _no_space_on_fsync(fd):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_enospc_on_fsync_removes_the_temp_file_and_keeps_the_old_file(tmp_path, monkeypatch):
    """A write wrapper: ``os.fsync`` raising ENOSPC, the failure a full NFS or delayed-allocation disk reports late."""
    target = tmp_path / "kept.json"
    atomic_write_bytes(target, b"old content\n")
    monkeypatch.setattr(atomic.os, "fsync", _no_space_on_fsync)
    with pytest.raises(OSError) as raised:
        atomic_write_bytes(target, b"new content\n")
    assert raised.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"old content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.json"]


def test_a_failed_rewrite_of_a_finished_job_leaves_it_unfinished_never_damaged(tmp_path, monkeypatch):
    """A write wrapper (os.fsync raising ENOSPC) while a done job is rewritten (a redo after its records went
    missing): the stale manifest is removed first, so the job reads as unfinished and is redone, never read
    with checksums that belong to other records."""
    store = ResultStore(tmp_path / "store")
    job = make_job(tmp_path)
    directory = finish(store, job)
    monkeypatch.setattr(atomic.os, "fsync", _no_space_on_fsync)
    with pytest.raises(InputError, match=rf"^{directory / RECORDS}: cannot write to the store \(disk is full\)"):
        store.write_done(job, records(0, items=6), {"job": job.key})
    assert not store.is_done(job) and check_job(store.root, directory).status == UNFINISHED
    assert [p for p in directory.rglob(".*.tmp")] == []
