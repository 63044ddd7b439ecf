"""`statrepro plan`: from a flip rate, from an A/A pilot of lm-eval outputs, from a baseline's scores, from a
baseline's stored A/A control, and its bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harness_output import DATES, generation_samples, write_lm_eval_run
from statrepro.api_plan import PlanOptions, plan_from_baseline_scores, plan_from_pilot
from statrepro.cli import app
from statrepro.errors import InputError


def _tree(root: Path, scores: np.ndarray) -> Path:
    """An lm-eval output dir with one run per column of ``scores`` (items x seeds) on gsm8k."""
    for seed in range(scores.shape[1]):
        write_lm_eval_run(root, DATES[seed], seed + 1, {"gsm8k": generation_samples("gsm8k", {"strict-match": list(scores[:, seed])})})
    return root


def test_plan_from_a_flip_rate_prints_the_planning_table():
    result = CliRunner().invoke(app, ["plan", "--flip-rate", "0.02", "--items", "1319", "--mode", "non-inferiority",
                                      "--margin", "absolute", "--tolerance", "0.03"])
    assert result.exit_code == 0, result.output
    # 348 items needed; 0.97 points certifiable at 1,319 items against TensorRT-LLM's 4.84 (its theta)
    assert "348" in result.output and "0.97" in result.output and "4.84" in result.output


def test_plan_from_an_a_a_pilot(tmp_path: Path):
    rng = np.random.default_rng(3)
    scores = (rng.random((300, 1)) < 0.6).astype(float)
    again = scores.copy()
    again[:30] = 1 - again[:30]  # 10% of the items flip between the two runs of A
    a, a_again = _tree(tmp_path / "a", scores), _tree(tmp_path / "a2", again)
    plan = plan_from_pilot(a, a_again, PlanOptions(margin="absolute", tolerance=0.03))["gsm8k"]
    assert plan.n_items == 300 and plan.noise.changed_share == pytest.approx(0.1) and plan.noise.source == "A/A pilot"
    result = CliRunner().invoke(app, ["plan", "--pilot", str(a), str(a_again)])
    assert result.exit_code == 0, result.output
    assert "gsm8k" in result.output and "10.0%" in result.output


def test_plan_from_baseline_scores_is_the_baseline_loaders_entry_point():
    rng = np.random.default_rng(4)
    greedy = np.repeat((rng.random((200, 1)) < 0.6).astype(float), 3, axis=1)
    with pytest.raises(InputError, match="state a flip rate"):
        plan_from_baseline_scores({"gsm8k": greedy}, PlanOptions())
    plans = plan_from_baseline_scores({"gsm8k": greedy}, PlanOptions(flip_rate=0.04))
    assert plans["gsm8k"].n_items == 200 and plans["gsm8k"].noise.var_d == pytest.approx(0.04)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--flip-rate", "0.02", "--tolerance", "0"], "--tolerance: the margin must be in (0, 1), got 0.0"),
        (["--flip-rate", "0.02", "--tolerance", "-0.01"], "--tolerance: the margin must be in (0, 1), got -0.01"),
        (["--flip-rate", "1.5"], "--flip-rate: must be in [0, 1], got 1.5"),
        (["--flip-rate", "-0.1"], "--flip-rate: must be in [0, 1], got -0.1"),
        ([], "--flip-rate: needs --flip-rate, --pilot or a baseline"),
    ],
)
def test_plan_bad_input_is_one_line_and_exit_2(args, message):
    result = CliRunner().invoke(app, ["plan", *args])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {message}"


def test_plan_from_a_greedy_baseline_needs_a_flip_rate(tmp_path: Path):
    """A bundle whose two seeds agree on every item: one line, exit 2, until a flip rate is stated; then the plan is
    the flip rate's at the baseline's own accuracy and items."""
    from statrepro.harness.records import make_records
    from statrepro.run.baseline import benchmark_hashes, write_bundle

    rows = [{"benchmark": "gsm8k", "subset": "gsm8k", "item_key": f"gsm8k/{item}", "run_id": f"seed-{seed}", "seed": seed,
             "metric": "exact_match", "score": float(item % 4 != 0), "model": "m"} for seed in (0, 1) for item in range(40)]
    records = make_records(rows)
    header = {"name": "greedy", "seeds": [0, 1], "benchmarks": {name: {**described, "skipped_seeds": []}
                                                                for name, described in benchmark_hashes(records).items()}}
    write_bundle(tmp_path, header, records, None, [])
    where = ["--baseline", "greedy", "--baselines-dir", str(tmp_path)]
    refused = CliRunner().invoke(app, ["plan", *where])
    assert refused.exit_code == 2 and [line for line in refused.stderr.splitlines() if line.startswith("error")] == [
        "error: --flip-rate: benchmark 'gsm8k': the baseline's runs agree on every item (a greedy engine): state a flip rate"]
    planned = CliRunner().invoke(app, ["plan", *where, "--flip-rate", "0.04"])
    assert planned.exit_code == 0, planned.output
    expected = plan_from_baseline_scores({"gsm8k": np.tile(records["score"].to_numpy()[:40, None], 2)}, PlanOptions(flip_rate=0.04))
    assert expected["gsm8k"].noise.accuracy == pytest.approx(0.75) and expected["gsm8k"].n_items == 40
    (row,) = [line for line in planned.stdout.splitlines() if "gsm8k" in line]
    assert [cell.strip() for cell in row.strip("│ ").split("│")] == ["gsm8k", *expected["gsm8k"].cells()]
    both = CliRunner().invoke(app, ["plan", *where, "--pilot", str(tmp_path), str(tmp_path)])
    assert both.exit_code == 2 and both.stderr.strip() == "error: --pilot: give one of --pilot, --baseline or --flip-rate"


def _stub_results(directory: Path, scores: np.ndarray) -> Path:
    """A stub harness output: gsm8k, one seed per column of ``scores`` (items x seeds)."""
    directory.mkdir()
    lines = [json.dumps({"benchmark": "gsm8k", "seed": seed, "doc_id": item, "score": float(scores[item, seed])})
             for seed in range(scores.shape[1]) for item in range(scores.shape[0])]
    (directory / "stub_samples.jsonl").write_text("\n".join(lines) + "\n")
    return directory


def test_a_greedy_baseline_with_a_control_plans_from_the_control_as_a_pilot(tmp_path: Path):
    """A greedy reference (its 2 seeds agree on every item) saved with its A/A control (the stub's scores of another
    seed: about 10% of the items differ): `plan --baseline` needs no flip rate, its table is `plan --pilot` on the
    same two result sets, and stderr says the control was used; a stated --flip-rate still wins."""
    from stub_harness import offline_score

    items = range(150)
    reference = _stub_results(tmp_path / "reference", np.array([[offline_score("gsm8k", item, 0)] * 2 for item in items]))
    control = _stub_results(tmp_path / "control", np.array([[offline_score("gsm8k", item, 1)] * 2 for item in items]))
    baselines = tmp_path / "baselines"
    saved = CliRunner().invoke(app, ["baseline", "save", str(reference), "--control-dir", str(control), "--name", "greedy",
                                     "--baselines-dir", str(baselines)])
    assert saved.exit_code == 0, saved.output
    where = ["--baseline", "greedy", "--baselines-dir", str(baselines), "--margin", "absolute", "--tolerance", "0.05"]

    planned = CliRunner().invoke(app, ["plan", *where])
    assert planned.exit_code == 0, planned.output
    assert "gsm8k 150 items x 2 runs; noise from its A/A control, as an A/A pilot" in planned.stderr
    piloted = CliRunner().invoke(app, ["plan", "--pilot", str(reference), str(control), "--margin", "absolute", "--tolerance", "0.05"])
    assert piloted.exit_code == 0, piloted.output
    assert planned.stdout == piloted.stdout
    pilot = plan_from_pilot(reference, control, PlanOptions(margin="absolute", tolerance=0.05))["gsm8k"]
    assert 0.05 < pilot.noise.changed_share < 0.2 and pilot.n_items == 150  # a noise the seeds alone could not give

    stated = CliRunner().invoke(app, ["plan", *where, "--flip-rate", "0.04"])
    assert stated.exit_code == 0, stated.output
    assert "noise from the stated flip rate (not its A/A control)" in stated.stderr
    scores = np.array([[offline_score("gsm8k", item, 0)] * 2 for item in items])
    expected = plan_from_baseline_scores({"gsm8k": scores}, PlanOptions(flip_rate=0.04, margin="absolute", tolerance=0.05))["gsm8k"]
    (row,) = [line for line in stated.stdout.splitlines() if "gsm8k" in line]
    assert [cell.strip() for cell in row.strip("│ ").split("│")] == ["gsm8k", *expected.cells()]
    assert expected.noise.source == "stated" and expected.cells() != pilot.cells()
