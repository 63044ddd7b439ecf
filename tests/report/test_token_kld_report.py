"""compare --kld's token-level figures in report.html and report.md (inside the folded details)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from statrepro.analysis import AnalysisOptions, analyze
from statrepro.harness.records import make_records
from statrepro.report import write_report
from statrepro.stats.rules import VerdictRules
from statrepro.verdict_schema import VerdictJson

TEXT_SHA = "ab12cd34ef56ab78" + "0" * 48


def _token_kld(distributions: str, kld_ci=(0.00443, 0.00547)) -> dict:
    return {"reference": "f32", "candidate": "q8_0", "text_source": "benchmark mmlu_redux: 32 prompts with gold answers",
            "text_sha256": TEXT_SHA, "distributions": distributions, "n_tokens": 2024, "n_texts": 32,
            "mean_kld": 0.00495, "kld_se": 0.0002, "kld_ci": kld_ci,
            "kld_percentiles": {"90": 0.011, "95": 0.018, "99": 0.0412, "99.9": 0.09}, "median_kld": 0.002,
            "max_kld": 0.2, "same_top": 0.9595, "same_top_se": 0.004, "rms_dp": 0.01234, "rms_dp_se": 0.0005,
            "ln_ppl_ratio": 0.00321, "ln_ppl_ratio_se": 0.001, "ppl_ref": 12.5, "ppl_cand": 12.54, "confidence": 0.95}


@pytest.fixture(scope="module")
def analysis():
    rng = np.random.default_rng(4)
    scores = (rng.random(60) < 0.6).astype(float)

    def side(values):
        return make_records([{"benchmark": "mmlu_redux", "subset": "mmlu_redux", "item_key": f"mmlu_redux/{i}", "run_id": "0",
                              "metric": "acc", "score": value} for i, value in enumerate(values)])

    return analyze(side(scores), side(scores), AnalysisOptions(rules=VerdictRules(n_resamples=200)))


def test_the_reports_show_the_token_kld_figures(analysis, tmp_path):
    paths = write_report(tmp_path, replace(analysis, token_kld=_token_kld("full vocabulary")))
    VerdictJson.model_validate_json(paths["verdict"].read_text())
    markdown, page = paths["markdown"].read_text(), paths["html"].read_text()
    folded = markdown[markdown.index("<details>"):markdown.index("</details>")]
    row = "| f32 → q8_0 | 2024 (32) | 0.00495 [0.00443, 0.00547] | 0.0412 | 95.95% | 1.234% | +0.00321 | ab12cd34ef56ab78 |"
    assert "### Token-level KLD" in folded and row in folded
    assert 'id="token-kld"' in page
    for figure in ("0.00495 [0.00443, 0.00547]", "0.0412", "95.95%", "1.234%", "+0.00321", "ab12cd34ef56ab78", "2024 (32)"):
        assert figure in page
    assert "lower bound" not in markdown and "lower bound" not in page


def test_top_k_figures_are_marked_as_lower_bounds_and_one_text_has_no_interval(analysis, tmp_path):
    top_k = _token_kld("top-20 of each endpoint's prompt logprobs: the KLD figures are lower bounds", kld_ci=(None, None))
    paths = write_report(tmp_path, replace(analysis, token_kld=top_k))
    markdown = paths["markdown"].read_text()
    assert "| 0.00495 n/a with one text (lower bound) | 0.0412 (lower bound) |" in markdown
    assert "0.00495 n/a with one text (lower bound)" in paths["html"].read_text()


def test_without_token_kld_there_is_no_section(analysis, tmp_path):
    paths = write_report(tmp_path, analysis)
    assert "Token-level KLD" not in paths["markdown"].read_text() and 'id="token-kld"' not in paths["html"].read_text()
