"""`statrepro bench gates`, small: every gate's row, and an unreachable flip rate as bad input."""

from __future__ import annotations

from typer.testing import CliRunner

from statrepro.cli import app


def test_bench_gates_runs_small_and_refuses_an_unreachable_flip_rate():
    result = CliRunner().invoke(app, ["bench", "gates", "--items", "150", "--flip-rates", "0.1", "--sims", "20"])
    assert result.exit_code == 0, result.output
    for gate in ("statrepro", "TensorRT-LLM", "vLLM", "SGLang", "lm-eval"):
        assert gate in result.output
    result = CliRunner().invoke(app, ["bench", "gates", "--flip-rates", "0.9"])
    assert result.exit_code == 2 and result.output.strip().startswith("error: --flip-rates:")
