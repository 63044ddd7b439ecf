"""Benchmark task generation (lm-eval / evalscope) and LiveBench scoring."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from statrepro.benchmarks import BenchmarkOptions, get_benchmark, resolve_data_dir
from statrepro.benchmarks import livebench as lb
from statrepro.errors import InputError

DATA_DIR = os.environ.get("STATREPRO_DATA_DIR")
needs_data = pytest.mark.skipif(not DATA_DIR or not Path(DATA_DIR).is_dir(), reason="benchmark data dir not available")


class _TaskLoader(yaml.SafeLoader):
    """Loads generated YAML the way lm-eval does, keeping !function values as strings."""


_TaskLoader.add_constructor("!function", lambda loader, node: "!function " + loader.construct_scalar(node))


def load_task(path: Path) -> dict:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_TaskLoader)


def read_rows(path: str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


# ---------------------------------------------------------------- data dir resolution and registry


def test_data_dir_explicit_beats_env(tmp_path, monkeypatch):
    (tmp_path / "gsm8k").mkdir()
    monkeypatch.setenv("STATREPRO_DATA_DIR", "/nonexistent")
    assert resolve_data_dir(tmp_path, "gsm8k") == tmp_path


def test_data_dir_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("STATREPRO_DATA_DIR", str(tmp_path))
    assert resolve_data_dir(None) == tmp_path


def test_data_dir_missing_everywhere(monkeypatch):
    monkeypatch.delenv("STATREPRO_DATA_DIR", raising=False)
    with pytest.raises(InputError, match="STATREPRO_DATA_DIR"):
        resolve_data_dir(None)


def test_data_dir_not_a_directory(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        resolve_data_dir(tmp_path / "nope")


def test_data_dir_without_benchmark_names_both(tmp_path):
    with pytest.raises(InputError) as caught:
        resolve_data_dir(tmp_path, "ceval")
    assert "ceval" in str(caught.value) and str(tmp_path) in str(caught.value)


def test_unknown_benchmark_suggests_nearest():
    with pytest.raises(InputError, match="did you mean 'gsm8k'"):
        get_benchmark("gsm8")


def test_bad_options_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="invalid benchmark options"):
        get_benchmark("gsm8k").write_lm_eval_tasks(tmp_path, data_dir=DATA_DIR, options={"max_gen_tokens": 5})


# ---------------------------------------------------------------- generators


@needs_data
def test_gsm8k_task(tmp_path):
    options = BenchmarkOptions(max_gen_toks=64, generation_kwargs={"temperature": 0.7, "do_sample": True})
    tasks = get_benchmark("gsm8k").write_lm_eval_tasks(tmp_path, data_dir=DATA_DIR, limit=4, num_fewshot=3, options=options)
    assert tasks.task_names == ["statrepro_gsm8k"] and tasks.item_counts == {"statrepro_gsm8k": 4}
    config = load_task(tmp_path / "gsm8k" / "statrepro_gsm8k.yaml")
    assert config["dataset_path"] == "json" and config["test_split"] == "test"
    assert config["fewshot_split"] == "train" and config["num_fewshot"] == 3
    assert config["generation_kwargs"]["max_gen_toks"] == 64
    assert config["generation_kwargs"]["temperature"] == 0.7 and config["generation_kwargs"]["do_sample"] is True
    assert {f["name"] for f in config["filter_list"]} == {"strict-match", "flexible-extract"}
    test = read_rows(config["dataset_kwargs"]["data_files"]["test"])
    train = read_rows(config["dataset_kwargs"]["data_files"]["train"])
    assert [row["row_index"] for row in test] == [0, 1, 2, 3]
    assert test[0]["target"] == "18" and test[0]["question"].startswith("Janet")
    # exemplars are the first train rows, never test rows
    assert len(train) == 3 and train[0]["question"].startswith("Natalia")
    assert tasks.dataset_sha256["gsm8k/test.jsonl"] == "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14"


@needs_data
def test_gsm8k_zero_shot_has_no_fewshot_split(tmp_path):
    get_benchmark("gsm8k").write_lm_eval_tasks(tmp_path, data_dir=DATA_DIR, limit=1, num_fewshot=0)
    config = load_task(tmp_path / "gsm8k" / "statrepro_gsm8k.yaml")
    assert "fewshot_split" not in config and list(config["dataset_kwargs"]["data_files"]) == ["test"]


@needs_data
def test_ceval_multiple_choice_and_generative(tmp_path):
    spec = get_benchmark("ceval")
    assert len(spec.subsets(DATA_DIR)) == 52
    mc = spec.write_lm_eval_tasks(tmp_path, data_dir=DATA_DIR, limit=3, subsets=["law", "computer_network"])
    assert mc.task_names == ["statrepro_ceval_computer_network", "statrepro_ceval_law"]
    assert mc.groups == ["statrepro_ceval"] and mc.item_counts["statrepro_ceval_law"] == 3
    config = load_task(tmp_path / "ceval" / "statrepro_ceval_computer_network.yaml")
    assert config["output_type"] == "multiple_choice" and config["num_fewshot"] == 5
    assert config["tag"] == ["statrepro_ceval_stem"]
    dev = read_rows(config["dataset_kwargs"]["data_files"]["train"])
    val = read_rows(config["dataset_kwargs"]["data_files"]["test"])
    assert len(dev) == 5 and dev[0]["question"].startswith("下列设备属于资源子网的是")
    assert val[0]["target_letter"] == "C" and val[0]["target_index"] == 2
    group = load_task(tmp_path / "ceval" / "_statrepro_ceval.yaml")
    assert group["task"] == mc.task_names
    gen = spec.write_lm_eval_tasks(tmp_path, data_dir=DATA_DIR, limit=3, subsets=["law"], mode="gen")
    assert gen.task_names == ["statrepro_ceval_law_gen"]
    gen_config = load_task(tmp_path / "ceval" / "statrepro_ceval_law_gen.yaml")
    assert gen_config["output_type"] == "generate_until" and gen_config["filter_list"][0]["name"] == "letter"


@needs_data
def test_ceval_full_val_counts(tmp_path):
    items = get_benchmark("ceval").load_items(DATA_DIR)
    assert sum(len(rows) for rows in items.values()) == 1346


@needs_data
def test_ceval_rejects_more_shots_than_dev_rows(tmp_path):
    with pytest.raises(InputError, match="only 5 few-shot"):
        get_benchmark("ceval").write_lm_eval_tasks(tmp_path, data_dir=DATA_DIR, num_fewshot=6, subsets=["law"])


@needs_data
def test_ceval_unknown_subject_suggests(tmp_path):
    with pytest.raises(InputError, match="did you mean 'law'"):
        get_benchmark("ceval").write_lm_eval_tasks(tmp_path, data_dir=DATA_DIR, subsets=["laww"])


@needs_data
def test_mmlu_redux_drop_flagged(tmp_path):
    spec = get_benchmark("mmlu_redux")
    kept = spec.load_items(DATA_DIR, ["virology"])["virology"]
    everything = spec.load_items(DATA_DIR, ["virology"], {"drop_flagged": False})["virology"]
    assert len(everything) == 100 and len(kept) == 43  # SOURCE.md: 57/100 virology items are flagged
    assert all(row["error_type"] == "ok" for row in kept)
    assert [row["row_index"] for row in kept] == list(range(43))
    assert sum(len(rows) for rows in spec.load_items(DATA_DIR).values()) == 5330
    tasks = spec.write_lm_eval_tasks(tmp_path, data_dir=DATA_DIR, limit=5, subsets=["virology"], mode="gen")
    assert tasks.task_names == ["statrepro_mmlu_redux_virology_gen"] and tasks.item_counts[tasks.task_names[0]] == 5
    config = load_task(tmp_path / "mmlu_redux" / "statrepro_mmlu_redux_virology_gen.yaml")
    prepared = read_rows(config["dataset_kwargs"]["data_files"]["test"])
    assert [row["source_index"] for row in prepared] == [row["source_index"] for row in kept[:5]]


@needs_data
def test_mmlu_redux_has_no_fewshot(tmp_path):
    with pytest.raises(InputError, match="num_fewshot 0"):
        get_benchmark("mmlu_redux").write_lm_eval_tasks(tmp_path, data_dir=DATA_DIR, num_fewshot=5, subsets=["anatomy"])


@needs_data
def test_livebench_release_filter_and_unsupported(tmp_path):
    spec = get_benchmark("livebench")
    items = spec.load_items(DATA_DIR)
    counts = {task: len(rows) for task, rows in items.items()}
    # SOURCE.md: 732 questions in force at 2024-11-25 over 13 tasks, 200 of them instruction_following.
    assert sum(counts.values()) == 532 and counts["zebra_puzzle"] == 50 and counts["web_of_lies_v2"] == 50
    assert all(row["livebench_release_date"] <= "2024-11-25" for rows in items.values() for row in rows)
    older = spec.load_items(DATA_DIR, options={"livebench_release": "2024-06-24"})
    assert "spatial" in older and len(older["spatial"]) == 0
    tasks = spec.write_lm_eval_tasks(tmp_path, data_dir=DATA_DIR, limit=2, subsets=["reasoning", "instruction_following"])
    assert tasks.task_names == ["statrepro_livebench_spatial", "statrepro_livebench_web_of_lies_v2", "statrepro_livebench_zebra_puzzle"]
    assert set(tasks.skipped) == {"paraphrase", "simplify", "story_generation", "summarize"}
    config = load_task(tmp_path / "livebench" / "statrepro_livebench_spatial.yaml")
    assert config["process_results"] == "!function statrepro_livebench_utils.process_results"
    assert (tmp_path / "livebench" / "statrepro_livebench_utils.py").is_file()
    with pytest.raises(InputError, match="no scorable LiveBench task"):
        spec.write_lm_eval_tasks(tmp_path, data_dir=DATA_DIR, subsets=["instruction_following"])


@needs_data
def test_livebench_generated_hook_scores(tmp_path):
    get_benchmark("livebench").write_lm_eval_tasks(tmp_path, data_dir=DATA_DIR, limit=1, subsets=["spatial"])
    config = load_task(tmp_path / "livebench" / "statrepro_livebench_spatial.yaml")
    doc = read_rows(config["dataset_kwargs"]["data_files"]["test"])[0]
    sys.path.insert(0, str(tmp_path / "livebench"))
    try:
        import statrepro_livebench_utils as hook
    finally:
        sys.path.pop(0)
    assert hook.process_results(doc, [f"So **{doc['ground_truth']}**"]) == {"score": 1.0}
    assert hook.process_results(doc, ["So **99**"]) == {"score": 0.0}


@needs_data
@pytest.mark.parametrize("name", ["gsm8k", "ceval", "mmlu_redux", "livebench"])
def test_evalscope_args(tmp_path, name):
    spec = get_benchmark(name)
    subsets = {"gsm8k": None, "ceval": ["law"], "mmlu_redux": ["anatomy"], "livebench": ["spatial"]}[name]
    result = spec.evalscope_dataset_args(tmp_path, data_dir=DATA_DIR, limit=2, subsets=subsets)
    (dataset,) = result.datasets
    args = result.dataset_args[dataset]
    root = Path(args["dataset_id"])
    assert root.is_dir() and sum(result.item_counts.values()) == 2
    for subset in args["subset_list"]:
        files = list(root.glob(f"{subset}_*.jsonl"))
        assert files and all(len(read_rows(str(f))) <= max(2, args["few_shot_num"]) for f in files)
    assert result.needs_rescoring == (name == "livebench")


@needs_data
def test_evalscope_local_dataset_loads_with_hf_datasets(tmp_path):
    """The README config card makes the folder a local HF dataset, as evalscope's adapters load it."""
    import datasets

    result = get_benchmark("ceval").evalscope_dataset_args(tmp_path, data_dir=DATA_DIR, limit=2, subsets=["law"])
    root = result.dataset_args["ceval"]["dataset_id"]
    val = datasets.load_dataset(root, name="law", split="val")
    dev = datasets.load_dataset(root, name="law", split="dev")
    assert len(val) == 2 and len(dev) == 5 and val[0]["answer"] in "ABCD"


