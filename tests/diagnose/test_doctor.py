"""statrepro doctor and template: factor extraction and diffing on real-format inputs."""

from __future__ import annotations

import copy
import json
import shutil

import pytest
from typer.testing import CliRunner

from statrepro.cli import app
from statrepro.diagnose.doctor import compare_sources, diff_factors, extract_factors
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
