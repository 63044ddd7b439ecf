"""The registry of engine kinds: one line per kind. ``engine.kind`` in an environment file takes these names."""

from __future__ import annotations

from ..errors import InputError, did_you_mean
from .contract import EngineKind
from .hf_in_process import HFInProcess
from .llama_cpp import LlamaCpp
from .openai_endpoint import ExternalEndpoint
from .transformers_serve import TransformersServe

ENGINE_KINDS: dict[str, EngineKind] = {kind.name: kind for kind in (HFInProcess(), ExternalEndpoint(), LlamaCpp(), TransformersServe())}


def engine_kind(name: str) -> EngineKind:
    """The kind registered as ``name``; an InputError naming the nearest one otherwise."""
    try:
        return ENGINE_KINDS[name]
    except KeyError:
        raise InputError(f"unknown engine kind {name!r}{did_you_mean(name, ENGINE_KINDS)}", key="engine.kind") from None
