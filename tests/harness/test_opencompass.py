"""OpenCompass work dirs -> records and doctor factors. The outputs are synthetic, in the format of OpenCompass's
own writers (opencompass/tasks/openicl_eval.py: predictions files, partition shards, dump_details results;
opencompass/cli/main.py: the config dumped to configs/<timestamp>_<pid>.py by mmengine's Config.dump, keys
sorted, classes as dotted path strings; see tests/support/harness_output.py): OpenCompass pulls torch-era pins
(mmengine and more) this environment does not carry."""

from __future__ import annotations

import json
import re

import pytest
from adapter_contract import check_adapter
from harness_output import opencompass_item, write_opencompass_config, write_opencompass_run
from typer.testing import CliRunner

from statrepro.cli import app
from statrepro.errors import InputError
from statrepro.harness import get_harness, load_side


def _gen(count: int) -> list[dict]:
    return [opencompass_item(i) for i in range(count)]


def test_an_opencompass_work_dir_passes_the_contract(tmp_path):
    write_opencompass_run(tmp_path / "out", "20260101_100000", {"gsm8k": _gen(4)}, correct=lambda d, i: i % 2 == 0)
    records = check_adapter(get_harness("opencompass"), output=tmp_path / "out", scratch=tmp_path / "scratch")
    assert list(records["score"]) == [1.0, 0.0, 1.0, 0.0] and set(records["metric"]) == {"accuracy"}
    assert list(records["item_key"]) == ["gsm8k/0", "gsm8k/1", "gsm8k/2", "gsm8k/3"]
    assert set(records["benchmark"]) == {"gsm8k"} and set(records["model"]) == {"smol-api"}
    assert records.loc[1, "prediction"] == "answer 1" and records.loc[1, "target"] == "1"
    prompt = get_harness("opencompass").sent_prompts(tmp_path / "out")["gsm8k/2"]
    assert prompt.messages == ({"role": "HUMAN", "content": "question 2"},)


def test_partition_shards_are_one_dataset_in_order_and_each_timestamp_is_a_run(tmp_path):
    for stamp in ("20260101_100000", "20260101_110000"):
        write_opencompass_run(tmp_path, stamp, {"gsm8k": _gen(5)}, correct=lambda d, i: i < 2, shards=2)
    assert sorted(p.name for p in (tmp_path / "20260101_100000" / "predictions" / "smol-api").iterdir()) == ["gsm8k_0.json", "gsm8k_1.json"]
    records = load_side(tmp_path)
    assert sorted(set(records["item_key"])) == [f"gsm8k/{i}" for i in range(5)]
    assert records["run_id"].nunique() == 2
    assert records.groupby("item_key")["score"].first().tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]


def test_a_ppl_dataset_without_details_is_scored_as_opencompass_scores_accuracy(tmp_path):
    write_opencompass_run(tmp_path, "20260101_100000", {"ceval-law": [opencompass_item(i, ppl=True) for i in range(4)]})
    records = load_side(tmp_path)
    assert list(records["score"]) == [1.0, 0.0, 1.0, 0.0]  # prediction A, gold A on even items
    assert set(records["benchmark"]) == {"ceval"}
    assert get_harness("opencompass").doctor_factors(tmp_path) == {"harness": "opencompass", "model": "smol-api", "mode": "ppl"}
    assert get_harness("opencompass").sent_prompts(tmp_path) == {}


def test_prompt_and_output_texts_are_read_in_full(tmp_path):
    """gen: origin_prompt (a role list rendered, or a string) and the raw prediction, before the evaluator's strip;
    ppl: no output, the prompt scored for the predicted label."""
    gen = _gen(2)
    gen[1]["origin_prompt"] = "Question: 2+2?\nAnswer:"
    write_opencompass_run(tmp_path / "gen", "20260101_100000", {"gsm8k": gen}, correct=lambda d, i: True)
    records = load_side(tmp_path / "gen")
    assert records["prompt"].tolist() == ["[HUMAN]\nquestion 0", "Question: 2+2?\nAnswer:"]
    assert records["output"].tolist() == [" answer 0\n", " answer 1\n"] and records.loc[0, "prediction"] == "answer 0"
    write_opencompass_run(tmp_path / "ppl", "20260101_100000", {"ceval-law": [_ppl_item(0, [2.5, 1.25, 3.0, 1.75])]})
    ppl = load_side(tmp_path / "ppl")
    assert ppl.loc[0, "prompt"] == "q0 B" and ppl.loc[0, "output"] is None


def test_a_gen_dataset_without_details_and_bad_details_are_located_errors(tmp_path):
    write_opencompass_run(tmp_path / "a", "20260101_100000", {"gsm8k": _gen(2)})
    with pytest.raises(InputError, match=r"gsm8k\.json: gen dataset without per-item results: .*dump_details=True"):
        load_side(tmp_path / "a")
    run = write_opencompass_run(tmp_path / "b", "20260101_100000", {"gsm8k": _gen(2)}, correct=lambda d, i: True)
    results = run / "results" / "smol-api" / "gsm8k.json"
    payload = json.loads(results.read_text())
    payload["details"]["1"]["correct"] = "yes"
    results.write_text(json.dumps(payload))
    with pytest.raises(InputError, match=r"gsm8k\.json \[details\.1\.correct\]: detail has no boolean 'correct'"):
        load_side(tmp_path / "b")


