"""statrepro layers dump / layers diff: dumps made in separate processes diff exactly like the one-process
`layers`, and every dump that cannot be compared is refused in one line (real SmolLM2 where marked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from statrepro.cli import app
from statrepro.diagnose.common import DEFAULT_PROMPTS
from statrepro.errors import InputError

STATREPRO = [sys.executable, "-c", "from statrepro.cli import app; app()"]
PROMPTS = [DEFAULT_PROMPTS[1], DEFAULT_PROMPTS[5], DEFAULT_PROMPTS[7]]  # short, of different lengths, one with a newline


def _statrepro(*args) -> subprocess.Popen:
    # One thread per process: the same reduction order in every process, whatever else runs on the machine.
    return subprocess.Popen([*STATREPRO, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Four dumps and one single-process `layers --json`, each made by its own `statrepro` process (all at once)."""
    pytest.importorskip("torch")
    from statrepro.models import materialize_embedded_model

    materialize_embedded_model()  # once, before the processes that would each build it
    root = tmp_path_factory.mktemp("dumps")
    prompts = root / "prompts.txt"
    prompts.write_text("".join(prompt.replace("\n", "\\n") + "\n" for prompt in PROMPTS))
    common = ["--prompts", prompts, "--device", "cpu"]
    commands = {
        "a": ["layers", "dump", "--out", root / "a.safetensors", *common],
        "b": ["layers", "dump", "--dtype", "bfloat16", "--attn", "sdpa", "--out", root / "b.safetensors", *common],
        "a_again": ["layers", "dump", "--out", root / "a_again.safetensors", *common],
        "submodules": ["layers", "dump", "--submodules", "--out", root / "submodules.safetensors", *common],
        "layers": ["layers", "--a", "dtype=float32", "--b", "dtype=bfloat16,attn=sdpa", "--json", root / "layers.json", *common],
    }
    processes = {name: _statrepro(*command) for name, command in commands.items()}
    for name, process in processes.items():
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, f"{name}: {stderr[-2000:]}"
    return root


def _diff(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["layers", "diff", *map(str, args)])
    return result.exit_code, result.output


