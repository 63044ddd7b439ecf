"""statrepro diagnose: layers, probe and logprobs (real SmolLM2 where marked), plus their bad inputs."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from statrepro.cli import app
from statrepro.diagnose.common import DEFAULT_PROMPTS
from statrepro.diagnose.layers import Setting
from statrepro.diagnose.logprobs import Generation, OpenAISide, Step, compare_generations, compare_sides, topk_kl
from statrepro.errors import InputError

PROMPTS = DEFAULT_PROMPTS[:4]


@pytest.fixture(scope="module")
def model_dir():
    pytest.importorskip("torch")
    from statrepro.models import materialize_embedded_model

    return materialize_embedded_model()


# ---------------------------------------------------------------------------------------------
# layers


def test_setting_parse_and_bad_values():
    assert Setting.parse("dtype=bfloat16, attn=sdpa,batch=padded").label() == "dtype=bfloat16,attn=sdpa,batch=padded,quant=none"
    with pytest.raises(InputError, match="dtype must be one of"):
        Setting.parse("dtype=float64")
    with pytest.raises(InputError, match="KEY=VALUE"):
        Setting.parse("bf16")


@pytest.mark.model
def test_layers_identical_settings_are_exactly_zero(model_dir):
    from statrepro.diagnose.layers import compare_layers

    result = compare_layers(model_dir, Setting(), Setting(), PROMPTS[:2])
    assert result.identical
    assert all(point.rel_l2 == 0.0 and point.cosine_min == 1.0 for point in result.points)
    assert result.jump_layer is None


@pytest.mark.model
def test_layers_fp32_vs_bf16_grows_and_names_a_jump_layer(model_dir, tmp_path):
    from statrepro.diagnose.common import write_json
    from statrepro.diagnose.layers import compare_layers, plot_layers

    result = compare_layers(model_dir, Setting(), Setting(dtype="bfloat16"), PROMPTS[:2])
    layer_points = [p for p in result.points if p.name == f"layer.{p.layer}"]
    assert len(layer_points) == 30
    assert all(p.rel_l2 > 0 for p in layer_points)
    # Divergence accumulates through the network: the logits are further apart than the first layer output.
    assert result.points[-1].name == "logits"
    assert result.points[-1].rel_l2 > layer_points[0].rel_l2
    assert result.jump_layer is not None and 0 <= result.jump_layer < 30
    plot_layers(result, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    write_json(tmp_path / "layers.json", result.to_dict())
    assert json.loads((tmp_path / "layers.json").read_text())["jump_layer"] == result.jump_layer


# ---------------------------------------------------------------------------------------------
# probe


@pytest.mark.model
def test_probe_bf16_is_at_least_100x_fp32(model_dir):
    from statrepro.diagnose.probe import probe

    result = probe(model_dir, PROMPTS)
    controls = [row for row in result.rows if row.configuration == "alone-rerun"]
    assert len(controls) == 2 and all(row.max_abs_logit_diff == 0.0 and row.argmax_flips == 0 for row in controls)
    fp32, bf16 = result.worst("float32"), result.worst("bfloat16")
    assert fp32 < 1e-3
    assert bf16 > 0.05
    assert bf16 >= 100 * fp32
    assert {row.configuration for row in result.rows} == {"alone-rerun", "batched-right", "batched-left", "packed-reversed"}


# ---------------------------------------------------------------------------------------------
# logprobs: comparison logic


def _gen(*steps):
    return Generation(text="".join(s[0] for s in steps), steps=tuple(Step(t, lp, top) for t, lp, top in steps))


def test_compare_generations_near_tie_topk_and_not_greedy():
    a = _gen(("x", -0.1, {"x": -0.1, "y": -2.5}), ("a", -0.70, {"a": -0.70, "b": -0.72}))
    b = _gen(("x", -0.3, {"x": -0.3, "y": -1.5}), ("b", -0.69, {"b": -0.69, "a": -0.71}))
    result = compare_generations("p", a, b, epsilon=0.1)
    assert (result.divergence, result.token_a, result.token_b) == (1, "a", "b")
    assert result.near_tie and result.topk_accepted and not result.exact_match
    assert result.abs_delta_logprobs == pytest.approx((0.2,))
    assert result.topk_kl[0] > 0
    penalised = _gen(("x", -0.1, {"x": -0.1, "y": -2.5}), ("y", -2.0, {"x": -0.2, "y": -2.0}))
    assert compare_generations("p", penalised, penalised, epsilon=0.1).not_greedy_a == 1
    same = compare_generations("p", a, a, epsilon=0.1)
    assert same.exact_match and same.divergence is None and max(same.abs_delta_logprobs) == 0.0
    assert topk_kl({"x": -0.1, "y": -2.5}, {"x": -0.1, "y": -2.5}) == 0.0


def test_compare_generations_prefix_divergence_and_far_flip():
    a = _gen(("x", -0.1, {"x": -0.1, "y": -5.0}))
    b = _gen(("y", -0.1, {"y": -0.1, "z": -5.0}))
    result = compare_generations("p", a, b, epsilon=0.1)
    assert result.divergence == 0 and result.near_tie is False and result.topk_accepted is False
    shorter = compare_generations("p", a, _gen(), epsilon=0.1)
    assert shorter.divergence == 0 and shorter.token_b is None


# ---------------------------------------------------------------------------------------------
# logprobs: bad endpoints


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def tiny_server():
    """A minimal OpenAI-like server: lists model 'm'; /v1/slow never answers in time."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path.startswith("/v1/slow"):
                time.sleep(3)
            if self.path in ("/v1/models", "/v1/slow/models"):
                body = json.dumps({"data": [{"id": "m"}]}).encode()
                self.send_response(200)
            else:
                body = b'{"error": "not found"}'
                self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_logprobs_bad_endpoints(tiny_server):
    with pytest.raises(InputError, match="cannot connect"):
        OpenAISide(f"http://127.0.0.1:{_free_port()}/v1", timeout=2)
    with pytest.raises(InputError, match="timeout"):
        OpenAISide(f"{tiny_server}/v1/slow", timeout=0.5)
    with pytest.raises(InputError, match="endpoint not found"):
        OpenAISide(tiny_server, timeout=2)
    side = OpenAISide(f"{tiny_server}/v1", model="missing", timeout=2)
    with pytest.raises(InputError, match="'missing' is not served"):
        side.generate(["hi"], max_tokens=2, top_k=2)
    assert OpenAISide(f"{tiny_server}/v1", timeout=2).model == "m"


