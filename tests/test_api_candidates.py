"""`statrepro compare REF CAND1 CAND2 ...`: one reference, many candidates, through the CLI with the stand-in harness
of tests/support/content_scored.py (it scores each prepared item from its own content, fast and deterministic)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from content_scored import content_scored, data_dir  # noqa: F401 (a fixture)
from statrepro.cli import app
from statrepro.verdict_schema import VerdictJson


def _env(root: Path, name: str, **generation) -> Path:
    path = root / f"{name}.yaml"
    body = {"name": name, "harness": {"name": "content-scored"}, "benchmarks": {"gsm8k": {"num_fewshot": 0}}, "seeds": 1}
    if generation:
        body["generation"] = generation
    path.write_text(yaml.safe_dump(body))
    return path


def _compare(root: Path, *envs: Path, report: bool = True):
    args = ["compare", *map(str, envs), "--data-dir", str(root / "data"), "--store", str(root / "store"),
            "--margin", "absolute", "--tolerance", "0.1", "--json", str(root / "verdict.json")]
    return CliRunner().invoke(app, args + (["--report", str(root / "report")] if report else []))


def test_each_candidate_gets_its_verdict_the_sequence_stops_at_the_first_failure_and_the_exit_is_the_worst(tmp_path, content_scored):
    data_dir(tmp_path / "data")
    reference = _env(tmp_path, "reference")
    good, broken, late = _env(tmp_path, "q8"), _env(tmp_path, "q4", max_tokens=1), _env(tmp_path, "q2")
    result = _compare(tmp_path, reference, good, broken, late)
    assert result.exit_code == 3, result.output  # the worst candidate (q4) is different
    verdict = VerdictJson.model_validate_json((tmp_path / "verdict.json").read_text())
    assert [c.name for c in verdict.candidates] == ["q8", "q4", "q2"]
    assert [c.verdict for c in verdict.candidates] == ["equivalent", "different", "equivalent"]
    assert [c.cleared for c in verdict.candidates] == [True, False, False]
    assert verdict.selection.shipped == "q8" and verdict.selection.stopped_at == "q4"
    assert verdict.verdict == "different" and verdict.inputs["b"].endswith("q4.yaml")
    assert verdict.candidates[0].recovery["gsm8k"].ratio == 1.0 and verdict.candidates[1].recovery["gsm8k"].ratio == 0.0
    # The reference ran once: one job of it in the store, every candidate paired with its records.
    manifests = [json.loads(path.read_text()) for path in (tmp_path / "store").rglob("manifest.json")]
    assert sorted(m["env"]["name"] for m in manifests).count("reference") == 1
    assert "configured exactly as the reference" in result.output  # q8 and q2 are A/A checks
    assert "q2 pass on their own but come after it" in " ".join(result.output.split())
    for path in ("report.html", "report.md", "verdict.json", "q8/report.html", "q4/report.md", "q2/verdict.json"):
        assert (tmp_path / "report" / path).is_file(), path
    assert "Ship **q8**" in (tmp_path / "report" / "report.md").read_text()


def test_two_candidates_with_one_name_are_a_one_line_error(tmp_path, content_scored):
    data_dir(tmp_path / "data")
    reference = _env(tmp_path, "reference")
    first = _env(tmp_path, "q8")
    (tmp_path / "again").mkdir()
    second = _env(tmp_path / "again", "q8")
    result = _compare(tmp_path, reference, first, second, report=False)
    assert result.exit_code == 2, result.output
    assert "share the name 'q8'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "store").exists() or not list((tmp_path / "store").rglob("manifest.json"))


def test_a_candidate_that_cannot_pair_with_the_reference_is_named_in_one_line(tmp_path, content_scored):
    data_dir(tmp_path / "data")
    reference, good = _env(tmp_path, "reference"), _env(tmp_path, "q8")
    other = tmp_path / "q4.yaml"
    other.write_text(yaml.safe_dump({"name": "q4", "harness": {"name": "content-scored"},
                                     "benchmarks": {"gsm8k": {"num_fewshot": 0, "limit": 5}}, "seeds": 1}))
    result = _compare(tmp_path, reference, good, other, report=False)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1].startswith(f"error: {other}") and "Traceback" not in result.output
    assert not list((tmp_path / "store").rglob("manifest.json"))  # refused before anything ran
