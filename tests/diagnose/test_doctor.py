"""statrepro doctor and template: factor extraction and diffing on real-format inputs, and the questions doctor
asks live servers (fakes answering in each server's real shapes; the real llama.cpp and transformers servers
in the model-marked tests)."""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from fakes import FakeOpenAI
from processes import gone
from typer.testing import CliRunner

from statrepro.cli import app
from statrepro.diagnose.doctor import compare_sources, diff_factors, extract_factors, merge_live
from statrepro.engines.kinds import ask_endpoint
from statrepro.errors import InputError
from statrepro.harness.lm_eval import doctor_factors_of_results


def lm_eval_results(*, dtype="float32", batch_size=1, chat_template_sha="a1b2c3", num_fewshot=5, max_gen_toks=256):
    """A results_*.json payload in the layout lm-eval 0.4.x's EvaluationTracker writes."""
    task_config = {
        "task": "gsm8k", "dataset_path": "gsm8k", "dataset_name": "main", "test_split": "test", "fewshot_split": "train",
        "doc_to_text": "Question: {{question}}\nAnswer:", "doc_to_target": "{{answer}}", "unsafe_code": False,
        "description": "", "target_delimiter": " ", "fewshot_delimiter": "\n\n", "fewshot_config": {"sampler": "first_n"},
        "num_fewshot": num_fewshot,
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True, "ignore_case": True}],
        "output_type": "generate_until",
        "generation_kwargs": {"until": ["Question:", "</s>", "<|im_end|>"], "do_sample": False, "temperature": 0.0, "max_gen_toks": max_gen_toks},
        "repeats": 1,
        "filter_list": [{"name": "strict-match", "filter": [{"function": "regex", "regex_pattern": "#### (\\-?[0-9\\.\\,]+)"}, {"function": "take_first"}]}],
        "should_decontaminate": False, "metadata": {"version": 3.0},
    }
    return {
        "results": {"gsm8k": {"alias": "gsm8k", "exact_match,strict-match": 0.4, "exact_match_stderr,strict-match": 0.1}},
        "group_subtasks": {"gsm8k": []},
        "configs": {"gsm8k": task_config},
        "versions": {"gsm8k": 3.0},
        "n-shot": {"gsm8k": num_fewshot},
        "higher_is_better": {"gsm8k": {"exact_match": True}},
        "n-samples": {"gsm8k": {"original": 1319, "effective": 20}},
        "config": {
            "model": "hf", "model_args": f"pretrained=/models/smollm2,dtype={dtype}", "model_num_parameters": 134515008,
            "model_dtype": f"torch.{dtype}", "model_revision": "main", "model_sha": "", "batch_size": batch_size,
            "batch_sizes": [], "device": "cpu", "use_cache": None, "limit": 20.0, "bootstrap_iters": 0, "gen_kwargs": None,
            "random_seed": 0, "numpy_seed": 1234, "torch_seed": 1234, "fewshot_seed": 1234,
        },
        "git_hash": None, "date": 1730000000.0,
        "pretty_env_info": "PyTorch version: 2.13.0+cpu\nIs CUDA available: False",
        "transformers_version": "5.23.0", "lm_eval_version": "0.4.13", "upper_git_hash": None,
        "tokenizer_pad_token": ["<|im_end|>", "2"], "tokenizer_eos_token": ["<|im_end|>", "2"], "tokenizer_bos_token": ["<|im_start|>", "1"],
        "eot_token_id": 2, "max_length": 8192,
        "task_hashes": {}, "model_source": "hf", "model_name": "/models/smollm2", "model_name_sanitized": "__models__smollm2",
        "system_instruction": None, "system_instruction_sha": None, "fewshot_as_multiturn": False,
        "chat_template": "{% for message in messages %}...", "chat_template_sha": chat_template_sha,
        "start_time": 1.0, "end_time": 2.0, "total_evaluation_time_seconds": "1.0",
    }


def _write(path, payload):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))
    return path


