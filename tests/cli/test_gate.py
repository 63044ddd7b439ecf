"""`statrepro baseline save|list|show` and `statrepro gate` through the real CLI, with the stub harness (its jobs are
subprocesses of about 0.2 s; the stub counts each job it runs with --counter-dir).

What it proves: the reference is saved once and never re-run by the gate (only the candidate's jobs run); the gate's
verdict is compare's on the same runs; a stale baseline (another item set, prompt template or few-shot count) is
refused with the factor named; a bundle of another statrepro version is read; bad bundles and unknown names are one
line, exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from statrepro.cli import app
from statrepro.run.baseline import load_bundle, write_bundle
from test_hardening import stub_env, write_yaml

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "baselines"


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict:
    """A workspace with the reference saved as baseline `ref` (6 gsm8k items x 2 seeds, with its control)."""
    workspace = tmp_path_factory.mktemp("gate")
    (workspace / "model").mkdir()
    (workspace / "data" / "gsm8k").mkdir(parents=True)
    counts = workspace / "counts"
    write_yaml(workspace / "ref.yaml", stub_env(workspace, "ref", seeds=2, extra_args=["--counter-dir", counts]))
    result = cli("baseline", "save", workspace / "ref.yaml", "--control", *where(workspace))
    assert result.exit_code == 0, result.output
    (bundle,) = (workspace / "baselines").iterdir()
    return {"workspace": workspace, "counts": counts, "bundle": bundle}


def cli(*args):
    return CliRunner().invoke(app, [str(arg) for arg in args])


def where(workspace: Path) -> list:
    return ["--store", workspace / "store", "--baselines-dir", workspace / "baselines"]


def candidate(saved: dict, name: str, **changes) -> Path:
    workspace = saved["workspace"]
    env = stub_env(workspace, name, seeds=2, extra_args=["--counter-dir", saved["counts"], *changes.pop("extra_args", [])])
    for key, value in changes.items():
        section, _, field = key.partition("__")
        env[section] = {**env.get(section, {}), field: value} if field else value
    return write_yaml(workspace / f"{name}.yaml", env)


def jobs_run(saved: dict) -> list[str]:
    return sorted(path.name.split("-")[0] for path in saved["counts"].glob("*.count"))


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_gate_runs_only_the_candidate_and_decides_as_compare_does(saved: dict) -> None:
    workspace = saved["workspace"]
    shutil.rmtree(saved["counts"])
    cand = candidate(saved, "cand", generation={"top_p": 0.9}, batch_size=2)  # the stub's scores ignore both
    gated = cli("gate", cand, "--baseline", "ref", "--json", workspace / "gate.json", *where(workspace))
    assert gated.exit_code in (0, 3, 4), gated.output
    # The doctor rates top_p low under greedy decoding (a warning) and batch size medium (the change under test).
    assert "warning: top_p differs from the baseline (1.0 -> 0.9; low:" in gated.stderr
    assert "note: batch_size differs from the baseline (1 -> 2; medium:" in gated.stderr
    assert jobs_run(saved) == ["cand", "cand"]  # its 2 seeds; the reference's 4 jobs (with control) ran only at save
    verdict = json.loads((workspace / "gate.json").read_text())
    assert verdict["inputs"]["baseline"] == load_bundle(saved["bundle"]).id
    assert verdict["benchmarks"]["gsm8k"]["control"] is not None  # the stored control gives the noise floor
    # compare on the same store finds every run done and reaches the same statistics and verdict.
    compared = cli("compare", workspace / "ref.yaml", cand, "--control", "--json", workspace / "compare.json", "--store", workspace / "store")
    assert compared.exit_code == gated.exit_code and jobs_run(saved) == ["cand", "cand"]
    reference = json.loads((workspace / "compare.json").read_text())
    assert verdict["benchmarks"] == reference["benchmarks"] and verdict["verdict"] == reference["verdict"]


@pytest.mark.parametrize(("changes", "factor"), [
    ({"benchmarks": {"gsm8k": {"limit": 4}}}, "the item set of benchmark 'gsm8k' differs (limit: baseline 6, candidate 4)"),
    ({"harness__apply_chat_template": False}, "template hash differs"),
    ({"benchmarks": {"gsm8k": {"limit": 6, "num_fewshot": 3}}}, "few-shot count of benchmark 'gsm8k' differs (baseline None, candidate 3)"),
    ({"extra_args": ["--prompt-variant", "v2"]}, "prompt hash of benchmark 'gsm8k' differs on 6 of 6 items"),
])
def test_a_stale_baseline_is_refused_naming_the_factor(saved: dict, changes: dict, factor: str) -> None:
    workspace = saved["workspace"]
    cand = candidate(saved, f"stale-{len(list(workspace.glob('stale-*.yaml')))}", **changes)
    line = one_error_line(cli("gate", cand, "--baseline", "ref", *where(workspace)))
    assert line.startswith(f"error: {cand}")
    assert factor in line and "is not comparable" in line


def test_a_candidates_different_item_set_is_one_line(saved: dict) -> None:
    """Results given with --results must hold exactly the baseline's items; a run candidate must not add any."""
    workspace = saved["workspace"]
    results = workspace / "results-4"
    results.mkdir()
    lines = [json.dumps({"benchmark": "gsm8k", "seed": seed, "doc_id": item, "score": 1.0}) for seed in (0, 1) for item in range(4)]
    (results / "stub_samples.jsonl").write_text("\n".join(lines) + "\n")
    line = one_error_line(cli("gate", "--results", results, "--baseline", "ref", *where(workspace)))
    assert line == (f"error: {results}: benchmark 'gsm8k': the candidate's item set differs from the baseline's: "
                    "2 items only in the baseline, 0 only in the candidate")
    more = candidate(saved, "more-items", extra_args=["--items", "8"])
    assert "0 items only in the baseline, 2 only in the candidate" in one_error_line(cli("gate", more, "--baseline", "ref", *where(workspace)))


