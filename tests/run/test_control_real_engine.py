"""`compare --control` end to end on the real embedded model: A run again as A' (<A name>.control)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.model
@pytest.mark.slow
def test_fp32_log_likelihood_control_flips_nothing(tmp_path: Path) -> None:
    """hf fp32 log-likelihood scoring is deterministic: two runs of A flip no item, and the control is stable."""
    config = yaml.safe_load((REPO / "configs/quickstart/fp32-ppl.yaml").read_text(encoding="utf-8"))
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text(yaml.safe_dump(config), encoding="utf-8")
    b.write_text(yaml.safe_dump({**config, "name": "full-precision-again"}), encoding="utf-8")
    out = tmp_path / "verdict.json"
    completed = subprocess.run(
        [sys.executable, "-c", "from statrepro.cli import app; app()", "compare", str(a), str(b), "--control",
         "--limit", "2", "--store", str(tmp_path / "store"), "--json", str(out), "--margin", "absolute", "--tolerance", "0.1"],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "2"}, timeout=1800,
    )
    output = completed.stdout + completed.stderr
    assert out.exists(), output
    verdict = json.loads(out.read_text())
    bench = verdict["benchmarks"]["mmlu_redux"]
    control = bench["control"]
    assert control is not None and control["n_items"] == bench["n_items"] >= 30, output
    assert control["control_flips"]["flips"]["rate"] == 0.0 and control["control_diff"] == 0.0
    assert control["candidate_flips"]["flips"]["rate"] == 0.0 and control["p_value"] == 1.0
    assert verdict["inputs"]["control"] == "full-precision.control"
    assert len([d for d in (tmp_path / "store").iterdir() if d.name.startswith("full-precision.control-")]) == 1
    assert "control: flips A/A' 0.0%" in output
