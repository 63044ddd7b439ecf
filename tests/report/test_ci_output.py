"""What CI systems read (statrepro.report.ci): the JUnit file read back by a JUnit reader (junitparser), the GitHub job
summary and annotations, and report.md kept within a pull-request comment's limit."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml
from markdown_it import MarkdownIt

from statrepro.analysis import AnalysisOptions, analyze
from statrepro.report.ci import github_annotations, github_summary, junit_xml, verdict_line, write_ci_outputs
from statrepro.report.markdown import PR_COMMENT_LIMIT, render_markdown
from statrepro.stats.rules import VerdictRules
from statrepro.verdict_schema import CandidateJson, SelectionJson
from test_report import explanation, generated_records

EXPECTED = {"gsm8k": "equivalent", "mmlu_redux": "different", "ceval": "inconclusive"}


@pytest.fixture(scope="module")
def analysis():
    records_a, records_b = generated_records()
    result = analyze(records_a, records_b, AnalysisOptions(rules=VerdictRules(n_resamples=200)), inputs={"a": "runs/A", "b": "runs/B"})
    assert {item.name: item.verdict for item in result.decision.benchmarks} == EXPECTED
    return result


@pytest.fixture(scope="module")
def verdict(analysis):
    return analysis.to_json()


def with_reason(verdict, name: str, reason: str):
    benchmarks = dict(verdict.benchmarks)
    benchmarks[name] = benchmarks[name].model_copy(update={"reason": reason})
    return verdict.model_copy(update={"benchmarks": benchmarks})


def candidates_verdict(verdict):
    """Two candidates against one reference: the first passes everything, the second is this verdict."""
    passing = verdict.model_copy(update={
        "verdict": "equivalent", "exit_code": 0,
        "benchmarks": {name: b.model_copy(update={"verdict": "equivalent"}) for name, b in verdict.benchmarks.items()},
    })
    candidates = [
        CandidateJson(name=name, input=f"{name}.yaml", verdict=comparison.verdict, exit_code=comparison.exit_code,
                      cleared=name == "q8", recovery={}, comparison=comparison)
        for name, comparison in (("q8", passing), ("q4", verdict))
    ]
    selection = SelectionJson(procedure="fixed-sequence", order=["q8", "q4"], cleared=["q8"], shipped="q8", stopped_at="q4")
    return verdict.model_copy(update={"candidates": candidates, "selection": selection})


def test_junit_reads_back_one_case_per_benchmark_with_failures_and_errors(verdict, tmp_path):
    path = tmp_path / "junit.xml"
    assert write_ci_outputs(verdict, junit=path) == []
    xml = JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert len(suites) == 1 and (xml.tests, xml.failures, xml.errors) == (3, 1, 1)
    cases = {case.name: case for case in suites[0]}
    assert set(cases) == set(EXPECTED)
    assert cases["gsm8k"].is_passed and not cases["gsm8k"].result
    [failure] = cases["mmlu_redux"].result
    assert isinstance(failure, Failure) and failure.type == "different"
    assert failure.message == verdict_line("mmlu_redux", verdict.benchmarks["mmlu_redux"])
    assert failure.message.startswith("mmlu_redux: different: B is clearly below")
    assert "score A 0.6" in failure.text and "margin ±" in failure.text
    [error] = cases["ceval"].result
    assert isinstance(error, Error) and error.type == "inconclusive" and error.message.startswith("ceval: inconclusive: ")
    properties = {p.name: p.value for p in suites[0].properties()}
    assert properties["verdict"] == "different" and properties["exit_code"] == "3"


def test_junit_has_one_case_per_candidate_and_benchmark(verdict, tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(junit_xml(candidates_verdict(verdict)), encoding="utf-8")
    xml = JUnitXml.fromfile(str(path))
    cases = {(case.classname, case.name): case for suite in xml for case in suite}
    assert set(cases) == {(f"statrepro.{c}", name) for c in ("q8", "q4") for name in EXPECTED}
    assert all(case.is_passed for (classname, _), case in cases.items() if classname == "statrepro.q8")
    assert (xml.tests, xml.failures, xml.errors) == (6, 1, 1)


def test_junit_survives_characters_xml_cannot_hold(verdict, tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(junit_xml(with_reason(verdict, "mmlu_redux", "escape \x1b[31m <b> & \"quoted\" ]]>")), encoding="utf-8")
    [failure] = next(case for suite in JUnitXml.fromfile(str(path)) for case in suite if case.name == "mmlu_redux").result
    assert failure.message == "mmlu_redux: different: escape \ufffd[31m <b> & \"quoted\" ]]>"


def test_github_summary_is_appended_and_annotations_go_to_stdout(verdict, tmp_path):
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    stdout = io.StringIO()
    notes = write_ci_outputs(verdict, github=True, environ={"GITHUB_STEP_SUMMARY": str(summary)}, stdout=stdout)
    assert notes == []
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n## ❌ statrepro: **different** (exit code 3)")
    rendered = MarkdownIt("commonmark").enable("table").render(text)
    assert rendered.count("<tr>") == 1 + 3
    assert "ceval: inconclusive: " in text and "⚠️ inconclusive" in text and "✅ equivalent" in text
    lines = stdout.getvalue().splitlines()
    assert lines == github_annotations(verdict)
    assert [line.split(" ", 1)[0] for line in lines] == ["::warning", "::error"]  # ceval, mmlu_redux; none for gsm8k
    assert lines[1].startswith("::error title=statrepro mmlu_redux%3A different::mmlu_redux: different: B is clearly below")


def test_annotations_are_one_line_each_whatever_the_reason(verdict):
    [line] = [line for line in github_annotations(with_reason(verdict, "mmlu_redux", "50% lower\nsee report")) if "::error" in line]
    assert line.endswith("::mmlu_redux: different: 50%25 lower%0Asee report")


def test_github_without_a_summary_file_still_annotates_and_says_so(verdict, tmp_path):
    stdout = io.StringIO()
    assert write_ci_outputs(verdict, github=True, environ={}, stdout=stdout) == [
        "GitHub job summary skipped: $GITHUB_STEP_SUMMARY is not set"
    ]
    assert len(stdout.getvalue().splitlines()) == 2
    notes = write_ci_outputs(verdict, github=True, environ={"GITHUB_STEP_SUMMARY": str(tmp_path)}, stdout=io.StringIO())
    assert len(notes) == 1 and notes[0].startswith(f"GitHub job summary skipped: {tmp_path}: ")  # a directory: never fails


def test_candidates_summary_has_a_row_per_candidate_and_benchmark(verdict):
    text = github_summary(candidates_verdict(verdict))
    assert "Ship **q8**" in text
    rendered = MarkdownIt("commonmark").enable("table").render(text)
    assert rendered.count("<tr>") == 1 + 6
    assert [line.split("::")[1].split(" title=")[0] for line in github_annotations(candidates_verdict(verdict))] == ["warning", "error"]


def test_report_md_puts_the_verdict_table_first_and_folds_the_details(analysis):
    text = render_markdown(analysis, "forest_plot.png", explanation())
    assert text.index("| benchmark |") < text.index("<details>") < text.index("![Difference") < text.index("### Explain")
    assert len(text) < 10_000  # the three-benchmark report with an explanation: a few thousand characters


def test_report_md_stays_within_a_pull_request_comment(analysis):
    huge = explanation()
    huge["items"] = huge["items"] * 400  # about 150,000 characters of explanation
    text = render_markdown(analysis, "forest_plot.png", huge)
    assert len(text) <= PR_COMMENT_LIMIT
    assert "| mmlu_redux |" in text and "Details omitted" in text and "<details>" not in text
    full = render_markdown(analysis, "forest_plot.png", explanation())
    assert text.split("\nDetails omitted")[0] == full.split("\n<details>")[0]  # the summary is kept whole
    tiny = render_markdown(analysis, "forest_plot.png", huge, limit=1_000)
    assert len(tiny) <= 1_000 and "Truncated: " in tiny and tiny.startswith("## statrepro verdict: **different**")


def test_analyze_cli_writes_junit_and_github_outputs(tmp_path: Path):
    from harness_output import DATES, standard_tasks, write_lm_eval_run
    from typer.testing import CliRunner

    from statrepro.cli import app

    write_lm_eval_run(tmp_path / "a", DATES[0], 1, standard_tasks())
    write_lm_eval_run(tmp_path / "b", DATES[1], 2, standard_tasks(flip=1))
    summary = tmp_path / "summary.md"
    args = ["analyze", str(tmp_path / "a"), str(tmp_path / "b"), "--resamples", "200", "--junit", str(tmp_path / "junit.xml"), "--github"]
    result = CliRunner().invoke(app, args, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.exit_code in (0, 3, 4), result.output
    xml = JUnitXml.fromfile(str(tmp_path / "junit.xml"))
    assert xml.tests >= 2
    # The exit code is the worst test case's: 3 with any failure, 4 with errors only, 0 with neither.
    assert result.exit_code == (3 if xml.failures else 4 if xml.errors else 0)
    assert f"(exit code {result.exit_code})" in summary.read_text(encoding="utf-8")
    result = CliRunner().invoke(app, args, env={"GITHUB_STEP_SUMMARY": ""})
    assert result.stderr.count("GitHub job summary skipped") == 1

