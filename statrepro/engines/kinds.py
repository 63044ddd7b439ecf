"""The registry of engine kinds: one line per built-in kind, plugins through the entry-point group
``statrepro.engines``. ``engine.kind`` in an environment file takes these names."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..registry import Registry
from .contract import EngineKind

if TYPE_CHECKING:
    from ..config import EnvConfig
    from .servers import ServerInfo

ENGINE_KINDS: Registry[EngineKind] = Registry(
    "engine kind",
    group="statrepro.engines",
    key="engine.kind",
    builtins=(
        "statrepro.engines.hf_in_process:HFInProcess",
        "statrepro.engines.openai_endpoint:ExternalEndpoint",
        "statrepro.engines.llama_cpp:LlamaCpp",
        "statrepro.engines.transformers_serve:TransformersServe",
        "statrepro.engines.vllm:Vllm",
        "statrepro.engines.sglang:Sglang",
    ),
)


def engine_endpoint(env: EnvConfig, work_dir: str | Path | None) -> AbstractContextManager[ServerInfo | None]:
    """The OpenAI-compatible endpoint of an EnvConfig's engine, started and stopped around the ``with`` block
    (None for in-process engines; see EngineKind.serve)."""
    return engine_kind(env.engine.kind).serve(env, None if work_dir is None else Path(work_dir))


def engine_kind(name: str) -> EngineKind:
    """The kind registered as ``name``; an InputError naming the nearest one otherwise."""
    return ENGINE_KINDS.get_or_fail(name)


def ask_endpoint(url: str, *, timeout: float, expected: str | None = None, api_key: str | None = None) -> dict[str, Any]:
    """What the running server at ``url`` states about itself (EngineKind.live_factors): the kind it is
    ``expected`` to be is asked first, then every registered kind until one recognises it, else only what any
    OpenAI-compatible server says (``engine`` None). GET requests only; EngineError (one line) when nothing
    answers at ``url``."""
    from .live import LiveServer, generic_factors

    server = LiveServer(url, timeout=timeout, api_key=api_key)
    server.check_answers()
    for kind in sorted(ENGINE_KINDS.values(), key=lambda kind: kind.name != expected):
        factors = kind.live_factors(server)
        if factors is not None:
            return factors
    return generic_factors(server)
