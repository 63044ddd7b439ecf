"""The report with the A/A control: flip decomposition with intervals, A vs A′ beside A vs B, the excess, its test
and the unstable-baseline warning, in report.html and report.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from statrepro.analysis import AnalysisOptions, analyze
from statrepro.stats.rules import VerdictRules
from statrepro.harness.records import make_records
from statrepro.report import write_report

FAST = AnalysisOptions(rules=VerdictRules(n_resamples=200))


def _records(side: str, scores: np.ndarray, answers: list[str]):
    return make_records([
        {"benchmark": "gsm8k", "subset": "gsm8k", "item_key": f"gsm8k/{item}", "run_id": f"seed{run}", "seed": run,
         "metric": "exact_match", "score": float(scores[item, run]), "prediction": answers[item], "doc_hash": f"d{item}",
         "prompt_hash": f"p{item}", "model": "m", "source": f"{side}.jsonl"}
        for item in range(scores.shape[0]) for run in range(scores.shape[1])
    ])


def _analysis(control_flipped: int):
    rng = np.random.default_rng(8)
    scores_a = (rng.random((200, 1)) < 0.6).astype(float)
    scores_b, scores_control = scores_a.copy(), scores_a.copy()
    scores_b[:20] = 1 - scores_b[:20]
    scores_control[100:100 + control_flipped] = 1 - scores_control[100:100 + control_flipped]
    answers = [str(item) for item in range(200)]
    churned = [f"{answer}!" if item in range(30, 40) else answer for item, answer in enumerate(answers)]  # 10 churn in B
    return analyze(
        _records("a", scores_a, answers), _records("b", scores_b, churned), FAST,
        records_control=_records("control", scores_control, answers),
    )


def test_control_without_flips_is_stable_and_its_numbers_reach_json_html_and_markdown(tmp_path: Path) -> None:
    analysis = _analysis(control_flipped=0)
    control = analysis.control["gsm8k"]
    assert control.baseline == "stable" and control.warning is None
    assert control.candidate.churn.count == 10 and control.excess_churn.excess == 10 / 200
    assert analysis.flips["gsm8k"].churn.count == 10
    write_report(tmp_path, analysis, argv=["statrepro", "analyze"])
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "A/A control" in page and "A vs A′ (control)" in page and "excess (A vs B − A vs A′)" in page
    assert f"{control.excess_test.p_value:.3g}" in page and "+10.0% [" in page  # 20 flips vs none in A′
    assert "answer churn" in page and "5.0% [" in page
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "### A/A control" in markdown and "| gsm8k | A vs B | 10.0% [" in markdown
    verdict = analysis.to_json().model_dump()
    assert verdict["benchmarks"]["gsm8k"]["flip_decomposition"]["churn"]["count"] == 10
    assert verdict["benchmarks"]["gsm8k"]["control"]["p_value"] == control.excess_test.p_value


def test_an_unstable_baseline_is_named_in_both_reports(tmp_path: Path) -> None:
    analysis = _analysis(control_flipped=60)
    control = analysis.control["gsm8k"]
    assert control.baseline != "stable"
    write_report(tmp_path, analysis, argv=["statrepro", "analyze"])
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert f"gsm8k: baseline {control.baseline}." in page and f"gsm8k: baseline {control.baseline}.**" in markdown
