"""Harness adapters: lm-eval output trees and evalscope work dirs -> records, and every bad input -> exit 2.

Real lm-eval output comes from running lm-eval on the embedded model (marked ``model``); evalscope review
files are written with evalscope's own ReviewResult/SampleScore/TaskConfig classes; edge cases are small
hand-made trees in lm-eval's layout.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from harness_output import (
    DATES,
    MC_LLS,
    evalscope_review,
    choice_samples,
    general_qa_review,
    generation_samples,
    repeated_reviews,
    standard_tasks,
    write_evalscope_run,
    write_lm_eval_run,
)
from statrepro.analysis import AnalysisOptions, analyze
from statrepro.stats.rules import VerdictRules
from statrepro.cli import app
from statrepro.errors import InputError
from statrepro.harness import load_side
from statrepro.harness.files import benchmark_for_task, iter_jsonl

FAST = AnalysisOptions(rules=VerdictRules(n_resamples=200))


# --------------------------------------------------------------------------- hand-made lm-eval trees (tests/support)


@pytest.fixture
def lm_tree(tmp_path: Path) -> Path:
    out = tmp_path / "lm"
    write_lm_eval_run(out, DATES[0], 1, standard_tasks())
    write_lm_eval_run(out, DATES[1], 2, standard_tasks(flip=1))
    return out


# --------------------------------------------------------------------------- lm-eval parsing


@pytest.mark.parametrize(
    ("task", "benchmark"),
    [
        ("gsm8k", "gsm8k"),
        ("gsm8k_cot_llama", "gsm8k"),
        ("ceval-valid_law", "ceval"),
        ("mmlu_redux_anatomy_generative", "mmlu_redux"),
        ("mmlu_redux_generative", "mmlu_redux"),
        ("livebench_math", "livebench"),
        ("statrepro_gsm8k", "gsm8k"),
        ("statrepro_ceval_law", "ceval"),
        ("statrepro_mmlu_redux_anatomy_gen", "mmlu_redux"),
        ("statrepro_livebench_web_of_lies_v2", "livebench"),
        ("arc_easy", "arc_easy"),
        ("statrepro_other", "statrepro_other"),
    ],
)
def test_task_names_group_into_benchmarks(task: str, benchmark: str) -> None:
    assert benchmark_for_task(task) == benchmark


def test_lm_eval_tree_grouping_default_metrics_and_seeds(lm_tree: Path) -> None:
    records = load_side(lm_tree)
    assert set(records["benchmark"]) == {"gsm8k", "ceval", "mmlu_redux", "arc_easy"}
    by_bench = records.groupby("benchmark")
    assert set(by_bench.get_group("ceval")["subset"]) == {"ceval-valid_law"}
    assert set(by_bench.get_group("mmlu_redux")["item_key"]) == {f"mmlu_redux_anatomy_generative/{i}" for i in range(4)}
    metrics = {name: set(group["metric"]) for name, group in by_bench}
    assert metrics == {
        "gsm8k": {"exact_match,flexible-extract"},
        "ceval": {"acc,none"},
        "mmlu_redux": {"exact_match,default"},
        "arc_easy": {"acc,none"},
    }
    # Each invocation is one run, named by its seed.
    assert set(records["run_id"]) == {"seed=1", "seed=2"}
    assert set(records["seed"]) == {1, 2}
    gsm = by_bench.get_group("gsm8k").set_index(["run_id", "item_key"])
    assert gsm.loc[("seed=1", "gsm8k/1"), "score"] == 0.0
    assert gsm.loc[("seed=2", "gsm8k/1"), "score"] == 1.0  # the flipped item of run 2
    assert gsm.loc[("seed=1", "gsm8k/0"), "prediction"] == "flexible-extract:0"
    # Multiple choice: the prediction is the argmax of the string log-likelihoods, consistent with acc.
    ceval = by_bench.get_group("ceval")
    assert list(ceval[ceval["run_id"] == "seed=1"]["prediction"]) == ["0", "1", "2", "1"]
    assert all((row.prediction == row.target) == (row.score == 1.0) for row in ceval.itertuples())
    assert records["model"].unique().tolist() == ["org/model"]
    assert records["doc_hash"].notna().all() and records["prompt_hash"].notna().all()


def test_metric_overrides(lm_tree: Path) -> None:
    records = load_side(lm_tree, metric_overrides={"gsm8k": "exact_match,strict-match", "ceval": "acc_norm"})
    gsm = records[records["benchmark"] == "gsm8k"]
    assert set(gsm["metric"]) == {"exact_match,strict-match"}
    assert gsm[gsm["run_id"] == "seed=1"]["score"].tolist() == [0.0, 0.0, 1.0, 0.0]
    ceval = records[(records["benchmark"] == "ceval") & (records["run_id"] == "seed=1")]
    assert set(ceval["metric"]) == {"acc_norm,none"}
    # acc_norm divides by the choice length, so the long choice C now wins item 0 as well.
    assert ceval["prediction"].tolist() == ["2", "1", "2", "1"]
    assert all((row.prediction == row.target) == (row.score == 1.0) for row in ceval.itertuples())


def test_acc_norm_prediction_uses_choice_length(tmp_path: Path) -> None:
    # C ("CCCCCCCC", 9 chars with the space) has the lowest per-character loss once normalised.
    lines = choice_samples("ceval-valid_art", [[-2.0, -2.1, -4.0, -2.2], [-1.0, -3.0, -12.0, -3.0]], [2, 0])
    write_lm_eval_run(tmp_path, DATES[0], 0, {"ceval-valid_art": lines})
    acc = load_side(tmp_path)
    norm = load_side(tmp_path, metric_overrides={"ceval": "acc_norm"})
    assert acc["prediction"].tolist() == ["0", "0"]
    assert norm["prediction"].tolist() == ["2", "0"]
    assert norm["score"].tolist() == [1.0, 1.0]


# Prompts and outputs as lm-eval 0.4 logs them (from real runs: SmolLM2 over llama.cpp, gsm8k 8-shot and
# mmlu_redux ppl), with a chat-completions prompt (a one-element list holding the messages as JSON).
FEWSHOT = "Question: Natalia sold clips to 48 of her friends.\nAnswer: Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 72\n\n" * 8
GENERATION = " She makes 16 x 4 = <<16*4=64>>64 dollars every day.\n#### 64\n\n"
CHAT = [{"role": "system", "content": "Solve it."}, {"role": "user", "content": "Question: 2+2?\nAnswer:"}]


def _text_samples() -> dict[str, list[dict]]:
    gsm = generation_samples("gsm8k", {"flexible-extract": [0.0, 1.0]})
    gsm[0]["arguments"]["gen_args_0"]["arg_0"] = FEWSHOT + "Question: Janet’s ducks lay 16 eggs per day.\nAnswer:"
    gsm[0]["resps"], gsm[0]["filtered_resps"] = [[GENERATION]], ["64"]
    gsm[1]["arguments"]["gen_args_0"]["arg_0"] = [json.dumps(CHAT)]
    gsm[1]["resps"], gsm[1]["filtered_resps"] = [["0018"]], ["18"]
    # Raw argmax is " D" (index 3); per character (acc_norm) the long " CCCCCCCC" wins.
    mc = choice_samples("ceval-valid_art", [[-3.0, -3.1, -4.0, -2.2]], [2])
    single = choice_samples("ceval-valid_law", [[-3.0, -3.1, -4.0, -2.2]], [0])[0]
    single["arguments"] = {"gen_args_0": single["arguments"]["gen_args_0"]}
    single["filtered_resps"] = single["filtered_resps"][:1]
    return {"gsm8k": gsm, "ceval-valid_art": mc, "ceval-valid_law": [single]}


def test_lm_eval_prompt_and_output_texts_are_read_in_full(tmp_path: Path) -> None:
    write_lm_eval_run(tmp_path, DATES[0], 0, _text_samples())
    records = load_side(tmp_path).set_index("item_key")
    # Generation: the raw generation before the filters (resps), beside the filtered answer.
    assert records.loc["gsm8k/0", "output"] == GENERATION and records.loc["gsm8k/0", "prediction"] == "64"
    assert records.loc["gsm8k/0", "prompt"] == FEWSHOT + "Question: Janet’s ducks lay 16 eggs per day.\nAnswer:"
    assert records.loc["gsm8k/1", "prompt"] == "[system]\nSolve it.\n\n[user]\nQuestion: 2+2?\nAnswer:"
    assert records.loc["gsm8k/1", "output"] == "0018"
    # Multiple choice: the predicted choice's continuation, under the metric's own argmax.
    assert records.loc["ceval-valid_art/0", ["prediction", "output"]].tolist() == ["3", " D"]
    assert records.loc["ceval-valid_art/0", "prompt"] == "ceval-valid_art q0"
    norm = load_side(tmp_path, metric_overrides={"ceval": "acc_norm"}).set_index("item_key")
    assert norm.loc["ceval-valid_art/0", ["prediction", "output"]].tolist() == ["2", " CCCCCCCC"]
    # One continuation scored: nothing was chosen; the prompt is the scored text, context and continuation.
    assert pd.isna(records.loc["ceval-valid_law/0", "output"]) and records.loc["ceval-valid_law/0", "prompt"] == "ceval-valid_law q0 A"


def test_metric_override_that_is_absent_lists_what_is_present(lm_tree: Path) -> None:
    with pytest.raises(InputError) as error:
        load_side(lm_tree, metric_overrides={"gsm8k": "f1,strict-match"})
    message = str(error.value)
    assert "exact_match,strict-match" in message and "exact_match,flexible-extract" in message
    assert "results_" in message


def test_same_seed_repeats_stay_distinct_and_split_invocations_merge(tmp_path: Path) -> None:
    repeats = tmp_path / "repeats"
    write_lm_eval_run(repeats, DATES[0], 0, standard_tasks())
    write_lm_eval_run(repeats, DATES[1], 0, standard_tasks())
    run_ids = set(load_side(repeats)["run_id"])
    assert run_ids == {f"seed=0@{DATES[0]}", f"seed=0@{DATES[1]}"}

    split = tmp_path / "split"
    tasks = standard_tasks()
    write_lm_eval_run(split, DATES[0], 3, {"gsm8k": tasks["gsm8k"]})
    write_lm_eval_run(split, DATES[1], 3, {"ceval-valid_law": tasks["ceval-valid_law"]})
    assert set(load_side(split)["run_id"]) == {"seed=3"}


def test_single_results_json_path_reads_that_run_only(lm_tree: Path) -> None:
    results = next((lm_tree / "org__model").glob(f"results_{DATES[1]}.json"))
    records = load_side(results)
    assert set(records["run_id"]) == {"seed=2"}
    assert len(records[records["benchmark"] == "gsm8k"]) == 4


def test_output_path_json_variant(tmp_path: Path) -> None:
    # lm_eval --output_path run.json writes run_<date>.json with the samples beside it.
    written = write_lm_eval_run(tmp_path, DATES[0], 5, {"gsm8k": standard_tasks()["gsm8k"]})
    written.rename(written.with_name(f"run_{DATES[0]}.json"))
    records = load_side(tmp_path)
    assert set(records["run_id"]) == {"seed=5"} and len(records) == 4


def test_jsonl_is_streamed_line_by_line(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": \n')
    lines = iter_jsonl(path)
    assert next(lines) == (1, {"a": 1})
    assert next(lines) == (2, {"a": 2})
    with pytest.raises(InputError, match=r"big.jsonl:3"):
        next(lines)


def test_lm_eval_end_to_end_pairing(lm_tree: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    write_lm_eval_run(other, DATES[2], 7, standard_tasks(flip=3), model="org/model")
    analysis = analyze(load_side(lm_tree), load_side(other), FAST)
    gsm = analysis.pairing.benchmarks["gsm8k"]
    assert gsm.item_keys == [f"gsm8k/{i}" for i in range(4)]
    assert gsm.scores_a.shape == (4, 2) and gsm.scores_b.shape == (4, 1)
    assert gsm.scores_b[:, 0].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert set(analysis.to_json().benchmarks) == {"gsm8k", "ceval", "mmlu_redux", "arc_easy"}


# --------------------------------------------------------------------------- evalscope


def _livebench_reviews(row: dict, prediction: str, docs: int = 3, repeats: int = 2) -> list[dict]:
    return [
        general_qa_review(doc * repeats + g, doc, g, question=f"question {doc}", answer=json.dumps(row), prediction=prediction)
        for doc in range(docs)
        for g in range(repeats)
    ]


@pytest.fixture(scope="session")
def evalscope_tree(tmp_path_factory) -> Path:
    pytest.importorskip("evalscope")
    root = tmp_path_factory.mktemp("evalscope") / "outputs"
    for stamp, seed in (("20260101_100000", 1), ("20260101_110000", 2)):
        write_evalscope_run(
            root,
            stamp,
            {
                "gsm8k_main": repeated_reviews(5, 2, lambda d, g: float((d + g) % 2), extra={"f1": 0.5}),
                "mmlu_redux_anatomy": repeated_reviews(4, 2, lambda d, g: float(d % 2)),
                # statrepro's general_qa copies of LiveBench: the answer is the scorer's row, rescored on read.
                "general_qa_statrepro_livebench_web_of_lies_v2": _livebench_reviews(
                    {"task": "web_of_lies_v2", "category": "reasoning", "ground_truth": "yes, no, yes"}, "**yes, no, yes**"
                ),
                "general_qa_math_comp": _livebench_reviews(
                    {"task": "math_comp", "category": "math", "subtask": "aime", "ground_truth": "123"}, "so 456"
                ),
            },
            seed=seed,
            repeats=2,
            dataset_args={"general_qa": {"dataset_id": "/prepared/evalscope/livebench"}},
        )
    return root


def test_evalscope_work_dirs_repeats_and_benchmarks(evalscope_tree: Path) -> None:
    records = load_side(evalscope_tree)
    assert set(records["benchmark"]) == {"gsm8k", "mmlu_redux", "livebench"}
    gsm = records[records["benchmark"] == "gsm8k"]
    assert set(gsm["subset"]) == {"main"}
    assert set(gsm["item_key"]) == {f"main/{d}" for d in range(5)}
    # 2 work dirs x 2 generations = 4 runs, the seed from each work dir's task_config.yaml.
    assert set(gsm["run_id"]) == {
        "seed=1@20260101_100000/gen=0", "seed=1@20260101_100000/gen=1",
        "seed=2@20260101_110000/gen=0", "seed=2@20260101_110000/gen=1",
    }
    assert set(gsm["metric"]) == {"acc"}
    assert gsm.set_index(["run_id", "item_key"]).loc[("seed=1@20260101_100000/gen=1", "main/2"), "score"] == 1.0
    livebench = records[records["benchmark"] == "livebench"]
    assert set(livebench["subset"]) == {"statrepro_livebench_web_of_lies_v2", "math_comp"}
    by_subset = livebench.groupby("subset")["score"].agg(set)
    assert by_subset.to_dict() == {"statrepro_livebench_web_of_lies_v2": {1.0}, "math_comp": {0.0}}
    assert set(livebench["metric"]) == {"score,none"} and set(livebench["target"]) == {"yes, no, yes", "123"}
    assert set(records["model"]) == {"smol"}
    assert records["prompt_hash"].notna().all() and set(gsm["target"]) == {str(d) for d in range(5)}


def test_evalscope_prompt_and_output_texts_are_read_in_full(tmp_path: Path) -> None:
    """The prompt is the review's messages without the final answer (content parts joined); the output is the raw
    completion (score.prediction), else that final answer."""
    pytest.importorskip("evalscope")
    from evalscope.api.messages import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser, ContentText

    reviews = [evalscope_review(doc, doc, 0, {"acc": 1.0}) for doc in range(2)]
    messages = [ChatMessageSystem(content="Be brief."), ChatMessageUser(content=[ContentText(text="Question: "), ContentText(text="2+2?")]),
                ChatMessageAssistant(content="The answer is 4.")]
    reviews[0]["messages"] = [message.model_dump(mode="json") for message in messages]
    reviews[0]["sample_score"]["score"]["prediction"] = "The answer is\n**4**."
    reviews[1]["sample_score"]["score"]["prediction"] = None
    write_evalscope_run(tmp_path, "20260101_100000", {"gsm8k_main": reviews})
    records = load_side(tmp_path).set_index("item_key")
    assert records.loc["main/0", "prompt"] == "[system]\nBe brief.\n\n[user]\nQuestion: 2+2?"
    assert records.loc["main/0", "output"] == "The answer is\n**4**." and records.loc["main/0", "prediction"] == "0"
    assert records.loc["main/1", ["prompt", "output"]].tolist() == ["[user]\nquestion 1", "so 1"]


def test_evalscope_metric_override_and_absent_metric(evalscope_tree: Path) -> None:
    records = load_side(evalscope_tree, metric_overrides={"gsm8k": "f1"})
    assert set(records[records["benchmark"] == "gsm8k"]["score"]) == {0.5}
    with pytest.raises(InputError, match=r"gsm8k_main\.jsonl:1.*present: acc, f1"):
        load_side(evalscope_tree, metric_overrides={"gsm8k": "rouge"})


def test_evalscope_unavailable_scores_are_missing_not_zero(tmp_path: Path) -> None:
    pytest.importorskip("evalscope")
    rows = repeated_reviews(3, 1, lambda d, g: 1.0)
    rows.append(evalscope_review(3, 3, 0, {}, main="acc", status="parse_error"))
    write_evalscope_run(tmp_path, "20260101_100000", {"gsm8k_main": rows})
    records = load_side(tmp_path)
    assert sorted(records["item_key"]) == ["main/0", "main/1", "main/2"]


def test_evalscope_end_to_end_through_the_cli(evalscope_tree: Path, tmp_path: Path) -> None:
    verdict = tmp_path / "verdict.json"
    result = CliRunner().invoke(
        app, ["analyze", str(evalscope_tree), str(evalscope_tree / "20260101_100000"), "--resamples", "200", "--json", str(verdict)]
    )
    assert result.exit_code in (0, 3, 4), result.output
    payload = json.loads(verdict.read_text())
    assert payload["benchmarks"]["gsm8k"]["n_runs_a"] == 4
    assert payload["benchmarks"]["gsm8k"]["n_runs_b"] == 2
    assert payload["benchmarks"]["gsm8k"]["n_items"] == 5


# --------------------------------------------------------------------------- bad input -> one line, exit 2


def _lm_case(tmp_path: Path) -> tuple[Path, Path]:
    write_lm_eval_run(tmp_path / "bad", DATES[0], 1, {"gsm8k": standard_tasks()["gsm8k"]})
    folder = tmp_path / "bad" / "org__model"
    return folder / f"samples_gsm8k_{DATES[0]}.jsonl", folder / f"results_{DATES[0]}.json"


def _rewrite_line(path: Path, number: int, edit) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[number - 1] = edit(lines[number - 1])
    path.write_text("".join(lines))


def _set_score(value):
    def edit(line: str) -> str:
        sample = json.loads(line)
        sample["exact_match"] = value
        return json.dumps(sample) + "\n"

    return edit


def bad_truncated(tmp_path):
    samples, _ = _lm_case(tmp_path)
    data = samples.read_bytes()
    samples.write_bytes(data[: len(data) - 40])
    return samples, f"{samples.name}:8"


def bad_invalid_line(tmp_path):
    samples, _ = _lm_case(tmp_path)
    _rewrite_line(samples, 3, lambda line: line[:20] + "}}garbage\n")
    return samples, f"{samples.name}:3"


def bad_empty_samples(tmp_path):
    samples, _ = _lm_case(tmp_path)
    samples.write_text("")
    return samples, samples.name


def bad_results_without_samples(tmp_path):
    samples, results = _lm_case(tmp_path)
    samples.unlink()
    return results, results.name


def bad_samples_without_results(tmp_path):
    samples, results = _lm_case(tmp_path)
    results.unlink()
    return samples, samples.name


def bad_nan_score(tmp_path):
    samples, _ = _lm_case(tmp_path)
    _rewrite_line(samples, 6, _set_score(math.nan))  # json.dumps writes a bare NaN, as Python loggers do
    return samples, f"{samples.name}:6"


def bad_inf_score(tmp_path):
    samples, _ = _lm_case(tmp_path)
    _rewrite_line(samples, 5, _set_score(math.inf))
    return samples, f"{samples.name}:5"


def bad_string_score(tmp_path):
    samples, _ = _lm_case(tmp_path)
    _rewrite_line(samples, 7, _set_score("n/a"))
    return samples, f"{samples.name}:7"


def bad_duplicate_doc(tmp_path):
    samples, _ = _lm_case(tmp_path)
    lines = samples.read_text().splitlines(keepends=True)
    samples.write_text("".join(lines + [lines[5]]))
    return samples, f"{samples.name}:9"


def bad_non_utf8(tmp_path):
    samples, _ = _lm_case(tmp_path)
    data = samples.read_bytes().split(b"\n")
    data[1] = data[1].replace(b"gsm8k q1", b"gsm8k q\xff1")  # a Latin-1 byte inside line 2
    samples.write_bytes(b"\n".join(data))
    return samples, f"{samples.name}:2"


def bad_bad_logliklihood(tmp_path):
    folder = tmp_path / "bad"
    lines = choice_samples("ceval-valid_law", MC_LLS, [0, 1, 1, 0])
    lines[1]["filtered_resps"][2][0] = "not-a-number"
    write_lm_eval_run(folder, DATES[0], 1, {"ceval-valid_law": lines})
    samples = folder / "org__model" / f"samples_ceval-valid_law_{DATES[0]}.jsonl"
    return samples, f"{samples.name}:2"


def bad_symlink_loop(tmp_path):
    _lm_case(tmp_path)
    loop = tmp_path / "bad" / "org__model" / "again"
    loop.symlink_to(tmp_path / "bad", target_is_directory=True)
    return loop, "again"


def bad_results_json(tmp_path):
    _, results = _lm_case(tmp_path)
    results.write_text('{"results": {"gsm8k": ')
    return results, results.name


def bad_evalscope_without_reviews(tmp_path):
    pytest.importorskip("evalscope")
    work_dir = write_evalscope_run(tmp_path / "bad", "20260101_100000", {"gsm8k_main": repeated_reviews(2, 1, lambda d, g: 1.0)})
    shutil.rmtree(work_dir / "reviews")
    (work_dir / "predictions" / "smol").mkdir(parents=True)
    (work_dir / "predictions" / "smol" / "gsm8k_main.jsonl").write_text('{"index": 0}\n')
    return work_dir, "20260101_100000"


def bad_evalscope_nan(tmp_path):
    pytest.importorskip("evalscope")
    rows = repeated_reviews(3, 1, lambda d, g: 1.0)
    rows[2]["sample_score"]["score"]["value"]["acc"] = float("nan")
    work_dir = write_evalscope_run(tmp_path / "bad", "20260101_100000", {"gsm8k_main": rows})
    return work_dir, "gsm8k_main.jsonl:3"


def bad_evalscope_empty(tmp_path):
    pytest.importorskip("evalscope")
    work_dir = write_evalscope_run(tmp_path / "bad", "20260101_100000", {"gsm8k_main": repeated_reviews(2, 1, lambda d, g: 1.0)})
    (work_dir / "reviews" / "smol" / "gsm8k_main.jsonl").write_text("")
    return work_dir, "gsm8k_main.jsonl"


BAD_INPUTS = [
    bad_truncated, bad_invalid_line, bad_empty_samples, bad_results_without_samples, bad_samples_without_results,
    bad_nan_score, bad_inf_score, bad_string_score, bad_duplicate_doc, bad_non_utf8, bad_bad_logliklihood,
    bad_symlink_loop, bad_results_json, bad_evalscope_without_reviews, bad_evalscope_nan, bad_evalscope_empty,
]


@pytest.mark.parametrize("make_bad", BAD_INPUTS, ids=[f.__name__[4:] for f in BAD_INPUTS])
def test_bad_input_is_one_line_naming_the_file(make_bad, tmp_path: Path, lm_tree: Path) -> None:
    _, expected = make_bad(tmp_path)
    result = CliRunner().invoke(app, ["analyze", str(tmp_path / "bad"), str(lm_tree), "--resamples", "200"])
    message = result.output.strip()
    assert result.exit_code == 2, message
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith("error: ") and expected in message, message


def test_bad_single_file_is_also_located(tmp_path: Path, lm_tree: Path) -> None:
    samples, _ = _lm_case(tmp_path)
    result = CliRunner().invoke(app, ["analyze", str(samples), str(lm_tree)])
    assert result.exit_code == 2 and samples.name in result.output and "without its results" in result.output


# --------------------------------------------------------------------------- real lm-eval output


def _shortest(path: Path, count: int, text, scan: int = 200) -> list[dict]:
    """The ``count`` rows with the shortest text among the first ``scan`` rows, in file order."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            rows.append(json.loads(line))
            if len(rows) == scan:
                break
    keep = sorted(range(len(rows)), key=lambda i: len(text(rows[i])))[:count]
    return [rows[i] for i in sorted(keep)]


