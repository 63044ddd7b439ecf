"""Engine kind ``llama-cpp``: a GGUF served by llama-cpp-python's OpenAI-compatible server, which statrepro
starts on 127.0.0.1 (through the launcher in llama_server.py) and always stops."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path

from ..errors import InputError, did_you_mean
from ..models import (
    EMBEDDED_GGUF_DTYPES,
    EMBEDDED_SPEC,
    embedded_gguf_path,
    embedded_gguf_variant,
    materialize_embedded_gguf,
    materialize_embedded_quantization,
    read_gguf_weights,
)
from .contract import Capabilities, EngineKind, RenderedPrompt, determinism_report
from .errors import EngineError
from .live import SERVER_DEFAULTS
from .process import LOOPBACK, log_tail, managed_server
from .servers import SEED_NOTE_SHARED_RNG, ServerInfo, loopback_base_url, openapi_defaults, schema_defaults


ALIGN = ["--align_echo_logprobs"]
# What llama-cpp-python's server prints when llama.cpp cannot load the model file.
LOAD_FAILURE = "Failed to load model from file"


class LlamaCpp(EngineKind):
    """A GGUF file served by llama-cpp-python's server, started on 127.0.0.1 and stopped by statrepro."""

    name = "llama-cpp"
    managed = True
    capabilities = Capabilities(
        in_process=False, prompt_logprobs=True, token_logprobs=True, request_seed=True, concurrent_sampling=False,
        full_logits=True,
    )
    # llama-cpp-python's per-request default, a hidden factor: a harness that omits it gets 1.1.
    default_repeat_penalty = 1.1
    repeat_penalty_field = "repeat_penalty"
    # llama-cpp-python's server holds one model behind a lock: one slot, so more requests only queue.
    default_concurrency = 1

    def determinism(self, hardware: str, deterministic: bool = False):
        # llama-cpp-python keeps the KV prefix of the previous request and reuses it; no flag turns that off.
        return determinism_report(
            prefix_cache_off=False,
            deterministic=True if deterministic and hardware == "cpu" else None,
            requested=deterministic,
            applied=("prompt cache off (--cache false)", "one slot: the server evaluates one request at a time"),
            not_guaranteed=(
                "llama-cpp-python reuses the KV prefix of the previous request; no flag turns that off",
                "GPU offload kernels are not checked for determinism",
            ) if deterministic else (),
        )

    def check_model(self, model) -> None:
        """quantization: none (the embedded model at full precision), gguf (a GGUF file as it is; the embedded
        one ships as Q4_1) or one of llama.cpp's own types (Q8_0, Q4_K_M, Q2_K, ...) for the embedded model."""
        quantization = model.quantization
        if quantization in ("none", "gguf"):
            return
        types = quantization_types()
        if quantization not in types:
            # llama.cpp spells its types in capitals: q4_k_m gets Q4_K_M.
            hint = did_you_mean(quantization.upper(), types, list_known=False) or did_you_mean(quantization, ("none", "gguf", *types))
            raise ValueError(f"model.quantization {quantization!r} is neither none, gguf nor one of llama.cpp's quantization types{hint}")
        if model.path not in ("embedded", EMBEDDED_SPEC):
            raise ValueError(
                f"model.quantization {quantization!r} quantizes the embedded model; a GGUF file of your own is served as it is "
                "(quantization: gguf; its type is read from the file)"
            )

    def served_gguf(self, env, *, make: bool = True) -> Path:
        """The GGUF file the server loads for ``env``; the embedded model's float32 or quantized file is made
        (once, cached) unless ``make`` is False, which only says where it is or would be."""
        model = env.model
        if model.path not in ("embedded", EMBEDDED_SPEC):
            return Path(model.path).expanduser()
        if model.quantization == "gguf":
            return embedded_gguf_path()  # the shipped Q4_1
        if model.quantization != "none":
            return materialize_embedded_quantization(model.quantization) if make else embedded_gguf_variant(model.quantization)
        # full precision: the same dequantized weights in-process transformers runs
        dtype = "float32" if model.dtype == "auto" else model.dtype
        if make or dtype not in EMBEDDED_GGUF_DTYPES:
            return materialize_embedded_gguf(dtype)  # (an InputError for a dtype llama-cpp does not serve)
        return embedded_gguf_variant(EMBEDDED_GGUF_DTYPES[dtype])

    def weights_factors(self, env):
        """The served GGUF's type as its file states it (with per-tensor type counts), where the file exists
        already; the embedded model's type by name where it is not made yet."""
        path = self.served_gguf(env, make=False)
        if path.is_file():
            weights = read_gguf_weights(path)
            return {"quantization": weights.file_type, "tensor_types": weights.tensor_types}
        if env.model.path in ("embedded", EMBEDDED_SPEC):
            return {"quantization": path.stem.rsplit(".", 1)[-1]}  # the cached file is named by its type
        return {}

    def live_factors(self, server):
        # llama.cpp's own C++ server (llama-server) describes itself at GET /props.
        props = server.get("/props")
        if isinstance(props, dict) and isinstance(props.get("default_generation_settings"), dict):
            settings = props["default_generation_settings"]
            # Newer builds nest the sampling settings under "params"; older ones put them at the top level.
            sampling = settings.get("params") if isinstance(settings.get("params"), dict) else settings
            return {
                "engine": self.name,
                "engine_version": f"llama.cpp server {props['build_info']}" if props.get("build_info") else None,
                "max_context": settings.get("n_ctx"),  # per slot: what one request may use
                "model": props.get("model_path") or props.get("model_alias"),
                **{factor: sampling.get(factor) for factor in SERVER_DEFAULTS},
            }
        # llama-cpp-python's server (the one this kind starts) has no /props: it is a FastAPI app whose
        # /openapi.json names it and publishes the request defaults; it does not report n_ctx.
        openapi = server.get("/openapi.json")
        info = openapi.get("info") if isinstance(openapi, dict) else None
        if not isinstance(info, dict) or "llama.cpp" not in str(info.get("title")):
            return None
        defaults = schema_defaults(openapi, "CreateCompletionRequest")
        return {
            "engine": self.name,
            "engine_version": f"llama-cpp-python {info['version']}" if info.get("version") else None,
            "max_context": None,
            "model": server.served_model_card().get("id"),
            **{factor: defaults.get(factor) for factor in SERVER_DEFAULTS},
        }

    def render_prompts(self, env, prompts) -> list[RenderedPrompt]:
        """llama-cpp-python's own tokenizer and chat handler, loaded vocab-only from the served GGUF: raw text
        as its /completions tokenizes it (a BOS only if the GGUF asks for one); chat messages through the
        handler its server picks from the GGUF metadata, stopped just before it would decode."""
        from llama_cpp import Llama
        from llama_cpp._utils import suppress_stdout_stderr

        with suppress_stdout_stderr(disable=False):  # the C library prints context warnings on load
            vocab = Llama(model_path=str(self.served_gguf(env)), vocab_only=True, verbose=False)
        rendered = []
        for prompt in prompts:
            if prompt.messages is None:
                ids = vocab.tokenize(prompt.text.encode("utf-8"), add_bos=True, special=True)
                how = "llama-cpp-python's tokenizer from the GGUF, as its /completions tokenizes"
            else:
                ids = _chat_prompt_ids(vocab, list(prompt.messages))
                how = f"llama-cpp-python's chat handler {vocab.chat_format!r} from the GGUF, as its /chat/completions renders"
            pieces = tuple(vocab.detokenize([token], special=True).decode("utf-8", errors="replace") for token in ids)
            rendered.append(RenderedPrompt(ids=tuple(ids), pieces=pieces, how=how))
        return rendered

    def next_token_scorer(self, env, *, max_tokens: int) -> LlamaScorer:
        """The GGUF the server would load, in-process through llama-cpp-python (the library the server runs),
        with every position's logits kept."""
        return LlamaScorer(self.served_gguf(env), max_tokens=max_tokens, label=env.name)

    @contextmanager
    def serve(self, env, work_dir) -> Iterator[ServerInfo]:
        gguf = self.served_gguf(env)
        with llama_cpp_server(
            gguf,
            work_dir=work_dir,
            repeat_penalty=env.generation.repeat_penalty,
            served_model=env.engine.served_model,
            extra_args=env.engine.extra_args,
            deterministic=env.engine.deterministic,
        ) as info:
            weights = read_gguf_weights(gguf, digest=True).to_dict()
            yield replace(info, determinism=self.determinism(env.hardware, env.engine.deterministic), weights=weights)


