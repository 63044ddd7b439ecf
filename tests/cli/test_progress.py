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
