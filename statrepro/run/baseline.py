"""Baseline bundles: a reference's finished runs, stored once and gated against later (``statrepro gate``).

A bundle is one file, ``<name>-<first 16 hex of its sha256>.baseline.tgz``: a gzip'd tar, written
deterministically (sorted members, no times, owners or file names in the headers), holding

    baseline.json      the header: format_version, name, statrepro version, seeds, per benchmark its item
                       count, item-set, prompt and data hashes, few-shot, mode, metric and run ids; the template
                       hash, the doctor's factors, the versions, and the sha256 of every other member
    records.jsonl      every per-item record of every seed (the records table, sorted)
    control.jsonl      the A/A control's records (only when saved with a control)
    manifests.json     the run manifests of the reference's jobs (or what the result directories were)

The file's sha256 is the baseline's id; the name carries its first 16 hex digits. Loading verifies the id
against the name, the members against the header, the format version (a newer one is refused) and that every
run the header lists holds records. Nothing here writes over a bundle: saving the same content again is a no-op.
Format versions: docs/user-guide.md, "Baselines and gate".
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..atomic import atomic_write_bytes
from ..errors import InputError
from ..harness.records import READ_DTYPES, RECORD_COLUMNS

# Where bundles are saved and looked up by name when no directory is given.
DEFAULT_BASELINES_DIR = Path("baselines")

FORMAT_VERSION = 1
SUFFIX = ".baseline.tgz"
HEADER = "baseline.json"
RECORDS = "records.jsonl"
CONTROL = "control.jsonl"
MANIFESTS = "manifests.json"
ID_DIGITS = 16
_FILE_NAME = re.compile(rf"^(?P<name>.+)-(?P<digest>[0-9a-f]{{{ID_DIGITS}}}){re.escape(SUFFIX)}$")
_SORT = ["benchmark", "item_key", "run_id"]


@dataclass(frozen=True)
class Baseline:
    """A verified bundle: its header, the reference's records (and the control's), the run manifests."""

    path: Path
    id: str  # the file's sha256
    header: dict
    records: pd.DataFrame
    control: pd.DataFrame | None
    manifests: list

    @property
    def name(self) -> str:
        return self.header["name"]

    @property
    def label(self) -> str:
        """``<name>-<short id>``: the file's stem, unambiguous where several bundles share a name."""
        return f"{self.name}-{self.id[:ID_DIGITS]}"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def records_jsonl(records: pd.DataFrame) -> str:
    """The records table as sorted JSON lines (the same table always gives the same text)."""
    columns = [column for column in RECORD_COLUMNS if column in records.columns]
    ordered = records[columns].sort_values(_SORT, kind="stable").reset_index(drop=True)
    return ordered.to_json(orient="records", lines=True, force_ascii=False)


def _read_records(text: str) -> pd.DataFrame:
    if not text.strip():
        from ..harness.records import make_records

        return make_records([])
    return pd.read_json(io.StringIO(text), lines=True, dtype=READ_DTYPES)


def benchmark_hashes(records: pd.DataFrame) -> dict[str, dict]:
    """Per benchmark: item count, the hash of its item set, of its per-item prompt hashes (None when the harness
    logs none), its metric and its run ids: what a candidate's records must match."""
    described = {}
    for name, part in records.groupby("benchmark", sort=True):
        keys = sorted(set(part["item_key"].astype(str)))
        prompts = part.dropna(subset=["prompt_hash"]).drop_duplicates("item_key").sort_values("item_key")
        prompt_lines = "\n".join(f"{key}\t{value}" for key, value in zip(prompts["item_key"], prompts["prompt_hash"]))
        described[str(name)] = {
            "items": len(keys),
            "item_set_sha256": sha256_text("\n".join(keys)),
            "prompt_sha256": sha256_text(prompt_lines) if len(prompts) else None,
            "metric": sorted(set(part["metric"].astype(str)))[0],
            "runs": sorted(set(part["run_id"].astype(str))),
            "rows": int(len(part)),
        }
    return described


def bundle_file_name(name: str, digest: str) -> str:
    return f"{name}-{digest[:ID_DIGITS]}{SUFFIX}"


def _member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    archive.addfile(info, io.BytesIO(data))


def baselines_directory(directory: str | Path | None) -> Path:
    """A baselines directory; None is the default, ./baselines."""
    return Path(directory) if directory is not None else DEFAULT_BASELINES_DIR


def write_bundle(directory: str | Path | None, header: dict, records: pd.DataFrame, control: pd.DataFrame | None, manifests: list) -> Path:
    """Write a bundle into ``directory`` under its content address; return its path (an existing identical
    bundle is left as it is)."""
    members = {RECORDS: records_jsonl(records), MANIFESTS: json.dumps(manifests, indent=1, sort_keys=True, default=str)}
    if control is not None:
        members[CONTROL] = records_jsonl(control)
    header = {**header, "format_version": FORMAT_VERSION, "control": control is not None,
              "members": {name: sha256_text(text) for name, text in sorted(members.items())}}
    members[HEADER] = json.dumps(header, indent=1, sort_keys=True, default=str)
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name in [HEADER, *sorted(set(members) - {HEADER})]:
            _member(archive, name, members[name].encode("utf-8"))
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", compresslevel=9, mtime=0, filename="") as handle:
        handle.write(tar_bytes.getvalue())
    data = packed.getvalue()
    path = baselines_directory(directory) / bundle_file_name(header["name"], hashlib.sha256(data).hexdigest())
    if not path.exists():
        atomic_write_bytes(path, data)
    return path


