"""lm-eval / evalscope config builders shared by the four-option multiple-choice benchmarks (ceval, mmlu_redux)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import BenchmarkOptions, GeneratedTasks, generation_kwargs, letter_choice_filter, write_yaml

# Primary lm-eval metrics: acc (argmax log-likelihood over the letters); acc_norm only re-weights by the length
# of the one-letter choices. Generative variants score the extracted letter with exact_match.
CHOICE_METRICS = ("acc,none", "exact_match,letter", "exact_match,default", "exact_match,none")

LETTERS = ["A", "B", "C", "D"]
GENERATIVE_STOPS = ["\n\n", "</s>", "<|im_end|>"]
GENERATIVE_MAX_GEN_TOKS = 32


def choice_task_config(
    *,
    task: str,
    test_path: Path,
    fewshot_path: Path | None,
    num_fewshot: int,
    doc_to_text: str,
    description: str,
    tags: list[str],
    generative: bool,
    options: BenchmarkOptions,
) -> dict[str, Any]:
    """One subject's task. Prepared rows carry ``target_index`` (0-3) and ``target_letter``."""
    data_files = {"test": str(test_path.resolve())}
    config: dict[str, Any] = {
        "task": task,
        "tag": tags,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": data_files},
        "test_split": "test",
        "description": description,
        "doc_to_text": doc_to_text,
        "num_fewshot": num_fewshot,
    }
    if fewshot_path is not None:
        data_files["train"] = str(fewshot_path.resolve())
        config["fewshot_split"] = "train"
        config["fewshot_config"] = {"sampler": "first_n"}
    if generative:
        config.update(
            {
                "output_type": "generate_until",
                "doc_to_target": "{{target_letter}}",
                "generation_kwargs": generation_kwargs(GENERATIVE_STOPS, GENERATIVE_MAX_GEN_TOKS, options),
                "filter_list": letter_choice_filter(),
                "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True, "ignore_case": True}],
            }
        )
    else:
        config.update(
            {
                "output_type": "multiple_choice",
                "doc_to_choice": LETTERS,
                "doc_to_target": "{{target_index}}",
                "metric_list": [
                    {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                    {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
                ],
            }
        )
    config["metadata"] = {"version": 1.0}
    return config


def grouped_tasks(
    benchmark: str,
    *,
    out_dir: str | Path,
    target_dir: Path,
    group: str,
    names: list[str],
    counts: dict[str, int],
    generative: bool,
    dataset_sha256: dict[str, str],
) -> GeneratedTasks:
    """Write the group over the subject tasks and describe what was generated."""
    group = group + ("_gen" if generative else "")
    write_group(target_dir, group, names, generative)
    return GeneratedTasks(
        benchmark=benchmark,
        task_names=names,
        include_path=str(Path(out_dir).resolve()),
        groups=[group],
        item_counts=counts,
        dataset_sha256=dataset_sha256,
    )


def write_group(target_dir: Path, group: str, tasks: list[str], generative: bool) -> None:
    """A size-weighted group over the subject tasks."""
    metric = "exact_match" if generative else "acc"
    write_yaml(
        target_dir / f"_{group}.yaml",
        {
            "group": group,
            "task": tasks,
            "aggregate_metric_list": [{"metric": metric, "aggregation": "mean", "weight_by_size": True}],
            "metadata": {"version": 1.0},
        },
    )