# ---------------------------------------------------------------- the key map across harnesses


@needs_data
@pytest.mark.parametrize("name,subsets", [("gsm8k", None), ("ceval", ["law"]), ("mmlu_redux", ["anatomy"])])
def test_generated_task_names_of_both_harnesses_map_to_one_item_identity(tmp_path, name, subsets):
    """What the generators name a subset on each harness maps back to `<subset>/<row>`, in every mode."""
    spec = get_benchmark(name)
    (subset,) = subsets or spec.subsets(DATA_DIR)
    evalscope = spec.evalscope_dataset_args(tmp_path, data_dir=DATA_DIR, limit=1, subsets=subsets)
    (evalscope_subset,) = evalscope.dataset_args[evalscope.datasets[0]]["subset_list"]
    assert spec.item_identity("evalscope", evalscope_subset, f"{evalscope_subset}/7") == f"{subset}/7"
    for mode in spec.modes:
        (task,) = spec.write_lm_eval_tasks(tmp_path, data_dir=DATA_DIR, limit=1, subsets=subsets, mode=mode).task_names
        assert spec.item_identity("lm-eval", task, f"{task}/7") == f"{subset}/7"


@pytest.mark.parametrize("name,harness,subset,item_key", [
    ("mmlu_redux", "lm-eval", "mmlu_redux_anatomy", "mmlu_redux_anatomy/0"),  # a user's own task: its rows need not be ours
    ("ceval", "lm-eval", "ceval-valid_law", "ceval-valid_law/0"),
    ("gsm8k", "lm-eval", "gsm8k", "gsm8k/0"),
    ("gsm8k", "evalscope", "socratic", "socratic/0"),
    ("gsm8k", "inspect_ai", "statrepro_gsm8k", "statrepro_gsm8k/0"),  # a harness the benchmark does not map
    ("gsm8k", "lm-eval", "statrepro_gsm8k", "statrepro_gsm8k/q0"),  # not a row index
])
def test_items_not_from_the_prepared_tasks_have_no_identity(name, harness, subset, item_key):
    assert get_benchmark(name).item_identity(harness, subset, item_key) is None


