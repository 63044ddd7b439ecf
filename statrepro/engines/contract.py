"""What an engine kind is: the one place that knows how its server starts and stops and what it can do.

Every engine kind (``engine.kind`` in an environment file) is one ``EngineKind`` subclass, registered in
``statrepro.engines.kinds``. The run path, the harness adapters, the executors and the diagnostics ask it;
none of them branches on the kind's name.
"""

from __future__ import annotations

import hashlib
import json
import sys
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..errors import did_you_mean

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

    from ..config import EngineSpec, EnvConfig, GenerationSpec, ModelSpec
    from .live import LiveServer
    from .servers import ServerInfo


# model.quantization values every kind understands (which of them a kind applies, it checks when it serves);
# a kind may accept more (llama-cpp: llama.cpp's own types, LlamaCpp.check_model).
QUANTIZATIONS = ("none", "dynamic-int8", "gguf", "fp8", "awq", "gptq")


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do, as far as statrepro relies on it."""

    in_process: bool
    """The model runs inside the harness process: nothing to serve, one job at a time (memory), its GPU on the job's node."""
    prompt_logprobs: bool | None
    """Returns prompt log-likelihoods, so multiple choice can be scored by log-likelihood (modes ppl and clp).
    None: depends on the server behind the endpoint. Every endpoint is probed at job start
    (engines/logprob_probe.py) before a log-likelihood job runs; only True makes clp the default mode."""
    token_logprobs: bool
    """Returns the top-k logprobs of generated tokens (``statrepro logprobs``)."""
    request_seed: bool | None
    """Honours a per-request sampling seed (None: not verified)."""
    concurrent_sampling: bool
    """Sampled requests reproduce their seeds while several are in flight (False: one RNG shared by all requests)."""
    full_logits: bool = False
    """Gives the next-token logits over the whole vocabulary at every position of given token ids, with the model
    loaded here as the kind runs it (``EngineKind.next_token_scorer``; ``statrepro kld``)."""


@dataclass(frozen=True)
class SentPrompt:
    """What a harness sent the engine for one item. Exactly one of ``text`` and ``messages`` is set."""

    text: str | None = None
    """A raw prompt string: to /completions, or to an in-process model (with any chat template already rendered
    by the harness)."""
    messages: tuple[dict, ...] | None = None
    """Chat messages that the endpoint renders with its own template (/chat/completions)."""
    continuations: tuple[str, ...] = ()
    """Log-likelihood requests: the continuations (answer options) scored after the prompt, in order."""
    stop: tuple[str, ...] = ()
    """Generation requests: the stop sequences sent with the prompt (the scored answer ends at the first)."""

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "messages": list(self.messages) if self.messages is not None else None,
                "continuations": list(self.continuations), "stop": list(self.stop)}

    def digest(self) -> str:
        """SHA-256 of the whole prompt, for a records table's prompt_hash."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RenderedPrompt:
    """The token ids an engine runs for one sent prompt, each with its text (special tokens spelled out)."""

    ids: tuple[int, ...]
    pieces: tuple[str, ...]
    how: str
    """How statrepro rebuilt the ids: which tokenizer, template and special-token rule."""


def hf_rendering(tokenizer, ids, how: str) -> RenderedPrompt:
    """A RenderedPrompt from a Hugging Face tokenizer's ids, each piece as text (' are', not 'Ġare')."""
    ids = tuple(int(i) for i in ids)
    pieces = tuple(tokenizer.convert_tokens_to_string([token]) for token in tokenizer.convert_ids_to_tokens(list(ids)))
    return RenderedPrompt(ids=ids, pieces=pieces, how=how)


