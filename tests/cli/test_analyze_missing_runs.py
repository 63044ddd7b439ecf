"""`statrepro analyze` on lm-eval trees where B lost runs among the ones it got wrong (issue 21).

The audit's new-user case: 1,000 gsm8k items, 3 seeds a side. A scores 0.905, B really 0.830 (a 7.5-point loss);
10% of B's runs are lost, all among its wrong ones. Before, `analyze A B --intersect` said `equivalent`, exit 0,
with B shown better.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harness_output import DATES, generation_samples, write_lm_eval_run
from statrepro.cli import app

ITEMS, SEEDS = 1000, 3


def _tree(root: Path, scores: np.ndarray) -> Path:
    """One lm-eval run per seed column; a NaN cell is a run whose line the harness never wrote."""
    for seed in range(scores.shape[1]):
        lines = generation_samples("gsm8k", {"strict-match": [0.0 if np.isnan(v) else v for v in scores[:, seed]]})
        kept = [line for line in lines if not np.isnan(scores[line["doc_id"], seed])]
        write_lm_eval_run(root, DATES[seed], seed + 1, {"gsm8k": kept})
    return root


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    rng = np.random.default_rng(905)
    p = rng.beta(8 * 0.905, 8 * 0.095, ITEMS)
    a = (rng.random((ITEMS, SEEDS)) < p[:, None]).astype(float)
    b = a.copy()
    b[(b == 1) & (rng.random(b.shape) < 0.075 / 0.905)] = 0.0
    wrong = np.flatnonzero(b.ravel() == 0)
    b.ravel()[rng.choice(wrong, size=ITEMS * SEEDS // 10, replace=False)] = np.nan
    root = tmp_path_factory.mktemp("lost-runs")
    return _tree(root / "a", a), _tree(root / "b", b), root


def _analyze(*args: str):
    return CliRunner().invoke(app, ["analyze", *args, "--resamples", "300"])


def test_without_intersect_lost_runs_are_an_error_naming_a_file(trees):
    a, b, _ = trees
    result = _analyze(str(a), str(b))
    assert result.exit_code == 2, result.output
    line = result.output.strip().splitlines()[-1]
    assert "samples_gsm8k_" in line and "--intersect" in line
    assert "Traceback" not in result.output


def test_without_intersect_a_seed_file_that_lacks_items_its_other_seeds_have_is_an_error(tmp_path):
    """Every item keeps at least one run, so the item sets agree: only the run check can see the loss."""
    a = np.ones((20, 3))
    b = a.copy()
    b[:4, 1] = np.nan  # seed 2 of B never wrote items 0-3
    result = _analyze(str(_tree(tmp_path / "a", a)), str(_tree(tmp_path / "b", b)))
    assert result.exit_code == 2, result.output
    line = result.output.strip().splitlines()[-1]
    assert f"samples_gsm8k_{DATES[1]}" in line
    assert "run 'seed-2' of side B lacks 4 items that its other runs have (e.g. 'gsm8k/0')" in line or "of side B lacks 4 items" in line


def test_with_intersect_the_lost_runs_are_counted_reported_and_the_verdict_is_not_a_pass(trees):
    a, b, root = trees
    out = root / "verdict.json"
    result = _analyze(str(a), str(b), "--intersect", "--json", str(out))
    assert result.exit_code == 4, result.output
    gsm8k = json.loads(out.read_text())["benchmarks"]["gsm8k"]
    assert gsm8k["verdict"] == "inconclusive"
    missing = gsm8k["missing_runs"]
    assert missing["b"]["missing"] == ITEMS * SEEDS // 10 and missing["b"]["expected"] == ITEMS * SEEDS
    assert missing["a"]["missing"] == 0 and sum(missing["b"]["by_run"].values()) == missing["b"]["missing"]
    assert missing["share"] == pytest.approx(0.1)
    assert "B lacks 300 of 3000 runs" in gsm8k["reason"]
    assert "B lacks 300 of 3000 runs" in " ".join(result.output.split())  # the terminal table shows them too


def test_a_relaxed_missing_share_still_cannot_pass_the_loss(trees):
    a, b, root = trees
    out = root / "relaxed.json"
    result = _analyze(str(a), str(b), "--intersect", "--max-missing", "0.2", "--json", str(out))
    assert result.exit_code == 4, result.output
    gsm8k = json.loads(out.read_text())["benchmarks"]["gsm8k"]
    assert "went wrong for B" in gsm8k["reason"] and gsm8k["worst_case_tost_p_value"] > 0.05
