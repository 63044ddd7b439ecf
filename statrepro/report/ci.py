"""What CI systems read, rendered from the verdict JSON alone: a JUnit XML file (one test case per benchmark, or per
candidate and benchmark), a GitHub Actions job summary and ``::error``/``::warning`` annotations.

The mapping follows the exit codes: a passing verdict (exit 0) is a passed test case, ``different`` (exit 3) a
``<failure>``, ``inconclusive`` (exit 4) an ``<error>`` (the comparison could not decide; it is no evidence of a
change). A failure's or error's message is the benchmark's verdict line; its text, the figures behind it.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TextIO
from xml.etree import ElementTree

from ..atomic import atomic_write_text
from ..stats.verdict import DIFFERENT, EQUIVALENT, EXIT_CODES, INCONCLUSIVE, VERDICTS, WITHIN_TOLERANCE

# Keyed by exit code, so a verdict label added to stats/ is rendered by what its exit code means.
JUNIT_ELEMENT = {label: {0: None, 3: "failure", 4: "error"}[code] for label, code in EXIT_CODES.items()}
ANNOTATION_LEVEL = {label: {0: None, 3: "error", 4: "warning"}[code] for label, code in EXIT_CODES.items()}
SUMMARY_MARK = {EQUIVALENT: "✅", WITHIN_TOLERANCE: "✅", DIFFERENT: "❌", INCONCLUSIVE: "⚠️"}
assert SUMMARY_MARK.keys() == set(VERDICTS) == JUNIT_ELEMENT.keys(), "every verdict label needs its CI rendering"

# XML 1.0 cannot carry these characters at all, escaped or not.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: object) -> str:
    return _NOT_XML.sub("\N{REPLACEMENT CHARACTER}", str(value))


def _label(verdict: str) -> str:
    return verdict.replace("_", " ")


def verdict_line(name: str, benchmark) -> str:
    """'gsm8k: different: <why>', the line a CI system shows for one benchmark."""
    return f"{name}: {_label(benchmark.verdict)}: {benchmark.reason}"


def _number(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def figures(benchmark) -> str:
    """The figures behind one benchmark's verdict, one per line."""
    low, high = benchmark.diff_ci
    tost_low, tost_high = benchmark.tost_ci
    return "\n".join([
        f"metric {benchmark.metric}; {benchmark.n_items} paired items; runs A/B {benchmark.n_runs_a}/{benchmark.n_runs_b}"
        + (f"; {benchmark.n_missing} items missing" if benchmark.n_missing else ""),
        f"score A {benchmark.score_a:.4f}, score B {benchmark.score_b:.4f}, diff {benchmark.diff:+.4f}, "
        f"CI [{_number(low, '+.4f')}, {_number(high, '+.4f')}] ({benchmark.ci_method})",
        f"margin ±{benchmark.margin:.4f}; TOST CI [{_number(tost_low, '+.4f')}, {_number(tost_high, '+.4f')}], "
        f"TOST p {benchmark.tost_p_value:.3g}; p adjusted {benchmark.p_adjusted:.3g}; p beyond {benchmark.p_beyond_adjusted:.3g}",
        f"flips {benchmark.flip_rate:.1%} ({benchmark.flips_down} down, {benchmark.flips_up} up)",
    ])


def _comparisons(verdict) -> list[tuple[str, object]]:
    """(suite name, verdict JSON of one comparison): the comparison itself, or each candidate's."""
    if verdict.candidates:
        return [(candidate.name, candidate.comparison) for candidate in verdict.candidates]
    inputs = verdict.inputs
    return [(f"{inputs.get('a', 'A')} vs {inputs.get('b', 'B')}", verdict)]


