"""Harness ``toy-reader``, reading only: one ``toy_reader.jsonl`` per run directory, a line per scored item
({"benchmark", "item", "seed", "score"}), scored with metric ``toy_acc``, which it declares to lie in [0, 1]."""

import json
from pathlib import Path

from statrepro.errors import InputError
from statrepro.harness.records import check_unique, coerce_score, make_records

OUTPUT = "toy_reader.jsonl"


class ToyReader:
    name = "toy-reader"
    output_description = OUTPUT
    unit_range_metrics = frozenset({"toy_acc"})
    guards_requests = False

    def build_invocation(self, context):
        raise InputError("harness toy-reader is reading only", key="harness.name")

    def detect(self, path: Path) -> bool:
        return (Path(path) / OUTPUT).is_file()

    def load(self, path: Path, *, metric_overrides: dict[str, str]):
        source = Path(path) / OUTPUT
        rows = []
        for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
            item = json.loads(line)
            rows.append(
                {
                    "benchmark": item["benchmark"],
                    "subset": item["benchmark"],
                    "item_key": f"{item['benchmark']}/{item['item']}",
                    "run_id": f"seed-{item['seed']}",
                    "seed": item["seed"],
                    "metric": metric_overrides.get(item["benchmark"], "toy_acc"),
                    "score": coerce_score(item["score"], path=str(source), line=number, key="score"),
                    "source": str(source),
                }
            )
        records = make_records(rows)
        check_unique(records, str(source))
        return records

    def doctor_factors(self, path: Path):
        return None  # records no settings

    def sent_prompts(self, path: Path) -> dict:
        return {}  # records no prompts
