"""Engine kind ``transformers-serve``: a local HF model directory served by ``transformers serve``, which
statrepro starts on 127.0.0.1 (offline) and always stops."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError
from ..models import materialize_embedded_model
from .contract import Capabilities, EngineKind, determinism_report
from .errors import EngineError
from .live import served_model_defaults
from .process import LOOPBACK, managed_server
from .servers import SEED_NOTE_SHARED_RNG, ServerInfo, loopback_base_url


class TransformersServe(EngineKind):
    """A local HF model directory served by transformers serve, started on 127.0.0.1 and stopped by statrepro."""

    name = "transformers-serve"
    managed = True
    capabilities = Capabilities(
        in_process=False, prompt_logprobs=False, token_logprobs=True, request_seed=True, concurrent_sampling=False
    )
    default_repeat_penalty = 1.0

    def determinism(self, hardware: str, deterministic: bool = False):
        return determinism_report(
            prefix_cache_off=None, deterministic=None, requested=deterministic,
            not_guaranteed=("transformers serve has no switch for deterministic algorithms or its cache",) if deterministic else (),
        )

    def live_factors(self, server):
        # transformers serve is a plain FastAPI app (title "FastAPI"): its routes name it. It reports no version
        # and no defaults; a request that omits a setting gets the served model's generation_config.json.
        openapi = server.get("/openapi.json")
        paths = openapi.get("paths") if isinstance(openapi, dict) else None
        if not isinstance(paths, dict) or not {"/load_model", "/reset"} <= set(paths):
            return None
        model = server.served_model_card().get("id")  # the served directory's path when pinned to one model
        return {"engine": self.name, "engine_version": None, "model": model, **served_model_defaults(server, model)}

    @contextmanager
    def serve(self, env, work_dir) -> Iterator[ServerInfo]:
        model = env.model
        if model.quantization != "none":
            raise InputError(f"transformers-serve cannot apply quantization {model.quantization!r}", key="model.quantization")
        model_dir = None if model.path == "embedded" else Path(model.path).expanduser()
        with transformers_server(
            model_dir,
            work_dir=work_dir,
            dtype=model.dtype,
            repeat_penalty=env.generation.repeat_penalty,
            extra_args=env.engine.extra_args,
        ) as info:
            yield info


def _warm_up(base_url: str, served_model: str, timeout: float) -> None:
    """One 1-token greedy request so lazy initialisation is not charged to the first real item."""
    from .client import OpenAIClient, RetryPolicy

    with OpenAIClient(base_url, policy=RetryPolicy(timeout_seconds=timeout, max_tries=1)) as client:
        outcome = client.complete("Hello", model=served_model, max_tokens=1)
    if not outcome.ok:
        raise EngineError(f"warm-up request to {base_url} failed: {outcome.reason}")


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
        base_url = loopback_base_url(port)
        _warm_up(base_url, str(served), timeout=startup_timeout)
        yield ServerInfo(
            kind=TransformersServe.name,
            base_url=base_url,
            served_model=str(served),
            model_path=str(source),
            log_path=str(log_path),
            pid=process.pid,
            command=tuple(command(port)),
            supports_request_seed=TransformersServe.capabilities.request_seed,
            seed_note=SEED_NOTE_SHARED_RNG + "; unknown request fields (e.g. repeat_penalty) are rejected with HTTP 422",
            effective_defaults={"repeat_penalty": repeat_penalty if repeat_penalty is not None else TransformersServe.default_repeat_penalty, "top_k": 0},
        )
