"""Toy arithmetic: one-line questions with a number as the answer, scored by exact match.

It exists to show that a benchmark is one module plus one registry line; it is removed again."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .base import (
    EvalscopeDatasets, GeneratedTasks, apply_limit, coerce_options, generation_kwargs, read_jsonl, select_subsets, write_jsonl,
    write_yaml,
)
from .spec import Benchmark

TASK_NAME = "statrepro_toy_arith"
SUBSET = "main"


class ToyArith(Benchmark):
    name = "toy_arith"
    task_pattern = r"toy[-_]arith"
    lm_eval_metrics = ("exact_match,none",)
    default_num_fewshot = 0
    fewshot_source = "none (zero-shot)"

    def source_files(self, data_dir):
        return [self.folder(data_dir) / "test.jsonl"]

    def subsets(self, data_dir):
        return [SUBSET]

    def load_items(self, data_dir, subsets=None, options=None):
        select_subsets(subsets, [SUBSET], self.name)
        path = self.folder(data_dir) / "test.jsonl"
        if not path.is_file():
            raise InputError("toy_arith file missing", path=path)
        return {SUBSET: [{"row_index": i, "question": row["question"], "target": str(row["answer"])} for i, row in enumerate(read_jsonl(path))]}

    def write_lm_eval_tasks(self, out_dir, *, data_dir, limit=None, num_fewshot=None, subsets=None, generative=True, options=None):
        options = coerce_options(options)
        self._fewshot(num_fewshot, available=0)
        target_dir = Path(out_dir) / self.name
        items = apply_limit(self.load_items(data_dir, subsets)[SUBSET], limit)
        test_path = write_jsonl(target_dir / "data" / "test.jsonl", items)
        write_yaml(target_dir / f"{TASK_NAME}.yaml", {
            "task": TASK_NAME,
            "dataset_path": "json",
            "dataset_kwargs": {"data_files": {"test": str(test_path.resolve())}},
            "output_type": "generate_until",
            "test_split": "test",
            "doc_to_text": "{{question}} =",
            "doc_to_target": "{{target}}",
            "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
            "generation_kwargs": generation_kwargs(["\n"], 8, options),
        })
        return GeneratedTasks(self.name, [TASK_NAME], str(Path(out_dir).resolve()), item_counts={TASK_NAME: len(items)},
                              dataset_sha256=self.dataset_sha256(data_dir))

    def evalscope_dataset_args(self, out_dir, *, data_dir, limit=None, num_fewshot=None, subsets=None, options=None) -> EvalscopeDatasets:
        raise InputError("toy_arith runs through lm-eval only", key="harness.name")
