"""Managed local OpenAI-compatible servers (llama.cpp, ``transformers serve``) and the env -> endpoint mapping.

Each server is a context manager that starts on a free 127.0.0.1 port, waits until it answers, yields a
ServerInfo, and stops the process group however the body ends (return, exception, Ctrl-C).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from ..errors import InputError
from ..models import embedded_gguf_path, materialize_embedded_model
from .client import OpenAIClient, RequestFailure, RetryPolicy
from .errors import EngineError
from .process import LOOPBACK, managed_server

if TYPE_CHECKING:
    from ..config import EnvConfig

LLAMA_CPP_DEFAULT_REPEAT_PENALTY = 1.1
# The sampling knobs whose server-side defaults decide what a harness that omits them gets.
REPORTED_DEFAULTS = ("repeat_penalty", "top_k", "top_p", "min_p", "temperature")
# Neither server documents a per-request seed scope beyond one process: concurrent sampled requests
# share one RNG, so sampled runs must send requests one at a time.
SEED_NOTE_SHARED_RNG = "seed reseeds the server's global RNG per request; send sampled requests one at a time"


@dataclass(frozen=True)
class ServerInfo:
    """Where an engine answers and what it does with generation settings; goes into the run manifest."""

    kind: str
    base_url: str
    served_model: str
    model_path: str | None = None
    log_path: str | None = None
    pid: int | None = None
    command: tuple[str, ...] = ()
    supports_request_seed: bool | None = None
    seed_note: str = ""
    effective_defaults: dict[str, Any] = field(default_factory=dict)
    """Server-side defaults a request gets for fields it omits (read back from the running server)."""

    def summary(self) -> str:
        seed = {True: "per-request seed honoured", False: "per-request seed ignored", None: "seed support unknown"}
        defaults = ", ".join(f"{key}={value}" for key, value in self.effective_defaults.items())
        return f"{self.kind} at {self.base_url} serving {self.served_model!r}; {seed[self.supports_request_seed]}" + (
            f"; defaults: {defaults}" if defaults else ""
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _base_url(port: int) -> str:
    return f"http://{LOOPBACK}:{port}/v1"


def _warm_up(base_url: str, served_model: str, timeout: float) -> None:
    """One 1-token greedy request so lazy initialisation is not charged to the first real item."""
    body = {"model": served_model, "prompt": "Hello", "max_tokens": 1, "temperature": 0.0}
    try:
        response = httpx.post(f"{base_url}/completions", json=body, timeout=timeout)
    except httpx.HTTPError as error:
        raise EngineError(f"warm-up request to {base_url} failed: {type(error).__name__}: {error}") from None
    if response.status_code != 200:
        raise EngineError(f"warm-up request to {base_url} answered HTTP {response.status_code}: {response.text[:300]}")


def _openapi_defaults(base_url: str, schema_name: str) -> dict[str, Any]:
    """Defaults of ``schema_name`` as the running FastAPI server publishes them ({} if unavailable)."""
    root = base_url.removesuffix("/v1")
    try:
        schemas = httpx.get(f"{root}/openapi.json", timeout=10).json()["components"]["schemas"]
        properties = schemas[schema_name]["properties"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return {}
    return {name: properties[name]["default"] for name in REPORTED_DEFAULTS if "default" in properties.get(name, {})}


@contextmanager
def llama_cpp_server(
    model_path: str | Path | None = None,
    *,
    work_dir: str | Path,
    n_ctx: int = 4096,
    seed: int = 0,
    repeat_penalty: float | None = None,
    n_threads: int | None = None,
    served_model: str | None = None,
    extra_args: Sequence[str] = (),
    startup_timeout: float = 120.0,
) -> Iterator[ServerInfo]:
    """Serve a GGUF with llama-cpp-python (default: the embedded SmolLM2 GGUF).

    ``repeat_penalty`` becomes the server-side default of every request that omits it (llama.cpp's own
    default is 1.1); ``seed`` is the server's start seed, requests override it with their own ``seed``.
    """
    gguf = Path(model_path) if model_path is not None else embedded_gguf_path()
    if not gguf.is_file() or gguf.suffix != ".gguf":
        raise InputError("llama-cpp needs a .gguf model file", path=gguf, key="model.path")
    alias = served_model or gguf.stem
    work_dir = Path(work_dir)
    launcher = [sys.executable, "-m", "statrepro.engines.llama_server"]
    if repeat_penalty is not None:
        launcher += ["--default_repeat_penalty", str(repeat_penalty)]

    def command(port: int) -> list[str]:
        args = [*launcher, "--model", str(gguf), "--model_alias", alias, "--host", LOOPBACK, "--port", str(port)]
        args += ["--n_ctx", str(n_ctx), "--seed", str(seed)]
        if n_threads is not None:
            args += ["--n_threads", str(n_threads)]
        return args + list(extra_args)

    log_path = work_dir / "llama-cpp-server.log"
    with managed_server(command, name="llama.cpp server", log_path=log_path, startup_timeout=startup_timeout) as (
        port,
        process,
    ):
        base_url = _base_url(port)
        defaults = _openapi_defaults(base_url, "CreateCompletionRequest")
        defaults.setdefault("repeat_penalty", repeat_penalty if repeat_penalty is not None else LLAMA_CPP_DEFAULT_REPEAT_PENALTY)
        yield ServerInfo(
            kind="llama-cpp",
            base_url=base_url,
            served_model=alias,
            model_path=str(gguf),
            log_path=str(log_path),
            pid=process.pid,
            command=tuple(command(port)),
            supports_request_seed=True,
            seed_note=SEED_NOTE_SHARED_RNG,
            effective_defaults=defaults,
        )


def _generation_overlay(model_dir: Path, target: Path, repeat_penalty: float | None) -> Path:
    """A view of ``model_dir`` (symlinks) whose generation_config.json makes sampling follow the request.

    ``transformers serve`` only samples when the model's generation config says ``do_sample``; it turns
    sampling off itself for temperature 0. Its requests reject unknown fields, so a repetition penalty
    can only be set here. top_k is disabled to match OpenAI sampling semantics (temperature/top_p only).
    """
    if target.exists():
        shutil.rmtree(target)  # a previous run may have served another model from this work dir
    target.mkdir(parents=True)
    for source in model_dir.iterdir():
        if source.name != "generation_config.json":
            (target / source.name).symlink_to(source.resolve())
    config_path = model_dir / "generation_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    config.update(do_sample=True, top_k=0)
    if repeat_penalty is not None:
        config["repetition_penalty"] = repeat_penalty
    (target / "generation_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return target


@contextmanager
def transformers_server(
    model_dir: str | Path | None = None,
    *,
    work_dir: str | Path,
    dtype: str = "float32",
    seed: int = 0,
    repeat_penalty: float | None = None,
    device: str = "auto",
    extra_args: Sequence[str] = (),
    startup_timeout: float = 300.0,
) -> Iterator[ServerInfo]:
    """Serve a local HF model dir with ``transformers serve`` (default: the embedded SmolLM2), offline.

    The model is preloaded (positional FORCE_MODEL), so the served model name is the served directory's
    path. One warm-up request runs before the server is handed out.
    """
    source = Path(model_dir) if model_dir is not None else materialize_embedded_model()
    if not (source / "config.json").is_file():
        raise InputError("transformers-serve needs a local HF model directory (with config.json)", path=source, key="model.path")
    work_dir = Path(work_dir)
    served = _generation_overlay(source, work_dir / "served-model", repeat_penalty)
    # /v1/models lists the hub cache and fails when it does not exist: give it an empty one of its own.
    hub_cache = work_dir / "hf-hub-cache"
    hub_cache.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_CACHE": str(hub_cache)}

    def command(port: int) -> list[str]:
        args = [sys.executable, "-m", "transformers.cli.transformers", "serve", str(served)]
        args += ["--host", LOOPBACK, "--port", str(port), "--dtype", dtype, "--device", device]
        args += ["--default-seed", str(seed), "--log-level", "info"]
        return args + list(extra_args)

    log_path = work_dir / "transformers-serve.log"
    with managed_server(
        command, name="transformers serve", log_path=log_path, startup_timeout=startup_timeout, env=env
    ) as (port, process):
        base_url = _base_url(port)
        _warm_up(base_url, str(served), timeout=startup_timeout)
        yield ServerInfo(
            kind="transformers-serve",
            base_url=base_url,
            served_model=str(served),
            model_path=str(source),
            log_path=str(log_path),
            pid=process.pid,
            command=tuple(command(port)),
            supports_request_seed=True,
            seed_note=SEED_NOTE_SHARED_RNG + "; unknown request fields (e.g. repeat_penalty) are rejected with HTTP 422",
            effective_defaults={"repeat_penalty": repeat_penalty if repeat_penalty is not None else 1.0, "top_k": 0},
        )


def _only_served_model(base_url: str, secrets: Sequence[str]) -> str:
    """The model an external endpoint serves, when it serves exactly one."""
    with OpenAIClient(base_url, api_key=secrets[0] if secrets else None, policy=RetryPolicy(timeout_seconds=30, max_tries=3)) as client:
        models = client.list_models()
    if isinstance(models, RequestFailure):
        raise InputError(f"cannot list the models of {base_url}: {models.reason}", key="engine.base_url")
    if len(models) != 1:
        raise InputError(f"{base_url} serves {len(models)} models {models[:5]}; set served_model", key="engine.served_model")
    return models[0]


@contextmanager
def engine_endpoint(env: EnvConfig, work_dir: str | Path) -> Iterator[ServerInfo | None]:
    """The OpenAI-compatible endpoint for an EnvConfig's engine, started and stopped around the body.

    Yields None for ``kind: hf`` (in-process, nothing to serve) and a ServerInfo without a process for
    ``kind: openai`` (external endpoint, left running).
    """
    engine, model, generation = env.engine, env.model, env.generation
    kind = engine.kind
    if kind == "hf":
        yield None
    elif kind == "openai":
        base_url = str(engine.base_url).rstrip("/")
        yield ServerInfo(
            kind="openai",
            base_url=base_url,
            served_model=engine.served_model or _only_served_model(base_url, env.secrets()),
            seed_note="external endpoint: seed handling not verified",
        )
    elif kind == "llama-cpp":
        if model.quantization not in ("none", "gguf"):
            raise InputError(f"llama-cpp serves GGUF files; quantization {model.quantization!r} does not apply", key="model.quantization")
        gguf = None if model.path == "embedded" else Path(model.path).expanduser()
        with llama_cpp_server(
            gguf,
            work_dir=work_dir,
            repeat_penalty=generation.repeat_penalty,
            served_model=engine.served_model,
            extra_args=engine.extra_args,
        ) as info:
            yield info
    elif kind == "transformers-serve":
        if model.quantization != "none":
            raise InputError(
                f"transformers-serve cannot apply quantization {model.quantization!r}", key="model.quantization"
            )
        model_dir = None if model.path == "embedded" else Path(model.path).expanduser()
        with transformers_server(
            model_dir,
            work_dir=work_dir,
            dtype=model.dtype,
            repeat_penalty=generation.repeat_penalty,
            extra_args=engine.extra_args,
        ) as info:
            yield info
    else:
        raise InputError(f"unknown engine kind {kind!r}", key="engine.kind")
