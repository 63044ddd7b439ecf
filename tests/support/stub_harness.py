"""A fast stand-in harness for tests and benchmarks, behind the adapter interface of statrepro.harness.

Two ways in: with tests/support on sys.path (conftest.py, or PYTHONPATH for a `statrepro` subprocess) it is
harness ``stub``, a plugin through the entry point of tests/support/statrepro_test_doubles-0.dist-info;
``install()`` makes it answer for ``lm-eval`` in this process (Ray's
worker_process_setup_hook on workers). The run path drives it exactly like lm-eval: ``build_invocation``
returns a subprocess command (``python -m stub_harness ...``, stdlib only so it starts fast) that writes
``stub_samples.jsonl`` into the job's output dir, and ``load`` turns that into a records table.
Options come from the env's ``harness.extra_args``:

    --items N               items per job (default: the benchmark's limit, else 5)
    --sleep S               seconds to sleep before writing (gives kill tests something to kill)
    --counter-dir DIR       append one line per invocation to DIR/<job key>.count (the line is $STUB_GENERATION)
    --max-tries N           tries per item against an endpoint (engine kind openai)
    --fail-on-broken-node   exit 3 on a machine whose environment sets STATREPRO_STUB_BROKEN (one bad node)
    --prompt-variant TEXT   logs other prompt hashes (as a changed prompt template would)
    --meet DIR              note the job in DIR, then wait (up to MEET_SECONDS) until another job has too:
                            the first job of two environments run at once waits for the other's first
    --progress-seconds S    draw lm-eval's tqdm bar ("Requesting API") on stderr, one redraw per item, S seconds apart

Offline (no endpoint), an item's score is a fixed function of (benchmark, item, seed). With an endpoint,
each item is one request through statrepro.engines.client.OpenAIClient (prompt "<benchmark> item <i>",
correct when the answer is "42"); an item whose request fails is left out of the samples (missing, never
wrong) and its reason goes to failures.jsonl. When every item fails the process exits 1 with the last reason.
The API key reaches the subprocess only through $STUB_API_KEY, never its command line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

DEFAULT_ITEMS = 5
OUTPUT = "stub_samples.jsonl"
FAILURES = "failures.jsonl"
CORRECT_ANSWER = "42"
MEET_SECONDS = 60.0


class StubHarness:
    """The adapter interface of statrepro.harness (statrepro.harness.contract.HarnessAdapter)."""

    name = "stub"
    output_description = "stub_samples.jsonl"
    unit_range_metrics = frozenset({"exact_match"})
    guards_requests = False  # it sends through its own client (statrepro.engines.client), with its own retries

    def build_invocation(self, context):
        from statrepro.harness.contract import Invocation

        job = context.job
        output_dir = context.work_dir / "output"
        items = job.spec.limit or DEFAULT_ITEMS
        argv = [
            sys.executable, "-m", "stub_harness",
            "--out", str(output_dir),
            "--benchmark", job.benchmark,
            "--seed", str(job.seed),
            "--job-key", job.key,
            "--items", str(items),
            *job.env.harness.extra_args,
        ]
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))}
        if context.endpoint is not None:
            argv += ["--base-url", context.endpoint.base_url, "--model", context.endpoint.served_model]
            if job.env.engine.api_key is not None:
                env["STUB_API_KEY"] = job.env.engine.api_key.get_secret_value()
        return Invocation(argv=argv, output_dir=output_dir, env=env, manifest={"stub_items": items})

    def detect(self, path: Path) -> bool:
        path = Path(path)
        return (path / OUTPUT).is_file() if path.is_dir() else path.name == OUTPUT

    def load(self, path: Path, *, metric_overrides: dict[str, str]):
        from statrepro.harness.files import iter_jsonl
        from statrepro.harness.records import check_unique, coerce_score, make_records

        path = Path(path)
        samples = path / OUTPUT if path.is_dir() else path
        rows = []
        if samples.stat().st_size:  # every item may be missing; an empty file is then honest
            for line, item in iter_jsonl(samples):
                rows.append(
                    {
                        "benchmark": item["benchmark"],
                        "subset": item["benchmark"],
                        "item_key": f"{item['benchmark']}/{item['doc_id']}",
                        "run_id": f"seed-{item['seed']}",
                        "seed": item["seed"],
                        "metric": "exact_match",
                        "score": coerce_score(item["score"], path=str(samples), line=line, key="score"),
                        "prediction": item.get("prediction"),
                        "target": CORRECT_ANSWER,
                        "prompt_hash": _sha(f"prompt{item.get('prompt_variant', '')} {item['benchmark']} {item['doc_id']}"),
                        "doc_hash": _sha(f"doc {item['benchmark']} {item['doc_id']}"),
                        "model": "stub-model",
                        "source": str(samples),
                    }
                )
        records = make_records(rows)
        check_unique(records, str(samples))
        return records


    def sent_prompts(self, path: Path) -> dict:
        return {}  # records no prompts: explain has nothing to replay

    def doctor_factors(self, path: Path):
        return None  # the stub records no settings


def install() -> None:
    """Make the stub answer for lm-eval in this process (Ray's worker_process_setup_hook on workers)."""
    from statrepro.harness import HARNESSES

    HARNESSES["lm-eval"] = StubHarness()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def offline_score(benchmark: str, doc_id: int, seed: int) -> float:
    """A fixed 0/1 score per (benchmark, item, seed): about 60% correct, a few items flip with the seed."""
    item_level = int(_sha(f"{benchmark}/{doc_id}"), 16) % 10
    seed_flip = int(_sha(f"{benchmark}/{doc_id}/{seed}"), 16) % 10 == 0
    return float((item_level < 6) != seed_flip)


def _ask_endpoint(args) -> tuple[list[dict], list[dict]]:
    """One request per item; (answered items, failures with their reasons)."""
    from statrepro.engines.client import OpenAIClient, RetryPolicy

    policy = RetryPolicy(timeout_seconds=10, max_tries=args.max_tries, base_delay_seconds=0.01, max_delay_seconds=0.05)
    answered, failures = [], []
    with OpenAIClient(args.base_url, api_key=os.environ.get("STUB_API_KEY"), policy=policy) as client:
        for doc_id in range(args.items):
            outcome = client.complete(f"{args.benchmark} item {doc_id}", model=args.model, max_tokens=8, seed=args.seed)
            if outcome.ok:
                score = float(outcome.text.strip() == CORRECT_ANSWER)
                answered.append({"doc_id": doc_id, "score": score, "prediction": outcome.text, "tries": outcome.tries})
            else:
                failures.append({"doc_id": doc_id, "reason": outcome.summary(), "tries": outcome.tries})
                print(f"item {doc_id} missing: {outcome.summary()}", file=sys.stderr)
    return answered, failures


def _draw_requests_bar(items: int, seconds: float) -> None:
    """lm-eval's API progress bar as tqdm draws it into a file: carriage returns, no newline until it closes."""
    for done in range(items + 1):
        filled = 10 * done // items
        sys.stderr.write(f"\rRequesting API: {100 * done // items:3d}%|{'█' * filled}{' ' * (10 - filled)}| {done}/{items} "
                         f"[00:{done:02d}<00:{items - done:02d},  {1 / seconds if seconds else 99:.2f}it/s]")
        sys.stderr.flush()
        if done < items:
            time.sleep(seconds)
    sys.stderr.write("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stub_harness")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--job-key", required=True)
    parser.add_argument("--items", type=int, default=DEFAULT_ITEMS)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--counter-dir", type=Path)
    parser.add_argument("--max-tries", type=int, default=4)
    parser.add_argument("--fail-on-broken-node", action="store_true")
    parser.add_argument("--meet", type=Path)
    parser.add_argument("--progress-seconds", type=float)
    parser.add_argument("--prompt-variant", default="")
    parser.add_argument("--base-url")
    parser.add_argument("--model")
    args = parser.parse_args(argv)

    if args.counter_dir is not None:
        args.counter_dir.mkdir(parents=True, exist_ok=True)
        counter = args.counter_dir / (args.job_key.replace("/", "__") + ".count")
        with open(counter, "a", encoding="utf-8") as handle:
            handle.write(os.environ.get("STUB_GENERATION", "0") + "\n")
    if args.fail_on_broken_node and os.environ.get("STATREPRO_STUB_BROKEN"):
        print("stub harness: this node is broken (STATREPRO_STUB_BROKEN)", file=sys.stderr)
        return 3
    if args.meet is not None:
        args.meet.mkdir(parents=True, exist_ok=True)
        (args.meet / args.job_key.replace("/", "__")).touch()
        deadline = time.monotonic() + MEET_SECONDS
        while len(list(args.meet.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    time.sleep(args.sleep)
    if args.progress_seconds is not None:
        _draw_requests_bar(args.items, args.progress_seconds)
    if args.base_url:
        answered, failures = _ask_endpoint(args)
    else:
        answered = [{"doc_id": i, "score": offline_score(args.benchmark, i, args.seed)} for i in range(args.items)]
        failures = []
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / FAILURES, "w", encoding="utf-8") as handle:
        for failure in failures:
            handle.write(json.dumps(failure) + "\n")
    if failures and not answered:
        print(f"no item answered; last failure: {failures[-1]['reason']}", file=sys.stderr)
        return 1
    with open(args.out / OUTPUT, "w", encoding="utf-8") as handle:
        for item in answered:
            variant = {"prompt_variant": args.prompt_variant} if args.prompt_variant else {}
            handle.write(json.dumps({"benchmark": args.benchmark, "seed": args.seed, **variant, **item}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
