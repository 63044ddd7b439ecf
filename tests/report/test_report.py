"""The sign-off report, rendered from generated results with known verdicts."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from statrepro.analysis import AnalysisOptions, analyze
from statrepro.stats.rules import VerdictRules
from statrepro.harness.records import make_records
from statrepro.report import FLIP_MATRIX_NAME, FOREST_PLOT_NAME, write_report
from statrepro.redaction import redact_argv, redact_secret_keys
from statrepro.report.html import CONTENT_SECURITY_POLICY
from statrepro.verdict_schema import VerdictJson

INJECTED = "<script>alert('pwned')</script>"
LONG_ANSWER = "The answer needs many steps. " * 20 + "#### 42"
SECRET = "sk-test-0123456789"


def _rows(benchmark: str, scores: np.ndarray, side: str, answers: dict[int, str]) -> list[dict]:
    rows = []
    for item in range(scores.shape[0]):
        for run in range(scores.shape[1]):
            rows.append(
                {
                    "benchmark": benchmark,
                    "subset": benchmark,
                    "item_key": f"{benchmark}/{item}",
                    "run_id": f"seed{run}",
                    "seed": run,
                    "metric": "exact_match",
                    "score": float(scores[item, run]),
                    "prediction": answers.get(item, f"{side} answer {item}"),
                    "target": f"target {item}",
                    "prompt_hash": f"p{item}",
                    "doc_hash": f"d{item}",
                    "model": f"model-{side}",
                    "source": f"{side}/{benchmark}.jsonl",
                }
            )
    return rows


def _flip(scores: np.ndarray, items: np.ndarray) -> np.ndarray:
    flipped = scores.copy()
    flipped[items] = 1.0 - flipped[items]
    return flipped


def generated_records():
    """Three benchmarks built to come out equivalent, different and inconclusive."""
    rng = np.random.default_rng(7)
    rows_a, rows_b = [], []
    # Equivalent: 3000 items, 3 seeds, B copies A except 30 items flipped each way.
    p = rng.beta(3, 2, 3000)
    a = (rng.random((3000, 3)) < p[:, None]).astype(float)
    right, wrong = np.flatnonzero(a.mean(1) == 1), np.flatnonzero(a.mean(1) == 0)
    flipped = np.concatenate([right[:30], wrong[:30]])
    b = _flip(a, flipped)
    # The report lists flips of equal size by item key: put the hostile texts on the first two listed.
    first, second = sorted(flipped)[:2]
    answers_b = {int(first): INJECTED, int(second): LONG_ANSWER}
    rows_a += _rows("gsm8k", a, "A", {})
    rows_b += _rows("gsm8k", b, "B", answers_b)
    # Different: 1500 items, one seed, B loses a quarter of A's right answers.
    a = (rng.random((1500, 1)) < 0.7).astype(float)
    right = np.flatnonzero(a[:, 0] == 1)
    b = _flip(a, right[: len(right) // 4])
    rows_a += _rows("mmlu_redux", a, "A", {})
    rows_b += _rows("mmlu_redux", b, "B", {})
    # Inconclusive: 12 items, 2 seeds, a few changes.
    a = (rng.random((12, 2)) < 0.6).astype(float)
    b = _flip(a, np.array([0, 3, 5]))
    rows_a += _rows("ceval", a, "A", {})
    rows_b += _rows("ceval", b, "B", {})
    return make_records(rows_a), make_records(rows_b)


MANIFESTS = {
    "A": {"hardware": {"cpu": "x86_64"}, "harness": {"name": "lm-eval", "version": "0.4.9"}, "dataset_hashes": {"gsm8k": "abc123"},
          "started": "2025-01-01T00:00:00Z", "engine": {"api_key": SECRET}},
    "B": {"hardware": {"cpu": "aarch64"}, "harness": {"name": "lm-eval", "version": "0.4.9"}, "dataset_hashes": {"gsm8k": "abc123"},
          "started": "2025-01-02T00:00:00Z", "engine": {"headers": {"Authorization": f"Bearer {SECRET}"}}},
}


def explanation() -> dict:
    """An explain result as compare --explain hands it to the report, with a hostile replay text."""
    from statrepro.diagnose.explain import ExplainResult, ItemExplanation, Replay, TokenCheck

    tokens = TokenCheck(identical=True, length_a=40, length_b=40, prompt_a="<|im_start|>user\nq")
    replay = Replay(divergence=3, token_a=" 4", token_b=" 5", gap_a=0.02, gap_b=0.8, max_abs_delta_before=0.01,
                    not_greedy_a=None, not_greedy_b=None, text_a="It is 4", text_b=INJECTED)
    items = (
        ItemExplanation("gsm8k", "gsm8k/7", "flipped", 1.0, 0.0, "near tie", "diverges at token 3 ...", tokens, replay),
        ItemExplanation("gsm8k", "gsm8k/9", "flipped", 0.0, 1.0, "prompt differs",
                        "the prompts differ in tokens at position 1: A has 'system', B has '<|im_start|>' (doubled BOS '<|im_start|>' on B)",
                        TokenCheck(identical=False, length_a=40, length_b=41, position=1, token_a="system", token_b="<|im_start|>",
                                   defect="doubled BOS '<|im_start|>' on B"), None),
    )
    return ExplainResult(env_a="a", env_b="b", epsilon=0.1, shift_threshold=1.0, top_k=5, max_tokens=64, flipped=60,
                         items=items).to_dict()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    records_a, records_b = generated_records()
    analysis = analyze(records_a, records_b, AnalysisOptions(rules=VerdictRules(n_resamples=2000)), inputs={"a": "runs/A", "b": "runs/B"})
    directory = tmp_path_factory.mktemp("report")
    argv = ["statrepro", "analyze", "runs/A", "runs/B", "--api-key", SECRET, f"--token={SECRET}"]
    paths = write_report(directory, analysis, records_a=records_a, records_b=records_b, argv=argv, manifests=MANIFESTS,
                         explain=explanation())
    return analysis, paths


def test_generated_results_cover_every_kind_of_verdict(report):
    analysis, _ = report
    verdicts = {item.name: item.verdict for item in analysis.decision.benchmarks}
    assert verdicts == {"gsm8k": "equivalent", "mmlu_redux": "different", "ceval": "inconclusive"}


def test_report_files_exist_and_verdict_json_validates(report):
    analysis, paths = report
    assert set(paths) == {"html", "markdown", "verdict", "forest_plot", "flip_matrix", "explain"}
    for path in paths.values():
        assert path.is_file() and path.stat().st_size > 0
    assert paths["forest_plot"].name == FOREST_PLOT_NAME
    assert paths["forest_plot"].read_bytes().startswith(b"\x89PNG")
    verdict = VerdictJson.model_validate_json(paths["verdict"].read_text())
    assert verdict.verdict == analysis.decision.verdict == "different"
    assert verdict.benchmarks["ceval"].verdict == "inconclusive"
    power = verdict.benchmarks["ceval"].power  # a size the pilot cannot place is withheld, with its reason
    assert (power.items_needed is None) == (power.items_withheld is not None)


def test_markdown_renders_with_table_and_plot(report):
    from markdown_it import MarkdownIt

    _, paths = report
    text = paths["markdown"].read_text()
    rendered = MarkdownIt("commonmark").enable("table").render(text)
    # header + three benchmarks; the planning table: header + three benchmarks; the Explain table: header + two items
    assert rendered.count("<tr>") == 4 + 4 + 3
    assert "<h3>Planning</h3>" in rendered
    assert f'<img src="{FOREST_PLOT_NAME}"' in rendered and f'<img src="{FLIP_MATRIX_NAME}"' in rendered
    assert "<strong>different</strong>" in rendered
    assert text.count("to conclude: ") == 1 and ("(MDE)" in text or "likely need" in text)  # ceval is inconclusive
    assert (paths["markdown"].parent / FOREST_PLOT_NAME).is_file()


def test_html_is_self_contained(report):
    _, paths = report
    page = paths["html"].read_text()
    links = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", page, flags=re.IGNORECASE)
    assert links, "expected inlined images"
    assert all(link.startswith(("data:image/png;base64,", "#")) for link in links)  # inlined images, in-page links
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", page, flags=re.IGNORECASE)
    assert "@import" not in page and "url(" not in page
    assert CONTENT_SECURITY_POLICY in page


def test_html_escapes_predictions_and_redacts_secrets(report):
    _, paths = report
    page = paths["html"].read_text()
    # Two script elements, both the report's own: the item browser (admitted by its hash) and its compressed data.
    assert page.lower().count("<script") == 2 and INJECTED not in page
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]+'", page)
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    assert "<details>" in page and "#### 42" in page  # the long answer, expandable in full
    assert SECRET not in page
    assert "--api-key ***" in page and "--token=***" in page


def test_html_sections_present(report):
    _, paths = report
    page = paths["html"].read_text()
    for section in ("verdict", "benchmarks", "forest", "seeds", "flips", "plots", "items", "explain", "noise", "config", "provenance"):
        assert f'id="{section}"' in page
    assert 'href="#explain"' in page and "near tie" in page and "doubled BOS" in page  # Flips link to Explain
    assert json.loads(paths["explain"].read_text())["classes"] == {"near tie": 1, "prompt differs": 1}
    assert "### Explain: why items moved" in paths["markdown"].read_text()
    assert 'data-verdict="different"' in page
    assert "Seeds or items needed" in page and "to reach a verdict: " in page  # ceval is inconclusive
    assert "aarch64" in page and "0.4.9" in page and "abc123" in page  # manifests in the provenance
    assert "top 20 of" in page  # gsm8k has 60 flips, the top 20 shown


def test_report_without_records_or_manifests(tmp_path):
    records_a, records_b = generated_records()
    analysis = analyze(records_a, records_b, AnalysisOptions(rules=VerdictRules(n_resamples=500)))
    paths = write_report(tmp_path / "bare", analysis)
    page = paths["html"].read_text()
    assert "Predictions are not shown" in page
    assert "No run manifests were given" in page
    assert "not recorded" in page


def test_doctor_factors_replace_the_manifest_diff(tmp_path):
    records_a, records_b = generated_records()
    analysis = analyze(records_a, records_b, AnalysisOptions(rules=VerdictRules(n_resamples=500)))
    doctor = {"factors": [{"factor": "batch_size", "a": 1, "b": 8, "note": "<b>kernels differ</b>", "token": SECRET}]}
    page = write_report(tmp_path, analysis, manifests=MANIFESTS, doctor=doctor)["html"].read_text()
    assert "Factors found by doctor" in page and "batch_size" in page
    assert "&lt;b&gt;kernels differ&lt;/b&gt;" in page
    assert "Manifest entries that differ" not in page
    assert SECRET not in page


def test_redaction_helpers():
    nested = {"engine": {"api_key": "x", "API-KEY": "y", "base_url": "u"}, "list": [{"password": "p"}], "Authorization": "z"}
    assert redact_secret_keys(nested) == {"engine": {"api_key": "***", "API-KEY": "***", "base_url": "u"}, "list": [{"password": "***"}], "Authorization": "***"}
    assert redact_secret_keys("header Bearer abc.def") == "header Bearer ***"
    assert redact_argv(["run", "--secret", "s", "--client-token=t", "--tolerance", "0.01"]) == [
        "run", "--secret", "***", "--client-token=***", "--tolerance", "0.01"
    ]


# A check script appended to a copy of the report (admitted beside the report's own). It records in the DOM
# whether every image decoded and logs one marker line, which proves console capture works.
_CHECK_SCRIPT = (
    "window.addEventListener('load', () => {"
    " const images = Array.from(document.images);"
    " const ok = images.length > 0 && images.every((img) => img.complete && img.naturalWidth > 0);"
    " document.body.setAttribute('data-images-ok', ok ? 'yes' : 'no');"
    " console.log('statrepro-check images=' + images.length);"
    "});"
)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("chromium is not installed (apt-get install chromium); CI installs it")


def _headless(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
        "--window-size=1280,2000", *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def test_report_renders_in_headless_chromium(report, tmp_path):
    browser = _chromium()
    analysis, paths = report
    page = paths["html"].read_text()
    digest = hashlib.sha256(_CHECK_SCRIPT.encode()).digest()
    checked = page.replace("script-src ", f"script-src 'sha256-{base64.b64encode(digest).decode()}' ", 1)
    checked = checked.replace("</body>", f"<script>{_CHECK_SCRIPT}</script></body>")
    copy = tmp_path / "checked.html"
    copy.write_text(checked)

    result = _headless(browser, tmp_path / "profile", "--enable-logging=stderr", "--v=0",
                       "--virtual-time-budget=10000", "--dump-dom", copy.as_uri())
    dom = result.stdout
    assert 'data-images-ok="yes"' in dom, result.stderr[-2000:]
    assert 'data-verdict="different"' in dom and "different</h1>" in dom
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert any("statrepro-check images=3" in line for line in console), console  # forest, seeds, flip matrix
    assert [line for line in console if "statrepro-check" not in line] == []

    screenshot = tmp_path / "report-screenshot.png"  # kept under the pytest tmp dir as an artefact
    shot = _headless(browser, tmp_path / "profile", f"--screenshot={screenshot}", paths["html"].as_uri())
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]


def test_generated_reference_docs_are_current():
    from statrepro.report.config_reference import reference_docs

    docs = Path(__file__).resolve().parents[2] / "docs"
    for name, text in reference_docs().items():
        committed = (docs / name).read_text(encoding="utf-8") if (docs / name).is_file() else ""
        assert committed == text, f"docs/{name} is stale: run python scripts/gen_config_reference.py"


def test_reference_renders_types_defaults_and_docstrings():
    from statrepro.report.config_reference import reference_docs

    text = reference_docs()["config-reference.md"]
    assert '| `dtype` | "float32" \\| "bfloat16" \\| "float16" \\| "auto" | `"float32"` | Load precision.' in text
    assert "| `batch_size` | int (≥ 1) | `1` |" in text
    assert '| `benchmarks` | map of str to [BenchmarkSpec](#benchmarkspec) | `{"gsm8k": {}}` |' in text
    assert "## GenerationSpec" in text and "| `name` | str | required |" in text


def test_report_handles_absolute_non_inferiority_and_zero_scores(tmp_path):
    from markdown_it import MarkdownIt

    rng = np.random.default_rng(11)
    zeros = np.zeros((40, 1))
    a = (rng.random((200, 2)) < 0.5).astype(float)
    records_a = make_records(_rows("livebench", zeros, "A", {}) + _rows("ceval", a, "A", {}))
    records_b = make_records(_rows("livebench", _flip(zeros, np.arange(3)), "B", {}) + _rows("ceval", _flip(a, np.arange(5)), "B", {}))
    for margin_kind in ("absolute", "relative"):
        options = AnalysisOptions(rules=VerdictRules(mode="non-inferiority", margin_kind=margin_kind, tolerance=0.05, n_resamples=500))
        analysis = analyze(records_a, records_b, options)
        paths = write_report(tmp_path / margin_kind, analysis, records_a=records_a, records_b=records_b)
        VerdictJson.model_validate_json(paths["verdict"].read_text())
        assert "n/a" in paths["markdown"].read_text()  # livebench: A scores 0, so no relative difference
        # the verdict table and the planning table: a header and two benchmarks each
        assert MarkdownIt("commonmark").enable("table").render(paths["markdown"].read_text()).count("<tr>") == 3 + 3
        assert "mode non-inferiority" in paths["html"].read_text()
        # a relative margin of a zero score plans nothing, and says why
        assert ("relative margin of a zero score" in paths["markdown"].read_text()) == (margin_kind == "relative")


def test_analyze_cli_writes_the_report(tmp_path):
    """`statrepro analyze A B --report DIR` end to end, on lm-eval output trees (writer shared with test_ingest)."""
    from harness_output import DATES, standard_tasks, write_lm_eval_run
    from typer.testing import CliRunner

    from statrepro.cli import app

    write_lm_eval_run(tmp_path / "a", DATES[0], 1, standard_tasks())
    write_lm_eval_run(tmp_path / "b", DATES[1], 2, standard_tasks(flip=1))
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["analyze", str(tmp_path / "a"), str(tmp_path / "b"), "--report", str(out), "--resamples", "200"])
    assert result.exit_code in (0, 3, 4), result.output
    verdict = VerdictJson.model_validate_json((out / "verdict.json").read_text())
    page = (out / "report.html").read_text()
    assert f'data-verdict="{verdict.verdict}"' in page
    assert str(tmp_path / "a") in page  # input A in the provenance
    assert (out / FOREST_PLOT_NAME).is_file() and (out / "report.md").is_file()


def test_report_files_get_the_usual_permissions(report):
    import os

    _, paths = report
    umask = os.umask(0)
    os.umask(umask)
    for path in paths.values():
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600: reports are shared
