"""`baseline save`, `gate` and `plan --baseline` end to end on the quickstart pair: the embedded model in float32 (hf,
in-process) saved as the baseline, its Q4_1 GGUF on llama.cpp gated against it with the CI outputs (JUnit, GitHub
summary), 1 item of each of the 20 subjects (minutes on 2 idle cores)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from junitparser import Error, Failure, JUnitXml

REPO = Path(__file__).resolve().parents[2]
LIMIT = 1  # item per subject, on both sides: 20 items


def _statrepro(*args, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from statrepro.cli import app; app()", *map(str, args)],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "2", **env}, timeout=1800,
    )


def _quickstart(name: str, tmp_path: Path) -> Path:
    config = yaml.safe_load((REPO / "configs/quickstart" / name).read_text(encoding="utf-8"))
    config["benchmarks"]["mmlu_redux"]["limit"] = LIMIT
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.mark.model
@pytest.mark.slow
@pytest.mark.timeout(1800)  # two real runs (hf, then llama.cpp) on a shared CI machine
def test_gate_runs_only_the_quantized_candidate_against_the_saved_reference(tmp_path: Path) -> None:
    reference, candidate = _quickstart("fp32-ppl.yaml", tmp_path), _quickstart("q4-llama-cpp.yaml", tmp_path)
    baselines = tmp_path / "baselines"
    saved = _statrepro("baseline", "save", reference, "--store", tmp_path / "reference-store", "--baselines-dir", baselines)
    assert saved.returncode == 0, saved.stdout + saved.stderr
    (bundle,) = baselines.iterdir()
    described = json.loads(_statrepro("baseline", "show", bundle, "--json").stdout)["header"]["benchmarks"]["mmlu_redux"]
    assert described["items"] == 20 * LIMIT and described["mode"] == "ppl" and described["data_sha256"]
    verdict, junit, summary = tmp_path / "verdict.json", tmp_path / "junit.xml", tmp_path / "step_summary.md"
    gated = _statrepro("gate", candidate, "--baseline", "full-precision", "--baselines-dir", baselines, "--store",
                       tmp_path / "candidate-store", "--json", verdict, "--margin", "absolute", "--tolerance", "0.1",
                       "--junit", junit, "--github", GITHUB_STEP_SUMMARY=str(summary))
    output = gated.stdout + gated.stderr
    assert gated.returncode in (0, 3, 4) and verdict.exists(), output
    # One side ran: the candidate's store holds its one job and nothing of the reference.
    runs = sorted(path.parent.parent.parent.name for path in (tmp_path / "candidate-store").glob("*/*/seed-*/manifest.json"))
    assert runs == [next(name for name in runs if name.startswith("q4-llama-cpp-"))], runs
    result = json.loads(verdict.read_text())
    assert result["inputs"]["baseline"].startswith(bundle.name.removesuffix(".baseline.tgz").rsplit("-", 1)[1])
    assert result["benchmarks"]["mmlu_redux"]["n_items"] == 20 * LIMIT
    _check_ci_outputs(junit, summary, gated, result, bundle)
    _check_plan(bundle)


def _check_ci_outputs(junit: Path, summary: Path, gated: subprocess.CompletedProcess, result: dict, bundle: Path) -> None:
    """The JUnit file (one suite named after the baseline, one case whose outcome is the verdict's), the GitHub job
    summary naming the baseline, and an annotation exactly when the verdict does not pass."""
    from statrepro.run.baseline import load_bundle

    stored = load_bundle(bundle)
    xml = JUnitXml.fromfile(str(junit))
    (suite,) = xml
    assert suite.name.startswith(f"statrepro baseline {stored.label} vs ")
    assert {prop.name: prop.value for prop in suite.properties()}["baseline"] == stored.id
    (case,) = suite
    outcome = {0: "passed", 3: Failure, 4: Error}[gated.returncode]
    assert case.name == "mmlu_redux" and (case.is_passed if outcome == "passed" else isinstance(case.result[0], outcome))
    text = summary.read_text(encoding="utf-8")
    assert f"statrepro: **{result['verdict'].replace('_', ' ')}** (exit code {gated.returncode})" in text
    assert f"Gated against baseline {stored.label} (sha256 `{stored.id}`)" in text and f"| mmlu_redux | {20 * LIMIT} | " in text
    assert ("::error" in gated.stdout) == (gated.returncode == 3) and ("::warning" in gated.stdout) == (gated.returncode == 4)


def _check_plan(bundle: Path) -> None:
    """plan --baseline on the one-seed (greedy) baseline: refused without a flip rate, then the flip rate's plan at
    the baseline's accuracy and items."""
    from statrepro.analysis import score_matrix
    from statrepro.api_plan import PlanOptions, plan_from_baseline_scores
    from statrepro.run.baseline import load_bundle

    refused = _statrepro("plan", "--baseline", bundle)
    assert refused.returncode == 2 and "state a flip rate" in refused.stderr, refused.stderr
    planned = _statrepro("plan", "--baseline", bundle, "--flip-rate", "0.02", "--margin", "absolute", "--tolerance", "0.1")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    scores = score_matrix(load_bundle(bundle).records)
    expected = plan_from_baseline_scores({"mmlu_redux": scores}, PlanOptions(flip_rate=0.02, margin="absolute", tolerance=0.1))
    (row,) = [line for line in planned.stdout.splitlines() if "mmlu_redux" in line]
    assert [cell.strip() for cell in row.strip("│ ").split("│")] == ["mmlu_redux", *expected["mmlu_redux"].cells()]
    assert expected["mmlu_redux"].n_items == 20 * LIMIT
