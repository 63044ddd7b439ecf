"""`statrepro store verify` through the real CLI (in-process, with the stub harness): damage is found and named,
`--repair` sets only the damaged jobs aside, and the next compare redoes exactly those (the stub's per-job
invocation counters say which ran)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from statrepro.cli import app
from test_hardening import stub_env, workspace, write_yaml  # noqa: F401 (workspace is a fixture)

runner = CliRunner()


def statrepro(*args):
    return runner.invoke(app, [str(arg) for arg in args])


def invocations(counters: Path) -> dict[str, int]:
    """Job key -> how many times the stub harness ran it."""
    return {path.stem.replace("__", "/"): len(path.read_text().split()) for path in counters.glob("*.count")}


def job_dir(store: Path, side: str, seed: int) -> Path:
    (found,) = store.glob(f"{side}-*/gsm8k-*/seed-{seed}")
    return found


def one_error_line(result) -> str:
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.stderr.strip().splitlines()[-1] == line
    return line


def test_verify_names_the_damage_and_repair_redoes_only_the_damaged_jobs(workspace):
    counters, store = workspace / "counts", workspace / "store"
    envs = [
        write_yaml(workspace / f"{side}.yaml", stub_env(workspace, side, seeds=2, extra_args=["--counter-dir", counters]))
        for side in ("side-a", "side-b")
    ]
    first = statrepro("compare", *envs, "--store", store, "--json", workspace / "first.json")
    assert first.exit_code in (0, 4), first.output  # six items: a smoke test's verdict may be inconclusive
    clean = statrepro("store", "verify", store)
    assert clean.exit_code == 0, clean.output
    assert [line.split()[0] for line in clean.stdout.splitlines()] == ["ok"] * 4
    assert "4 jobs in" in clean.stderr and "4 ok, 0 damaged, 0 unfinished" in clean.stderr

    corrupt = job_dir(store, "side-a", 1) / "records.jsonl"
    corrupt.write_bytes(corrupt.read_bytes().replace(b'"score":1.0', b'"score":0.0', 1))  # a wrong score, still JSON
    truncated = job_dir(store, "side-b", 0) / "harness" / "output" / "stub_samples.jsonl"
    truncated.write_bytes(truncated.read_bytes()[:10])
    damaged_keys = {str(path.relative_to(store)).split("/records")[0].split("/harness/")[0] for path in (corrupt, truncated)}

    refused = statrepro("compare", *envs, "--store", store)
    assert refused.exit_code == 2
    message = one_error_line(refused)
    assert message.startswith(f"error: {corrupt.resolve()}: damaged: changed since it was written")
    assert f"statrepro store verify {store.resolve()} --repair" in message

    found = statrepro("store", "verify", store, "--json", workspace / "check.json")
    assert found.exit_code == 1, found.output
    lines = {line.split()[1]: line for line in found.stdout.splitlines()}
    assert {key for key, line in lines.items() if line.startswith("damaged")} == damaged_keys
    assert "records.jsonl: changed since it was written" in lines[str(corrupt.parent.relative_to(store))]
    assert "harness/output/stub_samples.jsonl: truncated to 10 of its" in lines[str(truncated.parents[2].relative_to(store))]
    assert "2 ok, 2 damaged" in found.stderr and "--repair" in found.stderr
    assert {job["job"] for job in json.loads((workspace / "check.json").read_text())["jobs"] if job["status"] == "damaged"} == damaged_keys

    repaired = statrepro("store", "verify", store, "--repair")
    assert repaired.exit_code == 0, repaired.output
    (quarantine,) = (store / "quarantine").iterdir()
    assert {job["job"] for job in json.loads((quarantine / "reasons.json").read_text())} == damaged_keys
    assert all((quarantine / key / "manifest.json").is_file() for key in damaged_keys)  # moved whole, not deleted
    assert str(quarantine.resolve()) in repaired.stderr

    before = invocations(counters)
    assert set(before.values()) == {1}
    resumed = statrepro("compare", *envs, "--store", store, "--json", workspace / "again.json")
    assert resumed.exit_code == first.exit_code, resumed.output
    ran_again = {key for key, count in invocations(counters).items() if count > before[key]}
    assert ran_again == damaged_keys
    verdicts = [json.loads((workspace / name).read_text()) for name in ("first.json", "again.json")]
    assert [(v["verdict"], v["benchmarks"]) for v in verdicts[1:]] == [(verdicts[0]["verdict"], verdicts[0]["benchmarks"])]
    final = statrepro("store", "verify", store)
    assert final.exit_code == 0 and "4 ok, 0 damaged" in final.stderr


def test_unfinished_jobs_are_reported_and_are_no_damage(workspace):
    store = workspace / "store"
    env = write_yaml(workspace / "a.yaml", stub_env(workspace, "side-a", seeds=2))
    assert statrepro("run", env, "--store", store).exit_code == 0
    (job_dir(store, "side-a", 1) / "manifest.json").unlink()  # as a run stopped before its manifest leaves it
    result = statrepro("store", "verify", store)
    assert result.exit_code == 0, result.output
    assert sorted(line.split()[0] for line in result.stdout.splitlines()) == ["ok", "unfinished"]
    assert "1 ok, 0 damaged, 1 unfinished" in result.stderr


def test_a_store_of_a_newer_statrepro_or_no_store_is_one_line_and_exit_2(workspace):
    store = workspace / "store"
    env = write_yaml(workspace / "a.yaml", stub_env(workspace, "side-a"))
    assert statrepro("run", env, "--store", store).exit_code == 0
    (store / "store.json").write_text(json.dumps({"format": 99}))
    for args in (("store", "verify", store), ("run", env, "--store", store)):
        result = statrepro(*args)
        assert result.exit_code == 2, result.output
        line = one_error_line(result)
        assert line.startswith(f"error: {(store / 'store.json').resolve()}: written by a newer statrepro (store format 99;")
        assert "reads formats up to 2" in line
    missing = statrepro("store", "verify", workspace / "nowhere")
    assert missing.exit_code == 2 and one_error_line(missing).endswith("no such store directory")