def test_reference_answers_compare_in_one_form_across_harnesses():
    mmlu_redux, gsm8k = get_benchmark("mmlu_redux"), get_benchmark("gsm8k")
    assert [mmlu_redux.comparable_target(t) for t in ("2", "C", '["A", "C"]', "7")] == ["C", "C", None, None]
    assert gsm8k.comparable_target("so 70,000 meters\n#### 70,000") == gsm8k.comparable_target("70,000") == "70000"
    assert gsm8k.comparable_target("") is None


# ---------------------------------------------------------------- LiveBench scorers


def test_amps_hard():
    assert lb.score_amps_hard("4 i \\sqrt{5}", "so the mean is $\\boxed{4 i \\sqrt{5}}$") == 1.0
    assert lb.score_amps_hard("\\frac{1}{2}", "The answer is $\\boxed{\\dfrac{1}{2}}$.") == 1.0
    assert lb.score_amps_hard("3", "Thus $x = 3$") == 1.0
    assert lb.score_amps_hard("3", "$\\boxed{4}$") == 0.0


def test_amps_hard_symbolic_equivalence():
    pytest.importorskip("lark")
    assert lb.score_amps_hard("\\frac{1}{2}", "$\\boxed{0.5}$") == 1.0
    assert lb.score_amps_hard("2 x", "$\\boxed{x+x}$") == 1.0
    assert lb.score_amps_hard("2 x", "$\\boxed{x+1}$") == 0.0


