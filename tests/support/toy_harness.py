"""A third harness adapter, written only against statrepro.harness.contract and the records schema: what a
plugin author writes. Its "harness" is a stdlib-only ``python -c`` that scores ``items`` items as
(item + seed) % 2 and writes them, with the settings it used, into the job's output dir."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from statrepro.errors import InputError
from statrepro.harness.contract import HarnessAdapter, Invocation, JobContext, harness_environment
from statrepro.harness.records import check_unique, coerce_score, make_records

ITEMS_FILE = "toy_items.jsonl"
SETTINGS_FILE = "toy_settings.json"
DEFAULT_ITEMS = 3

_HARNESS_SCRIPT = """
import json, sys
from pathlib import Path
out, benchmark, seed, items, settings = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
out.mkdir(parents=True, exist_ok=True)
(out / "toy_settings.json").write_text(settings)
with open(out / "toy_items.jsonl", "w") as handle:
    for item in range(items):
        handle.write(json.dumps({"benchmark": benchmark, "item": item, "seed": seed, "score": (item + seed) % 2}) + "\\n")
"""


class ToyHarness(HarnessAdapter):  # inherits the contract's defaults (guards_requests = False)
    name = "toy"
    output_description = "toy_items.jsonl"
    unit_range_metrics = frozenset()  # toy_score's range is not declared

    def build_invocation(self, context: JobContext) -> Invocation:
        job = context.job
        output_dir = context.work_dir / "output"
        settings = {"harness": self.name, "seed": job.seed, "temperature": job.env.generation.temperature}
        items = job.spec.limit or DEFAULT_ITEMS
        argv = [sys.executable, "-c", _HARNESS_SCRIPT, str(output_dir), job.benchmark, str(job.seed), str(items), json.dumps(settings)]
        return Invocation(argv=argv, output_dir=output_dir, env=harness_environment(context.work_dir), manifest={"toy_items": items})

    def detect(self, path: Path) -> bool:
        path = Path(path)
        return (path / ITEMS_FILE).is_file() if path.is_dir() else path.name == ITEMS_FILE

    def load(self, path: Path, *, metric_overrides: dict[str, str]):
        path = Path(path)
        items_path = path / ITEMS_FILE if path.is_dir() else path
        if not items_path.is_file():
            raise InputError(f"no {ITEMS_FILE} here", path=path)
        rows = []
        for number, line in enumerate(items_path.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                raise InputError("invalid JSON", path=items_path, line=number) from None
            rows.append(
                {
                    "benchmark": item["benchmark"],
                    "subset": item["benchmark"],
                    "item_key": f"{item['benchmark']}/{item['item']}",
                    "run_id": f"seed-{item['seed']}",
                    "seed": item["seed"],
                    "metric": metric_overrides.get(item["benchmark"], "toy_score"),
                    "score": coerce_score(item["score"], path=str(items_path), line=number, key="score"),
                    "source": str(items_path),
                }
            )
        records = make_records(rows)
        check_unique(records, str(items_path))
        return records

    def sent_prompts(self, path: Path) -> dict:
        return {}  # records no prompts: explain has nothing to replay

    def doctor_factors(self, path: Path) -> dict[str, Any] | None:
        path = Path(path)
        settings = path / SETTINGS_FILE if path.is_dir() else path
        if settings.name != SETTINGS_FILE or not settings.is_file():
            return None
        return json.loads(settings.read_text(encoding="utf-8"))
