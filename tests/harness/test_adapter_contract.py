"""lm-eval, evalscope and a toy adapter written only against the Protocol all pass the shared adapter suite."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from adapter_contract import check_adapter
from harness_output import DATES, repeated_reviews, standard_tasks, write_evalscope_run, write_lm_eval_run
from toy_harness import ToyHarness

from statrepro import harness
from statrepro.config import EnvConfig
from statrepro.envfile import validate_env
from statrepro.harness import get_harness
from statrepro.engines.servers import ServerInfo
from statrepro.errors import InputError
from statrepro.harness.contract import ROW_IDS_FILE, JobContext, row_ids_of, row_key
from statrepro.run.plan import plan_jobs


def _context(tmp_path: Path, env: EnvConfig, endpoint: ServerInfo | None = None) -> JobContext:
    from statrepro.benchmarks import resolve_data_dir

    job = plan_jobs([env])[0]
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    return JobContext(job, resolve_data_dir(None), work_dir, tmp_path / "model", endpoint)


def test_lm_eval_adapter_passes_the_contract(tmp_path):
    output = tmp_path / "lm"
    write_lm_eval_run(output, DATES[0], 1, standard_tasks())
    env = validate_env(dict(name="a", benchmarks={"gsm8k": {"limit": 2}}, seeds=1))
    records = check_adapter(get_harness("lm-eval"), output=output, scratch=tmp_path / "scratch", context=_context(tmp_path, env))
    assert set(records["benchmark"]) == {"gsm8k", "ceval", "mmlu_redux", "arc_easy"}
    prompts = get_harness("lm-eval").sent_prompts(output)
    assert set(prompts) == set(records["item_key"])
    generative, log_likelihood = prompts["gsm8k/0"], next(p for key, p in prompts.items() if p.continuations)
    assert generative.text == "gsm8k q0" and generative.continuations == ()
    assert log_likelihood.text.endswith(" q0") and len(log_likelihood.continuations) > 1


def test_evalscope_adapter_passes_the_contract(tmp_path):
    pytest.importorskip("evalscope")
    output = tmp_path / "evalscope"
    write_evalscope_run(output, "20260101_100000", {"gsm8k_main": repeated_reviews(3, 1, lambda d, g: float(d % 2))})
    env = validate_env(dict(name="a", engine={"kind": "openai", "base_url": "http://127.0.0.1:9/v1"}, harness={"name": "evalscope"},
                    benchmarks={"gsm8k": {"limit": 2}}, seeds=1))
    context = _context(tmp_path, env, ServerInfo("openai", "http://127.0.0.1:9/v1", "m"))
    records = check_adapter(get_harness("evalscope"), output=output, scratch=tmp_path / "scratch", context=context)
    assert set(records["benchmark"]) == {"gsm8k"}
    prompts = get_harness("evalscope").sent_prompts(output)
    assert set(prompts) == set(records["item_key"])
    assert all(p.messages[-1]["role"] == "user" and p.text is None for p in prompts.values())  # the answer left out


def test_guards_requests_is_declared_and_evalscope_sends_through_the_guard_with_its_own_retries_off(tmp_path):
    pytest.importorskip("evalscope")
    builtins = {"lm-eval": True, "evalscope": True, "inspect_ai": False, "lighteval": False, "opencompass": False}
    assert {name: get_harness(name).guards_requests for name in builtins} == builtins
    assert ToyHarness().guards_requests is False  # the contract's default, inherited
    env = validate_env(dict(name="a", engine={"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "max_retries": 2, "timeout": 10},
                            harness={"name": "evalscope"}, benchmarks={"gsm8k": {"limit": 2}}, seeds=1))
    context = _context(tmp_path, env, ServerInfo("openai", "http://127.0.0.1:9/v1", "m"))
    guarded = get_harness("evalscope").build_invocation(replace(context, guard_url="http://127.0.0.1:8/v1")).argv
    assert guarded[guarded.index("--api-url") + 1] == "http://127.0.0.1:8/v1"
    config = json.loads(guarded[guarded.index("--generation-config") + 1])
    assert config["retries"] == 1 and config["retry_interval"] == 0  # evalscope's `retries` counts tries
    assert config["timeout"] > 3 * 10  # past the guard's budget: only the guard ends a request
    assert json.loads(guarded[guarded.index("--model-args") + 1]) == {"max_retries": 0}  # nor does its OpenAI client retry
    direct = get_harness("evalscope").build_invocation(context).argv
    assert direct[direct.index("--api-url") + 1] == "http://127.0.0.1:9/v1" and "--model-args" not in direct
    assert "retries" not in json.loads(direct[direct.index("--generation-config") + 1])


@pytest.fixture
def toy_registered(monkeypatch):
    """The toy adapter registered for one test only, so it never answers for other tests' inputs."""
    monkeypatch.setitem(harness.HARNESSES, ToyHarness.name, ToyHarness())


def test_a_protocol_only_adapter_passes_the_contract_and_runs_its_harness(tmp_path, toy_registered):
    env = validate_env(dict(name="a", harness={"name": "toy"}, benchmarks={"gsm8k": {"limit": 4}}, seeds=[3]))
    records = check_adapter(ToyHarness(), scratch=tmp_path / "scratch", context=_context(tmp_path, env), run=True)
    assert list(records["score"]) == [1.0, 0.0, 1.0, 0.0]  # (item + seed 3) % 2


def test_a_block_key_is_its_row_and_a_key_outside_the_block_is_refused():
    row_ids = {"statrepro_gsm8k": [4, 17, 230]}
    assert row_key("statrepro_gsm8k/1", row_ids) == "statrepro_gsm8k/17"
    for bad in ("statrepro_gsm8k/3", "other/0", "statrepro_gsm8k/x"):
        with pytest.raises(InputError, match="not one of the selected rows"):
            row_key(bad, row_ids)


def test_row_ids_are_found_from_any_file_of_a_block_output_and_a_full_run_has_none(tmp_path):
    nested = tmp_path / "harness" / "output" / "model" / "samples.jsonl"
    nested.parent.mkdir(parents=True)
    assert row_ids_of(nested) == {}
    (tmp_path / "harness" / ROW_IDS_FILE).write_text('{"statrepro_gsm8k": [4, 17]}')
    assert row_ids_of(nested) == {"statrepro_gsm8k": [4, 17]}
    (tmp_path / "harness" / ROW_IDS_FILE).write_text('{"statrepro_gsm8k": [4,')
    with pytest.raises(InputError, match="unreadable row ids"):
        row_ids_of(nested)
