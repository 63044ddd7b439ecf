"""Inference engines the run path drives: engine kinds (each one class, listed in kinds.py's registry), the managed
local OpenAI-compatible servers they start, and the one retrying client.

Entry points:
- ``engine_kind(name)``: the EngineKind for ``engine.kind``: capabilities, sampling defaults, ``serve``.
- ``engine_endpoint(env, work_dir)``: context manager yielding the ServerInfo for an EnvConfig's engine.
- ``llama_cpp_server(...)``, ``transformers_server(...)``: the managed servers themselves.
- ``OpenAIClient``: completions / chat completions with bounded retries and typed failures.
- ``ask_endpoint(url, timeout=...)``: what a running server states about itself (EngineKind.live_factors).
"""

import importlib

# name -> defining module, imported on first use: envfile imports the kind registry, which must not pull in
# httpx (a run extra) or the servers.
_EXPORTS = {
    "Completion": "client", "OpenAIClient": "client", "Outcome": "client", "RequestFailure": "client", "RetryPolicy": "client",
    "Capabilities": "contract", "EngineKind": "contract", "EngineError": "errors", "ENGINE_KINDS": "kinds",
    "engine_kind": "kinds", "llama_cpp_server": "llama_cpp", "ServerInfo": "servers", "engine_endpoint": "kinds",
    "ask_endpoint": "kinds", "LiveServer": "live",
    "transformers_server": "transformers_serve",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


__all__ = sorted(_EXPORTS)
