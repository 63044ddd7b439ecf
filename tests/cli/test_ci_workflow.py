"""docs/ci.md's GitHub Actions workflow and GitLab CI job, run: every step's commands but the install, in a
workspace laid out as the workflow expects, with the stub harness behind the environment files, `statrepro` and a
stand-in `gh` on PATH and $GITHUB_STEP_SUMMARY pointed at a file. The workflow runs twice, as GitHub would: on a push
to the main branch (the reference is saved as the baseline) and on a pull request (only the candidate runs, gated
against the cached baseline), each step under its `if:` condition."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from junitparser import JUnitXml

from statrepro.report.markdown import PR_COMMENT_LIMIT
from test_hardening import CLI_TIMEOUT, cli_environment, stub_env, workspace, write_yaml  # noqa: F401 (workspace is a fixture)

CI_DOC = Path(__file__).resolve().parents[2] / "docs" / "ci.md"
INSTALL = 'python -m pip install "statrepro[run]"'  # the test's interpreter has statrepro already
EXPRESSIONS = {"github.token": "test-token", "github.event.pull_request.number": "7"}


def documented_jobs() -> tuple[dict, dict]:
    """The GitHub workflow and the GitLab job, as YAML, from docs/ci.md's code blocks."""
    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", CI_DOC.read_text(encoding="utf-8"), re.S)]
    [github] = [block for block in blocks if "jobs" in block]
    [gitlab] = [block["statrepro"] for block in blocks if "statrepro" in block]
    return github, gitlab


def expand(text: str) -> str:
    """GitHub's ${{ ... }} expressions a step's env uses (an unknown one fails the test)."""
    return re.sub(r"\$\{\{\s*([\w.]+)\s*\}\}", lambda match: EXPRESSIONS[match[1]], text)


def condition_holds(condition: str | None, event: str, cwd: Path) -> bool:
    """A step's `if:`, in the few functions the documented workflow uses (always, hashFiles, the event's name);
    anything else is left in the expression, where Python's eval fails the test."""
    if condition is None:
        return True
    python = re.sub(r"hashFiles\('([^']+)'\)", lambda match: repr("hash" if glob.glob(str(cwd / match[1])) else ""), condition)
    python = python.replace("always()", "True").replace("github.event_name", repr(event))
    return bool(eval(python.replace("&&", " and ").replace("||", " or "), {"__builtins__": {}}))