def test_doctor_names_the_five_lm_eval_differences(tmp_path):
    a = _write(tmp_path / "a" / "model" / "results_2024-10-01T00-00-00.json", lm_eval_results())
    b = _write(tmp_path / "b" / "results_2024-10-02T00-00-00.json", lm_eval_results(
        dtype="bfloat16", batch_size=8, chat_template_sha="ffff00", num_fewshot=8, max_gen_toks=128))
    result = compare_sources(tmp_path / "a", b)  # a directory and a file
    names = {f.name: f for f in result.factors}
    assert set(names) == {"dtype", "batch_size", "chat_template", "num_fewshot", "max_tokens"}
    assert (names["dtype"].a, names["dtype"].b) == ("float32", "bfloat16")
    assert names["chat_template"].severity == "high" and names["num_fewshot"].severity == "high"
    assert result.factors[0].severity == "high"  # sorted by severity
    checklist = {c.item: (c.a, c.b) for c in result.checklist}
    assert checklist["fp32"] == ("met", "not met")
    assert checklist["batch size 1 (or batch-invariant kernels)"] == ("met", "not met")
    assert checklist["greedy decoding (temperature 0)"] == ("met", "met")


def test_doctor_identical_files_name_nothing(tmp_path):
    a = _write(tmp_path / "a.json", lm_eval_results())
    b = _write(tmp_path / "b.json", lm_eval_results())
    result = compare_sources(a, b)
    assert result.factors == ()
    assert "no known score-moving factor differs" in result.summary()


def test_doctor_gen_kwargs_override_is_seen(tmp_path):
    payload = lm_eval_results()
    sampled = copy.deepcopy(payload)
    sampled["config"]["gen_kwargs"] = {"do_sample": True, "temperature": 0.7}
    result = compare_sources(_write(tmp_path / "a.json", payload), _write(tmp_path / "b.json", sampled))
    assert [f.name for f in result.factors] == ["temperature"]


def test_doctor_repeat_penalty_from_envs(tmp_path):
    base = "name: {name}\nengine: {{kind: {kind}}}\ngeneration: {{repeat_penalty: {rp}}}\n"
    hf = tmp_path / "hf.yaml"
    hf.write_text(base.format(name="hf", kind="hf", rp="1.0"))
    penalised = tmp_path / "pen.yaml"
    penalised.write_text(base.format(name="pen", kind="hf", rp="1.1"))
    assert [f.name for f in compare_sources(hf, penalised).factors] == ["repeat_penalty"]
    # llama.cpp with repeat_penalty unset uses its default 1.1: a hidden difference doctor must name.
    llama = tmp_path / "llama.yaml"
    llama.write_text("name: llama\nengine: {kind: llama-cpp}\n")
    unset_hf = tmp_path / "hf2.yaml"
    unset_hf.write_text("name: hf2\n")
    names = {f.name: f for f in compare_sources(unset_hf, llama).factors}
    assert set(names) == {"repeat_penalty", "engine"}
    assert (names["repeat_penalty"].a, names["repeat_penalty"].b) == (1.0, 1.1)


def test_doctor_manifest_and_evalscope(tmp_path):
    manifest = _write(tmp_path / "manifest.json", {"env": {"name": "x", "model": {"dtype": "bfloat16"}, "batch_size": 1},
                                                   "harness_version": "0.4.13", "hardware": "h100"})
    factors = extract_factors(manifest)
    assert (factors["dtype"], factors["hardware"], factors["harness_version"]) == ("bfloat16", "h100", "0.4.13")
    evalscope = tmp_path / "out" / "configs" / "task_config_1.yaml"
    evalscope.parent.mkdir(parents=True)
    evalscope.write_text("model: smollm2\neval_type: openai_api\ndatasets: [gsm8k]\neval_batch_size: 4\nseed: 42\n"
                         "dataset_args: {gsm8k: {few_shot_num: 4}}\ngeneration_config: {temperature: 0.0, max_tokens: 512}\n")
    factors = extract_factors(tmp_path / "out")
    # Against an API, eval_batch_size is the requests in flight (one prompt each): concurrency, as lm-eval's num_concurrent.
    assert (factors["harness"], factors["num_fewshot"], factors["batch_size"], factors["max_tokens"]) == ("evalscope", 4, 1, 512)
    assert factors["concurrency"] == 4


