"""C-Eval: 52 subjects, val split scored (test has no public answers), dev rows as 5-shot exemplars."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..errors import InputError
from .base import EvalscopeDatasets, apply_limit, coerce_options, select_subsets, write_jsonl, write_yaml
from .choice import CHOICE_METRICS, LETTERS, MODE_SUFFIX, MODES, choice_letter, choice_prepared_subsets, choice_task_config, grouped_tasks
from .spec import Benchmark

GROUP = "statrepro_ceval"
PROMPT = "{{question.strip()}}\nA. {{A}}\nB. {{B}}\nC. {{C}}\nD. {{D}}\n答案："
# ppl: the question alone; each full option text is scored as its answer.
PPL_PROMPT = "{{question.strip()}}\n答案："


def task_name(subject: str, mode: str) -> str:
    return f"{GROUP}_{subject}" + MODE_SUFFIX[mode]


class Ceval(Benchmark):
    name = "ceval"
    task_pattern = r"ceval"
    lm_eval_metrics = CHOICE_METRICS
    modes = MODES
    prepared_subsets = choice_prepared_subsets(GROUP)
    comparable_target = staticmethod(choice_letter)
    default_num_fewshot = 5
    fewshot_source = "dev/<subject>_dev.csv (5 rows per subject)"

    def _mapping(self, data_dir) -> dict[str, list[str]]:
        path = self.folder(data_dir) / "subject_mapping.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise InputError(f"cannot read C-Eval subject mapping: {error}", path=path) from None

    def subsets(self, data_dir):
        return sorted(self._mapping(data_dir))

    def categories(self, data_dir) -> dict[str, str]:
        """Subject -> C-Eval category (STEM, Social Science, Humanities, Other)."""
        return {subject: names[2] for subject, names in self._mapping(data_dir).items()}

    def source_files(self, data_dir):
        folder = self.folder(data_dir)
        files = [folder / "subject_mapping.json"]
        for subject in self.subsets(data_dir):
            files += [folder / "val" / f"{subject}_val.csv", folder / "dev" / f"{subject}_dev.csv"]
        return files

    def _read(self, data_dir, subject: str, split: str) -> list[dict]:
        path = self.folder(data_dir) / split / f"{subject}_{split}.csv"
        if not path.is_file():
            raise InputError(f"C-Eval {split} file for subject {subject!r} missing", path=path)
        mapping = self._mapping(data_dir)
        rows = []
        with path.open(encoding="utf-8", newline="") as handle:
            for index, row in enumerate(csv.DictReader(handle)):
                answer = (row.get("answer") or "").strip()
                if answer not in LETTERS:
                    raise InputError(f"answer {answer!r} is not one of A-D", path=path, line=index + 2)
                rows.append(
                    {
                        "row_index": index,
                        "id": row["id"],
                        "question": row["question"],
                        **{letter: row[letter] for letter in LETTERS},
                        "answer": answer,
                        "target_letter": answer,
                        "target_index": LETTERS.index(answer),
                        "subject": subject,
                        "category": mapping[subject][2],
                    }
                )
        return rows

    def load_items(self, data_dir, subsets=None, options=None):
        chosen = select_subsets(subsets, self.subsets(data_dir), self.name)
        return {subject: self._read(data_dir, subject, "val") for subject in chosen}

    def _prepare(self, target_dir: Path, data_dir, limit, num_fewshot, subsets, item_rows=None):
        shots = self._fewshot(num_fewshot, available=5)
        prepared = {}
        for subject, rows in self.load_items(data_dir, subsets).items():
            test = apply_limit(rows, limit, item_rows, subject)
            test_path = write_jsonl(target_dir / f"{subject}_val.jsonl", test)
            dev_path = write_jsonl(target_dir / f"{subject}_dev.jsonl", self._read(data_dir, subject, "dev")[:shots]) if shots else None
            prepared[subject] = (test_path, dev_path, len(test))
        return prepared, shots

    def write_lm_eval_tasks(self, out_dir, *, data_dir, limit=None, num_fewshot=None, subsets=None, mode="clp", options=None, item_rows=None):
        options = coerce_options(options)
        target_dir = Path(out_dir) / self.name
        prepared, shots = self._prepare(target_dir / "data", data_dir, limit, num_fewshot, subsets, item_rows)
        mapping = self._mapping(data_dir)
        names, counts = [], {}
        for subject, (test_path, dev_path, count) in prepared.items():
            english, chinese, category = mapping[subject]
            name = task_name(subject, mode)
            category_tag = f"{GROUP}_{category.lower().replace(' ', '_')}" + MODE_SUFFIX[mode]
            config = choice_task_config(
                task=name,
                test_path=test_path,
                fewshot_path=dev_path,
                num_fewshot=shots,
                doc_to_text=PPL_PROMPT if mode == "ppl" else PROMPT,
                description=f"以下是中国关于{chinese}考试的单项选择题，请选出其中的正确答案。\n\n",
                tags=[category_tag],
                mode=mode,
                options=options,
                option_texts="{{[A, B, C, D]}}",
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
        target_dir = Path(out_dir) / "evalscope" / self.name
        prepared, shots = self._prepare(target_dir, data_dir, limit, num_fewshot, subsets, item_rows)
        # evalscope's ceval adapter reads a local HF dataset: one config per subject with val/dev splits.
        card = ["---", "configs:"]
        for subject, (_, dev_path, _) in prepared.items():
            card += [f"- config_name: {subject}", "  data_files:", "  - split: val", f"    path: {subject}_val.jsonl"]
            if dev_path is not None:
                card += ["  - split: dev", f"    path: {subject}_dev.jsonl"]
        (target_dir / "README.md").write_text("\n".join(card + ["---", ""]), encoding="utf-8")
        return EvalscopeDatasets(
            benchmark=self.name,
            datasets=["ceval"],
            dataset_args={"ceval": {"dataset_id": str(target_dir.resolve()), "subset_list": list(prepared), "few_shot_num": shots}},
            item_counts={subject: count for subject, (_, _, count) in prepared.items()},
            dataset_sha256=self.dataset_sha256(data_dir),
        )
