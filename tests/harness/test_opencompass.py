"""OpenCompass work dirs -> records. The outputs are synthetic, in the format of OpenCompass's own writers
(opencompass/tasks/openicl_eval.py: predictions files, partition shards, dump_details results; see
tests/support/harness_output.py): OpenCompass pulls torch-era pins (mmengine and more) this environment does
not carry."""

from __future__ import annotations

import json

import pytest
from adapter_contract import check_adapter
from harness_output import opencompass_item, write_opencompass_run

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
