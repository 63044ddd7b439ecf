"""inspect_ai logs -> records: real ``.eval`` and ``.json`` logs written offline by inspect itself (mockllm with a
scripted answer function and a scripted letter-grade scorer, see tests/support/inspect_run.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from adapter_contract import check_adapter
from typer.testing import CliRunner

from statrepro.cli import app
from statrepro.errors import InputError
from statrepro.harness import get_harness, load_side

pytest.importorskip("inspect_ai")
from inspect_run import QUESTIONS, SYSTEM_MESSAGE, write_inspect_logs  # noqa: E402  (needs inspect_ai)


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> dict[str, Path]:
    """One .eval and one .json log of the same task (2 epochs each), and a .eval log at temperature 0.7."""
    root = tmp_path_factory.mktemp("inspect")
    return {
        "eval": write_inspect_logs(root / "a"),
        "json": write_inspect_logs(root / "a", log_format="json"),
        "warm": write_inspect_logs(root / "b", temperature=0.7),
    }


def test_inspect_logs_pass_the_contract(logs, tmp_path):
    records = check_adapter(get_harness("inspect_ai"), output=logs["eval"].parent, scratch=tmp_path)
    assert len(records) == 2 * 2 * QUESTIONS  # two logs, two epochs each
    assert records["run_id"].nunique() == 4 and set(records["seed"]) == {5}
    assert set(records["item_key"]) == {f"arith/q{i}" for i in range(QUESTIONS)}


def test_the_primary_scorer_gives_the_score_with_letter_grades_valued_as_inspect_does(logs):
    records = load_side(logs["json"])
    by_item = records.groupby("item_key")["score"].unique().to_dict()
    # q0, q2 right (C = 1); q1 answered 7 for 2 (P = 0.5); q3 wrong (I = 0).
    assert {key: list(scores) for key, scores in by_item.items()} == {
        "arith/q0": [1.0], "arith/q1": [0.5], "arith/q2": [1.0], "arith/q3": [0.0]}
    assert set(records["metric"]) == {"graded"}
    assert records.set_index("item_key").loc["arith/q1", "prediction"].iloc[0] == "7"
    assert records.set_index("item_key").loc["arith/q1", "target"].iloc[0] == "2"
    assert records["prompt_hash"].notna().all()


def test_prompt_and_output_texts_come_from_the_sent_messages_and_the_completion(logs):
    records = load_side(logs["json"]).set_index("item_key")
    assert set(records.loc["arith/q1", "prompt"]) == {f"[system]\n{SYSTEM_MESSAGE}\n\n[user]\nWhat is 1+1?"}
    assert set(records.loc["arith/q2", "output"]) == {"4"} and set(records.loc["arith/q3", "output"]) == {"7"}


def test_a_metric_override_names_another_scorer(logs):
    records = load_side(logs["eval"], metric_overrides={"arith": "match"})
    assert set(records["metric"]) == {"match"}
    assert sorted(records.groupby("item_key")["score"].first()) == [0.0, 0.0, 1.0, 1.0]  # P is I for match
    with pytest.raises(InputError, match=r"scorer 'nope' not in the sample's scores \(present: graded, match\)"):
        load_side(logs["eval"], metric_overrides={"arith": "nope"})


def test_doctor_factors_and_sent_prompts_come_from_the_log(logs):
    adapter = get_harness("inspect_ai")
    factors = adapter.doctor_factors(logs["eval"])
    assert factors["harness"] == "inspect_ai" and factors["model"] == "mockllm/model"
    assert (factors["temperature"], factors["max_tokens"], factors["seed"]) == (0.0, 16, 5)
    assert factors["system_instruction"] not in (None, "none")
    assert adapter.doctor_factors(logs["warm"])["temperature"] == 0.7
    prompt = adapter.sent_prompts(logs["json"])["arith/q1"]
    assert prompt.messages == ({"role": "system", "content": SYSTEM_MESSAGE}, {"role": "user", "content": "What is 1+1?"})


def test_inspect_is_reading_only():
    with pytest.raises(InputError, match="reading only"):
        get_harness("inspect_ai").build_invocation(None)


def test_analyze_compares_two_inspect_runs(logs, tmp_path):
    verdict = tmp_path / "verdict.json"
    result = CliRunner().invoke(app, ["analyze", str(logs["eval"]), str(logs["warm"]), "--metric", "arith=match",
                                      "--resamples", "200", "--json", str(verdict)])
    assert result.exit_code in (0, 3, 4), result.output
    payload = json.loads(verdict.read_text())["benchmarks"]["arith"]
    assert (payload["n_items"], payload["n_runs_a"], payload["n_runs_b"]) == (QUESTIONS, 2, 2)


def test_a_damaged_log_is_a_one_line_located_error(logs, tmp_path):
    truncated = tmp_path / logs["eval"].name
    truncated.write_bytes(logs["eval"].read_bytes()[:600])
    with pytest.raises(InputError, match=rf"{truncated.name}: not a readable inspect_ai log"):
        load_side(truncated)
    shutil.copy(logs["json"], tmp_path / "log.json")
    (tmp_path / "log.json").write_text((tmp_path / "log.json").read_text()[:2000])
    with pytest.raises(InputError, match=r"log\.json: not a readable inspect_ai log"):
        load_side(tmp_path / "log.json")


def test_doctor_names_the_harness_difference_between_lm_eval_output_and_an_inspect_log(logs, tmp_path):
    from harness_output import DATES, standard_tasks, write_lm_eval_run

    write_lm_eval_run(tmp_path / "lm", DATES[0], 1, standard_tasks())
    result = CliRunner().invoke(app, ["doctor", str(tmp_path / "lm"), str(logs["eval"])], terminal_width=200)
    [row] = [line for line in result.output.splitlines() if line.strip("│ ").startswith("harness ")]
    assert "lm-eval" in row and "inspect_ai" in row, result.output


def test_multiple_choice_with_logprobs_gives_each_letters_log_probability_at_the_answer(tmp_path):
    from inspect_run import write_choice_log

    tops = [
        [(" B", -0.3), (" A", -1.5), (" C", -4.0), (" D", -5.0), (" b", -6.0)],  # " b" pools into B
        [(" A", -0.7), (" B", -0.7), (" C", -3.0), (" D", -3.0)],  # a tie
        [(" C", -0.1), (" A", -2.5), (" B", -3.0), ("Hmm", -4.0)],  # D outside the top-k: unknown, no scores
    ]
    records = load_side(write_choice_log(tmp_path, tops)).set_index("item_key")
    first = records.loc["mc/q0", "choice_logprobs"]
    assert first == pytest.approx([-1.5, float(np.logaddexp(-0.3, -6.0)), -4.0, -5.0])
    assert records.loc["mc/q1", "choice_logprobs"] == [-0.7, -0.7, -3.0, -3.0]
    assert records.loc["mc/q2", "choice_logprobs"] is None and pd.isna(records.loc["mc/q2", "choice_logprob_kind"])
    assert records.loc["mc/q0", "choice_logprob_kind"] == "answer_letter_token"
    assert list(records["prediction"]) == ["B", "A", "C"]


def test_a_generation_log_has_no_choice_scores(logs):
    records = load_side(logs["eval"])
    assert records["choice_logprobs"].isna().all() and records["choice_logprob_kind"].isna().all()
