"""The baseline bundle format (statrepro.run.baseline): content addressing, verification on load, the refusals
(tampered, truncated, newer format, missing seeds), lookup by name, and the committed format-1 fixture that every
later version must still read."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from statrepro.errors import InputError
from statrepro.harness.records import make_records
from statrepro.run.baseline import (
    FORMAT_VERSION, HEADER, RECORDS, benchmark_hashes, bundle_file_name, find_bundle, load_bundle, write_bundle,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "baselines"


def _records(seeds=(0, 1), items=5) -> "object":
    rows = [
        {"benchmark": "gsm8k", "subset": "gsm8k", "item_key": f"gsm8k/{item}", "run_id": f"seed-{seed}", "seed": seed,
         "metric": "exact_match", "score": float((item + seed) % 2), "prompt_hash": f"p{item}", "doc_hash": f"d{item}",
         "model": "stub-model", "source": "baseline test"}
        for seed in seeds for item in range(items)
    ]
    return make_records(rows)


def _header(records, seeds=(0, 1)) -> dict:
    benchmarks = {name: {**described, "skipped_seeds": []} for name, described in benchmark_hashes(records).items()}
    return {"name": "ref", "seeds": list(seeds), "benchmarks": benchmarks, "statrepro_version": "0.1.0"}


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(path.read_bytes()))) as archive:
        return {member.name: archive.extractfile(member).read() for member in archive.getmembers()}


def _repack(directory: Path, members: dict[str, bytes], name: str = "ref") -> Path:
    """A bundle file of ``members`` as they are, named by its true sha256 (so only the members' own checks can fail)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    data = gzip.compress(raw.getvalue())
    path = directory / bundle_file_name(name, hashlib.sha256(data).hexdigest())
    path.write_bytes(data)
    return path


def test_a_bundle_is_named_by_its_sha256_and_reads_back_what_was_saved(tmp_path: Path) -> None:
    records = _records()
    path = write_bundle(tmp_path, _header(records), records, records.assign(source="control"), [{"job": "x"}])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert path.name == f"ref-{digest[:16]}.baseline.tgz"
    loaded = load_bundle(path)
    assert loaded.id == digest and loaded.label == f"ref-{digest[:16]}"
    assert loaded.header["format_version"] == FORMAT_VERSION and loaded.header["control"] is True
    assert sorted(zip(loaded.records["item_key"], loaded.records["run_id"], loaded.records["score"])) == sorted(
        zip(records["item_key"], records["run_id"], records["score"]))
    assert loaded.manifests == [{"job": "x"}] and len(loaded.control) == len(records)
    # Deterministic: the same content (rows in another order) is the same file, which is never rewritten.
    mtime = path.stat().st_mtime_ns
    again = write_bundle(tmp_path, _header(records), records.iloc[::-1], records.assign(source="control"), [{"job": "x"}])
    assert again == path and path.stat().st_mtime_ns == mtime


def test_a_changed_byte_or_a_truncated_file_is_refused(tmp_path: Path) -> None:
    records = _records()
    path = write_bundle(tmp_path, _header(records), records, None, [])
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(InputError, match="hash mismatch: the file's sha256 begins"):
        load_bundle(path)
    truncated = tmp_path / "renamed.baseline.tgz"  # no hash in the name: the archive itself must fail
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or damaged"):
        load_bundle(truncated)


def test_a_member_changed_after_saving_is_refused(tmp_path: Path) -> None:
    records = _records()
    members = _members(write_bundle(tmp_path / "saved", _header(records), records, None, []))
    members[RECORDS] = members[RECORDS].replace(b'"score":1.0', b'"score":0.0', 1)
    with pytest.raises(InputError, match=f"hash mismatch: member {RECORDS} was changed"):
        load_bundle(_repack(tmp_path, members))


def test_a_bundle_of_a_newer_format_is_refused(tmp_path: Path) -> None:
    records = _records()
    members = _members(write_bundle(tmp_path / "saved", _header(records), records, None, []))
    header = json.loads(members[HEADER])
    members[HEADER] = json.dumps({**header, "format_version": FORMAT_VERSION + 1}).encode()
    with pytest.raises(InputError, match=f"bundle format {FORMAT_VERSION + 1} is newer than this statrepro reads"):
        load_bundle(_repack(tmp_path, members))


@pytest.mark.parametrize("header_seeds", [(0, 1, 2), None])
def test_a_bundle_with_missing_seeds_is_refused(tmp_path: Path, header_seeds) -> None:
    """The header promises seeds (or runs) whose records the bundle lacks."""
    records = _records(seeds=(0, 1))
    header = _header(records, seeds=header_seeds or (0, 1))
    if header_seeds is None:
        header["benchmarks"]["gsm8k"]["runs"].append("seed-7")
    path = write_bundle(tmp_path, header, records, None, [])
    with pytest.raises(InputError, match=r"benchmark 'gsm8k' lacks the records of 1 of its 3 runs \(seed-\d\): missing seeds"):
        load_bundle(path)


def test_a_deterministic_sides_skipped_seed_is_not_missing(tmp_path: Path) -> None:
    records = _records(seeds=(0, 1))
    header = _header(records, seeds=(0, 1, 2))
    header["benchmarks"]["gsm8k"]["skipped_seeds"] = [2]
    assert load_bundle(write_bundle(tmp_path, header, records, None, [])).header["seeds"] == [0, 1, 2]


def test_bundles_are_found_by_path_label_id_prefix_or_name_and_an_unknown_name_gets_a_suggestion(tmp_path: Path) -> None:
    records = _records()
    first = write_bundle(tmp_path, _header(records), records, None, [])
    assert find_bundle("ref", tmp_path) == first == find_bundle(first.name.removesuffix(".baseline.tgz"), tmp_path)
    assert find_bundle(first.name.split("-")[1][:8], tmp_path) == first == find_bundle(str(first), tmp_path / "elsewhere")
    with pytest.raises(InputError, match="no baseline 'rfe'.*did you mean 'ref'"):
        find_bundle("rfe", tmp_path)
    second = write_bundle(tmp_path, _header(records.assign(score=1.0)), records.assign(score=1.0), None, [])
    with pytest.raises(InputError, match="2 baselines are named 'ref'"):
        find_bundle("ref", tmp_path)
    assert find_bundle(second.name, tmp_path) == second


def test_the_committed_format_1_bundle_still_reads() -> None:
    """A bundle saved by statrepro 0.1.0 (format 1, from the stub harness: tests/fixtures/baselines/README.md).
    Later versions must keep reading it: change the reader, never this file."""
    (path,) = sorted(FIXTURES.glob("*.baseline.tgz"))
    baseline = load_bundle(path)
    assert baseline.header["format_version"] == 1 and baseline.header["statrepro_version"] == "0.1.0"
    assert baseline.label == path.name.removesuffix(".baseline.tgz")
    described = baseline.header["benchmarks"]["gsm8k"]
    assert (described["items"], described["runs"], described["metric"]) == (6, ["seed-0", "seed-1"], "exact_match")
    assert len(baseline.records) == 12 and baseline.control is not None and len(baseline.control) == 12
    assert baseline.header["template"] == {"apply_chat_template": True, "system_instruction": None}
