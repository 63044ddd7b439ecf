"""MMLU-Redux 2.0: 57 subjects x 100 re-annotated MMLU test items; zero-shot (there is no local dev split)."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .base import (
    EvalscopeDatasets,
    apply_limit,
    coerce_options,
    read_jsonl,
    select_subsets,
    write_jsonl,
    write_yaml,
)
from .choice import CHOICE_METRICS, LETTERS, MODE_SUFFIX, MODES, choice_letter, choice_prepared_subsets, choice_task_config, grouped_tasks
from .spec import Benchmark

GROUP = "statrepro_mmlu_redux"
DATA_FILE = "mmlu_redux_2.0_test.jsonl"
PROMPT = "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:"
GENERATIVE_PROMPT = PROMPT[: -len("Answer:")] + "Reply with the letter (A, B, C or D) of the correct option only.\nAnswer:"
# ppl: the question alone; each full option text is scored as its answer.
PPL_PROMPT = "{{question.strip()}}\nAnswer:"
PROMPTS = {"ppl": PPL_PROMPT, "clp": PROMPT, "gen": GENERATIVE_PROMPT}


def task_name(subject: str, mode: str) -> str:
    return f"{GROUP}_{subject}" + MODE_SUFFIX[mode]


class MmluRedux(Benchmark):
    name = "mmlu_redux"
    task_pattern = r"mmlu[-_]redux"
    lm_eval_metrics = CHOICE_METRICS
    modes = MODES
    prepared_subsets = choice_prepared_subsets(GROUP)
    comparable_target = staticmethod(choice_letter)
    default_num_fewshot = 0
    fewshot_source = "none (MMLU-Redux ships only test items; zero-shot)"

    def source_files(self, data_dir):
        return [self.folder(data_dir) / DATA_FILE]

    def _all_rows(self, data_dir) -> list[dict]:
        path = self.folder(data_dir) / DATA_FILE
        if not path.is_file():
            raise InputError("MMLU-Redux converted JSONL missing", path=path)
        return read_jsonl(path)

    def subsets(self, data_dir):
        return sorted({row["subject"] for row in self._all_rows(data_dir)})

    def load_items(self, data_dir, subsets=None, options=None):
        options = coerce_options(options)
        rows = self._all_rows(data_dir)
        chosen = select_subsets(subsets, sorted({row["subject"] for row in rows}), self.name)
        items: dict[str, list[dict]] = {subject: [] for subject in chosen}
        for line, row in enumerate(rows, start=1):
            subject = row["subject"]
            if subject not in items or (options.drop_flagged and row["error_type"] != "ok"):
                continue
            if len(row["choices"]) != 4 or row["answer"] not in range(4):
                raise InputError("item needs 4 choices and an answer in 0-3", path=self.source_files(data_dir)[0], line=line)
            items[subject].append(
                {
                    "row_index": len(items[subject]),
                    "source_index": row["index"],
                    "subject": subject,
                    "question": row["question"],
                    "choices": row["choices"],
                    "answer": row["answer"],
                    "target_index": row["answer"],
                    "target_letter": LETTERS[row["answer"]],
                    "error_type": row["error_type"],
                    "correct_answer": row["correct_answer"],
                    "potential_reason": row["potential_reason"],
                }
            )
        return items

    def _prepare(self, target_dir: Path, data_dir, limit, num_fewshot, subsets, options, item_rows=None):
        if self._fewshot(num_fewshot):
            raise InputError("mmlu_redux has no few-shot split in the local data; use num_fewshot 0", key="benchmarks.mmlu_redux.num_fewshot")
        prepared = {}
        for subject, rows in self.load_items(data_dir, subsets, options).items():
            test = apply_limit(rows, limit, item_rows, subject)
            prepared[subject] = (write_jsonl(target_dir / f"{subject}_test.jsonl", test), len(test))
        return prepared

    def write_lm_eval_tasks(self, out_dir, *, data_dir, limit=None, num_fewshot=None, subsets=None, mode="clp", options=None, item_rows=None):
        options = coerce_options(options)
        target_dir = Path(out_dir) / self.name
        prepared = self._prepare(target_dir / "data", data_dir, limit, num_fewshot, subsets, options, item_rows)
        names, counts = [], {}
        for subject, (test_path, count) in prepared.items():
            name = task_name(subject, mode)
            config = choice_task_config(
                task=name,
                test_path=test_path,
                fewshot_path=None,
                num_fewshot=0,
                doc_to_text=PROMPTS[mode],
                description=f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n",
                tags=[],
                mode=mode,
                options=options,
                option_texts="{{choices}}",
            )
            write_yaml(target_dir / f"{name}.yaml", config)
            names.append(name)
            counts[name] = count
        return grouped_tasks(
            self.name,
            out_dir=out_dir,
            target_dir=target_dir,
            group=GROUP,
            names=names,
            counts=counts,
            mode=mode,
            dataset_sha256=self.dataset_sha256(data_dir),
        )

    def evalscope_dataset_args(self, out_dir, *, data_dir, limit=None, num_fewshot=None, subsets=None, options=None, item_rows=None):
        options = coerce_options(options)
        target_dir = Path(out_dir) / "evalscope" / self.name
        prepared = self._prepare(target_dir, data_dir, limit, num_fewshot, subsets, options, item_rows)
        # evalscope's mmlu_redux adapter reads a local HF dataset with one config per subject and a test split.
        card = ["---", "configs:"]
        for subject in prepared:
            card += [f"- config_name: {subject}", "  data_files:", "  - split: test", f"    path: {subject}_test.jsonl"]
        (target_dir / "README.md").write_text("\n".join(card + ["---", ""]), encoding="utf-8")
        return EvalscopeDatasets(
            benchmark=self.name,
            datasets=["mmlu_redux"],
            dataset_args={"mmlu_redux": {"dataset_id": str(target_dir.resolve()), "subset_list": list(prepared), "few_shot_num": 0}},
            item_counts={subject: count for subject, (_, count) in prepared.items()},
            dataset_sha256=self.dataset_sha256(data_dir),
        )