def test_diff_factors_is_pure_and_marks_unknowns():
    result = diff_factors({"dtype": "float32", "temperature": 0.0, "seed": 1}, {"dtype": "float32", "temperature": 0, "seed": 2, "top_p": 0.9})
    assert [(f.name, f.severity) for f in result.factors] == [("seed", "low")]  # greedy: seed cannot matter
    assert result.not_comparable == ("top_p",)
    assert set(result.to_dict()) >= {"factors", "checklist"}


def test_doctor_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        extract_factors(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(InputError, match="not valid JSON"):
        extract_factors(bad)
    other = _write(tmp_path / "other.json", {"hello": 1})
    with pytest.raises(InputError, match="neither an lm-eval"):
        extract_factors(other)
    with pytest.raises(InputError, match="no lm-eval results"):
        extract_factors(tmp_path)


def test_doctor_cli_table_json_and_exit_codes(tmp_path):
    a = _write(tmp_path / "a.json", lm_eval_results())
    b = _write(tmp_path / "b.json", lm_eval_results(dtype="bfloat16"))
    out = tmp_path / "doctor.json"
    result = CliRunner().invoke(app, ["doctor", str(a), str(b), "--json", str(out)])
    assert result.exit_code == 1, result.output
    assert "dtype" in result.output
    payload = json.loads(out.read_text())
    assert [f["name"] for f in payload["factors"]] == ["dtype"]
    assert {"item", "a", "b"} == set(payload["checklist"][0])
    assert CliRunner().invoke(app, ["doctor", str(a), str(a)]).exit_code == 0
    missing = CliRunner().invoke(app, ["doctor", str(a), str(tmp_path / "nope.json"), "--json", str(tmp_path / "x.json")])
    assert missing.exit_code == 2 and not (tmp_path / "x.json").exists()


# ---------------------------------------------------------------------------------------------
# template


@pytest.mark.model
def test_template_same_and_changed(tmp_path):
    from statrepro.diagnose.template import compare_templates
    from statrepro.models import materialize_embedded_model

    model_dir = materialize_embedded_model()
    prompts = ["2 + 2 =", "Name a colour."]
    assert compare_templates(model_dir, model_dir, prompts).all_match
    changed = tmp_path / "tok"
    shutil.copytree(model_dir, changed, ignore=shutil.ignore_patterns("*.safetensors"))
    template = (changed / "chat_template.jinja").read_text()
    assert "helpful" in template
    (changed / "chat_template.jinja").write_text(template.replace("helpful", "careful"))
    result = compare_templates(model_dir, changed, prompts)
    assert len(result.mismatches) == 2 and result.mismatches[0].index > 0
    assert "helpful" in result.mismatches[0].context_a and "careful" in result.mismatches[0].context_b
    cli = CliRunner().invoke(app, ["template", str(model_dir), str(changed), "--json", str(tmp_path / "t.json")])
    assert cli.exit_code == 1 and json.loads((tmp_path / "t.json").read_text())["all_match"] is False
    with pytest.raises(InputError, match="does not exist"):
        compare_templates(model_dir, tmp_path / "missing", prompts)


def test_doctor_names_a_mode_difference_as_high(tmp_path):
    base = "name: {name}\nbenchmarks:\n  mmlu_redux: {spec}\n"
    ppl = tmp_path / "ppl.yaml"
    ppl.write_text(base.format(name="ppl", spec="{mode: ppl}"))
    old = tmp_path / "old.yaml"
    old.write_text(base.format(name="old", spec="{generative: true}"))  # the key `mode` replaced
    (factor,) = compare_sources(ppl, old).factors
    assert (factor.name, factor.a, factor.b, factor.severity) == ("mode", "ppl", "gen", "high")
    default = tmp_path / "default.yaml"
    default.write_text(base.format(name="default", spec="{}"))
    clp = tmp_path / "clp.yaml"
    clp.write_text(base.format(name="clp", spec="{mode: clp}"))
    assert compare_sources(default, clp).factors == ()  # in-process hf defaults to clp
def test_doctor_names_a_concurrency_difference_as_low_severity(tmp_path):
    def env_file(name: str, text: str):
        path = tmp_path / f"{name}.yaml"
        path.write_text(f"name: {name}\nengine: {{kind: openai, base_url: 'http://127.0.0.1:1/v1'{text}}}\n")
        return path

    a, b = env_file("a", ", concurrency: 1"), env_file("b", "")
    result = compare_sources(a, b)
    assert [(f.name, f.a, f.b, f.severity) for f in result.factors] == [("concurrency", 1, 8, "low")]  # 8: the openai kind's default
    sampled = env_file("c", "")
    sampled.write_text(sampled.read_text() + "generation: {temperature: 0.7}\n")
    assert extract_factors(sampled)["concurrency"] == 1  # one RNG shared by all requests: one at a time
    manifest = _write(tmp_path / "manifest.json", {"env": {"name": "x", "engine": {"kind": "openai", "concurrency": 8}}, "concurrency": 16})
    assert extract_factors(manifest)["concurrency"] == 16  # what the job had, as its manifest records


def test_lm_eval_results_report_num_concurrent_as_concurrency():
    results = lm_eval_results()
    results["config"].update(model="local-chat-completions", model_args="model=m,base_url=http://x/v1/chat/completions,num_concurrent=16")
    assert doctor_factors_of_results(results)["concurrency"] == 16
    assert doctor_factors_of_results(lm_eval_results())["concurrency"] == 1  # lm-eval's in-process hf: one request at a time


# ---------------------------------------------------------------------------------------------
# Live endpoints: what the running servers state (EngineKind.live_factors)

SUPPORT_BIN = Path(__file__).resolve().parents[1] / "support" / "bin"
API_GENERATION = {"temperature": 0.0, "max_tokens": 256, "seed": 0}  # what a user sets; no repetition_penalty


def llama_cpp_python_fake() -> FakeOpenAI:
    """llama-cpp-python's server as measured here (0.3.36): no /props, /version or /health; GET /openapi.json names
    it and publishes the request defaults (the real schemas hold more fields); /v1/models lists the model alias."""
    def defaults(**values):
        return {"properties": {name: {"type": "number", "default": value} for name, value in values.items()}}

    sampling = {"temperature": 0.8, "top_p": 0.95, "min_p": 0.05, "top_k": 40, "repeat_penalty": 1.1}
    openapi = {
        "openapi": "3.1.0", "info": {"title": "🦙 llama.cpp Python API", "version": "0.3.36"},
        "paths": {path: {} for path in ("/v1/completions", "/v1/embeddings", "/v1/chat/completions", "/v1/models",
                                        "/extras/tokenize", "/extras/tokenize/count", "/extras/detokenize")},
        "components": {"schemas": {"CreateCompletionRequest": defaults(max_tokens=16, **sampling),
                                   "CreateChatCompletionRequest": defaults(**sampling)}},
    }
    return FakeOpenAI(model="SmolLM2-135M-Instruct.Q4_1", get_routes={"/openapi.json": (200, openapi)},
                      model_card={"owned_by": "me", "permissions": []}).start()


def transformers_serve_fake(model_dir: Path) -> FakeOpenAI:
    """`transformers serve` as measured here (5.24, pinned to one model): a plain FastAPI app (title "FastAPI",
    version "0.1.0") whose routes name it, GET /health {"status": "ok"}, and /v1/models listing the served directory's
    path with owned_by "local" and a loaded status. No version, no defaults route."""
    paths = ("/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/systemone", "/v1/audio/transcriptions",
             "/load_model", "/reset", "/v1/models", "/health")
    openapi = {"openapi": "3.1.0", "info": {"title": "FastAPI", "version": "0.1.0"}, "paths": {path: {} for path in paths}}
    return FakeOpenAI(model=str(model_dir), get_routes={"/openapi.json": (200, openapi), "/health": (200, {"status": "ok"})},
                      model_card={"owned_by": "local", "created": 0, "status": {"value": "loaded"}}).start()


def llama_server_fake() -> FakeOpenAI:
    """llama.cpp's C++ server (llama-server): GET /props in the shape of tools/server (server-context.cpp
    get_props): default_generation_settings with the per-slot n_ctx and the sampling "params" (repeat_penalty
    1.0, common.h's default in current builds), model_path and build_info; /v1/models entries are owned_by "llamacpp"."""
    params = {"n_predict": -1, "seed": 4294967295, "temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.05,
              "repeat_last_n": 64, "repeat_penalty": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0}
    props = {"default_generation_settings": {"id": 0, "n_ctx": 4096, "speculative": False, "is_processing": False, "params": params},
             "total_slots": 4, "model_alias": "smol", "model_path": "/models/smol-q4.gguf", "build_info": "b6200-1a2b3c4",
             "chat_template": "{{ messages }}", "modalities": {"vision": False, "audio": False}}
    return FakeOpenAI(model="smol", get_routes={"/props": (200, props)}, model_card={"owned_by": "llamacpp"}).start()


def model_directory(path: Path, **generation) -> Path:
    """A local model directory as servers read it: config.json and generation_config.json."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama", "max_position_embeddings": 8192}))
    (path / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": 2, **generation}))
    return path


def evalscope_api_run(root: Path, api_url: str) -> Path:
    """An evalscope work dir of a run against an OpenAI-compatible server, its task config dumped by evalscope."""
    pytest.importorskip("evalscope")
    from harness_output import repeated_reviews, write_evalscope_run

    return write_evalscope_run(root, "20260101_100000", {"gsm8k_main": repeated_reviews(2, 1, lambda doc, generation: 1.0)},
                               eval_type="openai_api", api_url=api_url, generation_config=dict(API_GENERATION))


def env_file(tmp_path: Path, name: str, engine: dict, **sections) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "engine": engine, **sections}))
    return path


@pytest.fixture
def live_servers(tmp_path):
    servers = {"llama": llama_cpp_python_fake(), "transformers": transformers_serve_fake(model_directory(tmp_path / "served-model"))}
    yield servers
    for server in servers.values():
        server.stop()


def test_doctor_on_evalscope_outputs_lists_what_it_cannot_see_then_asks_the_servers(tmp_path, live_servers):
    transformers = evalscope_api_run(tmp_path / "ts", live_servers["transformers"].base_url)
    llama = evalscope_api_run(tmp_path / "llama", live_servers["llama"].base_url)

    blind = compare_sources(transformers, llama)
    assert blind.factors == ()  # both outputs name only the client "openai_api"
    for side in blind.sides:
        assert side.unseen == ("engine", "engine_version", "max_context", "repeat_penalty", "top_p")
        assert side.live == {} and "pass --probe-endpoints" in side.summary() and "evalscope outputs" in side.summary()
    assert "not seen on A: engine, engine_version, max_context, repeat_penalty" in blind.summary()
    cli = " ".join(CliRunner().invoke(app, ["doctor", str(transformers), str(llama)]).output.split())
    assert "A (evalscope outputs): not recorded in the evalscope outputs: engine, engine_version, max_context, " \
           "repeat_penalty (server default), top_p (server default) - pass --probe-endpoints" in cli
    assert not any(server.requests for server in live_servers.values())  # nothing was asked

    result = compare_sources(transformers, llama, probe_endpoints=True)
    differing = {f.name: (f.a, f.b, f.severity) for f in result.factors}
    assert differing["engine"] == ("transformers-serve", "llama-cpp", "medium")
    assert differing["repeat_penalty"] == (1.0, 1.1, "high")  # the hidden llama.cpp default, named
    assert result.factors[0].name == "repeat_penalty"
    assert set(result.not_comparable) == {"engine_version", "max_context", "top_p"}  # each stated by one server only
    side_a, side_b = result.sides
    assert side_a.live["max_context"] == 8192 and side_a.live["model"] == str(tmp_path / "served-model")
    assert side_b.live["engine_version"] == "llama-cpp-python 0.3.36" and side_b.live["temperature"] == 0.8
    assert side_a.unseen == ("engine_version", "top_p") and side_b.unseen == ("max_context",)  # what neither states
    extract = extract_factors(llama)
    assert extract["temperature"] == 0.0 and "endpoint" not in extract  # the recorded temperature is what was sent
    assert {request.path for request in live_servers["llama"].requests} <= {"/v1/models", "/props", "/openapi.json"}


def test_doctor_asks_an_external_endpoint_by_default_and_keeps_what_the_env_sends(tmp_path, live_servers):
    url = live_servers["llama"].base_url
    unset = env_file(tmp_path, "unset", {"kind": "openai", "base_url": url})
    pinned = env_file(tmp_path, "pinned", {"kind": "openai", "base_url": url}, generation={"repeat_penalty": 1.0})
    result = compare_sources(pinned, unset, probe_endpoints=None)
    assert [(f.name, f.a, f.b) for f in result.factors] == [("repeat_penalty", 1.0, 1.1)]
    assert extract_factors(unset)["engine"] == "openai" and result.sides[1].live["engine"] == "llama-cpp"
    (note,) = result.sides[0].notes  # the env's 1.0 travels with every request; other clients get the server's 1.1
    assert "repeat_penalty 1.0" in note and "default is 1.1" in note
    assert result.sides[1].notes == ()
    assert compare_sources(pinned, unset).sides[0].unseen == ("engine", "engine_version", "max_context")


def test_doctor_identifies_llama_server_by_its_props(tmp_path):
    server = llama_server_fake()
    try:
        factors = ask_endpoint(server.base_url, timeout=5)
    finally:
        server.stop()
    assert factors == {"engine": "llama-cpp", "engine_version": "llama.cpp server b6200-1a2b3c4", "max_context": 4096,
                       "model": "/models/smol-q4.gguf", "repeat_penalty": 1.0, "temperature": 0.8, "top_p": 0.95}


def test_doctor_starts_managed_vllm_and_sglang_asks_them_and_stops_them(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{SUPPORT_BIN}{os.pathsep}{os.environ['PATH']}")
    record = tmp_path / "servers.jsonl"
    monkeypatch.setenv("FAKE_SERVER_RECORD", str(record))
    model = {"path": str(model_directory(tmp_path / "model", repetition_penalty=1.05)), "dtype": "bfloat16"}
    vllm = env_file(tmp_path, "vllm", {"kind": "vllm", "startup_timeout": 30, "extra_args": ["--max-model-len", "2048"]}, model=model)
    sglang = env_file(tmp_path, "sglang", {"kind": "sglang", "startup_timeout": 30,
                                           "extra_args": ["--preferred-sampling-params", '{"repetition_penalty": 1.2}']}, model=model)
    result = compare_sources(vllm, sglang, probe_endpoints=None)
    differing = {f.name: (f.a, f.b) for f in result.factors}
    assert differing["engine"] == ("vllm", "sglang")
    assert differing["engine_version"] == ("vLLM 0.0.0-fake-vllm", "SGLang 0.0.0-fake-sglang")
    assert differing["max_context"] == (2048, 8192)  # --max-model-len against the model's own context
    assert differing["repeat_penalty"] == (1.05, 1.2)  # the model's generation_config.json against preferred_sampling_params
    assert result.sides[0].live["model"] == model["path"] and result.sides[1].live["model"] == model["path"]
    started = [json.loads(line) for line in record.read_text().splitlines()]
    assert [entry["flavour"] for entry in started] == ["vllm", "sglang"]
    assert all(gone(entry["pid"]) for entry in started)  # asked, then stopped

    no_sglang = compare_sources(sglang, sglang, probe_endpoints=False)
    assert no_sglang.sides[0].unseen == ("engine_version", "max_context", "repeat_penalty")
    assert "drop --no-probe-endpoints" in no_sglang.sides[0].summary() and len(record.read_text().splitlines()) == 2


def test_doctor_identifies_an_unknown_endpoint_as_vllm(tmp_path, monkeypatch):
    from statrepro.envfile import load_env
    from statrepro.engines.kinds import engine_endpoint

    monkeypatch.setenv("PATH", f"{SUPPORT_BIN}{os.pathsep}{os.environ['PATH']}")
    model = {"path": str(model_directory(tmp_path / "model")), "dtype": "bfloat16"}
    env = load_env(env_file(tmp_path, "vllm", {"kind": "vllm", "served_model": "smol", "startup_timeout": 30}, model=model))
    with engine_endpoint(env, tmp_path) as info:
        factors = ask_endpoint(info.base_url, timeout=5)  # no expected kind: identified by owned_by "vllm"
        outputs = evalscope_api_run(tmp_path / "out", info.base_url)
        result = compare_sources(outputs, outputs, probe_endpoints=True)
    assert factors == {"engine": "vllm", "engine_version": "vLLM 0.0.0-fake-vllm", "max_context": 8192,
                       "model": model["path"], "repeat_penalty": 1.0}
    assert result.sides[0].live == factors and result.factors == ()


def test_doctor_unreachable_endpoints_are_one_line_notes(tmp_path):
    env = env_file(tmp_path, "gone", {"kind": "openai", "base_url": "http://127.0.0.1:1/v1"})
    result = compare_sources(env, env, probe_endpoints=None)
    (note,) = result.sides[0].notes
    assert note.startswith("could not ask the server: http://127.0.0.1:1 does not answer") and "\n" not in note
    assert result.sides[0].unseen == ("engine", "engine_version", "max_context", "repeat_penalty")
    assert "the server could not be asked" in result.sides[0].summary()

    outputs = evalscope_api_run(tmp_path / "out", "http://127.0.0.1:1/v1/chat/completions")
    cli = CliRunner().invoke(app, ["doctor", str(outputs), str(outputs), "--probe-endpoints", "--json", str(tmp_path / "d.json")])
    assert cli.exit_code == 0, cli.output
    assert cli.output.count("does not answer") == 2 and "Traceback" not in cli.output
    sides = json.loads((tmp_path / "d.json").read_text())["sides"]
    assert [side["live"] for side in sides] == [{}, {}] and sides[0]["unseen"][0] == "engine"

    manifest = _write(tmp_path / "manifest.json", {"env": {"name": "x", "engine": {"kind": "llama-cpp"}}})
    side = compare_sources(manifest, manifest, probe_endpoints=True).sides[0]
    assert side.notes[0].startswith("no server URL in the manifest") and side.unseen == ("engine_version", "max_context")

    in_process = _write(tmp_path / "hf.json", lm_eval_results())
    assert compare_sources(in_process, in_process, probe_endpoints=True).sides[0].notes == (
        "no server in the lm-eval outputs (an in-process model): nothing to ask",)


def test_doctor_notes_a_managed_server_it_cannot_start(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no vllm here
    model = {"path": str(model_directory(tmp_path / "model")), "dtype": "bfloat16"}
    env = env_file(tmp_path, "vllm", {"kind": "vllm"}, model=model)
    result = compare_sources(env, env, probe_endpoints=None)
    (note,) = result.sides[0].notes
    assert note.startswith("could not start its vllm server to ask it:") and "not installed" in note
    assert result.factors == ()


def test_merge_live_keeps_what_requests_carried_and_fills_the_rest():
    recorded = {"engine": "openai_api", "model": "smol", "repeat_penalty": 1.0, "temperature": None}
    live = {"engine": "llama-cpp", "engine_version": "llama-cpp-python 0.3.36", "model": "alias", "repeat_penalty": 1.1,
            "temperature": 0.8, "top_p": None}
    merged, notes = merge_live(recorded, live, source="evalscope outputs")
    assert merged == {"engine": "llama-cpp", "engine_version": "llama-cpp-python 0.3.36", "model": "smol", "repeat_penalty": 1.0,
                      "temperature": 0.8}
    assert len(notes) == 1 and notes[0].startswith("the evalscope outputs set repeat_penalty 1.0")
    assumed, notes = merge_live(recorded, live, frozenset({"repeat_penalty"}))
    assert assumed["repeat_penalty"] == 1.1 and notes == ()  # a kind's documented default gives way to the server's


@pytest.mark.model
def test_doctor_asks_the_real_llama_cpp_server_and_stops_it(tmp_path):
    llama = env_file(tmp_path, "llama", {"kind": "llama-cpp"}, model={"path": "embedded", "quantization": "gguf"})
    pinned = env_file(tmp_path, "pinned", {"kind": "llama-cpp"}, model={"path": "embedded", "quantization": "gguf"},
                      generation={"repeat_penalty": 1.0})
    result = compare_sources(pinned, llama, probe_endpoints=None)
    assert [(f.name, f.a, f.b) for f in result.factors] == [("repeat_penalty", 1.0, 1.1)]
    assert result.sides[0].live["repeat_penalty"] == 1.0 and result.sides[0].notes == ()  # the launcher's server default
    for side in result.sides:
        assert side.live["engine"] == "llama-cpp" and side.live["engine_version"].startswith("llama-cpp-python 0.")
        assert side.live["max_context"] is None and side.unseen == ("max_context",)  # llama-cpp-python does not report n_ctx
        with pytest.raises(InputError, match="does not answer"):
            ask_endpoint(side.endpoint, timeout=2)  # stopped
    cli = CliRunner().invoke(app, ["doctor", str(llama), str(llama), "--no-probe-endpoints"])
    assert cli.exit_code == 0 and "not recorded in the env file: engine_version, max_context" in " ".join(cli.output.split())


@pytest.mark.model
@pytest.mark.slow
def test_doctor_on_real_transformers_serve_and_llama_cpp_evalscope_outputs(tmp_path):
    """The issue's case on the real servers: evalscope outputs of `transformers serve` and llama.cpp (llama-cpp-python)
    name neither the engine nor the repeat penalty; asked, the two live servers do."""
    from statrepro.engines.llama_cpp import llama_cpp_server
    from statrepro.engines.transformers_serve import transformers_server

    with transformers_server(work_dir=tmp_path / "ts") as ts, llama_cpp_server(work_dir=tmp_path / "llama") as llama:
        outputs = [evalscope_api_run(tmp_path / name, info.base_url) for name, info in (("ts-out", ts), ("llama-out", llama))]
        blind = compare_sources(*outputs)
        result = compare_sources(*outputs, probe_endpoints=True)
    assert blind.factors == () and all("engine" in side.unseen and "repeat_penalty" in side.unseen for side in blind.sides)
    differing = {f.name: (f.a, f.b) for f in result.factors}
    assert differing["engine"] == ("transformers-serve", "llama-cpp")
    assert differing["repeat_penalty"] == (1.0, 1.1)
    side_ts, side_llama = result.sides
    assert side_ts.live["max_context"] == 8192 and side_ts.live["model"] == ts.served_model
    assert side_llama.live["engine_version"].startswith("llama-cpp-python ") and side_llama.live["top_p"] == 0.95
