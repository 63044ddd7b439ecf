"""Engine kind ``openai``: an external OpenAI-compatible endpoint that statrepro neither starts nor stops."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import InputError
from .contract import Capabilities, EngineKind, determinism_report


def _only_served_model(base_url: str, secrets: Sequence[str]) -> str:
    """The model an external endpoint serves, when it serves exactly one."""
    from .client import OpenAIClient, RequestFailure, RetryPolicy

    with OpenAIClient(base_url, api_key=secrets[0] if secrets else None, policy=RetryPolicy(timeout_seconds=30, max_tries=3)) as client:
        models = client.list_models()
    if isinstance(models, RequestFailure):
        raise InputError(f"cannot list the models of {base_url}: {models.reason}", key="engine.base_url")
    if len(models) != 1:
        raise InputError(f"{base_url} serves {len(models)} models {models[:5]}; set served_model", key="engine.served_model")
    return models[0]


class ExternalEndpoint(EngineKind):
    """An external OpenAI-compatible endpoint (its base_url), left running."""

    name = "openai"
    managed = False
    # Prompt log-likelihoods are not assumed of an arbitrary endpoint; seed handling is not verified.
    capabilities = Capabilities(
        in_process=False, prompt_logprobs=None, token_logprobs=True, request_seed=None, concurrent_sampling=False
    )
    # Serving stacks (vLLM, SGLang, TGI) batch requests on the server: keep several in flight.
    default_concurrency = 8

    def check(self, engine) -> None:
        if not engine.base_url:
            raise ValueError(f"engine kind {self.name!r} needs base_url")

    @contextmanager
    def serve(self, env, work_dir) -> Iterator[Any]:
        from .servers import ServerInfo

        base_url = str(env.engine.base_url).rstrip("/")
        yield ServerInfo(
            kind=self.name,
            base_url=base_url,
            served_model=env.engine.served_model or _only_served_model(base_url, env.secrets()),
            seed_note="external endpoint: seed handling not verified",
        )

    def determinism(self, hardware: str, deterministic: bool = False):
        return determinism_report(
            prefix_cache_off=None, deterministic=None, requested=deterministic,
            not_guaranteed=("an external endpoint's prefix cache, kernels and batching are its operator's settings",) if deterministic else (),
        )

    def request_defaults(self, generation) -> dict[str, Any]:
        # An external server's defaults cannot be set, so an explicit repeat_penalty goes in every request.
        return {"repeat_penalty": generation.repeat_penalty} if generation.repeat_penalty is not None else {}
