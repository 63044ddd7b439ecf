"""The interface every benchmark module implements, plus data-dir resolution."""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import ClassVar

from ..errors import InputError
from .base import BenchmarkOptions, ItemRows, EvalscopeDatasets, GeneratedTasks, ScoredPrediction, sha256_file

DATA_DIR_ENV = "STATREPRO_DATA_DIR"


def resolve_data_dir(explicit: str | Path | None, benchmarks: Iterable[str] | str | None = None) -> Path:
    """The benchmark data root: ``explicit`` (flag or config key) > $STATREPRO_DATA_DIR > InputError.

    When ``benchmarks`` is given, each must have its folder under the root.
    """
    if explicit is not None and str(explicit).strip():
        root, origin = Path(explicit).expanduser(), "--data-dir / data_dir"
    elif os.environ.get(DATA_DIR_ENV, "").strip():
        root, origin = Path(os.environ[DATA_DIR_ENV]).expanduser(), f"${DATA_DIR_ENV}"
    else:
        raise InputError(f"no benchmark data dir: pass --data-dir, set data_dir in the config, or set ${DATA_DIR_ENV}", key="data_dir")
    if not root.is_dir():
        raise InputError(f"benchmark data dir (from {origin}) does not exist or is not a directory", path=root, key="data_dir")
    names = [benchmarks] if isinstance(benchmarks, str) else list(benchmarks or [])
    for name in names:
        if not (root / name).is_dir():
            raise InputError(f"data dir has no folder for benchmark {name!r} (expected {root / name})", path=root, key="data_dir")
    return root


