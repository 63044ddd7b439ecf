"""lighteval output dirs -> records. The outputs are synthetic but format-exact: lighteval 0.13's
EvaluationTracker.save layout and Detail/Doc/ModelResponse columns, written with `datasets` as lighteval does
(tests/support/harness_output.py); lighteval itself is not installed because its pins (nltk, latex2sympy2)
clash with this environment's."""

from __future__ import annotations

from pathlib import Path

import pytest
from adapter_contract import check_adapter
from harness_output import DATES, lighteval_detail, standard_tasks, write_lighteval_run, write_lm_eval_run

from statrepro.errors import InputError
from statrepro.harness import get_harness, load_side


def _run(out: Path, date: str = DATES[0], **options) -> Path:
    tasks = {"lighteval|gsm8k|5": [lighteval_detail(i, float(i % 2), task="lighteval|gsm8k|5") for i in range(4)],
             "arc_easy_custom|0": [lighteval_detail(i, 1.0, task="arc_easy_custom|0", metric="acc") for i in range(3)]}
    return write_lighteval_run(out, date, tasks, **options)


def test_lighteval_output_passes_the_contract(tmp_path):
    output = _run(tmp_path / "out")
    records = check_adapter(get_harness("lighteval"), output=output, scratch=tmp_path / "scratch")
    gsm8k = records[records["subset"] == "gsm8k"].set_index("item_key")
    assert set(records["benchmark"]) == {"gsm8k", "arc_easy_custom"}
    assert list(gsm8k["score"]) == [0.0, 1.0, 0.0, 1.0] and set(gsm8k["metric"]) == {"extractive_match"}
    assert gsm8k.loc["gsm8k/1", "prediction"] == "1" and gsm8k.loc["gsm8k/1", "target"] == "1"
    assert set(records["run_id"]) == {DATES[0]} and set(records["model"]) == {"org/model"}
    assert get_harness("lighteval").sent_prompts(output)["gsm8k/2"].text == "lighteval|gsm8k|5 q2"


def test_prompt_and_output_texts_are_read_in_full(tmp_path):
    """The raw generation (model_response.text[0], before post-processing) and model_response.input: a prompt
    string, or chat messages rendered."""
    chat = [lighteval_detail(0, 1.0, task="chat|0")]
    chat[0]["model_response"]["input"] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
    out = write_lighteval_run(tmp_path, DATES[0], {"lighteval|gsm8k|5": [lighteval_detail(3, 1.0, task="lighteval|gsm8k|5")],
                                                   "chat|0": chat})
    records = load_side(out).set_index("item_key")
    assert records.loc["gsm8k/3", ["prompt", "output", "prediction"]].tolist() == ["lighteval|gsm8k|5 q3", "answer 3", "3"]
    assert records.loc["chat/0", "prompt"] == "[system]\nBe brief.\n\n[user]\n2+2?"


def test_each_dated_run_is_a_run_and_a_metric_override_is_checked(tmp_path):
    _run(tmp_path / "out")
    _run(tmp_path / "out", DATES[1])
    assert load_side(tmp_path / "out")["run_id"].nunique() == 2
    with pytest.raises(InputError, match=r"details_lighteval\|gsm8k\|5_.*\.parquet \[row 0\.metric\]: metric 'em' not in"):
        load_side(tmp_path / "out", metric_overrides={"gsm8k": "em"})


def test_doctor_factors_come_from_the_results_json(tmp_path):
    factors = get_harness("lighteval").doctor_factors(_run(tmp_path / "out", temperature=0.6))
    assert factors["harness"] == "lighteval" and factors["model"] == "org/model"
    assert (factors["temperature"], factors["max_tokens"], factors["seed"]) == (0.6, 256, 1234)
    assert factors["num_fewshot"] == "arc_easy_custom|0=0; lighteval|gsm8k|5=5"


def test_lm_eval_does_not_claim_lightevals_results_json_and_vice_versa(tmp_path):
    _run(tmp_path / "lighteval")
    write_lm_eval_run(tmp_path / "lm", DATES[0], 1, standard_tasks())
    assert not get_harness("lm-eval").detect(tmp_path / "lighteval")
    assert not get_harness("lighteval").detect(tmp_path / "lm")
    assert get_harness("lighteval").doctor_factors(tmp_path / "lm") is None


def test_lighteval_is_reading_only():
    with pytest.raises(InputError, match="reading only"):
        get_harness("lighteval").build_invocation(None)
