"""Wall time of the local vs the ray executor on the same small stub matrix, and Ray's overhead per job.

    STATREPRO_DATA_DIR=/path/to/data python perf/ray_executor.py [--jobs-per-benchmark 6] [--sleep 0]

The stub harness (tests/support/stub_harness.py) stands in for lm-eval, so the numbers are statrepro's and Ray's
own cost per job (a harness subprocess, staging, shipping, store writes), not model time. Ray runs a local
instance started here; its start-up time is printed separately.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))

import stub_harness  # noqa: E402
from rich.console import Console  # noqa: E402

from statrepro.config import EnvConfig  # noqa: E402
from statrepro.envfile import validate_env  # noqa: E402
from statrepro.run.executors import LocalExecutor  # noqa: E402
from statrepro.run.orchestrate import run_environments  # noqa: E402
from statrepro.run.store import ResultStore  # noqa: E402


def _timed_run(env: EnvConfig, store_root: Path, executor, data_dir: str | None) -> float:
    quiet = Console(stderr=True, quiet=True)
    started = time.perf_counter()
    summary = run_environments([env], ResultStore(store_root), executor, data_dir=data_dir, console=quiet)
    seconds = time.perf_counter() - started
    if summary.failed:
        raise SystemExit(f"{executor.name}: {summary.summary()}: {summary.failed[0].error}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs-per-benchmark", type=int, default=6, help="seeds per benchmark (2 benchmarks)")
    parser.add_argument("--sleep", type=float, default=0.0, help="stub harness seconds per job")
    parser.add_argument("--data-dir", default=os.environ.get("STATREPRO_DATA_DIR"))
    args = parser.parse_args()

    import ray

    from statrepro.run.ray_executor import RayExecutor

    stub_harness.install()  # the local executor runs the stub in this process's registry
    ray.cloudpickle.register_pickle_by_value(stub_harness)
    with tempfile.TemporaryDirectory(prefix="statrepro-ray-bench-") as tmp:
        env = validate_env(
            {
                "name": "bench",
                "model": {"path": tmp},
                "harness": {"extra_args": ["--sleep", str(args.sleep)]},
                "benchmarks": {"gsm8k": {"limit": 20}, "ceval": {"limit": 20}},
                "seeds": args.jobs_per_benchmark,
            }
        )
        jobs = 2 * args.jobs_per_benchmark
        local_seconds = _timed_run(env, Path(tmp) / "local", LocalExecutor(), args.data_dir)
        rows = [("local (1 at a time: in-process engine)", local_seconds, None)]
        for cpus in (1, 2):
            started = time.perf_counter()
            ray.init(
                num_cpus=cpus,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                runtime_env={"worker_process_setup_hook": stub_harness.install},
            )
            init_seconds = time.perf_counter() - started
            try:
                seconds = _timed_run(env, Path(tmp) / f"ray{cpus}", RayExecutor(), args.data_dir)
            finally:
                ray.shutdown()
            rows.append((f"ray, local instance with {cpus} CPU", seconds, init_seconds))

    print(f"{jobs} jobs (2 benchmarks x {args.jobs_per_benchmark} seeds, 20 items each), stub sleep {args.sleep} s")
    print(f"{'executor':42} {'wall s':>8} {'s/job':>7} {'ray.init s':>10}")
    for name, seconds, init_seconds in rows:
        init_text = f"{init_seconds:10.1f}" if init_seconds is not None else f"{'-':>10}"
        print(f"{name:42} {seconds:8.2f} {seconds / jobs:7.3f} {init_text}")
    overhead = (rows[1][1] - local_seconds) / jobs
    print(f"ray scheduling overhead per job (1-CPU ray vs local, both serial): {overhead * 1000:.0f} ms")


if __name__ == "__main__":
    main()
