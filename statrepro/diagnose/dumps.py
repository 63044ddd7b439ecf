"""The layers dump file of ``statrepro layers dump`` / ``layers diff``: one model's hidden states from one
machine, with what it takes to trust a comparison with a dump made on another machine.

A dump is a safetensors file. Tensor ``"{point}/{prompt index}"`` holds the output of one hooked point (see
layers.py) for one prompt, real tokens only, ``[tokens, ...]``, at the precision the model computed it in
(float32, bfloat16 or float16). Widening those to float64 for the diff is exact, so diffing two dumps gives the
very numbers that comparing the same two runs inside one process gives.

The safetensors metadata (strings only) holds one JSON value per key: ``format`` ("statrepro-layers-dump"),
``format_version``, and every field of DumpInfo: the prompts with their token ids and token texts, the point
order, the model path with the sha256 of its weight files, dtype, attention, quantization, batch mode, the
device with its name and driver, and the torch, CUDA, transformers and statrepro versions with statrepro's
git commit.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import InputError

FORMAT = "statrepro-layers-dump"
FORMAT_VERSION = 1
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")


@dataclass(frozen=True)
class DumpInfo:
    """Everything a dump records besides its tensors."""

    prompts: tuple[str, ...]
    token_ids: tuple[tuple[int, ...], ...]
    token_pieces: tuple[tuple[str, ...], ...]
    points: tuple[tuple[str, int | None], ...]
    model: str
    weights_sha256: str
    """sha256 of the sorted ``"<file sha256>  <file name>"`` lines (sha256sum's format) of the weight files."""
    weight_files: dict[str, str]
    dtype: str
    attention: str
    quantization: str
    batch: str
    device: str
    device_name: str
    driver: str | None
    torch: str | None
    torch_cuda: str | None
    transformers: str | None
    statrepro: str | None
    statrepro_commit: str | None
    format_version: int = FORMAT_VERSION

    def to_metadata(self) -> dict[str, str]:
        """The safetensors metadata: one JSON-encoded string per field, plus the format marker."""
        return {"format": json.dumps(FORMAT), **{name: json.dumps(value) for name, value in asdict(self).items()}}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str] | None, path: Path) -> "DumpInfo":
        """The DumpInfo of a file's metadata; an InputError naming ``path`` when it is no dump this version reads."""
        metadata = metadata or {}
        try:
            values = {key: json.loads(text) for key, text in metadata.items()}
        except ValueError:
            raise InputError("the metadata is not JSON: not a statrepro layers dump, or a damaged one", path=path) from None
        if values.get("format") != FORMAT:
            raise InputError("not a statrepro layers dump (no statrepro metadata); make one with `statrepro layers dump`", path=path)
        if values.get("format_version") != FORMAT_VERSION:
            raise InputError(
                f"dump format version {values.get('format_version')!r} is unknown to this statrepro (it reads version {FORMAT_VERSION})",
                path=path,
            )
        missing = [field.name for field in fields(cls) if field.name not in values]
        if missing:
            raise InputError(f"a damaged dump: the metadata lacks {', '.join(missing)}", path=path)
        values["prompts"] = tuple(values["prompts"])
        values["points"] = tuple((name, layer) for name, layer in values["points"])
        values["token_ids"] = tuple(tuple(ids) for ids in values["token_ids"])
        values["token_pieces"] = tuple(tuple(pieces) for pieces in values["token_pieces"])
        return cls(**{field.name: values[field.name] for field in fields(cls)})

    @property
    def n_tokens(self) -> int:
        return sum(len(ids) for ids in self.token_ids)

    def summary(self) -> str:
        commit = f" (git {self.statrepro_commit[:12]})" if self.statrepro_commit else ""
        driver = f", driver {self.driver}" if self.driver else ""
        return (
            f"{len(self.prompts)} prompts, {self.n_tokens} tokens, {len(self.points)} points; dtype={self.dtype}, "
            f"attn={self.attention}, batch={self.batch}, quant={self.quantization}; weights sha256 {self.weights_sha256[:12]}; "
            f"{self.device} ({self.device_name}{driver}); torch {self.torch}, transformers {self.transformers}, "
            f"statrepro {self.statrepro}{commit}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "n_tokens": self.n_tokens, "summary": self.summary()}


@dataclass(frozen=True)
class LayersDump:
    """Hidden states of one run: point name -> one [tokens, ...] tensor per prompt, in ``info.points`` order."""

    info: DumpInfo
    states: dict[str, tuple[Any, ...]]
    source: str
    """The file it was read from, or what made it (for dumps that never touch a disk)."""

    def summary(self) -> str:
        return f"{self.source}: {self.info.summary()}"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, **self.info.to_dict(), "summary": self.summary()}