class LlamaScorer:
    """A GGUF in llama-cpp-python with ``logits_all``: teacher-forced next-token logits (engines.contract.NextTokenScorer)."""

    def __init__(self, gguf: Path, *, max_tokens: int, label: str) -> None:
        from llama_cpp import Llama
        from llama_cpp._utils import suppress_stdout_stderr

        # The context holds the longest sequence (in steps of 512): llama-cpp-python keeps n_ctx x vocab floats of logits.
        self.n_ctx = 512 * -(-max(max_tokens, 1) // 512)
        # Prompt batches on llama-cpp-python's generation thread count (half the cores), not on every core: busy
        # cores make a thread pool that spins on all of them several times slower.
        threads = max((os.cpu_count() or 2) // 2, 1)
        with suppress_stdout_stderr(disable=False):  # the C library prints context warnings on load
            self.llama = Llama(model_path=str(gguf), logits_all=True, n_ctx=self.n_ctx, n_threads=threads,
                               n_threads_batch=threads, verbose=False)
        self.vocab_size = self.llama.n_vocab()
        self.label = label
        self.gguf = gguf

    def tokenize(self, text: str) -> list[int]:
        return self.llama.tokenize(text.encode("utf-8"), add_bos=True, special=False)  # a BOS only if the GGUF asks for one

    def logits(self, ids):
        import numpy as np

        self.llama.reset()
        self.llama.eval(list(ids))
        return np.array(self.llama.scores[: len(ids)], dtype=np.float32)

    def close(self) -> None:
        self.llama.close()


def quantization_types() -> tuple[str, ...]:
    """llama.cpp's names of its quantized file types (Q8_0, Q4_K_M, Q2_K, IQ4_XS, ...): the gguf package's copy of
    llama.cpp's list, else llama-cpp-python's LLAMA_FTYPE_MOSTLY_* constants. gguf first: importing llama_cpp
    only to validate a file would load the library and leave its log file open until exit."""
    try:
        import gguf

        names = [f"LLAMA_FTYPE_{name}" for name in gguf.LlamaFileType.__members__ if name.startswith("MOSTLY_")]
    except ImportError:
        import llama_cpp

        names = [name for name in dir(llama_cpp) if name.startswith("LLAMA_FTYPE_MOSTLY_")]
    return tuple(sorted(name.removeprefix("LLAMA_FTYPE_MOSTLY_") for name in names))


class _PromptReady(Exception):
    """Raised by a stand-in ``create_completion`` to hand the chat handler's prompt tokens back."""

    def __init__(self, prompt) -> None:
        self.prompt = prompt


def _chat_prompt_ids(vocab, messages: list[dict]) -> list[int]:
    def hand_back(prompt, **_):
        raise _PromptReady(prompt)

    vocab.create_completion = hand_back  # the handler renders and tokenizes, then calls this to decode
    try:
        vocab.create_chat_completion(messages=messages, max_tokens=1)
    except _PromptReady as ready:
        return list(ready.prompt)
    raise RuntimeError("llama-cpp-python's chat handler never asked to decode")  # a changed library


@contextmanager
def llama_cpp_server(
    model_path: str | Path | None = None,
    *,
    work_dir: str | Path,
    n_ctx: int = 4096,
    seed: int = 0,
    repeat_penalty: float | None = None,
    n_threads: int | None = None,
    served_model: str | None = None,
    extra_args: Sequence[str] = (),
    startup_timeout: float = 120.0,
    deterministic: bool = False,
) -> Iterator[ServerInfo]:
    """Serve a GGUF with llama-cpp-python (default: the embedded SmolLM2 GGUF).

    ``repeat_penalty`` becomes the server-side default of every request that omits it (llama.cpp's own
    default is 1.1); ``seed`` is the server's start seed, requests override it with their own ``seed``.
    """
    gguf = Path(model_path) if model_path is not None else embedded_gguf_path()
    if not gguf.is_file() or gguf.suffix != ".gguf":
        raise InputError("llama-cpp needs a .gguf model file", path=gguf, key="model.path")
    alias = served_model or gguf.stem
    work_dir = Path(work_dir)
    # llama-cpp-python's quirk: echoed prompt logprobs are off by one token unless the prompt starts with a BOS
    # the model adds itself (SmolLM2 adds none). The launcher realigns them; the capability probe checks it.
    launcher = [sys.executable, "-m", "statrepro.engines.llama_server", *ALIGN]
    if repeat_penalty is not None:
        launcher += ["--default_repeat_penalty", str(repeat_penalty)]

    def command(port: int) -> list[str]:
        args = [*launcher, "--model", str(gguf), "--model_alias", alias, "--host", LOOPBACK, "--port", str(port)]
        args += ["--n_ctx", str(n_ctx), "--seed", str(seed)]
        if n_threads is not None:
            args += ["--n_threads", str(n_threads)]
        if deterministic:
            args += ["--cache", "false"]  # the RAM/disk prompt cache; the server has one slot already
        return args + list(extra_args)

    log_path = work_dir / "llama-cpp-server.log"
    with ExitStack() as stack:
        try:
            port, process = stack.enter_context(
                managed_server(command, name="llama.cpp server", log_path=log_path, startup_timeout=startup_timeout)
            )
        except EngineError:
            if LOAD_FAILURE in log_tail(log_path):
                raise InputError(f"llama.cpp could not load this GGUF; the server log says why: {log_path}", path=gguf, key="model.path") from None
            raise
        base_url = loopback_base_url(port)
        defaults = openapi_defaults(base_url, "CreateCompletionRequest")
        defaults.setdefault("repeat_penalty", repeat_penalty if repeat_penalty is not None else LlamaCpp.default_repeat_penalty)
        yield ServerInfo(
            kind=LlamaCpp.name,
            base_url=base_url,
            served_model=alias,
            model_path=str(gguf),
            log_path=str(log_path),
            pid=process.pid,
            command=tuple(command(port)),
            supports_request_seed=LlamaCpp.capabilities.request_seed,
            seed_note=SEED_NOTE_SHARED_RNG,
            effective_defaults=defaults,
        )
