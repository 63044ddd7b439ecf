"""Markdown reference pages generated from pydantic models: field names, types, defaults and docstrings.

The committed docs/config-reference.md and docs/verdict-schema.md are this module's output
(``python scripts/gen_config_reference.py``); a test keeps them from drifting.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic_core import PydanticUndefined

_BOUNDS = ((annotated_types.Ge, "ge", "≥"), (annotated_types.Gt, "gt", ">"), (annotated_types.Le, "le", "≤"), (annotated_types.Lt, "lt", "<"))


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _anchor(model: type[BaseModel]) -> str:
    return model.__name__.lower()


def type_name(annotation: Any) -> str:
    """A short, readable name of a type annotation, linking nested models to their section."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is type(None):
        return "null"
    if _is_model(annotation):
        return f"[{annotation.__name__}](#{_anchor(annotation)})"
    if annotation is SecretStr:
        return "secret string"
    if annotation is dict:
        return "map"
    if origin is typing.Literal:
        return " | ".join(json.dumps(arg) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(arg) for arg in args)
    if origin in (list, tuple, set):
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"map of {type_name(args[0])} to {type_name(args[1])}" if args else "map"
    return getattr(annotation, "__name__", str(annotation))


def _bounds(metadata: list) -> str:
    parts = []
    for constraint in metadata:
        for kind, attribute, symbol in _BOUNDS:
            if isinstance(constraint, kind):
                parts.append(f"{symbol} {getattr(constraint, attribute)}")
    return ", ".join(parts)


def _plain(value: Any) -> Any:
    """A default as YAML/JSON data; nested models show only what differs from their own defaults."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_defaults=True)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def default_text(info) -> str:
    """The field's default as it would be written in the file, or 'required'."""
    if info.is_required():
        return "required"
    value = info.default_factory() if info.default_factory is not None else info.default
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return f"see [{type(value).__name__}](#{_anchor(type(value))})"
    return f"`{json.dumps(_plain(value), ensure_ascii=False)}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    if _is_model(annotation):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _nested_models(arg)]


def _models_in_order(root: type[BaseModel]) -> list[type[BaseModel]]:
    """The root model and every model nested in it, each once, in order of first appearance."""
    ordered: list[type[BaseModel]] = []
    pending = [root]
    while pending:
        model = pending.pop(0)
        if model in ordered:
            continue
        ordered.append(model)
        for info in model.model_fields.values():
            pending += _nested_models(info.annotation)
    return ordered


def render_model_reference(root: type[BaseModel], *, title: str, intro: str) -> str:
    """One Markdown page: a section per model with a table of its fields."""
    lines = [f"# {title}", "", intro, ""]
    for model in _models_in_order(root):
        lines += [f"## {model.__name__}", ""]
        doc = model.__dict__.get("__doc__")
        if doc:
            lines += [" ".join(doc.split()), ""]
        lines += ["| field | type | default | description |", "|---|---|---|---|"]
        for name, info in model.model_fields.items():
            kind = type_name(info.annotation)
            bounds = _bounds(info.metadata)
            if bounds:
                kind += f" ({bounds})"
            lines.append(f"| `{name}` | {_cell(kind)} | {_cell(default_text(info))} | {_cell(info.description or '')} |")
        lines.append("")
    return "\n".join(lines)


GENERATED_NOTE = "Generated from the pydantic models by `scripts/gen_config_reference.py`; do not edit by hand."


def render_engine_kinds() -> str:
    """The registered engine kinds and what statrepro relies on each to do."""
    from ..engines.kinds import ENGINE_KINDS

    def flag(value: bool | None) -> str:
        return {True: "yes", False: "no", None: "not verified"}[value]

    lines = [
        "## Engine kinds", "",
        "`engine.kind` takes one of these (`statrepro.engines.kinds`). An unset `generation.repeat_penalty` gets the "
        "engine's default, shown here, and an unset `engine.concurrency` the kind's default concurrency.", "",
        "| kind | what it is | managed | prompt log-likelihoods | per-request seed | default repeat_penalty | default concurrency |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in ENGINE_KINDS.values():
        caps = kind.capabilities
        lines.append(
            f"| `{kind.name}` | {_cell(' '.join((type(kind).__doc__ or '').split()))} | {flag(kind.managed)} | "
            f"{flag(caps.prompt_logprobs)} | {flag(caps.request_seed)} | {kind.default_repeat_penalty or 'unknown'} | {kind.default_concurrency} |"
        )
    return "\n".join(lines) + "\n"


def reference_docs() -> dict[str, str]:
    """File name under docs/ -> generated Markdown."""
    from ..config import EnvConfig
    from ..verdict_schema import SCHEMA_VERSION, VerdictJson

    return {
        "config-reference.md": render_model_reference(
            EnvConfig,
            title="Environment file reference",
            intro=(
                "An environment file is a YAML mapping that describes one environment: the model, the engine, "
                "the harness, the sampling settings and the benchmarks. Unknown keys are errors. Secrets "
                "(`engine.api_key`) are redacted wherever a config is written out.\n\n" + GENERATED_NOTE
            ),
        )
        + "\n"
        + render_engine_kinds(),
        "verdict-schema.md": render_model_reference(
            VerdictJson,
            title=f"Verdict JSON reference (schema_version {SCHEMA_VERSION})",
            intro=(
                "`statrepro analyze --json` and every report write this file (`verdict.json`). "
                "`statrepro schema` prints the same schema as JSON Schema.\n\n" + GENERATED_NOTE
            ),
        ),
    }