def run_step(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", command], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=CLI_TIMEOUT)


def run_workflow(job: dict, event: str, cwd: Path, env: dict[str, str]) -> dict[str, subprocess.CompletedProcess]:
    """The job's `run` steps whose condition holds for ``event``, by name; each must exit 0."""
    steps = [step for step in job["steps"] if "run" in step]
    assert steps[0]["run"] == INSTALL
    results = {}
    for step in steps[1:]:
        if not condition_holds(step.get("if"), event, cwd):
            continue
        results[step["name"]] = run_step(step["run"], cwd, {**env, **{key: expand(str(value)) for key, value in step.get("env", {}).items()}})
        assert results[step["name"]].returncode == 0, f"{step['name']}: {results[step['name']].stderr}"
    return results


def tools(directory: Path) -> Path:
    """`statrepro` (this checkout) and a `gh` that keeps the comment it was asked to post."""
    directory.mkdir()
    (directory / "statrepro").write_text(f'#!/bin/sh\nexec "{sys.executable}" -c "from statrepro.cli import app; app()" "$@"\n')
    (directory / "gh").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{directory}/gh.args"\ncp "$5" "{directory}/gh-comment.md"\n')
    for tool in directory.iterdir():
        tool.chmod(0o755)
    return directory


def jobs_run(counts: Path) -> list[str]:
    """The environment of each job the stub ran since ``counts`` was last cleared."""
    return sorted(path.name.split("-")[0] for path in counts.glob("*.count"))


def test_the_documented_workflow_and_gitlab_job_run(workspace):
    github, gitlab = documented_jobs()
    (workspace / "envs").mkdir()
    counts = workspace / "counts"
    for name in ("reference", "candidate"):  # 2 seeds: noise for the plan; 150 items: enough to conclude
        write_yaml(workspace / "envs" / f"{name}.yaml",
                   stub_env(workspace, name, benchmarks={"gsm8k": {"limit": 150}}, seeds=2, extra_args=["--counter-dir", counts]))
    bin_dir = tools(workspace / "bin")
    summary = workspace / "step_summary.md"
    base = cli_environment(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary))
    [job] = github["jobs"].values()

    # A push to the main branch: no baseline cached yet, so the reference runs and is saved; nothing is gated.
    assert list(run_workflow(job, "push", workspace, base)) == ["Save the reference as the baseline (once per reference)"]
    [bundle] = (workspace / "baselines").iterdir()
    assert jobs_run(counts) == ["reference", "reference"] and not summary.exists()

    # A pull request, with the baseline restored from the cache: only the candidate runs.
    for count in counts.iterdir():
        count.unlink()
    ran = run_workflow(job, "pull_request", workspace, base)
    assert "Save the reference as the baseline (once per reference)" not in ran
    assert jobs_run(counts) == ["candidate", "candidate"]
    gated = ran["Gate the candidate against the baseline"]
    assert "::error" not in gated.stdout and "::warning" not in gated.stdout  # an A/A of the stub: equivalent
    label = bundle.name.removesuffix(".baseline.tgz")
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("## ✅ statrepro: **equivalent** (exit code 0)") and f"Gated against baseline {label}" in text
    plan = text.split("### Planning from the baseline\n~~~\n", 1)[1]
    assert re.search(r"│ gsm8k\s+│\s+150 │ [\d.]+% \(baseline seeds\) │", plan), plan
    [suite] = JUnitXml.fromfile(str(workspace / "report" / "junit.xml"))
    assert suite.name == f"statrepro baseline {label} vs envs/candidate.yaml"
    assert [(case.name, case.is_passed) for case in suite] == [("gsm8k", True)]
    comment = (bin_dir / "gh-comment.md").read_text(encoding="utf-8")
    assert (bin_dir / "gh.args").read_text().split() == ["pr", "comment", "7", "--body-file", "report/report.md"]
    assert comment.startswith("## statrepro verdict: **equivalent**") and len(comment) <= PR_COMMENT_LIMIT

    # The GitLab job, on the store the workflow left (its cache) but no baselines cache: the baseline is saved again
    # from the stored runs (byte for byte the same bundle) and the candidate gated; nothing is run again.
    (workspace / "report" / "junit.xml").unlink()
    (workspace / "baselines" / bundle.name).unlink()
    variables = {key: os.path.expandvars(value.replace("$CI_PROJECT_DIR", str(workspace))) for key, value in gitlab["variables"].items()}
    assert gitlab["script"][0] == INSTALL
    for command in gitlab["script"][1:]:
        result = run_step(command, workspace, {**base, **variables, "CI_PROJECT_DIR": str(workspace)})
        assert result.returncode == 0, result.stderr
        assert "2 of 2 runs already in" in result.stderr
    assert [path.name for path in (workspace / "baselines").iterdir()] == [bundle.name]
    assert jobs_run(counts) == ["candidate", "candidate"]
    junit = workspace / gitlab["artifacts"]["reports"]["junit"]
    assert JUnitXml.fromfile(str(junit)).tests == 1
    assert all((workspace / path).exists() for path in gitlab["artifacts"]["paths"])


def test_compare_with_several_candidates_writes_a_case_per_candidate_and_benchmark(tmp_path: Path):
    from typer.testing import CliRunner

    from statrepro.cli import app

    (tmp_path / "model").mkdir()
    (tmp_path / "data" / "gsm8k").mkdir(parents=True)
    files = [write_yaml(tmp_path / f"{name}.yaml", stub_env(tmp_path, name, benchmarks={"gsm8k": {"limit": 20}}))
             for name in ("ref", "q8", "q4")]
    junit = tmp_path / "junit.xml"
    result = CliRunner().invoke(app, ["compare", *map(str, files), "--store", str(tmp_path / "store"), "--junit", str(junit)])
    xml = JUnitXml.fromfile(str(junit))
    assert sorted((case.classname, case.name) for suite in xml for case in suite) == [("statrepro.q4", "gsm8k"), ("statrepro.q8", "gsm8k")]
    assert result.exit_code == (3 if xml.failures else 4 if xml.errors else 0), result.output
