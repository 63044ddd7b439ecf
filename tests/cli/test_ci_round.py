"""Issue 24's proof, one CI round through the real CLI with the stub harness (its jobs are subprocesses of about
0.2 s; it counts each job it runs with --counter-dir): save a baseline from the reference once; gate a candidate
against it, running only the candidate's jobs, with a JUnit file (read by junitparser) and a GitHub job summary (in
$GITHUB_STEP_SUMMARY) that name the baseline; plan from the same baseline, its table the one its seeds' scores give."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from junitparser import JUnitXml
from typer.testing import CliRunner

from statrepro.api_plan import PlanOptions, plan_from_baseline_scores
from statrepro.cli import app
from statrepro.run.baseline import load_bundle
from stub_harness import offline_score
from test_hardening import stub_env, write_yaml

ITEMS, SEEDS = 150, 2  # the stub's scores flip with the seed on about 10% of the items: a noise the plan can read


def cli(*args, env: dict | None = None):
    return CliRunner().invoke(app, [str(arg) for arg in args], env=env)


def test_a_ci_round_saves_once_gates_only_the_candidate_and_plans_from_the_baseline(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "data" / "gsm8k").mkdir(parents=True)
    counts, baselines, store = tmp_path / "counts", tmp_path / "baselines", tmp_path / "store"
    envs = {name: write_yaml(tmp_path / f"{name}.yaml", stub_env(tmp_path, name, benchmarks={"gsm8k": {"limit": ITEMS}}, seeds=SEEDS,
                                                                 extra_args=["--counter-dir", counts]))
            for name in ("reference", "candidate")}

    # On the main branch: the reference runs once and is stored.
    saved = cli("baseline", "save", envs["reference"], "--store", store, "--baselines-dir", baselines)
    assert saved.exit_code == 0, saved.output
    assert len(list(counts.glob("reference*.count"))) == SEEDS
    (bundle_path,) = baselines.iterdir()
    bundle = load_bundle(bundle_path)

    # Per pull request: only the candidate runs (in a fresh store, as a CI job without the main branch's cache).
    junit, summary = tmp_path / "junit.xml", tmp_path / "step_summary.md"
    summary.write_text("an earlier step's summary\n", encoding="utf-8")
    gated = cli("gate", envs["candidate"], "--baseline", "reference", "--baselines-dir", baselines, "--store", tmp_path / "pr-store",
                "--json", tmp_path / "verdict.json", "--junit", junit, "--github", env={"GITHUB_STEP_SUMMARY": str(summary)})
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert gated.exit_code == 0 and verdict["verdict"] == "equivalent", gated.output  # the stub scores both alike
    assert sorted(path.name.split("-")[0] for path in counts.glob("*.count")) == ["candidate"] * SEEDS + ["reference"] * SEEDS
    assert all(path.read_text().split() == ["0"] for path in counts.glob("*.count"))  # each job ran once: the reference at save
    assert f"gate: baseline {bundle.label} (statrepro" in gated.stderr
    assert "::error" not in gated.stdout and "::warning" not in gated.stdout  # a passing verdict: no annotation

    xml = JUnitXml.fromfile(str(junit))
    (suite,) = xml
    assert suite.name == f"statrepro baseline {bundle.label} vs {envs['candidate']}"
    assert {prop.name: prop.value for prop in suite.properties()}["baseline"] == bundle.id == verdict["inputs"]["baseline"]
    assert [(case.name, case.is_passed) for case in suite] == [("gsm8k", True)] and (xml.tests, xml.failures, xml.errors) == (1, 0, 0)

    text = summary.read_text(encoding="utf-8")
    assert text.startswith("an earlier step's summary\n## ✅ statrepro: **equivalent** (exit code 0)")  # appended
    assert f"Gated against baseline {bundle.label} (sha256 `{bundle.id}`): {envs['candidate']}." in text
    assert f"| gsm8k | {ITEMS} | " in text

    # The planning table from the baseline's own seeds: the figures plan_from_baseline_scores gives for the stub's
    # known scores, and the baseline named on stderr.
    planned = cli("plan", "--baseline", bundle.id[:12], "--baselines-dir", baselines, "--margin", "absolute", "--tolerance", "0.05")
    assert planned.exit_code == 0, planned.output
    assert f"plan: baseline {bundle.label} (sha256 {bundle.id}): gsm8k {ITEMS} items x {SEEDS} runs" in planned.stderr
    known = np.array([[offline_score("gsm8k", item, seed) for seed in range(SEEDS)] for item in range(ITEMS)])
    plan = plan_from_baseline_scores({"gsm8k": known}, PlanOptions(margin="absolute", tolerance=0.05))["gsm8k"]
    (row,) = [line for line in planned.stdout.splitlines() if "gsm8k" in line]
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    assert cells == ["gsm8k", *plan.cells()] and plan.noise.source == "baseline seeds" and plan.n_items == ITEMS

    unknown = cli("plan", "--baseline", "referense", "--baselines-dir", baselines)
    assert unknown.exit_code == 2 and unknown.stderr.strip() == (
        f"error: --baseline: no baseline 'referense' in {baselines}; did you mean 'reference'?"), unknown.output