def _unpack(path: Path, data: bytes) -> dict[str, bytes]:
    try:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)), mode="r:") as archive:
            return {member.name: archive.extractfile(member).read() for member in archive.getmembers() if member.isfile()}
    except (OSError, EOFError, tarfile.TarError, gzip.BadGzipFile, AttributeError) as error:
        raise InputError(f"not a readable baseline bundle (truncated or damaged: {error})", path=path) from None


def _open(path: Path) -> tuple[str, dict, dict[str, bytes]]:
    """The file's sha256 (checked against its name), its header (format version checked) and its members."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    named = _FILE_NAME.match(path.name)
    if named and not digest.startswith(named["digest"]):
        raise InputError(f"hash mismatch: the file's sha256 begins {digest[:ID_DIGITS]}, its name says {named['digest']} "
                         "(the bundle was changed or truncated after it was saved)", path=path)
    members = _unpack(path, data)
    if HEADER not in members:
        raise InputError(f"not a baseline bundle: no {HEADER}", path=path)
    try:
        header = json.loads(members[HEADER])
    except ValueError:
        raise InputError(f"{HEADER} is not valid JSON", path=path) from None
    version = header.get("format_version") if isinstance(header, dict) else None
    if not isinstance(version, int):
        raise InputError("not a baseline bundle: no format_version", path=path, key="format_version")
    if version > FORMAT_VERSION:
        raise InputError(f"bundle format {version} is newer than this statrepro reads ({FORMAT_VERSION}); "
                         "upgrade statrepro", path=path, key="format_version")
    for key in ("name", "benchmarks", "members"):
        if key not in header:
            raise InputError(f"not a baseline bundle: its header lacks {key}", path=path, key=key)
    if RECORDS not in header["members"]:
        raise InputError(f"not a baseline bundle: no {RECORDS}", path=path, key="members")
    return digest, header, members


def load_bundle(path: str | Path) -> Baseline:
    """Read and verify the bundle at ``path``: id, format version, every member's hash, every listed run."""
    path = Path(path)
    digest, header, members = _open(path)
    for name, expected in (header.get("members") or {}).items():
        if name not in members:
            raise InputError(f"member {name} is missing", path=path, key="members")
        if hashlib.sha256(members[name]).hexdigest() != expected:
            raise InputError(f"hash mismatch: member {name} was changed after the bundle was saved", path=path, key="members")
    records = _read_records(members[RECORDS].decode("utf-8"))
    control = _read_records(members[CONTROL].decode("utf-8")) if CONTROL in members else None
    _check_runs(path, header, records)
    return Baseline(path, digest, header, records, control, json.loads(members[MANIFESTS]))


def _check_runs(path: Path, header: dict, records: pd.DataFrame) -> None:
    """Every run the header lists, and every seed it names but those skipped as a deterministic side's repeats,
    holds records of its benchmark: a bundle never stands for seeds it lacks."""
    for name, described in header["benchmarks"].items():
        expected = set(described["runs"])
        if header.get("seeds") is not None:
            skipped = set(described.get("skipped_seeds") or [])
            expected |= {f"seed-{seed}" for seed in header["seeds"] if seed not in skipped}
        present = set(records.loc[records["benchmark"] == name, "run_id"].astype(str))
        missing = sorted(expected - present)
        if missing:
            raise InputError(f"benchmark {name!r} lacks the records of {len(missing)} of its {len(expected)} runs "
                             f"({', '.join(missing)}): missing seeds", path=path, key=f"benchmarks.{name}.runs")


def bundles_in(directory: str | Path | None) -> list[Path]:
    """The bundle files of a baselines directory, by name."""
    directory = baselines_directory(directory)
    return sorted(directory.glob(f"*{SUFFIX}")) if directory.is_dir() else []


def find_bundle(reference: str | Path, directory: str | Path | None) -> Path:
    """A bundle by path, by its label (``<name>-<short id>``), by id prefix or by name (one bundle of that name)."""
    from ..errors import did_you_mean

    path = Path(reference)
    if path.is_file():
        return path
    text = str(reference)
    bundles = bundles_in(directory)
    parsed = {bundle: _FILE_NAME.match(bundle.name) for bundle in bundles}
    matches = [bundle for bundle, named in parsed.items() if named and (
        bundle.name == text or bundle.name == text + SUFFIX or named["name"] == text
        or (len(text) >= 8 and named["digest"].startswith(text)))]
    if len(matches) == 1:
        return matches[0]
    if matches:
        labels = ", ".join(bundle.name[: -len(SUFFIX)] for bundle in matches)
        raise InputError(f"{len(matches)} baselines are named {text!r}: {labels}; name one by its label", key="--baseline")
    known = sorted({named["name"] for named in parsed.values() if named})
    raise InputError(f"no baseline {text!r} in {baselines_directory(directory)}{did_you_mean(text, known)}", key="--baseline")