def test_math_competition():
    amc = "What is 1+1? $\\textbf{(A) }1\\qquad\\textbf{(B) }2\\qquad\\textbf{(C) }3\\qquad\\textbf{(D) }4\\qquad\\textbf{(E) }5$"
    assert lb.score_math_competition("B", "I think it is BBBBB", amc, "amc_12a_2023") == 1.0
    assert lb.score_math_competition("B", "so \\boxed{B}", amc, "amc_12a_2023") == 1.0
    assert lb.score_math_competition("B", "<solution>B</solution>", amc, "amc_12a_2023") == 1.0
    assert lb.score_math_competition("B", "CCCCC", amc, "amc_12a_2023") == 0.0
    assert lb.score_math_competition("B", "EEEEE", amc, "updated_amc_12b_2023") == 0.0
    assert lb.score_math_competition("B", "... the answer is $2$", amc, "smc") == 1.0
    assert lb.score_math_competition("025", "long reasoning... so the answer is 025", "", "aime_i_2024") == 1.0
    assert lb.score_math_competition("025", "025 appears early" + "x" * 80, "", "aime_i_2024") == 0.0


@needs_data
def test_every_local_livebench_item_is_scorable():
    """Every scored task routes to a scorer and its own ground truth, stated plainly, earns full credit."""
    statements = {
        "AMPS_Hard": "$\\boxed{{{}}}$", "math_comp": "{}", "olympiad": "Answer: {}", "spatial": "**{}**",
        "web_of_lies_v2": "**{}**", "zebra_puzzle": "<solution>{}</solution>", "cta": "{}",
        "tablejoin": "{}", "tablereformat": None,
    }  # fmt: skip
    for task, rows in get_benchmark("livebench").load_items(DATA_DIR).items():
        for row in rows[:5]:
            template = statements[task]
            if template is None:
                continue  # table answers need format conversion; covered by test_tablereformat
            truth = row["ground_truth"] * 5 if row["subtask"].split("_")[0] in ("amc", "smc", "updated") else row["ground_truth"]
            assert lb.score_answer(row, template.format(truth)) == 1.0, (task, row["question_id"])


