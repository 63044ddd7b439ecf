"""Engine kind hf owns what running the model in the harness process takes: int8, the device, the launcher.
The lm-eval job of an in-process model is built from what the kind says, never from a missing endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from statrepro import machine
from statrepro.benchmarks import resolve_data_dir
from statrepro.engines.hf_in_process import quantize_dynamic_int8
from statrepro.engines.kinds import engine_kind
from statrepro.envfile import validate_env
from statrepro.harness.contract import JobContext
from statrepro.harness.lm_eval import build_lm_eval_invocation
from statrepro.run.plan import plan_jobs


def test_dynamic_int8_quantizes_every_linear_layer_and_nothing_else():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    inputs = torch.randn(3, 8)
    quantized = quantize_dynamic_int8(model)
    assert [type(layer).__module__.startswith("torch.ao.nn.quantized.dynamic") for layer in quantized] == [True, False, True]
    difference = (quantized(inputs) - model(inputs)).abs().max().item()
    assert 0 < difference < 0.1  # int8 weights: close, not equal


def _argv(tmp_path: Path, **env) -> list[str]:
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    config = validate_env({"name": "x", "benchmarks": {"gsm8k": {"limit": 2}}, "seeds": 1, **env})
    return build_lm_eval_invocation(JobContext(plan_jobs([config])[0], resolve_data_dir(None), work_dir, tmp_path / "model", None)).argv


@pytest.mark.parametrize("gpus, device", [([], "cpu"), ([{"name": "H100"}], None)])
def test_the_in_process_job_is_what_the_kind_says(tmp_path, monkeypatch, gpus, device):
    monkeypatch.setattr(machine, "detect_hardware", lambda: {"gpus": gpus})
    argv = _argv(tmp_path, model={"quantization": "dynamic-int8"}, batch_size=4)
    assert argv[1:3] == ["-m", "statrepro.harness.lm_eval_int8"]
    assert argv[argv.index("--model") + 1] == "hf-dynamic-int8"
    assert argv[argv.index("--batch_size") + 1] == "4"  # in-process: prompts per forward pass
    assert (argv[argv.index("--device") + 1] if "--device" in argv else None) == device  # auto: cpu without a GPU
    assert engine_kind("hf").device(validate_env({"name": "x"})) == device


def test_a_served_kind_leaves_device_and_launcher_alone():
    env = validate_env({"name": "x", "engine": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "deterministic": True}})
    kind = engine_kind("openai")
    assert kind.device(env) is None and kind.harness_launcher(env, "lm_eval")[1:] == ["-m", "lm_eval"]