def junit_xml(verdict) -> str:
    """The JUnit XML of a verdict JSON (``verdict_schema.VerdictJson``): a test suite per comparison (per candidate
    with several), a test case per benchmark; ``different`` a failure, ``inconclusive`` an error."""
    root = ElementTree.Element("testsuites", name="statrepro")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for suite_name, comparison in _comparisons(verdict):
        classname = f"statrepro.{suite_name}" if verdict.candidates else "statrepro"
        suite = ElementTree.SubElement(root, "testsuite", name=_text(f"statrepro {suite_name}"))
        properties = ElementTree.SubElement(suite, "properties")
        for key in ("verdict", "exit_code", "alpha", "tolerance", "margin_kind", "mode", "statrepro_version"):
            ElementTree.SubElement(properties, "property", name=key, value=_text(getattr(comparison, key)))
        if "baseline" in verdict.inputs:  # a gate: the stored bundle's sha256, which names the reference exactly
            ElementTree.SubElement(properties, "property", name="baseline", value=_text(verdict.inputs["baseline"]))
        counts = {"tests": 0, "failures": 0, "errors": 0}
        for name, benchmark in comparison.benchmarks.items():
            case = ElementTree.SubElement(suite, "testcase", name=_text(name), classname=_text(classname), time="0")
            element = JUNIT_ELEMENT[benchmark.verdict]
            counts["tests"] += 1
            if element is None:
                ElementTree.SubElement(case, "system-out").text = _text(f"{verdict_line(name, benchmark)}\n{figures(benchmark)}")
                continue
            counts["failures" if element == "failure" else "errors"] += 1
            outcome = ElementTree.SubElement(case, element, message=_text(verdict_line(name, benchmark)), type=benchmark.verdict)
            outcome.text = _text(figures(benchmark))
        suite.set("tests", str(counts["tests"]))
        suite.set("failures", str(counts["failures"]))
        suite.set("errors", str(counts["errors"]))
        suite.set("skipped", "0")
        for key in totals:
            totals[key] += counts[key]
    for key, value in totals.items():
        root.set(key, str(value))
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="unicode") + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(verdict) -> list[str]:
    """GitHub Actions workflow commands: ``::error`` for each benchmark found different, ``::warning`` for each
    inconclusive one (a passing benchmark gets none), titled with the comparison and the benchmark."""
    lines = []
    several = bool(verdict.candidates)
    for suite_name, comparison in _comparisons(verdict):
        for name, benchmark in comparison.benchmarks.items():
            level = ANNOTATION_LEVEL[benchmark.verdict]
            if level is None:
                continue
            title = f"statrepro {suite_name + ' ' if several else ''}{name}: {_label(benchmark.verdict)}"
            lines.append(f"::{level} title={_escape_property(title)}::{_escape_data(verdict_line(name, benchmark))}")
    return lines


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def github_summary(verdict) -> str:
    """The Markdown job summary: the overall verdict and exit code, one table row per benchmark (per candidate and
    benchmark with several), then each benchmark's verdict line."""
    rules = (f"tolerance {verdict.tolerance:.2%} relative" if verdict.margin_kind == "relative" else f"tolerance {verdict.tolerance:g} absolute")
    lines = [
        f"## {SUMMARY_MARK[verdict.verdict]} statrepro: **{_label(verdict.verdict)}** (exit code {verdict.exit_code})",
        "",
        f"{rules}, alpha {verdict.alpha:g}, {verdict.mode}.",
        "",
    ]
    if "baseline" in verdict.inputs:  # a gate: say which stored reference the candidate was held to
        inputs = verdict.inputs
        lines += [f"Gated against {_cell(inputs['a'])} (sha256 `{inputs['baseline']}`): {_cell(inputs.get('b', 'B'))}.", ""]
    several = bool(verdict.candidates)
    if several:
        from .candidates import _selection_text

        lines += [_selection_text(verdict), ""]
    lines += [
        ("| candidate " if several else "") + "| benchmark | items | score A | score B | diff [CI] | margin | verdict |",
        ("|---" if several else "") + "|---|---:|---:|---:|---|---:|---|",
    ]
    reasons = []
    for suite_name, comparison in _comparisons(verdict):
        for name, b in comparison.benchmarks.items():
            low, high = b.diff_ci
            lines.append(
                (f"| {_cell(suite_name)} " if several else "")
                + f"| {_cell(name)} | {b.n_items} | {b.score_a:.4f} | {b.score_b:.4f} | {b.diff:+.4f} "
                f"[{_number(low, '+.4f')}, {_number(high, '+.4f')}] | ±{b.margin:.4f} | {SUMMARY_MARK[b.verdict]} {_label(b.verdict)} |"
            )
            reasons.append(f"- {_cell((suite_name + ' ') if several else '')}{_cell(verdict_line(name, b))}")
    return "\n".join(lines + [""] + reasons) + "\n"


def write_ci_outputs(
    verdict, *, junit: str | Path | None = None, github: bool = False, environ: dict | None = None, stdout: TextIO | None = None,
) -> list[str]:
    """Write the JUnit file, and with ``github`` print the annotations to ``stdout`` and append the job summary to
    the file ``$GITHUB_STEP_SUMMARY`` names. Never fails on the summary: returns one note per thing skipped."""
    notes = []
    if junit is not None:
        atomic_write_text(junit, junit_xml(verdict))
    if not github:
        return notes
    stream = stdout or sys.stdout
    for line in github_annotations(verdict):
        print(line, file=stream)
    stream.flush()
    path = (os.environ if environ is None else environ).get("GITHUB_STEP_SUMMARY")
    if not path:
        return notes + ["GitHub job summary skipped: $GITHUB_STEP_SUMMARY is not set"]
    try:
        with open(path, "a", encoding="utf-8") as summary:
            summary.write(github_summary(verdict))
    except OSError as error:
        notes.append(f"GitHub job summary skipped: {path}: {error.strerror or error}")
    return notes
