"""Token-level KL divergence between two environments' models (``statrepro kld REF CAND``, ``compare --kld``).

Both models are loaded here, as their engine kinds run them (``EngineKind.next_token_scorer``: llama-cpp loads the
GGUF its server would serve in llama-cpp-python, hf the in-process transformers model), and teacher-forced on the
same token ids: the reference's tokenization of each text. The text set is fixed and recorded by its SHA-256: by
default the reference's first benchmark's prompts, each followed by its gold answer, spread over the benchmark's
subsets; or the lines of a file. The figures are stats.token_kld's (llama-perplexity --kl-divergence's).
"""

from __future__ import annotations

import hashlib
import sys
import time
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..stats.token_kld import TokenFigures, TokenKLD, summarize_token_kld, token_figures, topk_token_figures

DEFAULT_TEXTS = 32  # MMLU-Redux prompts with gold answers: about 2,000 tokens, some 25 s of CPU for the 135M model
DEFAULT_TOP_K = 20  # an endpoint's top-k per position (vLLM's default max_logprobs is 20)
PLAIN_PROGRESS_SECONDS = 20.0  # without a terminal, a plain progress line at least this often


@dataclass(frozen=True)
class TextSet:
    """The fixed texts both models are teacher-forced on, and where they came from."""

    texts: tuple[str, ...]
    source: str

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        for text in self.texts:
            digest.update(hashlib.sha256(text.encode("utf-8")).digest())
        return digest.hexdigest()


def text_set(env, *, texts: str | Path | None = None, limit: int | None = None, data_dir: str | Path | None = None) -> TextSet:
    """The lines of ``texts`` (``\\n`` escapes allowed; the first ``limit``, default all), or ``limit`` (default
    DEFAULT_TEXTS) prompts of ``env``'s first benchmark with their gold answers (its subsets, spread over them)."""
    from .common import benchmark_prompts, read_prompts

    if limit is not None and limit < 1:
        raise InputError(f"must be at least 1, got {limit}", key="--limit")
    if texts is not None:
        return TextSet(tuple(read_prompts(texts)[:limit]), f"file {texts}")
    limit = DEFAULT_TEXTS if limit is None else limit
    if not env.benchmarks:
        raise InputError("the reference environment names no benchmark; give --texts FILE", key="benchmarks")
    name, spec = next(iter(env.benchmarks.items()))
    chosen = benchmark_prompts(name, data_dir=data_dir or env.data_dir, limit=limit, subsets=spec.subsets, answers=True)
    return TextSet(tuple(chosen), f"benchmark {name}: prompts with gold answers")


@dataclass(frozen=True)
class TokenKLDReport:
    """The candidate's next-token distributions against the reference's, on a recorded text set."""

    reference: str
    candidate: str
    text_source: str
    text_sha256: str
    distributions: str  # "full vocabulary", or the top-k an endpoint gave (the KLD figures then lower bounds)
    figures: TokenKLD

    def summary(self) -> str:
        return (f"{self.candidate} against {self.reference} on {self.text_source} (sha256 {self.text_sha256[:12]}), "
                f"{self.distributions}: {self.figures.summary()}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "candidate": self.candidate,
            "text_source": self.text_source,
            "text_sha256": self.text_sha256,
            "distributions": self.distributions,
            **self.figures.to_dict(),
        }


def token_kld_path(env_ref, env_cand, sources: tuple[Path | None, Path | None] = (None, None)) -> str:
    """"full" when both engine kinds give full next-token logits here, "top-k" when both sides are served with
    prompt logprobs (an endpoint, or a managed server statrepro starts), else a one-line InputError."""
    from ..engines import engine_kind

    kinds = [engine_kind(env.engine.kind) for env in (env_ref, env_cand)]
    if all(kind.capabilities.full_logits for kind in kinds):
        return "full"
    needs = "the token KLD needs both sides with full logits (hf, llama-cpp) or both served with prompt logprobs"
    for kind, source in zip(kinds, sources):
        if kind.capabilities.in_process:
            raise InputError(f"engine kind {kind.name!r} runs in-process and the other side is an endpoint that gives only its top-k; {needs}",
                             path=source, key="engine.kind")
        if kind.capabilities.prompt_logprobs is False:
            raise InputError(f"engine kind {kind.name!r} gives neither full next-token logits nor prompt logprobs; {needs}",
                             path=source, key="engine.kind")
    return "top-k"


