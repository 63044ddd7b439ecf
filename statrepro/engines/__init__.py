"""Inference engines the run path drives: managed local OpenAI-compatible servers and a retrying client.

Entry points:
- ``engine_endpoint(env, work_dir)``: context manager yielding the ServerInfo for an EnvConfig's engine.
- ``llama_cpp_server(...)``, ``transformers_server(...)``: the managed servers themselves.
- ``OpenAIClient``: completions / chat completions with bounded retries and typed failures.
"""

from .client import Completion, OpenAIClient, Outcome, RequestFailure, RetryPolicy
from .errors import EngineError
from .servers import ServerInfo, engine_endpoint, llama_cpp_server, transformers_server

__all__ = [
    "Completion",
    "EngineError",
    "OpenAIClient",
    "Outcome",
    "RequestFailure",
    "RetryPolicy",
    "ServerInfo",
    "engine_endpoint",
    "llama_cpp_server",
    "transformers_server",
]