def test_olympiad_partial_credit():
    assert lb.score_olympiad("1,6,7,2", "reasoning\nAnswer: 1, 6, 7, 2") == 1.0
    assert lb.score_olympiad("1,6,7,2", "Answer: 1, 6, 2, 7") == pytest.approx(0.5)
    assert lb.score_olympiad("1,2", "no numbers here") == 0.0


def test_web_of_lies():
    assert lb.score_web_of_lies("no, yes, yes", "Thinking...\n**no, yes, yes**") == 1.0
    assert lb.score_web_of_lies("no, yes, yes", "**No**, **yes**, **yes**") == 1.0
    assert lb.score_web_of_lies("no, yes, yes", "**yes, yes, yes**") == 0.0
    assert lb.score_web_of_lies("no, yes, yes", "final: no, yes, yes") == 1.0


def test_spatial():
    assert lb.score_spatial("3", "There are **three** pieces") == 1.0
    assert lb.score_spatial("3", "**3**") == 1.0
    assert lb.score_spatial("triangle", "**equilateral triangle**") == 1.0
    assert lb.score_spatial("triangle", "**circle square triangle**") == 0.0
    assert lb.score_spatial("3", "**4**") == 0.0
    assert lb.score_spatial("3", "3 pieces, not bold") == 0.0


