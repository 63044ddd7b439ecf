"""GSM8K: test split scored by exact match of the final number; exemplars from train."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .base import (
    EvalscopeDatasets,
    GeneratedTasks,
    apply_limit,
    coerce_options,
    generation_kwargs,
    read_jsonl,
    select_subsets,
    write_jsonl,
    write_yaml,
)
from .spec import Benchmark

TASK_NAME = "statrepro_gsm8k"
SUBSET = "main"
STOPS = ["Question:", "</s>", "<|im_end|>"]
DEFAULT_MAX_GEN_TOKS = 256


def final_answer(solution: str) -> str:
    """The gold number after the last '#### ' marker, without thousands separators."""
    if "####" not in solution:
        raise ValueError("GSM8K solution has no '####' final-answer marker")
    return solution.rsplit("####", 1)[1].strip().replace(",", "")


class Gsm8k(Benchmark):
    name = "gsm8k"
    task_pattern = r"gsm8k"
    # flexible-extract takes the last number of the answer, so it measures the answer rather than compliance
    # with the "#### N" format; strict-match sits near 0 for small and chat models and then has no power.
    lm_eval_metrics = ("exact_match,flexible-extract", "exact_match,strict-match")
    prepared_subsets = {"lm-eval": (TASK_NAME, SUBSET), "evalscope": (SUBSET, SUBSET)}
    default_num_fewshot = 5
    fewshot_source = "first rows of train.jsonl"

    def comparable_target(self, target):
        # lm-eval logs the whole solution (doc_to_target), evalscope only the number after its '####' marker.
        return final_answer(target if "####" in target else f"#### {target}") or None

    def source_files(self, data_dir):
        folder = self.folder(data_dir)
        return [folder / "test.jsonl", folder / "train.jsonl"]

    def subsets(self, data_dir):
        return [SUBSET]

    def _rows(self, path: Path) -> list[dict]:
        if not path.is_file():
            raise InputError("GSM8K file missing", path=path)
        rows = []
        for index, row in enumerate(read_jsonl(path)):
            try:
                target = final_answer(row["answer"])
            except (KeyError, TypeError, ValueError) as error:
                raise InputError(f"bad GSM8K row: {error}", path=path, line=index + 1) from None
            rows.append({"row_index": index, "question": row["question"], "answer": row["answer"], "target": target})
        return rows

    def load_items(self, data_dir, subsets=None, options=None):
        select_subsets(subsets, [SUBSET], self.name)
        return {SUBSET: self._rows(self.folder(data_dir) / "test.jsonl")}

    def _prepare(self, target_dir: Path, data_dir, limit, num_fewshot, item_rows=None) -> tuple[Path, Path | None, int, int]:
        shots = self._fewshot(num_fewshot)
        test = apply_limit(self.load_items(data_dir)[SUBSET], limit, item_rows, SUBSET)
        test_path = write_jsonl(target_dir / "main_test.jsonl", test)
        train_path = None
        if shots:
            train = self._rows(self.folder(data_dir) / "train.jsonl")[:shots]
            train_path = write_jsonl(target_dir / "main_train.jsonl", train)
        return test_path, train_path, len(test), shots

    def write_lm_eval_tasks(self, out_dir, *, data_dir, limit=None, num_fewshot=None, subsets=None, mode="gen", options=None, item_rows=None):
        options = coerce_options(options)
        select_subsets(subsets, [SUBSET], self.name)
        target_dir = Path(out_dir) / self.name
        test_path, train_path, count, shots = self._prepare(target_dir / "data", data_dir, limit, num_fewshot, item_rows)
        data_files = {"test": str(test_path.resolve())}
        config = {
            "task": TASK_NAME,
            "dataset_path": "json",
            "dataset_kwargs": {"data_files": data_files},
            "output_type": "generate_until",
            "test_split": "test",
            "doc_to_text": "Question: {{question}}\nAnswer:",
            # Exemplars show the full worked solution; scoring strips everything before '#### ' on both sides.
            "doc_to_target": "{{answer}}",
            "num_fewshot": shots,
            "metric_list": [
                {
                    "metric": "exact_match",
                    "aggregation": "mean",
                    "higher_is_better": True,
                    "ignore_case": True,
                    "ignore_punctuation": False,
                    "regexes_to_ignore": [",", r"\$", "(?s).*#### ", r"\.$"],
                }
            ],
            "generation_kwargs": generation_kwargs(STOPS, DEFAULT_MAX_GEN_TOKS, options),
            "filter_list": [
                # strict: the model must itself write '#### <number>'
                {"name": "strict-match", "filter": [
                    {"function": "regex", "regex_pattern": r"#### (\-?[0-9\.\,]+)"},
                    {"function": "take_first"},
                ]},
                # flexible: the last number-like token anywhere in the generation
                {"name": "flexible-extract", "filter": [
                    {"function": "regex", "group_select": -1, "regex_pattern": r"(-?[$0-9.,]{2,})|(-?[0-9]+)"},
                    {"function": "take_first"},
                ]},
            ],
            "metadata": {"version": 1.0, "source": "statrepro local gsm8k"},
        }
        if train_path is not None:
            data_files["train"] = str(train_path.resolve())
            config["fewshot_split"] = "train"
            config["fewshot_config"] = {"sampler": "first_n"}
        write_yaml(target_dir / f"{TASK_NAME}.yaml", config)
        return GeneratedTasks(
            benchmark=self.name,
            task_names=[TASK_NAME],
            include_path=str(Path(out_dir).resolve()),
            item_counts={TASK_NAME: count},
            dataset_sha256=self.dataset_sha256(data_dir),
        )

    def evalscope_dataset_args(self, out_dir, *, data_dir, limit=None, num_fewshot=None, subsets=None, options=None, item_rows=None):
        select_subsets(subsets, [SUBSET], self.name)
        target_dir = Path(out_dir) / "evalscope" / self.name
        _, _, count, shots = self._prepare(target_dir, data_dir, limit, num_fewshot, item_rows)
        # evalscope's own gsm8k adapter (boxed-answer prompt, numeric accuracy) reads the folder as a local
        # HF dataset whose README declares the 'main' config and its split files.
        splits = ["test"] + (["train"] if shots else [])
        card = "---\nconfigs:\n- config_name: main\n  data_files:\n" + "".join(
            f"  - split: {split}\n    path: main_{split}.jsonl\n" for split in splits
        ) + "---\n"
        (target_dir / "README.md").write_text(card, encoding="utf-8")
        return EvalscopeDatasets(
            benchmark=self.name,
            datasets=["gsm8k"],
            dataset_args={"gsm8k": {"dataset_id": str(target_dir.resolve()), "subset_list": [SUBSET], "few_shot_num": shots}},
            item_counts={SUBSET: count},
            dataset_sha256=self.dataset_sha256(data_dir),
        )
