"""A stand-in harness written against the adapter contract: it prepares the job's items with the benchmark's own
task generator, exactly as lm-eval and evalscope get them (so block rows, positions and ``Invocation.row_ids`` are
the real ones), and scores each prepared item from its own content, never from its position (see its script)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from statrepro import harness
from statrepro.benchmarks import get_benchmark
from statrepro.harness.contract import Invocation, harness_environment
from statrepro.harness.records import make_records

ITEMS = 400
OUTPUT = "scored.jsonl"

# Scores every prepared item of the job from its answer: right unless the answer is a multiple of 3; all wrong for
# a "broken" side (max_tokens 1); for a sampling side (temperature > 0), right unless answer + seed + offset is
# (offset 1 with max_tokens 2), so every item scores 2/3 over seeds 0-2 on either sampling side but one seed is
# noise. Keys are <task>/<position in the prepared file>, as lm-eval's are.
_SCRIPT = """
import json, sys
from pathlib import Path
prepared, out, task, seed, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
out.mkdir(parents=True, exist_ok=True)
with open(out / "scored.jsonl", "w") as handle:
    for position, line in enumerate(prepared.read_text().splitlines()):
        answer = int(json.loads(line)["answer"].split("#### ")[-1])
        shifted = answer + seed + (mode == "sampling-offset") if mode.startswith("sampling") else answer
        score = 0 if mode == "broken" else int(shifted % 3 != 0)
        handle.write(json.dumps({"key": f"{task}/{position}", "seed": seed, "score": score, "answer": answer}) + "\\n")
"""


class ContentScoredHarness:
    name = "content-scored"
    output_description = "scored.jsonl"
    unit_range_metrics = frozenset({"exact_match"})
    guards_requests = False

    def build_invocation(self, context):
        job = context.job
        spec = get_benchmark(job.benchmark)
        tasks = spec.write_lm_eval_tasks(
            context.work_dir / "tasks", data_dir=context.data_dir, limit=job.spec.limit, subsets=job.spec.subsets,
            item_rows=job.spec.item_rows,
        )
        row_ids = spec.prepared_row_ids(tasks.item_counts, job.spec.item_rows, data_dir=context.data_dir, subsets=job.spec.subsets)
        prepared = context.work_dir / "tasks" / "gsm8k" / "data" / "main_test.jsonl"
        generation = job.env.generation
        mode = "broken" if generation.max_tokens == 1 else "greedy"
        if generation.temperature > 0:
            mode = "sampling-offset" if generation.max_tokens == 2 else "sampling"
        output = context.work_dir / "output"
        argv = [sys.executable, "-c", _SCRIPT, str(prepared), str(output), tasks.task_names[0], str(job.seed), mode]
        return Invocation(argv=argv, output_dir=output, env=harness_environment(context.work_dir), row_ids=row_ids)

    def detect(self, path: Path) -> bool:
        return (Path(path) / OUTPUT).is_file()

    def load(self, path: Path, *, metric_overrides: dict[str, str]):
        lines = (Path(path) / OUTPUT).read_text().splitlines()
        rows = [json.loads(line) for line in lines]
        return make_records([
            {"benchmark": "gsm8k", "subset": "main", "item_key": row["key"], "run_id": f"seed-{row['seed']}",
             "seed": row["seed"], "metric": "exact_match", "score": float(row["score"]), "target": str(row["answer"]),
             "prediction": str(row["score"]),  # a deterministic side's repeated runs answer alike, so its later seeds are skipped
             "source": str(Path(path) / OUTPUT)}
            for row in rows
        ])

    def sent_prompts(self, path: Path) -> dict:
        return {}

    def doctor_factors(self, path: Path):
        return None


@pytest.fixture
def content_scored(monkeypatch):
    monkeypatch.setitem(harness.HARNESSES, ContentScoredHarness.name, ContentScoredHarness())


def data_dir(root: Path) -> Path:
    """A gsm8k-format data dir of ITEMS items whose answers run through every residue mod 3."""
    folder = root / "gsm8k"
    folder.mkdir(parents=True)
    rows = [{"question": f"What is {i} plus 7?", "answer": f"{i} plus 7 is {i + 7}.\n#### {i + 7}"} for i in range(ITEMS)]
    (folder / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows[:3]))
    return root