def write_dump(dump: LayersDump, path: str | Path) -> None:
    """Write ``dump`` as a safetensors file, atomically (a reader never sees half a dump)."""
    from safetensors.torch import save

    from ..atomic import atomic_write_bytes

    tensors = {f"{name}/{index}": state for name, states in dump.states.items() for index, state in enumerate(states)}
    atomic_write_bytes(path, save(tensors, metadata=dump.info.to_metadata()))


def read_dump(path: str | Path) -> LayersDump:
    """A dump file; an InputError naming the file when it is missing, not a dump, truncated or corrupt."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise InputError("dump file not found", path=path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            info = DumpInfo.from_metadata(handle.metadata(), path)
            states = {
                name: tuple(handle.get_tensor(f"{name}/{index}") for index in range(len(info.prompts))) for name, _ in info.points
            }
    except SafetensorError as error:
        raise InputError(f"not a readable safetensors file (truncated or corrupt?): {str(error).splitlines()[0]}", path=path) from None
    for name, per_prompt in states.items():
        for index, (state, ids) in enumerate(zip(per_prompt, info.token_ids)):
            if state.shape[0] != len(ids):
                raise InputError(f"a damaged dump: {name}/{index} has {state.shape[0]} rows for {len(ids)} tokens", path=path)
    return LayersDump(info=info, states=states, source=str(path))


def check_comparable(a: LayersDump, b: LayersDump, *, allow_different_weights: bool = False) -> None:
    """Refuse (InputError naming B's file, and A's) two dumps whose difference would not be numerics alone:
    other prompts, other token ids, other hooked points, or, unless allowed, other weights."""
    info_a, info_b = a.info, b.info
    if len(info_a.prompts) != len(info_b.prompts):
        raise InputError(f"has {len(info_b.prompts)} prompts, {a.source} has {len(info_a.prompts)}: dump both with the same prompts", path=b.source)
    for index, (prompt_a, prompt_b) in enumerate(zip(info_a.prompts, info_b.prompts)):
        if prompt_a != prompt_b:
            raise InputError(f"prompt {index} is {prompt_b[:40]!r}, in {a.source} it is {prompt_a[:40]!r}: dump both with the same prompts", path=b.source)
    for index, (ids_a, ids_b) in enumerate(zip(info_a.token_ids, info_b.token_ids)):
        if ids_a != ids_b:
            position = next((i for i, (x, y) in enumerate(zip(ids_a, ids_b)) if x != y), min(len(ids_a), len(ids_b)))
            raise InputError(
                f"prompt {index} tokenizes differently from {a.source}: at position {position} it has "
                f"{_token(info_b, index, position)}, {a.source} has {_token(info_a, index, position)} (another tokenizer?)",
                path=b.source,
            )
    if info_a.points != info_b.points:
        only_b = [name for name, layer in info_b.points if (name, layer) not in info_a.points]
        only_a = [name for name, layer in info_a.points if (name, layer) not in info_b.points]
        sides = [f"{len(names)} only {where} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
                 for names, where in ((only_b, "here"), (only_a, "there")) if names]
        raise InputError(
            f"hooks other points than {a.source}: {'; '.join(sides) or 'the same ones in another order'}; "
            "dump both with --submodules or both without (and of one model)",
            path=b.source,
        )
    if info_a.weights_sha256 != info_b.weights_sha256 and not allow_different_weights:
        raise InputError(
            f"weights differ from {a.source}'s (sha256 {info_b.weights_sha256[:12]} vs {info_a.weights_sha256[:12]}); "
            "pass --allow-different-weights to compare different weights on purpose (a quantized or converted copy)",
            path=b.source,
        )


def _token(info: DumpInfo, prompt: int, position: int) -> str:
    if position >= len(info.token_ids[prompt]):
        return "no token (the prompt ends)"
    return f"token {info.token_ids[prompt][position]} {info.token_pieces[prompt][position]!r}"


def weights_sha256(model_path: Path) -> tuple[str, dict[str, str]]:
    """The combined sha256 of a model's weight files (a directory's .safetensors/.bin/.gguf/.pt/.pth files, or
    the one file) and each file's sha256, so one copy of the weights gives the same hash on every machine."""
    import hashlib

    files = [model_path] if model_path.is_file() else sorted(
        path for path in model_path.iterdir() if path.suffix in WEIGHT_SUFFIXES and path.is_file()
    )
    if not files:
        raise InputError(f"no weight file ({', '.join(WEIGHT_SUFFIXES)}) to hash", path=model_path)
    digests = {path.name: _file_sha256(path) for path in files}
    listing = "".join(f"{digest}  {name}\n" for name, digest in sorted(digests.items()))
    return hashlib.sha256(listing.encode("utf-8")).hexdigest(), digests