def test_zebra():
    truth = "1, filmmaking, police-officer, journalist"
    assert lb.score_zebra(truth, "<solution>1, filmmaking, police officer, journalist</solution>", "2024-11-25") == 1.0
    assert lb.score_zebra(truth, "<solution>2, filmmaking, police officer, chef</solution>", "2024-11-25") == pytest.approx(0.25)
    assert lb.score_zebra(truth, "no answer", "2024-11-25") == 0.0
    assert lb.score_zebra("three", "the answer is ***3***", "2024-06-24") == 1.0
    assert lb.score_zebra("three", "the answer is ***4***", "2024-06-24") == 0.0


def test_cta():
    assert lb.score_cta("photo_link", "Photo_Link") == 1.0
    assert lb.score_cta("id", "\\boxed{\\text{id}}") == 1.0
    assert lb.score_cta("id", "year") == 0.0


def test_tablejoin():
    truth = '{"a": "x", "b": "y"}'
    assert lb.score_tablejoin(truth, "```python\n{'a': 'x', 'b': 'y'}\n```") == 1.0
    assert lb.score_tablejoin(truth, "{'a': 'x'}") == pytest.approx(0.67)
    assert lb.score_tablejoin(truth, "{'a': 'z', 'b': 'y'}") == pytest.approx(0.5)
    assert lb.score_tablejoin(truth, "I cannot") == 0.0


def test_tablereformat():
    # The ground truth is written in the requested output format.
    to_json = "Please convert the Input Table from CSV format to JSON format. Please respond only with the table.\n"
    truth_json = '{"0":{"name":"a","value":1.5},"1":{"name":"b","value":2.0}}'
    assert lb.score_tablereformat(to_json, truth_json, "```json\n" + truth_json + "\n```") == 1.0
    assert lb.score_tablereformat(to_json, truth_json, truth_json.replace("2.0", "3.0")) == 0.0
    to_csv = "Please convert the Input Table from JSON format to CSV format. Please respond only with the table.\n"
    truth_csv = "name,value\na,1.5\nb,2.0"
    assert lb.score_tablereformat(to_csv, truth_csv, "Here is the table in CSV format:\nname,value\na,1.5\nb,2.0") == 1.0
    assert lb.score_tablereformat(to_csv, truth_csv, "name,value\na,1.5\nb,3.0") == 0.0


def test_score_answer_dispatch_and_think_stripping():
    doc = {"task": "spatial", "category": "reasoning", "ground_truth": "3", "prompt": "q", "livebench_release_date": "2024-07-26"}
    assert lb.score_answer(doc, "<think>**4**</think> **3**") == 1.0
    with pytest.raises(ValueError, match="not scored"):
        lb.score_answer({**doc, "category": "instruction_following", "task": "paraphrase"}, "x")


# ---------------------------------------------------------------- real lm-eval runs (offline, tiny)


@pytest.fixture(scope="module")
def lm_eval_run(tmp_path_factory):
    """One lm-eval process over gsm8k (2 items), one ceval subject (3) and one mmlu_redux subject (3)."""
    pytest.importorskip("lm_eval")
    if not DATA_DIR:
        pytest.skip("benchmark data dir not available")
    from statrepro.models import materialize_embedded_model

    work = tmp_path_factory.mktemp("lm_eval")
    small = BenchmarkOptions(max_gen_toks=16)
    tasks = [
        *get_benchmark("gsm8k").write_lm_eval_tasks(work / "tasks", data_dir=DATA_DIR, limit=2, num_fewshot=1, options=small).task_names,
        *get_benchmark("ceval").write_lm_eval_tasks(work / "tasks", data_dir=DATA_DIR, limit=3, num_fewshot=1, subsets=["law"]).task_names,
        *get_benchmark("mmlu_redux").write_lm_eval_tasks(work / "tasks", data_dir=DATA_DIR, limit=3, subsets=["anatomy"]).task_names,
    ]
    model = materialize_embedded_model()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = [
        sys.executable, "-m", "lm_eval", "--model", "hf",
        "--model_args", f"pretrained={model},dtype=float32",
        "--tasks", ",".join(tasks), "--include_path", str(work / "tasks"),
        "--device", "cpu", "--batch_size", "1", "--log_samples", "--output_path", str(work / "out"),
    ]  # fmt: skip
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return work / "out"