def test_a_bundle_of_another_statrepro_version_is_read(saved: dict) -> None:
    workspace = saved["workspace"]
    stored = load_bundle(saved["bundle"])
    older = write_bundle(workspace / "older", {**stored.header, "statrepro_version": "0.0.1"}, stored.records, stored.control, stored.manifests)
    shown = cli("baseline", "show", older)
    assert shown.exit_code == 0 and "statrepro 0.0.1" in shown.output
    result = cli("gate", candidate(saved, "cand-older"), "--baseline", older, "--store", workspace / "store")
    assert result.exit_code in (0, 3, 4), result.output
    assert "statrepro 0.0.1, format 1" in result.stderr


def test_the_committed_fixture_gates_a_candidate(saved: dict) -> None:
    """The format-1 bundle committed in tests/fixtures is gated against, as a user's old baseline would be."""
    workspace = saved["workspace"]
    (fixture,) = FIXTURES.glob("*.baseline.tgz")
    result = cli("gate", candidate(saved, "cand-fixture"), "--baseline", fixture, "--store", workspace / "store")
    assert result.exit_code in (0, 3, 4), result.output


def test_list_and_show_describe_the_bundles(saved: dict) -> None:
    workspace = saved["workspace"]
    label = saved["bundle"].name.removesuffix(".baseline.tgz")
    listed = cli("baseline", "list", "--baselines-dir", workspace / "baselines")
    assert listed.exit_code == 0 and f"{label}  statrepro 0.1.0  gsm8k (6 items x 2 runs), with control" in listed.output
    shown = cli("baseline", "show", "ref", "--baselines-dir", workspace / "baselines", "--json")
    assert shown.exit_code == 0 and json.loads(shown.output)["id"] == load_bundle(saved["bundle"]).id


def test_bad_bundles_and_unknown_names_are_one_line(saved: dict, tmp_path: Path) -> None:
    workspace = saved["workspace"]
    cand = candidate(saved, "cand-bad")
    data = saved["bundle"].read_bytes()
    tampered = tmp_path / saved["bundle"].name
    tampered.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    assert "hash mismatch" in one_error_line(cli("gate", cand, "--baseline", tampered, "--store", tmp_path / "store"))
    truncated = tmp_path / "cut.baseline.tgz"
    truncated.write_bytes(data[:-200])
    assert "truncated or damaged" in one_error_line(cli("gate", cand, "--baseline", truncated, "--store", tmp_path / "store"))
    assert "did you mean 'ref'?" in one_error_line(cli("gate", cand, "--baseline", "rfe", *where(workspace)))
    assert "did you mean 'ref'?" in one_error_line(cli("baseline", "show", "rfe", "--baselines-dir", workspace / "baselines"))


def test_a_newer_format_or_missing_seeds_are_one_line(saved: dict, tmp_path: Path, monkeypatch) -> None:
    import statrepro.run.baseline as bundle_format

    stored = load_bundle(saved["bundle"])
    missing = write_bundle(tmp_path, {**stored.header, "seeds": [0, 1, 2]}, stored.records, None, stored.manifests)
    assert one_error_line(cli("baseline", "show", missing)).endswith("3 runs (seed-2): missing seeds")
    monkeypatch.setattr(bundle_format, "FORMAT_VERSION", 2)
    newer = write_bundle(tmp_path / "newer", stored.header, stored.records, None, stored.manifests)
    monkeypatch.setattr(bundle_format, "FORMAT_VERSION", 1)
    assert "bundle format 2 is newer than this statrepro reads (1)" in one_error_line(cli("baseline", "show", newer))


def _stub_results(directory: Path, items: int, seeds=(0, 1)) -> Path:
    """A stub harness output of ``items`` gsm8k items x ``seeds``, scored as the stub scores them offline."""
    from stub_harness import offline_score

    directory.mkdir()
    lines = [json.dumps({"benchmark": "gsm8k", "seed": seed, "doc_id": item, "score": offline_score("gsm8k", item, seed)})
             for seed in seeds for item in range(items)]
    (directory / "stub_samples.jsonl").write_text("\n".join(lines) + "\n")
    return directory


def test_a_baseline_saved_from_result_directories_gates_results_and_environments(saved: dict, tmp_path: Path) -> None:
    workspace, baselines = saved["workspace"], tmp_path / "baselines"
    reference = _stub_results(tmp_path / "reference", items=6)
    result = cli("baseline", "save", reference, "--name", "from-results", "--baselines-dir", baselines)
    assert result.exit_code == 0, result.output
    shown = json.loads(cli("baseline", "show", "from-results", "--baselines-dir", baselines, "--json").output)
    assert shown["source"] == {"kind": "results", "paths": [str(reference)]} and shown["seeds"] is None
    # The same scores as results, then as a run of a stub environment (2 seeds: the baseline's run count).
    same = cli("gate", "--results", _stub_results(tmp_path / "candidate", items=6), "--baseline", "from-results",
               "--baselines-dir", baselines, "--margin", "absolute", "--tolerance", "0.5")
    assert same.exit_code == 0, same.output
    ran = cli("gate", candidate(saved, "cand-results"), "--baseline", "from-results", "--baselines-dir", baselines,
              "--store", workspace / "store")
    assert ran.exit_code in (0, 3, 4), ran.output