def _write_local_tasks(task_dir: Path, data_dir: Path) -> list[str]:
    """A 3-item gsm8k task (both filters) and a 3-item multiple-choice task, from the local data."""
    import yaml

    task_dir.mkdir(parents=True)
    # The shortest items keep the CPU forward passes cheap.
    gsm_rows = _shortest(data_dir / "gsm8k" / "test.jsonl", 3, lambda row: row["question"])
    (task_dir / "gsm.jsonl").write_text("".join(json.dumps(row) + "\n" for row in gsm_rows))
    mc_rows = _shortest(
        data_dir / "mmlu_redux" / "mmlu_redux_2.0_test.jsonl", 3, lambda row: row["question"] + "".join(row["choices"])
    )
    mc_rows = [{key: row[key] for key in ("question", "choices", "answer")} for row in mc_rows]
    (task_dir / "mc.jsonl").write_text("".join(json.dumps(row) + "\n" for row in mc_rows))
    gsm_task = {
        "task": "statrepro_gsm8k",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(task_dir / "gsm.jsonl")}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "Question: {{question}}\nAnswer:",
        "doc_to_target": "{{answer.split('####')[-1].strip()}}",
        "generation_kwargs": {"until": ["Question:", "\n\n"], "do_sample": False, "max_gen_toks": 8},
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
        "filter_list": [
            {"name": "strict-match", "filter": [{"function": "regex", "regex_pattern": "#### (\\-?[0-9\\.\\,]+)"}, {"function": "take_first"}]},
            {"name": "flexible-extract", "filter": [{"function": "regex", "group_select": -1, "regex_pattern": "(-?[$0-9.,]{2,})|(-?[0-9]+)"}, {"function": "take_first"}]},
        ],
    }
    mc_task = {
        "task": "statrepro_mmlu_redux_abstract_algebra",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(task_dir / "mc.jsonl")}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "{{question}}\nAnswer:",
        "doc_to_choice": "{{choices}}",
        "doc_to_target": "answer",
        "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}],
    }
    for task in (gsm_task, mc_task):
        (task_dir / f"{task['task']}.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    return [gsm_task["task"], mc_task["task"]]


@pytest.fixture(scope="session")
def real_lm_eval(tmp_path_factory) -> dict[str, Path]:
    """Two real lm-eval runs (seeds 1 and 2) of the embedded model in A; B holds a copy of the seed-1 run."""
    pytest.importorskip("lm_eval")
    data_dir = os.environ.get("STATREPRO_DATA_DIR")
    if not data_dir:
        pytest.skip("STATREPRO_DATA_DIR is not set")
    import torch

    # One intra-op thread: on a busy 2-core machine, OpenMP barriers make 2 threads ~10x slower than 1.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _real_lm_eval_runs(tmp_path_factory.mktemp("real_lm_eval"), Path(data_dir))
    finally:
        torch.set_num_threads(threads)


def _real_lm_eval_runs(root: Path, data_dir: Path) -> dict[str, Path]:
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from statrepro.models import materialize_embedded_model

    tasks = _write_local_tasks(root / "tasks", data_dir)
    model_dir = materialize_embedded_model()
    model = HFLM(pretrained=str(model_dir), dtype="float32", device="cpu", batch_size=1)
    # include_defaults=False: indexing lm-eval's thousands of built-in task YAMLs alone takes ~20 s.
    task_manager = TaskManager(include_path=str(root / "tasks"), include_defaults=False)
    out_a = root / "a"
    for seed in (1, 2):
        tracker = EvaluationTracker(output_path=str(out_a))
        results = simple_evaluate(
            model=model,
            model_args=f"pretrained={model_dir}",
            tasks=tasks,
            task_manager=task_manager,
            log_samples=True,
            evaluation_tracker=tracker,
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
        )
        samples = results.pop("samples")
        tracker.save_results_aggregated(results=results, samples=samples)
        for task in results["configs"]:
            tracker.save_results_samples(task_name=task, samples=samples[task])
    model_folder = next(out_a.iterdir())
    first = sorted(model_folder.glob("results_*.json"))[0]
    date = first.stem[len("results_"):]
    out_b = root / "b" / model_folder.name
    out_b.mkdir(parents=True)
    for path in model_folder.glob(f"*{date}*"):
        shutil.copy(path, out_b / path.name)
    return {"a": out_a, "b": root / "b"}


@pytest.mark.model
def test_real_lm_eval_output_is_read(real_lm_eval: dict[str, Path]) -> None:
    records = load_side(real_lm_eval["a"])
    assert set(records["benchmark"]) == {"gsm8k", "mmlu_redux"}
    assert set(records["run_id"]) == {"seed=1", "seed=2"}
    gsm = records[records["benchmark"] == "gsm8k"]
    assert set(gsm["metric"]) == {"exact_match,flexible-extract"}
    assert sorted(set(gsm["item_key"])) == [f"statrepro_gsm8k/{i}" for i in range(3)]
    assert gsm["target"].str.fullmatch(r"-?[0-9.,]+").all()
    mc = records[records["benchmark"] == "mmlu_redux"]
    assert set(mc["metric"]) == {"acc,none"}
    # Our argmax over lm-eval's string log-likelihoods agrees with lm-eval's own acc on every item.
    assert all((row.prediction == row.target) == (row.score == 1.0) for row in mc.itertuples())
    assert records["prompt_hash"].str.len().eq(64).all() and records["doc_hash"].str.len().eq(64).all()
    assert records["model"].nunique() == 1
    # Texts: the whole prompt (the question inside it), the raw generation that the filtered answer comes from,
    # and for multiple choice the predicted choice's continuation.
    assert records["prompt"].str.endswith("\nAnswer:").all()  # the tasks' doc_to_text, the question before it
    assert all(row.prediction == "[invalid]" or row.prediction in row.output for row in gsm.itertuples())
    assert all(row.output.startswith(" ") and row.output.strip() for row in mc.itertuples())  # a " <choice>" continuation
    strict = load_side(real_lm_eval["a"], metric_overrides={"gsm8k": "exact_match,strict-match"})
    assert set(strict[strict["benchmark"] == "gsm8k"]["metric"]) == {"exact_match,strict-match"}


@pytest.mark.model
def test_real_lm_eval_end_to_end_through_the_cli(real_lm_eval: dict[str, Path], tmp_path: Path) -> None:
    verdict = tmp_path / "verdict.json"
    result = CliRunner().invoke(
        app, ["analyze", str(real_lm_eval["a"]), str(real_lm_eval["b"]), "--resamples", "200", "--json", str(verdict)]
    )
    assert result.exit_code in (0, 3, 4), result.output
    benchmarks = json.loads(verdict.read_text())["benchmarks"]
    assert set(benchmarks) == {"gsm8k", "mmlu_redux"}
    assert benchmarks["mmlu_redux"]["n_items"] == 3
    assert (benchmarks["gsm8k"]["n_runs_a"], benchmarks["gsm8k"]["n_runs_b"]) == (2, 1)
    # B is a copy of A's seed-1 run, and greedy fp32 decoding repeats bitwise: nothing flips.
    assert benchmarks["gsm8k"]["flip_rate"] == 0.0 and benchmarks["mmlu_redux"]["flip_rate"] == 0.0


def test_schema_doc_lists_every_column_and_default_metric() -> None:
    from statrepro.benchmarks import BENCHMARKS
    from statrepro.harness.records import RECORD_COLUMNS

    text = (Path(__file__).resolve().parents[2] / "docs" / "schema.md").read_text(encoding="utf-8")
    missing = [name for name in RECORD_COLUMNS if f"| `{name}` |" not in text]
    assert not missing, f"docs/schema.md does not describe {missing}"
    for benchmark in BENCHMARKS.values():
        assert f"`{benchmark.lm_eval_metrics[0]}`" in text, (benchmark.name, benchmark.lm_eval_metrics[0])