def test_evalscope_does_not_claim_an_opencompass_work_dir_and_opencompass_is_reading_only(tmp_path):
    write_opencompass_run(tmp_path, "20260101_100000", {"gsm8k": _gen(2)}, correct=lambda d, i: True)
    assert not get_harness("evalscope").detect(tmp_path)
    with pytest.raises(InputError, match="reading only"):
        get_harness("opencompass").build_invocation(None)


def _configured_run(root, *, generation_kwargs="dict(do_sample=False)", fix_ids=5):
    """A work dir with gsm8k (gen) and ceval-law (ppl), and the config OpenCompass dumped for it."""
    datasets = {"gsm8k": _gen(3), "ceval-law": [opencompass_item(i, ppl=True) for i in range(2)]}
    run = write_opencompass_run(root, "20260101_100000", datasets, correct=lambda d, i: True)
    write_opencompass_config(run, generation_kwargs=generation_kwargs, fix_ids=fix_ids)
    return root


def test_the_dumped_config_gives_model_generation_few_shot_template_and_mode_factors(tmp_path):
    factors = get_harness("opencompass").doctor_factors(_configured_run(tmp_path))
    prompt = factors.pop("prompt")
    assert re.fullmatch(r'ceval-law="[0-9a-f]{12}"; gsm8k="[0-9a-f]{12}"', prompt), prompt
    assert factors == {
        "harness": "opencompass",
        "model": "/models/smollm2",
        "mode": "gen,ppl",
        "engine": "HuggingFacewithChatTemplate",
        "chat_template": "model default",
        "num_fewshot": "ceval-law=0; gsm8k=5",
        "fewshot_order": 'ceval-law="ZeroRetriever"; gsm8k="FixKRetriever [0, 1, 2, 3, 4]"',
        "max_tokens": 512,  # gsm8k's inferencer over the model's 1024; the ppl dataset generates nothing
        "max_context": 4096,
        "batch_size": 8,
        "temperature": 0.0,  # do_sample=False
        "stop": '["<|im_end|>"]',
    }


def test_doctor_names_exactly_the_temperature_and_few_shot_difference_of_two_work_dirs(tmp_path):
    a = _configured_run(tmp_path / "a")
    b = _configured_run(tmp_path / "b", generation_kwargs="dict(do_sample=True, temperature=0.7)", fix_ids=3)
    out = tmp_path / "doctor.json"
    result = CliRunner().invoke(app, ["doctor", str(a), str(b), "--json", str(out)])
    assert result.exit_code == 1, result.output
    factors = {f["name"]: (f["a"], f["b"]) for f in json.loads(out.read_text())["factors"]}
    # The count and FixKRetriever's fix_id_list (the few-shot choice) change together.
    assert factors == {
        "num_fewshot": ("ceval-law=0; gsm8k=5", "ceval-law=0; gsm8k=3"),
        "temperature": (0.0, 0.7),
        "fewshot_order": ('ceval-law="ZeroRetriever"; gsm8k="FixKRetriever [0, 1, 2, 3, 4]"',
                          'ceval-law="ZeroRetriever"; gsm8k="FixKRetriever [0, 1, 2]"'),
    }
    assert CliRunner().invoke(app, ["doctor", str(a), str(a)]).exit_code == 0


