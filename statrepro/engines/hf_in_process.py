"""Engine kind ``hf``: the model runs in-process in the harness, with transformers. Nothing to serve."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .contract import Capabilities, EngineKind


class HFInProcess(EngineKind):
    """In-process transformers, inside the harness; nothing to serve."""

    name = "hf"
    managed = False
    capabilities = Capabilities(
        in_process=True, prompt_logprobs=True, token_logprobs=True, request_seed=None, concurrent_sampling=False
    )
    default_repeat_penalty = 1.0  # transformers applies none unless asked

    def check(self, engine) -> None:
        if engine.concurrency != 1:
            raise ValueError(
                f"engine.concurrency {engine.concurrency}: an in-process model answers one request at a time; "
                "set batch_size to evaluate several prompts per forward pass"
            )

    @contextmanager
    def serve(self, env, work_dir) -> Iterator[None]:
        yield None

    def determinism(self, hardware: str) -> dict[str, bool | None]:
        # No server, so no prefix cache; on CPU, torch's kernels are deterministic.
        return {"prefix_cache_off": True, "deterministic": True if hardware == "cpu" else None}
