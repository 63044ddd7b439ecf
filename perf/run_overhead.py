"""statrepro's overhead over the bare harness command for the same work, measured side by side.

For each repeat: `statrepro run` of one job into a fresh store, then the exact lm-eval command line that
run recorded in its manifest, run bare into a fresh output dir. Prints both wall times and the ratio
(target <= 1.05). Usage:

    STATREPRO_DATA_DIR=../shared/data python perf/run_overhead.py [--limit 20] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def _timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=20, help="items of mmlu_redux anatomy per run")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if not os.environ.get("STATREPRO_DATA_DIR"):
        sys.exit("set STATREPRO_DATA_DIR to the benchmark data mirror")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    ours, bare = [], []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        config = root / "env.yaml"
        config.write_text(
            yaml.safe_dump(
                {"name": "overhead", "benchmarks": {"mmlu_redux": {"subsets": ["anatomy"], "limit": args.limit}}, "seeds": 1}
            )
        )
        for repeat in range(args.repeats):
            store = root / f"store-{repeat}"
            ours.append(
                _timed([sys.executable, "-c", "from statrepro.cli import app; app()", "run", str(config), "--store", str(store)], env, root)
            )
            [manifest_path] = store.rglob("manifest.json")
            manifest = json.loads(manifest_path.read_text())
            argv = list(manifest["argv"])
            output_at = argv.index("--output_path") + 1
            argv[output_at] = str(root / f"bare-{repeat}")
            bare_env = {**env, "HF_DATASETS_CACHE": str(root / f"bare-cache-{repeat}")}
            bare.append(_timed(argv, bare_env, manifest_path.parent / "harness"))
            print(f"repeat {repeat + 1}: statrepro run {ours[-1]:.2f} s, bare lm-eval {bare[-1]:.2f} s")
    ratio = statistics.median(ours) / statistics.median(bare)
    print(f"median: statrepro {statistics.median(ours):.2f} s, bare harness {statistics.median(bare):.2f} s, ratio {ratio:.3f} (target <= 1.05)")


if __name__ == "__main__":
    main()