class Benchmark(ABC):
    """One benchmark: its names, where its files are, which subsets it has, and how to turn it into harness tasks.

    A new benchmark is a subclass in its own module, listed in ``statrepro.benchmarks.BENCHMARKS`` (or, in a
    plugin, registered under the entry-point group ``statrepro.benchmarks``).
    """

    name: ClassVar[str]
    """The benchmark's name in environment files, records and verdicts; also its folder in the data dir."""
    task_pattern: ClassVar[str]
    """Regex matching the start of a harness task or subset name that belongs to this benchmark."""
    evalscope_names: ClassVar[tuple[str, ...]] = ()
    """evalscope benchmark names of this benchmark besides ``name`` (evalscope's own adapters)."""
    lm_eval_metrics: ClassVar[tuple[str, ...]] = ()
    """Primary lm-eval "<metric>,<filter>" pairs, in order of preference (else the first a task reports)."""
    evalscope_rescored: ClassVar[bool] = False
    """True when evalscope only generates (a custom dataset) and ``score_evalscope_prediction`` scores on read."""
    modes: ClassVar[tuple[str, ...]] = ("gen",)
    """Evaluation modes (``benchmarks.<name>.mode``): multiple choice has ppl, clp and gen (benchmarks/choice.py)."""
    prepared_subsets: ClassVar[dict[str, tuple[str, str]]] = {}
    """How each harness names the subsets of this benchmark's prepared tasks: harness -> (regex the records'
    ``subset`` fully matches, template giving the benchmark subset, as ``re.Match.expand`` takes it)."""
    default_num_fewshot: int
    fewshot_source: str
    """Human-readable origin of few-shot exemplars (shown in docs and manifests)."""

    def folder(self, data_dir: str | Path | None) -> Path:
        return resolve_data_dir(data_dir, self.name) / self.name

    @abstractmethod
    def source_files(self, data_dir: str | Path | None) -> list[Path]:
        """The local files this benchmark reads."""

    @abstractmethod
    def subsets(self, data_dir: str | Path | None) -> list[str]:
        """All subset names in canonical order."""

    @abstractmethod
    def load_items(
        self, data_dir: str | Path | None, subsets: list[str] | None = None, options: BenchmarkOptions | dict | None = None
    ) -> dict[str, list[dict]]:
        """Subset -> scored items after filtering (no limit), in stable file order."""

    def dataset_sha256(self, data_dir: str | Path | None) -> dict[str, str]:
        """Source file path (relative to the data dir) -> sha256, for the run manifest."""
        root = resolve_data_dir(data_dir, self.name)
        return {str(path.relative_to(root)): sha256_file(path) for path in self.source_files(data_dir)}

    @abstractmethod
    def write_lm_eval_tasks(
        self,
        out_dir: str | Path,
        *,
        data_dir: str | Path | None,
        limit: int | None = None,
        num_fewshot: int | None = None,
        subsets: list[str] | None = None,
        mode: str = "gen",
        options: BenchmarkOptions | dict | None = None,
        item_rows: ItemRows | None = None,
    ) -> GeneratedTasks:
        """Write offline lm-eval task YAMLs (and prepared JSONL) under ``out_dir/<benchmark>``, scored in
        ``mode`` (one of ``modes``). ``item_rows`` runs only those rows of each subset (every chosen subset
        needs one)."""

    @abstractmethod
    def evalscope_dataset_args(
        self,
        out_dir: str | Path,
        *,
        data_dir: str | Path | None,
        limit: int | None = None,
        num_fewshot: int | None = None,
        subsets: list[str] | None = None,
        options: BenchmarkOptions | dict | None = None,
        item_rows: ItemRows | None = None,
    ) -> EvalscopeDatasets:
        """Write local evalscope copies under ``out_dir/evalscope/<benchmark>`` and return TaskConfig args;
        ``item_rows`` as for ``write_lm_eval_tasks``."""

    def prepared_row_ids(
        self,
        item_counts: Mapping[str, int],
        item_rows: ItemRows | None,
        *,
        data_dir: str | Path | None,
        subsets: list[str] | None,
        options: BenchmarkOptions | dict | None = None,
    ) -> dict[str, list[int]]:
        """Harness task or subset name -> the row index of each of its prepared rows, for a run of ``item_rows``.

        The harness names (``item_counts`` of the generated tasks, in the order written) hold the chosen
        subsets in their canonical order; each must hold exactly its subset's selected rows, else the
        correspondence is not the one assumed and the run is refused rather than mis-keyed. A full run
        (``item_rows`` None) keeps its keys: {}."""
        if not item_rows:
            return {}
        chosen = [subset for subset in self.load_items(data_dir, subsets, options) if item_rows.get(subset)]
        counts = list(item_counts.values())
        if len(chosen) != len(counts) or any(count != len(item_rows[subset]) for subset, count in zip(chosen, counts)):
            raise InputError(
                f"{self.name}: the prepared tasks {dict(item_counts)} do not hold the selected rows of {chosen}",
                key=f"benchmarks.{self.name}.item_rows",
            )
        return {name: sorted(item_rows[subset]) for name, subset in zip(item_counts, chosen)}

    def score_evalscope_prediction(self, prediction: str, *, target: str, prompt: str) -> ScoredPrediction:
        """statrepro's score of one prediction from this benchmark's evalscope custom-dataset copies, ``target`` and
        ``prompt`` as the review holds them (only where ``evalscope_rescored``)."""
        raise NotImplementedError(f"{self.name}: evalscope scores its predictions itself")

    def item_identity(self, harness: str, subset: str, item_key: str) -> str | None:
        """The item's identity ``<benchmark subset>/<row>`` when ``harness`` scored it from this benchmark's prepared
        files (the row index is the doc_id on every harness, see base.py); None for anything else, e.g. a harness's
        own task of the same benchmark, whose rows need not be statrepro's."""
        pattern, template = self.prepared_subsets.get(harness, ("", ""))
        match = re.fullmatch(pattern, subset) if pattern else None
        row = item_key.removeprefix(subset + "/")
        if match is None or row == item_key or not row.isdigit():
            return None
        return f"{match.expand(template)}/{row}"

    def comparable_target(self, target: str) -> str | None:
        """The reference answer in one form across harnesses, to check that paired items are the same items;
        None when it cannot be compared."""
        return None

    def _fewshot(self, num_fewshot: int | None, available: int | None = None) -> int:
        count = self.default_num_fewshot if num_fewshot is None else num_fewshot
        if count < 0:
            raise InputError(f"num_fewshot must be >= 0, got {count}", key=f"benchmarks.{self.name}.num_fewshot")
        if available is not None and count > available:
            raise InputError(
                f"{self.name} has only {available} few-shot exemplars ({self.fewshot_source}), {count} requested",
                key=f"benchmarks.{self.name}.num_fewshot",
            )
        return count
