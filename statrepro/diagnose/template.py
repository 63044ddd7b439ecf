"""Chat-template comparison (``statrepro template A B``).

Each side's tokenizer renders the same user prompts with ``apply_chat_template(add_generation_prompt=True)``;
the token ids are compared and the first mismatch is shown decoded on both sides. A side is a model or
tokenizer directory, a GGUF file, or an environment YAML (its engine.tokenizer, else its model.path).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from .common import load_tokenizer

CONTEXT_TOKENS = 6


@dataclass(frozen=True)
class TemplateMismatch:
    """Where the rendered token ids of one prompt first differ."""

    prompt: str
    index: int
    context_a: str
    context_b: str
    length_a: int
    length_b: int


@dataclass(frozen=True)
class TemplateResult:
    """Prompts compared and the mismatches found."""

    source_a: str
    source_b: str
    n_prompts: int
    mismatches: tuple[TemplateMismatch, ...]

    @property
    def all_match(self) -> bool:
        return not self.mismatches

    def summary(self) -> str:
        if self.all_match:
            return f"all {self.n_prompts} rendered prompts have identical token ids"
        first = self.mismatches[0]
        return (f"{len(self.mismatches)} of {self.n_prompts} rendered prompts differ; first at token {first.index}: "
                f"A {first.context_a!r} vs B {first.context_b!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"source_a": self.source_a, "source_b": self.source_b, "n_prompts": self.n_prompts, "all_match": self.all_match,
                "mismatches": [asdict(m) for m in self.mismatches], "summary": self.summary()}


def tokenizer_source(spec: str | Path) -> Path:
    """The tokenizer location behind a side: a directory, a .gguf file, or an env YAML's tokenizer/model."""
    path = Path(spec)
    if path.suffix.lower() in (".yaml", ".yml"):
        from ..envfile import load_env
        from ..models import resolve_model_path

        env = load_env(path)
        return resolve_model_path(env.engine.tokenizer or env.model.path)
    if str(spec) in ("embedded",):
        from ..models import resolve_model_path

        return resolve_model_path("embedded")
    if not path.exists():
        raise InputError("tokenizer source does not exist", path=path)
    return path


def render(tokenizer, prompt: str, source: str, system: str | None = None) -> list[int]:
    """Token ids of one user prompt rendered with the tokenizer's chat template."""
    if not getattr(tokenizer, "chat_template", None):
        raise InputError("the tokenizer has no chat template", path=source)
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    return list(rendered["input_ids"])


def compare_templates(spec_a: str | Path, spec_b: str | Path, prompts: list[str], *, system: str | None = None) -> TemplateResult:
    """Render every prompt on both sides and list the prompts whose token ids differ."""
    source_a, source_b = tokenizer_source(spec_a), tokenizer_source(spec_b)
    tokenizer_a, tokenizer_b = load_tokenizer(source_a), load_tokenizer(source_b)
    mismatches = []
    for prompt in prompts:
        ids_a, ids_b = render(tokenizer_a, prompt, str(source_a), system), render(tokenizer_b, prompt, str(source_b), system)
        if ids_a == ids_b:
            continue
        index = next((i for i, (x, y) in enumerate(zip(ids_a, ids_b)) if x != y), min(len(ids_a), len(ids_b)))
        start = max(0, index - CONTEXT_TOKENS)
        mismatches.append(TemplateMismatch(
            prompt=prompt, index=index,
            context_a=tokenizer_a.decode(ids_a[start : index + CONTEXT_TOKENS]),
            context_b=tokenizer_b.decode(ids_b[start : index + CONTEXT_TOKENS]),
            length_a=len(ids_a), length_b=len(ids_b),
        ))
    return TemplateResult(source_a=str(source_a), source_b=str(source_b), n_prompts=len(prompts), mismatches=tuple(mismatches))
