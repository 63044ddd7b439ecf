"""Shared pieces of the benchmark specs: options, the generated-task result, file helpers.

Every spec reads the local benchmark files, filters them, and writes *prepared* JSONL copies into a work
directory. Both harnesses then read only those copies, so lm-eval and evalscope see the same items in the
same order, and the row index of an item in its prepared file is its stable ``doc_id``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from ..errors import InputError, did_you_mean, validation_error

DEFAULT_LIVEBENCH_RELEASE = "2024-11-25"


class BenchmarkOptions(BaseModel):
    """Knobs the run path passes to a benchmark's task generators."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    max_gen_toks: int | None = None
    """Generation budget for generative tasks; None uses the benchmark's default."""
    generation_kwargs: dict[str, Any] = {}
    """Merged last into every generative task's lm-eval ``generation_kwargs`` (e.g. temperature, do_sample, top_p, seed)."""
    extra_stops: list[str] = []
    """Stop strings appended to the benchmark's own ``until`` list."""
    drop_flagged: bool = True
    """mmlu_redux only: keep only items whose annotated error_type is "ok"."""
    livebench_release: str = DEFAULT_LIVEBENCH_RELEASE
    """livebench only: score the questions in force at this LiveBench release date (YYYY-MM-DD)."""

    @field_validator("max_gen_toks")
    @classmethod
    def _positive(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("max_gen_toks must be at least 1")
        return value


def coerce_options(options: BenchmarkOptions | dict | None) -> BenchmarkOptions:
    """Accept options as a model, a plain dict (from a config file) or None."""
    if options is None:
        return BenchmarkOptions()
    if isinstance(options, BenchmarkOptions):
        return options
    try:
        return BenchmarkOptions.model_validate(options)
    except ValidationError as error:
        raise validation_error(error, BenchmarkOptions, context="invalid benchmark options: ") from None


@dataclass(frozen=True)
class GeneratedTasks:
    """What a generator wrote: the names to run, where, and what it left out and why."""

    benchmark: str
    task_names: list[str]
    """Leaf task names (lm-eval ``--tasks``) or evalscope subset names, one per scored subset."""
    include_path: str
    """Directory to pass as lm-eval ``--include_path`` (or holding the evalscope files)."""
    groups: list[str] = field(default_factory=list)
    item_counts: dict[str, int] = field(default_factory=dict)
    """Items per task after filtering and limit."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Subset -> reason it is not generated (e.g. unsupported LiveBench category)."""
    dataset_sha256: dict[str, str] = field(default_factory=dict)
    """Source file (relative to the data dir) -> sha256, for the run manifest."""

    def summary(self) -> str:
        text = f"{self.benchmark}: {len(self.task_names)} task(s), {sum(self.item_counts.values())} item(s)"
        if self.skipped:
            text += "; skipped " + ", ".join(f"{name} ({why})" for name, why in sorted(self.skipped.items()))
        return text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EvalscopeDatasets:
    """evalscope TaskConfig pieces: ``datasets`` and ``dataset_args`` for the prepared local copies."""

    benchmark: str
    datasets: list[str]
    dataset_args: dict[str, dict[str, Any]]
    item_counts: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    dataset_sha256: dict[str, str] = field(default_factory=dict)
    needs_rescoring: bool = False
    """True when evalscope's own metric is not the benchmark's (``Benchmark.evalscope_rescored``): reading the
    reviews rescores each prediction with the benchmark's ``score_evalscope_prediction``."""

    def summary(self) -> str:
        text = f"{self.benchmark}: evalscope {', '.join(self.datasets)}; {sum(self.item_counts.values())} item(s)"
        if self.needs_rescoring:
            text += "; predictions rescored by statrepro"
        return text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ScoredPrediction(NamedTuple):
    """statrepro's own score of one harness prediction."""

    metric: str
    score: float
    target: str
    """The reference answer, for the records' target column."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise InputError(f"not valid JSON ({error.msg})", path=path, line=line_number) from None
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    path.write_text(text, encoding="utf-8")
    return path


class FunctionRef(str):
    """A YAML value lm-eval must resolve as ``!function module.name``."""


class _TaskDumper(yaml.SafeDumper):
    pass


_TaskDumper.add_representer(FunctionRef, lambda dumper, value: dumper.represent_scalar("!function", str(value)))


def write_yaml(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.dump(config, Dumper=_TaskDumper, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


ItemRows = Mapping[str, Sequence[int]]
"""Benchmark subset -> the row indices (after the limit) to run; the item-sequential design runs blocks of items."""


def apply_limit(rows: list[dict], limit: int | None, item_rows: ItemRows | None = None, subset: str = "") -> list[dict]:
    """The first ``limit`` rows (all when None), then, for a run of selected rows, only ``item_rows[subset]`` of
    those. Item order never changes, so doc_ids stay stable; a selection's doc_ids are positions in it
    (``statrepro.run.jobs`` maps them back to row indices)."""
    if limit is not None:
        if limit < 1:
            raise InputError(f"limit must be at least 1, got {limit}", key="limit")
        rows = rows[:limit]
    if not item_rows:
        return rows
    selected = item_rows[subset]
    outside = [row for row in selected if not 0 <= row < len(rows)]
    if outside:
        raise InputError(f"row {outside[0]} is outside the {len(rows)} rows of subset {subset!r} (after the limit)",
                         key=f"item_rows.{subset}")
    return [rows[row] for row in sorted(selected)]


def select_subsets(requested: list[str] | None, available: list[str], benchmark: str) -> list[str]:
    """Requested subsets in the benchmark's canonical order; unknown names are an InputError."""
    if not requested:
        return list(available)
    unknown = [name for name in requested if name not in available]
    if unknown:
        hint = did_you_mean(unknown[0], available, list_known=False)
        raise InputError(f"unknown {benchmark} subset {unknown[0]!r}{hint}", key=f"benchmarks.{benchmark}.subsets")
    return [name for name in available if name in requested]


def generation_kwargs(until: list[str], max_gen_toks: int, options: BenchmarkOptions) -> dict[str, Any]:
    """Greedy decoding by default; the run path's ``options.generation_kwargs`` override any key."""
    kwargs: dict[str, Any] = {
        "until": list(until) + [stop for stop in options.extra_stops if stop not in until],
        "do_sample": False,
        "temperature": 0.0,
        "max_gen_toks": options.max_gen_toks or max_gen_toks,
    }
    kwargs.update(options.generation_kwargs)
    return kwargs


def letter_choice_filter() -> list[dict[str, Any]]:
    """lm-eval filter taking the first standalone A-D letter of a generation."""
    return [
        {
            "name": "letter",
            "filter": [
                {"function": "regex", "regex_pattern": r"\b([ABCD])\b"},
                {"function": "take_first"},
            ],
        }
    ]
