"""Progress without a terminal: one plain line per finished job, through the real CLI (stub harness)."""

from __future__ import annotations

import re

from test_hardening import statrepro, stub_env, workspace, write_yaml  # noqa: F401 (workspace is a fixture)

LINE = re.compile(r"^\[(\d+)/4\] (\w+) (gsm8k|ceval) seed (\d): 3 items in \d+\.\d s; (\d) jobs? left, ETA \d+m\d\ds$")


def test_without_a_terminal_each_finished_job_prints_one_plain_line(workspace):
    benchmarks = {"gsm8k": {"limit": 3}, "ceval": {"limit": 3}}
    a = write_yaml(workspace / "a.yaml", stub_env(workspace, "a", benchmarks=benchmarks, seeds=2))
    result = statrepro("run", a, "--store", workspace / "store")  # captured: neither stdout nor stderr is a terminal
    assert result.returncode == 0, result.stderr
    lines = [match.groups() for match in map(LINE.match, result.stderr.splitlines()) if match]
    assert [(finished, left) for finished, *_, left in lines] == [("1", "3"), ("2", "2"), ("3", "1"), ("4", "0")]
    assert {(env, benchmark, seed) for _, env, benchmark, seed, _ in lines} == {
        ("a", name, seed) for name in benchmarks for seed in "01"
    }
    assert "━" not in result.stderr  # no progress bar drawn into the log
    assert result.stdout == ""  # stdout stays for results


def test_without_a_terminal_a_running_job_prints_plain_lines_from_the_harness_bar(workspace, monkeypatch):
    """The stub draws lm-eval's 'Requesting API' bar; with the interval at 0 every advance read from harness.log is
    a line. The bar's carriage returns stay in harness.log, never on stderr."""
    from typer.testing import CliRunner

    from statrepro.cli import app
    from statrepro.run import progress

    monkeypatch.setattr(progress, "PROGRESS_INTERVAL_SECONDS", 0.0)
    monkeypatch.setattr(progress, "POLL_SECONDS", 0.02)
    env = stub_env(workspace, "a", benchmarks={"gsm8k": {"limit": 4}}, extra_args=["--progress-seconds", 0.2])
    a = write_yaml(workspace / "a.yaml", env)
    result = CliRunner().invoke(app, ["run", str(a), "--store", str(workspace / "store")])
    assert result.exit_code == 0, result.output
    running = re.compile(r"^a gsm8k seed 0: (\d)/4 requests \(\d+%, Requesting API\), [\d.]+ requests/s, ETA \dm\d\ds$")
    done = [int(match[1]) for match in map(running.match, result.stderr.splitlines()) if match]
    assert done and done == sorted(set(done))  # one line per advance, in order
    assert "\r" not in result.stderr and result.stdout == ""
    [log] = (workspace / "store").rglob("harness.log")
    assert "\rRequesting API: 100%|".encode() in log.read_bytes()
