"""`statrepro analyze` on lm-eval multiple-choice outputs: choice-level evidence and the evidence gates.

B is A with every item's choice log-likelihoods flattened (times 0.3, as a damaged model that keeps its ranking)
and the top two choices swapped on 3 of 300 items: accuracy barely moves, the choice distribution does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harness_output import DATES, choice_samples, write_lm_eval_run
from statrepro.cli import app

N_ITEMS = 300
TASK = "ceval-valid_law"


def _log_likelihoods(seed: int = 3) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    lls = -rng.gamma(2.0, 1.5, size=(N_ITEMS, 4))
    golds = [int(g) for g in rng.integers(0, 4, N_ITEMS)]
    lls[np.arange(N_ITEMS), golds] += 0.8  # the model is right on roughly half of the items
    return np.round(lls, 6), golds


def _tree(root: Path, lls: np.ndarray, golds: list[int], runs: int = 1) -> Path:
    for run in range(runs):
        write_lm_eval_run(root, DATES[run], run + 1, {TASK: choice_samples(TASK, lls.tolist(), golds)})
    return root


def _damaged(lls: np.ndarray) -> np.ndarray:
    damaged = 0.3 * lls
    for row in range(3):
        top, second = np.argsort(damaged[row])[::-1][:2]
        damaged[row, [top, second]] = damaged[row, [second, top]]
    return damaged


def _analyze(tmp_path: Path, a: Path, b: Path, *extra: str) -> tuple[object, dict]:
    out = tmp_path / f"verdict{len(list(tmp_path.glob('verdict*.json')))}.json"
    result = CliRunner().invoke(
        app, ["analyze", str(a), str(b), "--margin", "absolute", "--json", str(out), "--resamples", "1000", *extra]
    )
    assert out.exists(), (result.output, result.exception)
    return result, json.loads(out.read_text())


def test_a_damaged_choice_distribution_fails_the_kl_gate_while_the_score_passes(tmp_path: Path) -> None:
    lls, golds = _log_likelihoods()
    a, b = _tree(tmp_path / "a", lls, golds), _tree(tmp_path / "b", _damaged(lls), golds)
    plain_result, plain = _analyze(tmp_path, a, b)
    gated_result, gated = _analyze(tmp_path, a, b, "--kl-margin", "0.05", "--report", str(tmp_path / "report"))
    law, gated_law = plain["benchmarks"]["ceval"], gated["benchmarks"]["ceval"]
    # accuracy barely moves: the score verdict passes, and is the same as without the gate's flag
    assert abs(law["diff"]) <= 3 / N_ITEMS
    assert law["verdict"] in ("equivalent", "within_tolerance") and plain_result.exit_code == 0
    assert law["gates"] == [] and plain["kl_margin"] is None
    # the choice distribution moved a lot: KL far above the margin, so the gate makes B different, naming the evidence
    choices = law["choices"]
    assert choices["n_items"] == N_ITEMS and choices["kl"]["lower"] > 0.05
    assert choices["top_changed"]["mean"] == 3 / N_ITEMS and choices["top_changed"]["method"] == "clopper-pearson"
    assert gated_law["verdict"] == "different" and gated_result.exit_code == 3
    assert "mean choice KL(A‖B)" in gated_law["reason"] and "the score alone: " + law["verdict"] in gated_law["reason"]
    assert [gate["outcome"] for gate in gated_law["gates"]] == ["beyond"] and gated["kl_margin"] == 0.05
    assert "gate beyond: mean choice KL(A‖B)" in gated_result.output
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "### Choice-level evidence" in markdown and "- evidence gate ceval: beyond: mean choice KL(A‖B)" in markdown
    assert "| ceval | A vs B | 300 |" in markdown
    assert "Choice-level evidence" in (tmp_path / "report" / "report.html").read_text()
    # a margin that holds: the gate passes and the verdict is the score's
    loose_result, loose = _analyze(tmp_path, a, b, "--kl-margin", "10", "--top1-margin", "0.2")
    assert loose["benchmarks"]["ceval"]["verdict"] == law["verdict"] and loose_result.exit_code == 0
    assert [gate["outcome"] for gate in loose["benchmarks"]["ceval"]["gates"]] == ["passed", "passed"]


def test_an_a_a_gives_kl_exactly_zero_and_the_control_is_the_noise_floor(tmp_path: Path) -> None:
    lls, golds = _log_likelihoods(seed=4)
    a = _tree(tmp_path / "a", lls, golds, runs=2)
    again = _tree(tmp_path / "again", lls, golds, runs=2)
    b = _tree(tmp_path / "b", _damaged(lls), golds, runs=2)
    result, same = _analyze(tmp_path, a, again, "--kl-margin", "1e-9", "--top1-margin", "1e-9")
    choices = same["benchmarks"]["ceval"]["choices"]
    assert choices["kl"]["mean"] == 0.0 and choices["kl"]["ci"] == [0.0, 0.0] and choices["kl"]["upper"] == 0.0
    assert choices["top_changed"]["mean"] == 0.0 and choices["gold_delta"]["mean"] == 0.0
    # no item changed its top choice, yet 300 items bound the share only by the exact 1 - alpha^(1/n) (~1%)
    assert choices["top_changed"]["upper"] == pytest.approx(1 - 0.05 ** (1 / N_ITEMS), rel=1e-9)
    gates = same["benchmarks"]["ceval"]["gates"]
    assert [gate["outcome"] for gate in gates] == ["passed", "unshown"]
    assert same["benchmarks"]["ceval"]["verdict"] == "inconclusive" and "top choice changed" in same["benchmarks"]["ceval"]["reason"]
    result, controlled = _analyze(tmp_path, a, b, "--control", str(again))
    choices = controlled["benchmarks"]["ceval"]["choices"]
    assert choices["control"]["kl"]["mean"] == 0.0 and choices["excess_kl"]["mean"] == choices["kl"]["mean"] > 0.05
    assert "choices A/A': KL 0 [0, 0]" in result.output


def test_gate_flags_reject_bad_input_in_one_line(tmp_path: Path) -> None:
    lls, golds = _log_likelihoods()
    a = _tree(tmp_path / "a", lls, golds)
    runner = CliRunner()
    for flag in ("--kl-margin", "--top1-margin", "--flip-margin"):
        result = runner.invoke(app, ["analyze", str(a), str(a), flag, "0"])
        assert result.exit_code == 2 and result.output.strip().count("\n") == 0, result.output
        assert flag in result.output and "greater than 0" in result.output
    result = runner.invoke(app, ["analyze", str(a), str(a), "--flip-margin", "0.05"])
    assert result.exit_code == 2 and "--flip-margin" in result.output and "--control" in result.output
    assert result.output.strip().count("\n") == 0


def test_the_kl_gate_on_a_benchmark_without_choice_log_likelihoods_is_bad_input(tmp_path: Path) -> None:
    from harness_output import generation_samples

    for side in ("a", "b"):
        write_lm_eval_run(tmp_path / side, DATES[0], 1, {"gsm8k": generation_samples("gsm8k", {"strict-match": [1.0, 0.0, 1.0, 0.0]})})
    result = CliRunner().invoke(app, ["analyze", str(tmp_path / "a"), str(tmp_path / "b"), "--kl-margin", "0.1"])
    assert result.exit_code == 2 and "--kl-margin" in result.output and "'gsm8k'" in result.output, result.output


def test_compare_refuses_a_flip_gate_without_the_control_and_gates_with_a_sequential_design(tmp_path: Path) -> None:
    runner = CliRunner()
    env = tmp_path / "env.yaml"  # never read: the options are refused first
    result = runner.invoke(app, ["compare", str(env), str(env), "--flip-margin", "0.05"])
    assert result.exit_code == 2 and "--flip-margin needs the A/A control: add --control" in result.output, result.output
    result = runner.invoke(app, ["compare", str(env), str(env), "--sequential", "--kl-margin", "0.05"])
    assert result.exit_code == 2 and "fixed design only" in result.output, result.output
    result = runner.invoke(app, ["compare", str(env), str(env), "--top1-margin", "-0.1"])
    assert result.exit_code == 2 and "--top1-margin" in result.output and result.output.strip().count("\n") == 0, result.output


def test_the_flip_gate_reads_the_excess_harmful_flips_over_the_control(tmp_path: Path) -> None:
    from harness_output import generation_samples

    rng = np.random.default_rng(7)
    scores_a = (rng.random(200) < 0.6).astype(float)
    scores_b = scores_a.copy()
    right = np.flatnonzero(scores_a == 1)[:30]
    scores_b[right] = 0.0  # B gets 30 right items wrong; the control repeats A exactly
    for side, scores in (("a", scores_a), ("b", scores_b), ("control", scores_a)):
        write_lm_eval_run(tmp_path / side, DATES[0], 1, {"gsm8k": generation_samples("gsm8k", {"strict-match": list(scores)})})
    a, b, control = (str(tmp_path / side) for side in ("a", "b", "control"))
    _, strict = _analyze(tmp_path, Path(a), Path(b), "--control", control, "--flip-margin", "0.05")
    gate = strict["benchmarks"]["gsm8k"]["gates"][0]
    assert gate["estimate"] == 30 / 200 and gate["outcome"] == "beyond" and gate["lower"] > 0.05
    assert strict["benchmarks"]["gsm8k"]["verdict"] == "different" and "excess harmful flips" in strict["benchmarks"]["gsm8k"]["reason"]
    assert strict["flip_margin"] == 0.05 and strict["benchmarks"]["gsm8k"]["choices"] is None
    _, loose = _analyze(tmp_path, Path(a), Path(b), "--control", control, "--flip-margin", "0.5")
    assert loose["benchmarks"]["gsm8k"]["gates"][0]["outcome"] == "passed"


def test_gold_choices_read_back_from_the_store_as_numbers_still_count() -> None:
    """The store's JSON lines read a logged target "2" back as 2: the gold choice must survive that."""
    import pandas as pd

    from statrepro.analysis import AnalysisOptions, analyze
    from statrepro.harness.records import make_records
    from statrepro.stats.rules import VerdictRules

    def rows(shift: float) -> pd.DataFrame:
        return make_records([
            {"benchmark": "mc", "subset": "mc", "item_key": f"mc/{i}", "run_id": "seed-0", "metric": "acc", "score": 1.0,
             "target": 2, "choice_logprobs": [-3.0, -2.0, -1.0 + shift * (i % 2), -4.0]}
            for i in range(40)
        ])

    analysis = analyze(rows(0.0), rows(-0.5), AnalysisOptions(rules=VerdictRules(n_resamples=200)))
    gold = analysis.choices["mc"].gold_delta
    assert gold is not None and gold.n_items == 40 and gold.mean == -0.25
