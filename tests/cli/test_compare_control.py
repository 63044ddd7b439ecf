"""`statrepro compare A B --control` through the real CLI with the stub harness: A′ is stored as <A name>.control."""

from __future__ import annotations

import json
from pathlib import Path

from test_hardening import stub_env, statrepro, workspace, write_yaml  # noqa: F401  (workspace is a fixture)


def test_compare_with_control_runs_a_again_as_its_own_environment(workspace: Path) -> None:
    benchmarks = {"gsm8k": {"limit": 40}}
    env_a = write_yaml(workspace / "a.yaml", stub_env(workspace, "side-a", benchmarks=benchmarks, seeds=3))
    env_b = write_yaml(workspace / "b.yaml", stub_env(workspace, "side-b", benchmarks=benchmarks, seeds=3))
    verdict_path = workspace / "verdict.json"
    result = statrepro(
        "compare", env_a, env_b, "--control", "--margin", "absolute", "--tolerance", "0.1", "--store", workspace / "store",
        "--json", verdict_path,
    )
    assert result.returncode in (0, 3, 4), result.stdout + result.stderr
    verdict = json.loads(verdict_path.read_text())
    control = verdict["benchmarks"]["gsm8k"]["control"]
    # The stub scores are a fixed function of (benchmark, item, seed): A′ repeats A exactly.
    assert control["control_flips"]["flips"]["count"] == 0 and control["control_diff"] == 0.0
    assert control["baseline_verdict"] == "equivalent" and control["baseline"] == "stable" and control["warning"] is None
    assert control["n_runs_control"] == 3 and verdict["inputs"]["control"] == "side-a.control"
    stored = sorted(d.name.rsplit("-", 1)[0] for d in (workspace / "store").iterdir() if d.is_dir() and d.name.startswith("side-"))
    assert stored == ["side-a", "side-a.control", "side-b"]
    assert "control: flips A/A' 0.0%" in result.stdout
    # Sequential designs take no control.
    refused = statrepro("compare", env_a, env_b, "--control", "--sequential", "--store", workspace / "store")
    assert refused.returncode == 2 and "sequential" in refused.stdout + refused.stderr
