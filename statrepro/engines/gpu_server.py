"""What the managed GPU serving engines (vllm.py, sglang.py) share: find the executable, start it on 127.0.0.1
with the model, dtype, quantization, seed and served name, wait for its health check, check the model name it
serves, read its version, and always stop it (engines/process.py's managed_server).

Each kind only says how its command line is spelled, which switches ``engine.deterministic`` turns on, where
the server reports its version, and what it states about its served model and request defaults (doctor).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from ..errors import InputError
from .contract import Capabilities, EngineKind
from .errors import EngineError
from .live import LiveServer
from .process import LOOPBACK, managed_server
from .servers import ServerInfo, loopback_base_url

# The server-wide start seed; every request carries its job's own seed.
SERVER_SEED = 0
# Quantizations these servers take as --quantization (the others name formats they do not serve).
SERVER_QUANTIZATIONS = ("fp8", "awq", "gptq")


class GpuServerKind(EngineKind):
    """Base of a managed OpenAI-compatible GPU server. Subclasses set the class attributes and the hooks."""

    managed = True
    # Prompt log-likelihoods (echo + logprobs on /v1/completions) are documented but not verified here: the
    # value-checking probe at job start decides, so ppl/clp are allowed and gen stays the default.
    capabilities = Capabilities(
        in_process=False, prompt_logprobs=None, token_logprobs=True, request_seed=True, concurrent_sampling=True
    )
    default_concurrency = 32  # continuous batching fills the server's batch from the requests in flight
    executable: ClassVar[str]
    """The program looked up on PATH."""
    install_hint: ClassVar[str]
    """How to install it, for the one-line error when it is missing."""
    health_path: ClassVar[str] = "/health"
    display_name: ClassVar[str]
    owned_by: ClassVar[str]
    """What the server writes into ``owned_by`` of its ``GET /v1/models`` entries: how it is told apart from
    other servers answering the same OpenAI routes."""

    # --- hooks ---------------------------------------------------------------------------------

    def base_command(self, executable: str, model: str, served: str, port: int, env) -> list[str]:
        raise NotImplementedError

    def deterministic_switches(self) -> tuple[list[str], dict[str, str]]:
        """(extra arguments, environment variables) that ``engine.deterministic`` adds."""
        return [], {}

    def read_version(self, get_json: Callable[[str], Any]) -> str | None:
        """The server's version, from the answer ``get_json(path)`` gives to a GET of one of its routes."""
        raise NotImplementedError

    def served_defaults(self, server: LiveServer, card: dict[str, Any]) -> dict[str, Any]:
        """The served model and the request defaults a running server states (``live_factors``); ``card`` is
        its ``GET /v1/models`` entry."""
        raise NotImplementedError

    # --- shared --------------------------------------------------------------------------------

    def live_factors(self, server):
        card = server.served_model_card()
        if card.get("owned_by") != self.owned_by:
            return None
        version = self.read_version(server.get)
        return {
            "engine": self.name,
            "engine_version": f"{self.display_name} {version}" if version else None,
            "max_context": card.get("max_model_len"),
            **self.served_defaults(server, card),
        }

    def find_executable(self) -> str:
        found = shutil.which(self.executable)
        if found is None:
            raise InputError(
                f"{self.display_name} is not installed here (no `{self.executable}` on PATH): {self.install_hint}, "
                f"or start the server yourself and use kind: openai with its base_url",
                key="engine.kind",
            )
        return found

    def preflight(self, env) -> None:
        self.find_executable()

    def command_for(self, executable: str, model: str, served: str, port: int, env) -> list[str]:
        """The exact argv: base command, determinism switches, then ``engine.extra_args`` (which win)."""
        args = self.base_command(executable, model, served, port, env)
        if env.engine.deterministic:
            args += self.deterministic_switches()[0]
        return args + list(env.engine.extra_args)

    def server_environment(self, env) -> dict[str, str]:
        return dict(self.deterministic_switches()[1]) if env.engine.deterministic else {}

    @contextmanager
    def serve(self, env, work_dir) -> Iterator[ServerInfo]:
        from ..models import resolve_model_path

        quantization = env.model.quantization
        if quantization not in ("none", *SERVER_QUANTIZATIONS):
            raise InputError(
                f"{self.name} takes quantization {', '.join(SERVER_QUANTIZATIONS)} or none, not {quantization!r}",
                key="model.quantization",
            )
        executable = self.find_executable()
        model = str(resolve_model_path(env.model.path))
        served = env.engine.served_model or Path(model).name
        work_dir = Path(work_dir if work_dir is not None else ".")
        log_path = work_dir / f"{self.name}-server.log"
        extra_env = self.server_environment(env)

        def command(port: int) -> list[str]:
            return self.command_for(executable, model, served, port, env)

        with managed_server(
            command, name=f"{self.display_name} server", log_path=log_path, ready_path=self.health_path,
            startup_timeout=env.engine.startup_timeout, env={**os.environ, **extra_env},
        ) as (port, process):
            base_url = loopback_base_url(port)
            _check_served_model(base_url, served, log_path)
            yield ServerInfo(
                kind=self.name,
                base_url=base_url,
                served_model=served,
                model_path=model,
                log_path=str(log_path),
                pid=process.pid,
                command=tuple(command(port)),
                supports_request_seed=self.capabilities.request_seed,
                seed_note=f"server started with seed {SERVER_SEED}; every request carries its job's seed",
                version=self.read_version(LiveServer(base_url, timeout=10).get),
                determinism={**self.determinism(env.hardware, env.engine.deterministic), "environment": extra_env},
            )


def _check_served_model(base_url: str, served: str, log_path: Path) -> None:
    """The server must answer to the configured name, or every request would fail (or hit another model)."""
    from .client import OpenAIClient, RequestFailure, RetryPolicy

    with OpenAIClient(base_url, policy=RetryPolicy(timeout_seconds=30, max_tries=3, base_delay_seconds=0.2)) as client:
        models = client.list_models()
    if isinstance(models, RequestFailure):
        raise EngineError(f"cannot list the models of {base_url}: {models.reason}; log {log_path}")
    if served not in models:
        raise InputError(
            f"the server at {base_url} serves {models[:5]}, not the configured {served!r}; "
            "set engine.served_model to the name it serves (or drop --served-model-name from engine.extra_args)",
            key="engine.served_model",
        )

