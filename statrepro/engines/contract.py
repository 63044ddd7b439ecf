"""What an engine kind is: the one place that knows how its server starts and stops and what it can do.

Every engine kind (``engine.kind`` in an environment file) is one ``EngineKind`` subclass, registered in
``statrepro.engines.kinds``. The run path, the harness adapters, the executors and the diagnostics ask it;
none of them branches on the kind's name.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ..config import EngineSpec, EnvConfig, GenerationSpec
    from .servers import ServerInfo


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do, as far as statrepro relies on it."""

    in_process: bool
    """The model runs inside the harness process: nothing to serve, one job at a time (memory), its GPU on the job's node."""
    prompt_logprobs: bool
    """Returns prompt log-likelihoods, so multiple choice can be scored by log-likelihood."""
    token_logprobs: bool
    """Returns the top-k logprobs of generated tokens (``statrepro logprobs``)."""
    request_seed: bool | None
    """Honours a per-request sampling seed (None: not verified)."""
    concurrent_sampling: bool
    """Sampled requests reproduce their seeds while several are in flight (False: one RNG shared by all requests)."""


class EngineKind:
    """One engine kind. Subclasses set the class attributes and implement ``serve``."""

    name: ClassVar[str]
    managed: ClassVar[bool]
    """statrepro starts the server itself (on 127.0.0.1) and always stops it."""
    capabilities: ClassVar[Capabilities]
    default_repeat_penalty: ClassVar[float | None] = None
    """The repetition penalty a request gets when the environment leaves it unset (None: unknown)."""
    repeat_penalty_field: ClassVar[str] = "repetition_penalty"
    """The name this engine reads the repetition penalty under, in requests and generation settings."""
    default_concurrency: ClassVar[int] = 1
    """Requests in flight per job when ``engine.concurrency`` is unset: what the engine serves at once (its
    slots), 1 for an in-process model."""

    def check(self, engine: EngineSpec) -> None:
        """Reject engine settings this kind cannot use (ValueError, reported against the env file)."""

    def requests_in_flight(self, env: EnvConfig) -> int:
        """How many requests one job of ``env`` keeps in flight: ``engine.concurrency``, except 1 for sampled
        requests on an engine whose requests share one RNG (their seeds only reproduce one at a time)."""
        if env.generation.temperature > 0 and not self.capabilities.concurrent_sampling:
            return 1
        return env.engine.concurrency

    def serve(self, env: EnvConfig, work_dir: Path | None) -> AbstractContextManager[ServerInfo | None]:
        """The endpoint of ``env``'s engine for the duration of the ``with`` block: None for in-process
        engines; a managed server is started in ``work_dir`` and stopped however the block ends."""
        raise NotImplementedError

    def request_defaults(self, generation: GenerationSpec) -> dict[str, Any]:
        """Generation settings that must travel in every request, because the server cannot be told them."""
        return {}

    def determinism(self, hardware: str) -> dict[str, bool | None]:
        """Facts for the doctor's determinism checklist (see harness.contract.DETERMINISM_FACTORS)."""
        return {"prefix_cache_off": None, "deterministic": None}