def test_logprobs_cli_bad_input_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "out.json"
    url = f"http://127.0.0.1:{_free_port()}/v1"
    result = CliRunner().invoke(app, ["logprobs", url, url, "--json", str(out)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "cannot connect" in result.output
    assert not out.exists()
    result = CliRunner().invoke(app, ["logprobs", str(tmp_path / "nope.txt"), url])
    assert result.exit_code == 2 and "base URL or an environment .yaml" in result.output


def test_logprobs_env_with_managed_engine_is_rejected(tmp_path):
    from statrepro.diagnose.logprobs import side_from_spec

    env = tmp_path / "env.yaml"
    env.write_text("name: x\nengine: {kind: llama-cpp}\n")
    with pytest.raises(InputError, match="needs a managed server"):
        side_from_spec(str(env), chat=False, timeout=1, params={})


# ---------------------------------------------------------------------------------------------
# logprobs: real model


@pytest.mark.model
def test_logprobs_in_process_identical_is_exactly_zero(model_dir, tmp_path):
    from statrepro.diagnose.logprobs import side_from_spec

    env = tmp_path / "hf.yaml"
    env.write_text(f"name: hf\nmodel: {{path: {model_dir}}}\nengine: {{kind: hf}}\n")
    side_a = side_from_spec(str(env), chat=False, timeout=10, params={})
    side_b = side_from_spec(str(env), chat=False, timeout=10, params={})
    result = compare_sides(side_a, side_b, PROMPTS[:2], max_tokens=8, top_k=3)
    assert result.exact_match_rate == 1.0 and not result.behaviour_differs
    assert all(len(p.abs_delta_logprobs) > 0 and max(p.abs_delta_logprobs) == 0.0 for p in result.prompts if p.text_a)
    assert result.to_dict()["abs_delta_logprob"]["max"] == 0.0


@pytest.fixture(scope="module")
def llama_server():
    """A real llama.cpp server on the embedded GGUF (default repeat_penalty 1.1)."""
    pytest.importorskip("llama_cpp")
    import httpx

    from statrepro.models import embedded_gguf_path

    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf_path()), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                pytest.fail("llama.cpp server exited during startup")
            time.sleep(0.5)
        else:
            pytest.fail("llama.cpp server did not start")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.model
@pytest.mark.slow
def test_llama_cpp_default_repeat_penalty_is_detected(llama_server, tmp_path):
    prompts = [DEFAULT_PROMPTS[0], DEFAULT_PROMPTS[1]]
    same = compare_sides(OpenAISide(llama_server), OpenAISide(llama_server), prompts, max_tokens=24, top_k=3)
    assert same.exact_match_rate == 1.0 and not same.behaviour_differs

    env = tmp_path / "neutral.yaml"
    env.write_text(f"name: neutral\nengine: {{kind: openai, base_url: '{llama_server}'}}\ngeneration: {{repeat_penalty: 1.0}}\n")
    out = tmp_path / "lp.json"
    result = CliRunner().invoke(app, ["logprobs", llama_server, str(env), "--max-tokens", "24", "--top-k", "3", "--json", str(out),
                                      "--prompts", str(_write_prompts(tmp_path, prompts))])
    assert result.exit_code == 1, result.output
    payload = json.loads(out.read_text())
    assert payload["behaviour_differs"]
    # Default 1.1 penalises repeats: A sometimes emits a token that is not its own top-1; B (1.0) never does.
    assert payload["not_greedy_steps"]["a"] > 0 and payload["not_greedy_steps"]["b"] == 0


def _write_prompts(tmp_path, prompts):
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(p.replace("\n", "\\n") for p in prompts) + "\n")
    return path


def test_prompts_can_come_from_a_local_benchmark():
    from statrepro.diagnose.common import benchmark_prompts, choose_prompts

    prompts = benchmark_prompts("mmlu_redux", data_dir=None, limit=3)
    assert len(prompts) == 3 and all("\nA. " in p and "\nD. " in p for p in prompts)
    assert len(set(prompts)) == 3  # spread over subjects, not three copies
    assert benchmark_prompts("gsm8k", data_dir=None, limit=2)[0].startswith("Janet")
    with pytest.raises(InputError, match="not both"):
        choose_prompts("x.txt", "gsm8k", data_dir=None, limit=2)