class NextTokenScorer(Protocol):
    """An environment's model, teacher-forced here: the next-token logits at every position of a token sequence."""

    label: str
    vocab_size: int

    def tokenize(self, text: str) -> list[int]:
        """The token ids the engine runs for raw ``text``."""
        ...

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        """(len(ids), vocab_size) logits: row i is the distribution of the token after ids[:i + 1]."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...


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
    device_choice: ClassVar[bool] = False
    """``engine.device`` picks where the model runs (in-process transformers); other kinds reject a device."""
    default_concurrency: ClassVar[int] = 1
    """Requests in flight per job when ``engine.concurrency`` is unset: what the engine serves at once (its
    slots), 1 for an in-process model."""

    def check(self, engine: EngineSpec) -> None:
        """Reject engine settings this kind cannot use (ValueError, reported against the env file)."""

    def check_model(self, model: ModelSpec) -> None:
        """Reject a ``model`` section this kind cannot serve (ValueError, reported against the env file). By
        default ``model.quantization`` must be one of QUANTIZATIONS; whether this kind applies it is checked
        when it serves."""
        if model.quantization not in QUANTIZATIONS:
            raise ValueError(f"model.quantization {model.quantization!r} is unknown{did_you_mean(model.quantization, QUANTIZATIONS)}")

    def weights_factors(self, env: EnvConfig) -> dict[str, Any]:
        """What the weights this kind serves for ``env`` are, for ``statrepro doctor``, found without making or
        loading them: ``quantization`` (the type the weights are stored in) and ``tensor_types`` (per-tensor
        storage type counts); {} where the environment file says all that is known."""
        return {}

    def check_common(self, engine: EngineSpec) -> None:
        """Checks every kind shares (called by statrepro.envfile before ``check``)."""
        if engine.device != "auto" and not self.device_choice:
            raise ValueError(f"engine.device applies to in-process transformers (kind hf); kind {self.name!r} has no device choice")

    def evaluation_mode(self, modes: tuple[str, ...], requested: str | None) -> str:
        """The mode a benchmark offering ``modes`` runs in on this kind (config.BenchmarkSpec.mode): ``requested``
        when set, else clp for multiple choice where this kind returns prompt log-likelihoods for certain (an
        endpoint's only maybe), else gen."""
        if requested is not None:
            return requested
        return "clp" if "clp" in modes and self.capabilities.prompt_logprobs is True else "gen"

    def preflight(self, env: EnvConfig) -> None:
        """Cheap checks before any work or progress output (e.g. the server's executable is installed);
        InputError when they fail."""
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

    def render_prompts(self, env: EnvConfig, prompts: list[SentPrompt]) -> list[RenderedPrompt]:
        """The token ids this engine runs for each prompt. By default what a server built on the model's Hugging
        Face tokenizer does (vLLM, SGLang, transformers serve): raw text gets the tokenizer's special tokens
        (a BOS where the model wants one), chat messages go through its chat template."""
        from ..models import load_tokenizer, resolve_model_path

        tokenizer = load_tokenizer(resolve_model_path(env.engine.tokenizer or env.model.path))
        rendered = []
        for prompt in prompts:
            if prompt.messages is not None:
                ids = tokenizer.apply_chat_template(list(prompt.messages), add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
                how = "the model's Hugging Face chat template, as vLLM and SGLang render chat requests"
            else:
                ids = tokenizer(prompt.text, add_special_tokens=True)["input_ids"]
                how = "the model's Hugging Face tokenizer with its special tokens, as vLLM and SGLang tokenize completions"
            rendered.append(hf_rendering(tokenizer, ids, how))
        return rendered

    def next_token_scorer(self, env: EnvConfig, *, max_tokens: int) -> NextTokenScorer:
        """``env``'s model loaded here, as this kind runs it, for sequences of up to ``max_tokens`` tokens; only
        for a kind whose ``capabilities.full_logits`` is True."""
        raise NotImplementedError(f"engine kind {self.name!r} gives no next-token logits")

    def live_factors(self, server: LiveServer) -> dict[str, Any] | None:
        """What a running server of this kind states about itself, in ``statrepro doctor``'s factor names:
        ``engine`` (this kind's name), ``engine_version``, ``max_context`` (the served context), ``model``, and
        the defaults a request that omits them gets (``repeat_penalty``, ``temperature``, ``top_p``); None for
        what it does not state. None altogether when ``server`` does not answer as this kind, so that an
        unknown endpoint can be identified by asking every kind (engines.kinds.ask_endpoint)."""
        return None

    def request_defaults(self, generation: GenerationSpec) -> dict[str, Any]:
        """Generation settings that must travel in every request, because the server cannot be told them."""
        return {}

    def harness_launcher(self, env: EnvConfig, module: str) -> list[str]:
        """The command that starts a harness's Python ``module`` (run as ``__main__``) for a job of ``env``; an
        in-process kind wraps it in what its model needs (kind hf: torch's deterministic algorithms)."""
        return [sys.executable, "-m", module]

    def device(self, env: EnvConfig) -> str | None:
        """Where an in-process model of ``env`` runs, for the harness's device option; None leaves it to the
        harness (and a served model to its server)."""
        return None

    def job_environment(self, env: EnvConfig) -> dict[str, str]:
        """Environment variables the harness subprocess of a job needs for this engine (in-process engines:
        e.g. what ``engine.deterministic`` requires of torch)."""
        return {}

    def determinism(self, hardware: str, deterministic: bool = False) -> dict[str, Any]:
        """What this kind does about determinism, with ``engine.deterministic`` set or not.

        ``prefix_cache_off`` and ``deterministic`` feed the doctor's checklist (True met, False not met, None
        unknown; see harness.contract.DETERMINISM_FACTORS); ``applied`` lists what statrepro set, and
        ``not_guaranteed`` what this engine cannot promise. The run manifest records the whole dict.
        """
        return determinism_report(
            prefix_cache_off=None, deterministic=None, requested=deterministic, applied=(),
            not_guaranteed=("statrepro knows no determinism switch of this engine",) if deterministic else (),
        )


GREEDY_AND_SEED = ("greedy decoding (generation.temperature 0)", "a fixed seed per job, sent with every request")


def determinism_report(
    *, prefix_cache_off: bool | None, deterministic: bool | None, requested: bool, applied=(), not_guaranteed=()
) -> dict[str, Any]:
    """The dict ``EngineKind.determinism`` returns (greedy decoding and the seed lead ``applied`` when requested)."""
    return {
        "requested": requested,
        "prefix_cache_off": prefix_cache_off,
        "deterministic": deterministic,
        "applied": [*GREEDY_AND_SEED, *applied] if requested else [],
        "not_guaranteed": list(not_guaranteed),
    }