def _file_sha256(path: Path) -> str:
    """sha256 of a file, remembered in the cache dir by path, size and mtime: weights of large models take
    minutes to read, and every dump needs their hash."""
    from ..atomic import atomic_write_text
    from ..benchmarks.base import sha256_file
    from ..models import cache_dir

    cache = cache_dir() / "weights-sha256.json"
    try:
        known = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    stat = path.stat()
    key = str(path.resolve())
    entry = known.get(key) if isinstance(known, dict) else None
    if isinstance(entry, dict) and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
        return entry["sha256"]
    digest = sha256_file(path)
    known = known if isinstance(known, dict) else {}
    known[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
    try:
        atomic_write_text(cache, json.dumps(known, indent=1) + "\n")
    except OSError:
        pass  # a read-only cache costs time next run, never correctness
    return digest


def run_provenance(device: str) -> dict[str, str | None]:
    """Where a dump is made: the device (a resolve_device result), its name and driver, the library versions
    and statrepro's git commit. Fields that cannot be read here are None."""
    import torch

    from .. import __version__
    from ..machine import detect_hardware, package_versions

    hardware = detect_hardware()
    kind = device.partition(":")[0]
    driver = None
    if kind == "cuda":
        name = torch.cuda.get_device_name(torch.device(device))
        driver = hardware["gpus"][0]["driver"] if hardware["gpus"] else None  # nvidia-smi's; absent on ROCm
    elif kind == "npu":
        name = torch.npu.get_device_name(torch.device(device))
    elif kind == "mps":
        name = f"Apple MPS ({hardware['cpu']})"
    else:
        name = hardware["cpu"]
    return {
        "device": device,
        "device_name": name,
        "driver": driver,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "transformers": package_versions()["transformers"],
        "statrepro": __version__,
        "statrepro_commit": statrepro_commit(),
    }


def statrepro_commit() -> str | None:
    """The git commit of the statrepro source in use; None unless it runs from a git checkout of its own."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        top, commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--show-toplevel", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.split()
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    # An installed statrepro can sit inside some other repository (a venv in a project): that commit is not ours.
    return commit if Path(top).resolve() == root else None
