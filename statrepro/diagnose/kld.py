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
from ..stats.token_kld import TokenFigures, TokenKLD, summarize_token_kld, token_figures

DEFAULT_TEXTS = 32  # MMLU-Redux prompts with gold answers: about 2,000 tokens, some 25 s of CPU for the 135M model
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
    figures: TokenKLD

    def summary(self) -> str:
        return f"{self.candidate} against {self.reference} on {self.text_source} (sha256 {self.text_sha256[:12]}): {self.figures.summary()}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "candidate": self.candidate,
            "text_source": self.text_source,
            "text_sha256": self.text_sha256,
            "distributions": "full vocabulary",
            **self.figures.to_dict(),
        }


def check_full_logits(env, source: Path | None = None):
    """``env``'s engine kind, or a one-line InputError when it gives no full next-token logits."""
    from ..engines import engine_kind

    kind = engine_kind(env.engine.kind)
    if not kind.capabilities.full_logits:
        raise InputError(
            f"engine kind {kind.name!r} gives no next-token logits over the whole vocabulary here; the token KLD needs "
            "a kind that runs the model in-process or through llama.cpp (hf, llama-cpp)",
            path=source, key="engine.kind",
        )
    return kind


def scorer(env, *, max_tokens: int, source: Path | None = None):
    """``env``'s NextTokenScorer (check_full_logits first)."""
    return check_full_logits(env, source).next_token_scorer(env, max_tokens=max_tokens)


def compare_token_distributions(env_ref, env_cand, texts: TextSet, *, sources: tuple[Path | None, Path | None] = (None, None),
                                progress=None) -> TokenKLDReport:
    """Teacher-force both models on ``texts`` and compare their next-token distributions token by token."""
    # A token holds at least one byte, so a text's bytes (+ a BOS) bound its tokens before any tokenizer is loaded.
    max_tokens = max(len(text.encode("utf-8")) for text in texts.texts) + 2
    with ExitStack() as models:
        ref = models.enter_context(closing(scorer(env_ref, max_tokens=max_tokens, source=sources[0])))
        cand = models.enter_context(closing(scorer(env_cand, max_tokens=max_tokens, source=sources[1])))
        if ref.vocab_size != cand.vocab_size:
            raise InputError(f"the models' vocabularies differ ({ref.vocab_size} and {cand.vocab_size} tokens): no token-level comparison",
                             path=sources[1], key="model.path")
        parts, lengths = _score_texts(ref, cand, texts.texts, progress)
    return TokenKLDReport(env_ref.name, env_cand.name, texts.source, texts.sha256,
                          summarize_token_kld(TokenFigures.concatenate(parts), np.array(lengths)))


def _score_texts(ref, cand, texts, progress) -> tuple[list[TokenFigures], list[int]]:
    task = progress.add_task("kld: texts", total=len(texts)) if progress else None
    plain = not sys.stderr.isatty()
    last_line = time.monotonic()
    parts, lengths = [], []
    for number, text in enumerate(texts, start=1):
        ids = ref.tokenize(text)
        if len(ids) >= 2:  # every position but the last predicts a known next token
            figures = token_figures(ref.logits(ids)[:-1], cand.logits(ids)[:-1], np.asarray(ids[1:]))
            parts.append(figures)
            lengths.append(len(ids) - 1)
        if progress:
            progress.advance(task)
        if plain and time.monotonic() - last_line >= PLAIN_PROGRESS_SECONDS:
            print(f"kld: {number}/{len(texts)} texts", file=sys.stderr, flush=True)
            last_line = time.monotonic()
    if sum(lengths) < 2:
        raise InputError("the texts hold fewer than 2 scored tokens", key="--texts")
    return parts, lengths
