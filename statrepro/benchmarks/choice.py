"""lm-eval / evalscope config builders shared by the four-option multiple-choice benchmarks (ceval, mmlu_redux)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .base import BenchmarkOptions, GeneratedTasks, generation_kwargs, letter_choice_filter, write_yaml

# The evaluation modes of a multiple-choice benchmark (the OpenCompass FAQ's names), set per benchmark as ``mode``:
#   ppl: the option text with the highest length-normalised log-likelihood after the question (lowest perplexity);
#   clp: the option label (A-D) with the highest next-token log-likelihood after question + labelled options;
#   gen: generate an answer, then extract the letter.
MODES = ("ppl", "clp", "gen")

# Primary lm-eval metrics: acc (clp: argmax log-likelihood over the one-token letters); acc_norm (ppl: the same
# normalised by the option's length, i.e. lowest perplexity; ppl tasks list only acc_norm). Generative variants
# score the extracted letter with exact_match.
CHOICE_METRICS = ("acc,none", "acc_norm,none", "exact_match,letter", "exact_match,default", "exact_match,none")

MODE_SUFFIX = {"ppl": "_ppl", "clp": "", "gen": "_gen"}

LETTERS = ["A", "B", "C", "D"]
GENERATIVE_STOPS = ["\n\n", "</s>", "<|im_end|>"]
GENERATIVE_MAX_GEN_TOKS = 32


def choice_prepared_subsets(group: str) -> dict[str, tuple[str, str]]:
    """``Benchmark.prepared_subsets`` of a choice benchmark: lm-eval runs ``<group>_<subject>`` plus the mode's
    suffix, evalscope names the subject itself."""
    suffixes = "|".join(re.escape(suffix) for suffix in MODE_SUFFIX.values() if suffix)
    return {"lm-eval": (rf"{re.escape(group)}_(.+?)(?:{suffixes})?", r"\1"), "evalscope": ("(.+)", r"\1")}


def choice_letter(target: str) -> str | None:
    """A reference answer as its option letter: lm-eval logs the option index (ppl, clp) or the letter (gen),
    evalscope the letter; None for anything else (evalscope's list of several accepted letters)."""
    text = target.strip()
    if text.isdigit() and int(text) < len(LETTERS):
        return LETTERS[int(text)]
    return text if text in LETTERS else None


def choice_task_config(
    *,
    task: str,
    test_path: Path,
    fewshot_path: Path | None,
    num_fewshot: int,
    doc_to_text: str,
    description: str,
    tags: list[str],
    mode: str,
    options: BenchmarkOptions,
    option_texts: str | None = None,
) -> dict[str, Any]:
    """One subject's task. Prepared rows carry ``target_index`` (0-3) and ``target_letter``; ``option_texts`` is
    the Jinja expression of the four option texts (ppl mode scores them as continuations of ``doc_to_text``)."""
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
    if mode == "gen":
        config.update(
            {
                "output_type": "generate_until",
                "doc_to_target": "{{target_letter}}",
                "generation_kwargs": generation_kwargs(GENERATIVE_STOPS, GENERATIVE_MAX_GEN_TOKS, options),
                "filter_list": letter_choice_filter(),
                "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True, "ignore_case": True}],
            }
        )
    elif mode == "ppl":
        config.update(
            {
                "output_type": "multiple_choice",
                "doc_to_choice": option_texts,
                "doc_to_target": "{{target_index}}",
                "metric_list": [{"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}],
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
    mode: str,
    dataset_sha256: dict[str, str],
) -> GeneratedTasks:
    """Write the group over the subject tasks and describe what was generated."""
    group = group + MODE_SUFFIX[mode]
    write_group(target_dir, group, names, mode)
    return GeneratedTasks(
        benchmark=benchmark,
        task_names=names,
        include_path=str(Path(out_dir).resolve()),
        groups=[group],
        item_counts=counts,
        dataset_sha256=dataset_sha256,
    )


def write_group(target_dir: Path, group: str, tasks: list[str], mode: str) -> None:
    """A size-weighted group over the subject tasks."""
    metric = {"gen": "exact_match", "ppl": "acc_norm", "clp": "acc"}[mode]
    write_yaml(
        target_dir / f"_{group}.yaml",
        {
            "group": group,
            "task": tasks,
            "aggregate_metric_list": [{"metric": metric, "aggregation": "mean", "weight_by_size": True}],
            "metadata": {"version": 1.0},
        },
    )