def _samples(out_dir: Path, task: str) -> list[dict]:
    files = list(out_dir.rglob(f"samples_{task}_*.jsonl"))
    assert len(files) == 1, files
    return [json.loads(line) for line in files[0].read_text(encoding="utf-8").splitlines()]


@pytest.mark.model
def test_lm_eval_gsm8k_runs_offline(lm_eval_run):
    samples = _samples(lm_eval_run, "statrepro_gsm8k")
    assert sorted({s["doc_id"] for s in samples}) == [0, 1]
    assert {s["filter"] for s in samples} == {"strict-match", "flexible-extract"}
    assert all(isinstance(s["resps"][0][0], str) for s in samples)


@pytest.mark.model
def test_lm_eval_ceval_runs_offline(lm_eval_run):
    samples = _samples(lm_eval_run, "statrepro_ceval_law")
    assert [s["doc_id"] for s in samples] == [0, 1, 2]
    assert all(len(s["resps"]) == 4 and s["acc"] in (0.0, 1.0) for s in samples)


@pytest.mark.model
def test_lm_eval_mmlu_redux_runs_offline(lm_eval_run):
    samples = _samples(lm_eval_run, "statrepro_mmlu_redux_anatomy")
    assert [s["doc_id"] for s in samples] == [0, 1, 2]
    assert all(s["doc"]["error_type"] == "ok" for s in samples)


@needs_data
@pytest.mark.model
@pytest.mark.parametrize("name,subsets", [("gsm8k", None), ("ceval", ["law"]), ("mmlu_redux", ["anatomy"]), ("livebench", ["spatial"])])
def test_evalscope_adapters_load_prepared_items(tmp_path, name, subsets):
    """evalscope's own adapters read the prepared folders offline and see the same first items."""
    pytest.importorskip("evalscope")
    from evalscope.api.registry import get_benchmark as evalscope_benchmark
    from evalscope.config import TaskConfig

    prepared = get_benchmark(name).evalscope_dataset_args(tmp_path, data_dir=DATA_DIR, limit=2, subsets=subsets)
    config = TaskConfig(
        model="unused", eval_type="openai_api", api_url="http://127.0.0.1:9/v1",
        datasets=prepared.datasets, dataset_args=prepared.dataset_args,
    )  # fmt: skip
    loaded = evalscope_benchmark(prepared.datasets[0], config=config).load_dataset()
    assert {subset: len(list(samples)) for subset, samples in loaded.items()} == prepared.item_counts


@needs_data
def test_multiple_choice_ppl_mode_scores_option_texts(tmp_path):
    spec = get_benchmark("mmlu_redux")
    assert spec.modes == ("ppl", "clp", "gen") and get_benchmark("gsm8k").modes == ("gen",)
    tasks = spec.write_lm_eval_tasks(tmp_path, data_dir=DATA_DIR, limit=2, subsets=["virology"], mode="ppl")
    assert tasks.task_names == ["statrepro_mmlu_redux_virology_ppl"] and tasks.groups == ["statrepro_mmlu_redux_ppl"]
    config = load_task(tmp_path / "mmlu_redux" / "statrepro_mmlu_redux_virology_ppl.yaml")
    assert config["output_type"] == "multiple_choice" and config["doc_to_choice"] == "{{choices}}"
    assert "A." not in config["doc_to_text"] and [m["metric"] for m in config["metric_list"]] == ["acc_norm"]
    ceval = get_benchmark("ceval").write_lm_eval_tasks(tmp_path, data_dir=DATA_DIR, limit=2, subsets=["law"], mode="ppl")
    assert load_task(tmp_path / "ceval" / f"{ceval.task_names[0]}.yaml")["doc_to_choice"] == "{{[A, B, C, D]}}"