def compare_token_distributions(env_ref, env_cand, texts: TextSet, *, sources: tuple[Path | None, Path | None] = (None, None),
                                top_k: int = DEFAULT_TOP_K, progress=None) -> TokenKLDReport:
    """Teacher-force both models on ``texts`` and compare their next-token distributions token by token: over the
    whole vocabulary where both kinds give full logits, else over each endpoint's top ``top_k`` (a lower bound)."""
    if token_kld_path(env_ref, env_cand, sources) == "full":
        parts, lengths = _full_logits(env_ref, env_cand, texts, sources, progress)
        distributions = "full vocabulary"
    else:
        if top_k < 1:
            raise InputError(f"must be at least 1, got {top_k}", key="--top-k")
        parts, lengths = _endpoint_top_k(env_ref, env_cand, texts, sources, top_k, progress)
        distributions = f"top-{top_k} of each endpoint's prompt logprobs: the KLD figures are lower bounds"
    return TokenKLDReport(env_ref.name, env_cand.name, texts.source, texts.sha256, distributions,
                          summarize_token_kld(TokenFigures.concatenate(parts), np.array(lengths)))


def _full_logits(env_ref, env_cand, texts: TextSet, sources, progress):
    from ..engines import engine_kind

    # A token holds at least one byte, so a text's bytes (+ a BOS) bound its tokens before any tokenizer is loaded.
    max_tokens = max(len(text.encode("utf-8")) for text in texts.texts) + 2
    with ExitStack() as models:
        ref, cand = (models.enter_context(closing(engine_kind(env.engine.kind).next_token_scorer(env, max_tokens=max_tokens)))
                     for env in (env_ref, env_cand))
        if ref.vocab_size != cand.vocab_size:
            raise InputError(f"the models' vocabularies differ ({ref.vocab_size} and {cand.vocab_size} tokens): no token-level comparison",
                             path=sources[1], key="model.path")

        def figures(text: str) -> TokenFigures | None:
            ids = ref.tokenize(text)
            if len(ids) < 2:  # every position but the last predicts a known next token
                return None
            return token_figures(ref.logits(ids)[:-1], cand.logits(ids)[:-1], np.asarray(ids[1:]))

        return _score_texts(figures, texts.texts, progress)


def _endpoint_top_k(env_ref, env_cand, texts: TextSet, sources, top_k: int, progress):
    from .logprobs import side_from_env

    with ExitStack() as servers:
        ref, cand = (side_from_env(env, servers=servers, source=source) for env, source in zip((env_ref, env_cand), sources))

        def figures(text: str) -> TokenFigures | None:
            tokens, values_ref, tops_ref = ref.prompt_logprobs(text, top_k=top_k)
            tokens_cand, values_cand, tops_cand = cand.prompt_logprobs(text, top_k=top_k)
            if tokens != tokens_cand:
                raise InputError(f"the two servers tokenize text {text[:40]!r} differently: no token-level comparison", path=sources[1])
            return topk_token_figures(tops_ref, tops_cand, tokens, np.array(values_ref), np.array(values_cand)) if tokens else None

        return _score_texts(figures, texts.texts, progress)


def _score_texts(figures, texts, progress) -> tuple[list[TokenFigures], list[int]]:
    task = progress.add_task("kld: texts", total=len(texts)) if progress else None
    plain = not sys.stderr.isatty()
    last_line = time.monotonic()
    parts, lengths = [], []
    for number, text in enumerate(texts, start=1):
        part = figures(text)
        if part is not None:
            parts.append(part)
            lengths.append(part.kld.size)
        if progress:
            progress.advance(task)
        if plain and time.monotonic() - last_line >= PLAIN_PROGRESS_SECONDS:
            print(f"kld: {number}/{len(texts)} texts", file=sys.stderr, flush=True)
            last_line = time.monotonic()
    if sum(lengths) < 2:
        raise InputError("the texts hold fewer than 2 scored tokens", key="--texts")
    return parts, lengths
