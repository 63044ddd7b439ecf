"""``engine.deterministic`` and ``engine.device``: each engine kind gets its switches (argv, environment, the harness
launcher), bad combinations are one-line errors, and the doctor's checklist reads met / not met.

The vllm and sglang halves run through the real CLI with faithful fake servers in test_managed_gpu_servers.py.
"""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from statrepro.config import EnvConfig
from statrepro.diagnose.doctor import compare_sources
from statrepro.engines import llama_cpp
from statrepro.engines.kinds import engine_endpoint
from statrepro.envfile import load_env, validate_env
from statrepro.errors import InputError
from statrepro.harness.contract import JobContext
from statrepro.harness.lm_eval import build_lm_eval_invocation
from statrepro.models import GGUFWeights
from statrepro.run.plan import plan_jobs


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_deterministic_with_sampling_is_an_error_naming_both_keys(tmp_path):
    path = write_yaml(tmp_path / "env.yaml", {"name": "x", "engine": {"deterministic": True}, "generation": {"temperature": 0.7}})
    with pytest.raises(InputError) as raised:
        load_env(path)
    message = str(raised.value)
    assert str(path) in message and "engine.deterministic" in message and "generation.temperature" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("engine", "needle"),
    [({"device": "gpu0"}, "device must be auto, cpu, cuda, cuda:N, npu or mps"),
     ({"kind": "vllm", "device": "cuda"}, "engine.device applies to in-process transformers")],
)
def test_bad_devices_are_errors_naming_the_key(tmp_path, engine, needle):
    path = write_yaml(tmp_path / "env.yaml", {"name": "x", "engine": engine})
    with pytest.raises(InputError) as raised:
        load_env(path)
    assert needle in str(raised.value) and "engine" in str(raised.value) and str(path) in str(raised.value)


def test_new_settings_at_their_defaults_keep_existing_store_keys():
    plain = validate_env(dict(name="x"))
    assert validate_env(dict(name="x", engine={"deterministic": False, "device": "auto", "startup_timeout": 5})).fingerprint() == plain.fingerprint()
    assert validate_env(dict(name="x", engine={"deterministic": True})).fingerprint() != plain.fingerprint()
    assert validate_env(dict(name="x", engine={"device": "cpu"})).fingerprint() != plain.fingerprint()


def _lm_eval_invocation(tmp_path: Path, env: EnvConfig):
    from statrepro.benchmarks import resolve_data_dir

    work_dir = tmp_path / "work"
    work_dir.mkdir()
    return build_lm_eval_invocation(JobContext(plan_jobs([env])[0], resolve_data_dir(None), work_dir, tmp_path / "model", None))


def test_hf_deterministic_runs_lm_eval_under_torch_determinism_with_cublas_workspace(tmp_path):
    env = validate_env(dict(name="x", engine={"deterministic": True, "device": "cuda:1"}, benchmarks={"gsm8k": {"limit": 2}}, seeds=1))
    invocation = _lm_eval_invocation(tmp_path, env)
    assert invocation.argv[1:4] == ["-m", "statrepro.engines.torch_deterministic", "lm_eval"]
    assert invocation.env["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert invocation.argv[invocation.argv.index("--device") + 1] == "cuda:1"  # engine.device reaches lm-eval

    (tmp_path / "plain").mkdir()
    plain = _lm_eval_invocation(tmp_path / "plain", validate_env(dict(name="x", benchmarks={"gsm8k": {"limit": 2}}, seeds=1)))
    assert plain.argv[1:3] == ["-m", "lm_eval"] and "CUBLAS_WORKSPACE_CONFIG" not in plain.env


def test_the_torch_determinism_launcher_switches_torch_before_the_harness_runs(tmp_path):
    (tmp_path / "show_torch.py").write_text(
        "import sys, torch\nprint(torch.are_deterministic_algorithms_enabled(), sys.argv[1:])\n", encoding="utf-8"
    )
    shown = subprocess.run(
        [sys.executable, "-m", "statrepro.engines.torch_deterministic", "show_torch", "--flag", "x"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={"PYTHONPATH": f"{tmp_path}:{Path(__file__).resolve().parents[2]}", "PATH": "/usr/bin:/bin"},
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "True ['--flag', 'x']"


def test_llama_cpp_deterministic_turns_the_prompt_cache_off(tmp_path, monkeypatch):
    commands = []

    @contextmanager
    def capture(command, **kwargs):
        commands.append(command(8080))

        class Process:
            pid = 1

        yield 8080, Process()

    monkeypatch.setattr(llama_cpp, "managed_server", capture)
    monkeypatch.setattr(llama_cpp, "openapi_defaults", lambda *args: {})
    # Not a real GGUF: what the server is given, not what it holds, is under test.
    monkeypatch.setattr(llama_cpp, "read_gguf_weights", lambda path, digest: GGUFWeights(str(path), "F32", {"F32": 1}))
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    for deterministic in (False, True):
        env = validate_env(dict(name="x", model={"path": str(gguf)}, engine={"kind": "llama-cpp", "deterministic": deterministic}))
        with engine_endpoint(env, tmp_path) as info:
            assert info.determinism["requested"] is deterministic
    plain, deterministic = commands
    assert "--cache" not in plain
    assert deterministic[deterministic.index("--cache") + 1] == "false"
    assert info.determinism["prefix_cache_off"] is False  # llama-cpp-python reuses the KV prefix regardless
    assert any("KV prefix" in item for item in info.determinism["not_guaranteed"])


def test_doctor_checklist_reads_met_and_not_met(tmp_path):
    a = write_yaml(tmp_path / "a.yaml", {"name": "a", "hardware": "h100", "engine": {"deterministic": True}})
    b = write_yaml(tmp_path / "b.yaml", {"name": "b", "hardware": "h100", "engine": {"kind": "sglang"}})
    result = compare_sources(a, b)
    checklist = {item.item: (item.a, item.b) for item in result.checklist}
    assert checklist["prefix cache off"] == ("met", "not met")
    assert checklist["deterministic algorithms"] == ("met", "unknown")
    c = write_yaml(tmp_path / "c.yaml", {"name": "c", "hardware": "h100", "engine": {"device": "cuda"}})
    d = write_yaml(tmp_path / "d.yaml", {"name": "d", "hardware": "h100", "engine": {"device": "npu"}})
    assert [factor.name for factor in compare_sources(c, d).factors] == ["device"]
