"""`statrepro analyze A B --control DIR` on synthetic lm-eval outputs: the JSON `control` object and the terminal line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from harness_output import DATES, generation_samples, write_lm_eval_run
from statrepro.cli import app
from statrepro.verdict_schema import SCHEMA_VERSION

N_ITEMS = 60


def _tree(root: Path, scores: np.ndarray) -> Path:
    """An lm-eval output dir with one run per column of ``scores`` (items x seeds) on gsm8k."""
    for seed in range(scores.shape[1]):
        write_lm_eval_run(root, DATES[seed], seed + 1, {"gsm8k": generation_samples("gsm8k", {"strict-match": list(scores[:, seed])})})
    return root


def test_analyze_with_a_control_writes_the_control_object(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    scores_a = (rng.random((N_ITEMS, 3)) < 0.6).astype(float)
    scores_control = scores_a.copy()
    scores_control[0] = 1.0 - scores_control[0]  # one item flips between two runs of A
    scores_b = scores_a.copy()
    scores_b[:12] = 1.0 - np.round(scores_a[:12].mean(axis=1, keepdims=True)).repeat(3, axis=1)  # B flips 12 items
    a, control, b = (_tree(tmp_path / name, s) for name, s in (("a", scores_a), ("control", scores_control), ("b", scores_b)))
    out = tmp_path / "verdict.json"
    result = CliRunner().invoke(app, ["analyze", str(a), str(b), "--control", str(control), "--json", str(out), "--resamples", "200"])
    assert result.exit_code in (0, 3, 4), result.output
    verdict = json.loads(out.read_text())
    assert verdict["schema_version"] == SCHEMA_VERSION == "5"
    assert verdict["inputs"]["control"] == str(control)
    gsm8k = verdict["benchmarks"]["gsm8k"]
    block = gsm8k["control"]
    assert block["n_items"] == N_ITEMS and block["n_runs_control"] == 3
    assert block["control_flips"]["flips"]["count"] == 1
    assert block["candidate_flips"]["flips"]["count"] == 12
    assert gsm8k["flips_up"] + gsm8k["flips_down"] == 12
    assert block["candidate_flips"]["harmful"]["count"] == gsm8k["flips_down"]
    assert block["candidate_flips"]["beneficial"]["count"] == gsm8k["flips_up"]
    low, high = block["excess_flips"]["ci"]
    assert block["excess_flips"]["excess"] == (12 - 1) / N_ITEMS and low < block["excess_flips"]["excess"] < high
    assert block["p_value"] < 0.01 and block["test_exact"]
    assert block["candidate_diff"] == gsm8k["diff"] and block["candidate_diff_ci"] == gsm8k["diff_ci"]
    assert block["baseline_verdict"] in ("equivalent", "within_tolerance", "different", "inconclusive")
    # the synthetic answers ("strict-match:<doc>") never change, so no item churns
    assert block["candidate_flips"]["churn"]["count"] == 0 and block["excess_churn"]["excess"] == 0
    assert "control: flips A/A' 1.7%" in result.output


def test_the_control_never_changes_the_verdict(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    scores_a = (rng.random((N_ITEMS, 1)) < 0.5).astype(float)
    scores_b = scores_a.copy()
    scores_b[:5] = 1.0 - scores_b[:5]
    unstable = scores_a.copy()
    unstable[:30] = 1.0 - unstable[:30]
    a, b, control = (_tree(tmp_path / name, s) for name, s in (("a", scores_a), ("b", scores_b), ("control", unstable)))
    plain, with_control = tmp_path / "plain.json", tmp_path / "control.json"
    runner = CliRunner()
    first = runner.invoke(app, ["analyze", str(a), str(b), "--json", str(plain), "--resamples", "200"])
    second = runner.invoke(app, ["analyze", str(a), str(b), "--control", str(control), "--json", str(with_control), "--resamples", "200"])
    assert first.exit_code == second.exit_code
    left, right = json.loads(plain.read_text()), json.loads(with_control.read_text())
    assert left["verdict"] == right["verdict"]
    assert left["benchmarks"]["gsm8k"]["verdict"] == right["benchmarks"]["gsm8k"]["verdict"]
    block = right["benchmarks"]["gsm8k"]["control"]
    assert block["baseline"] != "stable" and block["warning"]
    assert "baseline" in second.output