def test_a_malformed_dumped_config_is_a_one_line_error_naming_the_file(tmp_path):
    config = write_opencompass_config(write_opencompass_run(tmp_path, "20260101_100000", {"gsm8k": _gen(2)}, correct=lambda d, i: True))
    config.write_text(config.read_text().replace("eval = dict(", "eval = dict((", 1))
    result = CliRunner().invoke(app, ["doctor", str(tmp_path), str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    message = result.stderr.strip()
    assert "\n" not in message and re.match(r"error: \S+/configs/20260101_100000_4242\.py:\d+: not a readable OpenCompass config", message), message


def test_the_dumped_config_is_parsed_never_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = write_opencompass_run(tmp_path / "out", "20260101_100000", {"gsm8k": _gen(2)}, correct=lambda d, i: True)
    (run / "configs").mkdir()
    (run / "configs" / "20260101_100000.py").write_text(
        "from opencompass.openicl.icl_inferencer import GenInferencer\n"
        "__import__('os').system('touch PWNED')\n"
        "models = [dict(abbr='m', path=__import__('os').system('touch PWNED'), type=HuggingFaceBaseModel)]\n"
        "datasets = [dict(abbr='gsm8k', infer_cfg=dict(inferencer=dict(type=GenInferencer), retriever=dict(type=icl.ZeroRetriever)))]\n"
    )
    factors = get_harness("opencompass").doctor_factors(tmp_path / "out")
    assert not (tmp_path / "PWNED").exists()
    # Names and calls are kept as their source text: the class names still identify the inferencer and retriever.
    assert (factors["model"], factors["engine"], factors["chat_template"], factors["num_fewshot"]) == (
        "__import__('os').system('touch PWNED')", "HuggingFaceBaseModel", "none", 0)


def test_a_config_whose_inferencer_contradicts_the_predictions_is_not_this_run(tmp_path):
    run = _configured_run(tmp_path) / "20260101_100000"
    config = next((run / "configs").glob("*.py"))
    config.write_text(config.read_text().replace("icl_inferencer.PPLInferencer", "icl_inferencer.GenInferencer"))
    with pytest.raises(InputError, match=r"4242\.py: dataset ceval-law runs GenInferencer here but its predictions are ppl items"):
        get_harness("opencompass").doctor_factors(tmp_path)


def _ppl_item(index: int, ppls: list[float], gold: str = "A") -> dict:
    """A PPLInferencer entry with the given PPL per label (OpenCompass predicts the first lowest)."""
    labels = "ABCD"[: len(ppls)]
    entries = {f"label: {label}": {"testing input": f"q{index}", "prompt": f"q{index} {label}", "PPL": ppl}
               for label, ppl in zip(labels, ppls)}
    return {**entries, "prediction": labels[ppls.index(min(ppls))], "gold": gold}


def test_a_ppl_item_keeps_minus_each_labels_ppl_as_its_choice_scores_ties_included(tmp_path):
    items = [_ppl_item(0, [2.5, 1.25, 3.0, 1.75]), _ppl_item(1, [0.5, 0.5, 2.0, 2.0], gold="B")]
    write_opencompass_run(tmp_path, "20260101_100000", {"ceval-law": items})
    records = load_side(tmp_path)
    assert records.loc[0, "choice_logprobs"] == [-2.5, -1.25, -3.0, -1.75]
    assert records.loc[1, "choice_logprobs"] == [-0.5, -0.5, -2.0, -2.0]  # a tie stays a tie
    assert set(records["choice_logprob_kind"]) == {"prompt_token_mean"}
    assert list(records["prediction"]) == ["B", "A"] and list(records["score"]) == [0.0, 0.0]
    write_opencompass_run(tmp_path / "gen", "20260101_100000", {"gsm8k": _gen(1)}, correct=lambda d, i: True)
    generated = load_side(tmp_path / "gen")
    assert generated.loc[0, "choice_logprobs"] is None and generated.loc[0, "choice_logprob_kind"] is None


def test_a_ppl_that_is_no_finite_number_is_a_located_error(tmp_path):
    item = _ppl_item(0, [1.0, 2.0])
    item["label: B"]["PPL"] = "nan?"
    write_opencompass_run(tmp_path, "20260101_100000", {"ceval-law": [item]})
    with pytest.raises(InputError, match=r"ceval-law\.json \[0\.label: B\.PPL\]: PPL 'nan\?' is not a finite number"):
        load_side(tmp_path)


def _ppl_records(root, ppls: list[list[float]]):
    write_opencompass_run(root, "20260101_100000", {"ceval-law": [_ppl_item(i, row) for i, row in enumerate(ppls)]})
    return load_side(root)


def test_opencompass_choice_scores_compare_with_opencompass_ones_and_a_one_sided_tie_is_a_top_change(tmp_path):
    from statrepro.analysis import AnalysisOptions, analyze
    from statrepro.stats.rules import VerdictRules

    rows = [[1.0, 2.0, 3.0, 4.0], [0.5, 0.5, 2.0, 2.0]] * 10
    moved = [[1.0, 2.0, 3.0, 4.0], [0.5, 0.75, 2.0, 2.0]] * 10  # B breaks every tie of A
    options = AnalysisOptions(rules=VerdictRules(n_resamples=200))
    same = analyze(_ppl_records(tmp_path / "a", rows), _ppl_records(tmp_path / "a2", rows), options).choices["ceval"]
    assert same.kl.mean == 0.0 and same.top_changed.mean == 0.0  # a tie broken alike on both sides is no change
    changed = analyze(_ppl_records(tmp_path / "a", rows), _ppl_records(tmp_path / "b", moved), options).choices["ceval"]
    assert changed.top_changed.mean == 0.5 and changed.kl.mean > 0


def test_choice_scores_of_different_kinds_give_no_choice_evidence_and_a_gate_on_them_is_refused(tmp_path):
    from statrepro.analysis import AnalysisOptions, analyze
    from statrepro.stats.rules import VerdictRules

    opencompass = _ppl_records(tmp_path / "a", [[1.0, 2.0, 3.0, 4.0]] * 20)
    summed = opencompass.assign(choice_logprob_kind=None, harness="lm-eval")  # lm-eval's sums (null: before the column)
    with pytest.warns(UserWarning, match=r"benchmark 'ceval': choice scores of different kinds \(A: prompt_token_mean; B: continuation_sum\)"):
        analysis = analyze(opencompass, summed, AnalysisOptions(rules=VerdictRules(n_resamples=200)))
    assert analysis.choices == {}
    with pytest.warns(UserWarning), pytest.raises(InputError, match="no per-choice log-likelihoods of one kind on both sides"):
        analyze(opencompass, summed, AnalysisOptions(rules=VerdictRules(n_resamples=200, kl_margin=0.05)))