@pytest.mark.model
def test_dumps_from_two_processes_diff_exactly_like_single_process_layers(runs):
    code, output = _diff(runs / "a.safetensors", runs / "b.safetensors", "--json", runs / "diff.json", "--plot", runs / "diff.png")
    assert code == 0, output
    diff, layers = json.loads((runs / "diff.json").read_text()), json.loads((runs / "layers.json").read_text())
    assert diff == layers  # every number, the jump layer and the labels
    assert diff["setting_b"] == "dtype=bfloat16,attn=sdpa,batch=alone,quant=none"
    assert diff["jump_layer"] is not None and all(point["rel_l2"] > 0 for point in diff["points"])
    assert (runs / "diff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.model
def test_identical_settings_in_two_processes_diff_to_exactly_zero(runs):
    code, output = _diff(runs / "a.safetensors", runs / "a_again.safetensors", "--json", runs / "same.json")
    assert code == 0, output
    same = json.loads((runs / "same.json").read_text())
    assert same["identical"] and same["jump_layer"] is None and same["first_cosine_below"] is None
    assert all(p["rel_l2"] == 0.0 and p["max_abs"] == 0.0 and p["cosine_min"] == 1.0 == p["cosine_mean"] for p in same["points"])


@pytest.mark.model
def test_a_dump_keeps_states_at_their_precision_with_their_provenance(runs):
    from statrepro.diagnose.common import load_tokenizer
    from statrepro.diagnose.dumps import read_dump, weights_sha256
    from statrepro.models import materialize_embedded_model

    model_dir = materialize_embedded_model()
    a, b = read_dump(runs / "a.safetensors"), read_dump(runs / "b.safetensors")
    tokenizer = load_tokenizer(model_dir)
    assert a.info.prompts == tuple(PROMPTS)
    assert a.info.token_ids == tuple(tuple(tokenizer(prompt)["input_ids"]) for prompt in PROMPTS)
    assert a.info.token_pieces[0][-1] == " is"
    assert [name for name, _ in a.info.points][:2] == ["embeddings", "layer.0"] and a.info.points[-1] == ("logits", None)
    assert len(a.info.points) == 33 and len(read_dump(runs / "submodules.safetensors").info.points) == 93
    assert (a.info.weights_sha256, a.info.weight_files) == weights_sha256(model_dir)
    assert a.info.model == str(model_dir) and a.info.device == "cpu" and a.info.device_name
    assert a.info.torch and a.info.transformers and a.info.statrepro and a.info.format_version == 1
    assert a.states["layer.3"][0].dtype.is_floating_point and str(a.states["layer.3"][0].dtype) == "torch.float32"
    assert str(b.states["layer.3"][0].dtype) == "torch.bfloat16" and (b.info.dtype, b.info.attention) == ("bfloat16", "sdpa")
    assert a.states["layer.3"][2].shape == (len(a.info.token_ids[2]), 576)
    assert a.states["logits"][2].shape == (len(a.info.token_ids[2]), 49152)


def _rewrite(source: Path, target: Path, *, drop_prompt: int | None = None, **metadata) -> Path:
    """A copy of a dump with some metadata values replaced (JSON-encoded) and one prompt's tensors left out."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(source), framework="pt") as handle:
        original = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys() if not key.endswith(f"/{drop_prompt}")}
    save_file(tensors, str(target), metadata={**original, **{key: json.dumps(value) for key, value in metadata.items()}})
    return target


def _metadata(path: Path, key: str):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return json.loads(handle.metadata()[key])


def _other_token(runs):
    token_ids = _metadata(runs / "a.safetensors", "token_ids")
    pieces = _metadata(runs / "a.safetensors", "token_pieces")
    token_ids[1][2], pieces[1][2] = 12345, " swapped"
    return {"token_ids": token_ids, "token_pieces": pieces}


def _truncated(runs, target):
    data = (runs / "a.safetensors").read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def _not_a_dump(runs, target):
    import torch
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(3)}, str(target))
    return target


REFUSALS = {
    "prompt-count": (lambda runs, t: _rewrite(runs / "a.safetensors", t, drop_prompt=2, prompts=PROMPTS[:2],
                                              token_ids=_metadata(runs / "a.safetensors", "token_ids")[:2],
                                              token_pieces=_metadata(runs / "a.safetensors", "token_pieces")[:2]),
                     ["has 2 prompts", "a.safetensors has 3"]),
    "prompt-text": (lambda runs, t: _rewrite(runs / "a.safetensors", t, prompts=[PROMPTS[0], "2 + 3 =", PROMPTS[2]]),
                    ["prompt 1 is '2 \\+ 3 ='", "it is '2 \\+ 2 ='"]),
    "token-ids": (lambda runs, t: _rewrite(runs / "a.safetensors", t, **_other_token(runs)),
                  ["prompt 1 tokenizes differently", "at position 2 it has token 12345 ' swapped'", r"a\.safetensors has token \d+ '"]),
    "points": (lambda runs, t: runs / "submodules.safetensors", ["hooks other points", "60 only here \\(layer.0.attn", "--submodules"]),
    "weights": (lambda runs, t: _rewrite(runs / "a.safetensors", t, weights_sha256="0" * 64),
                ["weights differ", "--allow-different-weights", "000000000000"]),
    "truncated": (_truncated, ["not a readable safetensors file", "truncated or corrupt"]),
    "not-a-dump": (_not_a_dump, ["not a statrepro layers dump"]),
    "format-version": (lambda runs, t: _rewrite(runs / "a.safetensors", t, format_version=2),
                       ["format version 2 is unknown", "reads version 1"]),
    "missing-file": (lambda runs, t: t, ["dump file not found"]),
}


@pytest.mark.model
@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_dumps_that_cannot_be_compared_are_refused_in_one_line(runs, tmp_path, case):
    import re

    build, patterns = REFUSALS[case]
    other = build(runs, tmp_path / f"{case}.safetensors")
    code, output = _diff(runs / "a.safetensors", other)
    assert code == 2, output
    assert output.count("\n") == 1 and "Traceback" not in output
    assert str(other) in output
    for pattern in patterns:
        assert re.search(pattern, output), (pattern, output)


@pytest.mark.model
def test_allow_different_weights_compares_them(runs, tmp_path):
    other = _rewrite(runs / "a.safetensors", tmp_path / "requantized.safetensors", weights_sha256="0" * 64)
    code, output = _diff(runs / "a.safetensors", other, "--allow-different-weights")
    assert code == 0, output
    assert "bitwise identical" in output


# ---------------------------------------------------------------------------------------------
# devices and env files (no model is loaded)


def test_devices_resolve_to_what_this_machine_has():
    torch = pytest.importorskip("torch")
    from statrepro.diagnose.common import resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="--device: device must be auto, cpu, cuda, cuda:N, npu or mps, got 'tpu'"):
        resolve_device("tpu")
    with pytest.raises(InputError, match="'cuda:7' is not available on this machine"):
        resolve_device("cuda:7" if torch.cuda.device_count() < 8 else "cuda:99")
    with pytest.raises(InputError, match="'npu' is not available"):
        resolve_device("npu")


def _model_dir(tmp_path: Path) -> Path:
    """Enough of a model directory for the checks that come before loading it."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    return model


@pytest.mark.parametrize("command", [["layers"], ["probe"], ["layers", "dump", "--out", "never.safetensors"]])
def test_a_device_this_machine_lacks_is_a_one_line_error(command, tmp_path):
    pytest.importorskip("torch")
    command = [*command, "--model", str(_model_dir(tmp_path))]
    result = CliRunner().invoke(app, [*command, "--device", "cuda:99"])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and "--device: device 'cuda:99' is not available" in result.output
    result = CliRunner().invoke(app, [*command, "--device", "gpu"])
    assert result.exit_code == 2 and "device must be auto, cpu, cuda, cuda:N, npu or mps" in result.output
    assert not (tmp_path / "never.safetensors").exists()


def test_layers_is_a_command_and_a_group():
    result = CliRunner().invoke(app, ["layers", "--help"])
    assert result.exit_code == 0 and "--a" in result.output and "dump" in result.output and "diff" in result.output


def test_dump_settings_come_from_the_env_unless_an_option_says_otherwise(tmp_path):
    pytest.importorskip("torch")
    from statrepro.diagnose.layers import Setting, dump_settings

    model = _model_dir(tmp_path)
    env = tmp_path / "npu.yaml"
    env.write_text(f"name: npu\nmodel: {{path: {model}, dtype: bfloat16}}\nengine: {{kind: hf, device: cpu}}\n")
    none = dict(model=None, dtype=None, attention=None, quantization=None, batch=None, device=None)
    assert dump_settings(env, **none) == (model, Setting(dtype="bfloat16"), "cpu")
    assert dump_settings(env, **{**none, "dtype": "float32", "attention": "sdpa"}) == (model, Setting(attention="sdpa"), "cpu")
    assert dump_settings(None, **{**none, "model": str(model), "batch": "padded", "device": "cpu"}) == (model, Setting(batch="padded"), "cpu")
    with pytest.raises(InputError, match="batch must be one of alone, padded"):
        dump_settings(None, **{**none, "model": str(model), "batch": "packed"})
    env.write_text(f"name: npu\nmodel: {{path: {model}}}\nengine: {{kind: hf, device: 'cuda:99'}}\n")
    with pytest.raises(InputError, match=r"npu\.yaml \[engine\.device\]: device 'cuda:99' is not available"):
        dump_settings(env, **none)
    env.write_text(f"name: q\nmodel: {{path: {model}, quantization: gguf}}\nengine: {{kind: hf}}\n")
    with pytest.raises(InputError, match=r"\[model\.quantization\]: layers dump applies quantization none or dynamic-int8, not 'gguf'"):
        dump_settings(env, **none)
    env.write_text(f"name: served\nmodel: {{path: {model}}}\nengine: {{kind: openai, base_url: 'http://127.0.0.1:1/v1'}}\n")
    with pytest.raises(InputError, match=r"\[engine\.kind\]: layers dump runs the model in-process"):
        dump_settings(env, **none)
