"""`baseline save` and `gate` end to end on the quickstart pair: the embedded model in float32 (hf, in-process) saved
as the baseline, its Q4_1 GGUF on llama.cpp gated against it, 1 item of each of the 20 subjects (minutes on 2 idle cores)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
LIMIT = 1  # item per subject, on both sides: 20 items


def _statrepro(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from statrepro.cli import app; app()", *map(str, args)],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "2"}, timeout=1800,
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
    verdict = tmp_path / "verdict.json"
    gated = _statrepro("gate", candidate, "--baseline", "full-precision", "--baselines-dir", baselines, "--store",
                       tmp_path / "candidate-store", "--json", verdict, "--margin", "absolute", "--tolerance", "0.1")
    output = gated.stdout + gated.stderr
    assert gated.returncode in (0, 3, 4) and verdict.exists(), output
    # One side ran: the candidate's store holds its one job and nothing of the reference.
    runs = sorted(path.parent.parent.parent.name for path in (tmp_path / "candidate-store").glob("*/*/seed-*/manifest.json"))
    assert runs == [next(name for name in runs if name.startswith("q4-llama-cpp-"))], runs
    result = json.loads(verdict.read_text())
    assert result["inputs"]["baseline"].startswith(bundle.name.removesuffix(".baseline.tgz").rsplit("-", 1)[1])
    assert result["benchmarks"]["mmlu_redux"]["n_items"] == 20 * LIMIT
