"""statrepro explain: item choice, the token check with planted template defects, replay comparison, flip
classes, bad input, and (slow) the real proof: in-process transformers against the managed llama.cpp server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from statrepro.diagnose.explain import (
    Replay, TokenCheck, choose_items, classify, compare_replays, compare_tokens, cut_at_stop, explain,
)
from statrepro.diagnose.logprobs import Generation, OpenAISide, Step
from statrepro.engines.contract import RenderedPrompt
from statrepro.envfile import validate_env
from statrepro.errors import InputError
from statrepro.harness.contract import SentPrompt
from statrepro.harness.lm_eval import sent_prompt_of
from statrepro.harness.records import make_records

REPO = Path(__file__).resolve().parents[2]


def _records(scores: dict[str, list[float]], predictions: dict[str, str] | None = None):
    rows = [
        {"benchmark": "gsm8k", "subset": "gsm8k", "item_key": key, "run_id": f"seed={seed}", "seed": seed, "metric": "exact_match",
         "score": score, "prediction": (predictions or {}).get(key, "same")}
        for key, values in scores.items() for seed, score in enumerate(values)
    ]
    return make_records(rows)


def test_items_are_chosen_flipped_first_then_by_score_change_then_by_changed_answer_with_thirds():
    """Three seeds give item means in thirds: 2/3 -> 1/3 flips, 1 -> 2/3 only changes, ties keep item order."""
    from statrepro.analysis import pair

    a = _records({"g/0": [1, 1, 0], "g/1": [1, 1, 1], "g/2": [0, 0, 0], "g/3": [0, 0, 0], "g/4": [1, 0, 0], "g/5": [1, 1, 1]},
                 {"g/3": "7"})
    b = _records({"g/0": [1, 0, 0], "g/1": [1, 1, 0], "g/2": [0, 0, 0], "g/3": [0, 0, 0], "g/4": [1, 1, 1], "g/5": [1, 1, 1]},
                 {"g/3": "8"})
    chosen, flipped = choose_items(pair(a, b), a, b, limit=10)
    assert flipped == 2
    assert [(c.item_key, c.reason) for c in chosen] == [
        ("g/4", "flipped"), ("g/0", "flipped"), ("g/1", "score changed"), ("g/3", "answer changed"),
    ]  # g/4 moved 2/3, g/0 1/3; g/2 and g/5 did not move at all
    assert chosen[1].mean_a == pytest.approx(2 / 3) and chosen[1].mean_b == pytest.approx(1 / 3)
    assert [c.item_key for c in choose_items(pair(a, b), a, b, limit=1)[0]] == ["g/4"]


def test_unlogged_answers_are_no_changed_answers():
    """A harness without answers (NaN predictions) on one side or both: equal scores are nothing to explain."""
    from statrepro.analysis import pair

    nan = float("nan")
    a = _records({"g/0": [1.0], "g/1": [0.0], "g/2": [1.0]}, {"g/0": nan, "g/1": nan, "g/2": "7"})
    b = _records({"g/0": [1.0], "g/1": [0.0], "g/2": [1.0]}, {"g/0": nan, "g/1": "3", "g/2": "8"})
    chosen, flipped = choose_items(pair(a, b), a, b, limit=10)
    assert flipped == 0 and [(c.item_key, c.reason) for c in chosen] == [("g/2", "answer changed")]


@pytest.fixture(scope="module")
def tokenizer():
    from statrepro.models import load_tokenizer, resolve_model_path

    return load_tokenizer(resolve_model_path("embedded"))


def _rendered(tokenizer, ids) -> RenderedPrompt:
    from statrepro.engines.contract import hf_rendering

    return hf_rendering(tokenizer, ids, "test")


@pytest.mark.model
def test_a_doubled_bos_is_caught_and_named_at_its_token(tokenizer):
    """The planted defect: a harness that renders the template (which starts with the BOS token) and an engine
    that adds a BOS of its own."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": "2+2?"}], add_generation_prompt=True, tokenize=False)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id
    check = compare_tokens(_rendered(tokenizer, ids), _rendered(tokenizer, [tokenizer.bos_token_id, *ids]))
    assert not check.identical and check.position == 1
    assert check.defect == f"doubled BOS {tokenizer.bos_token!r} on B"
    assert "position 1" in check.summary() and "doubled BOS" in check.summary()


@pytest.mark.model
def test_a_missing_system_prompt_is_caught_and_named_at_its_token(tokenizer):
    """The planted defect: B renders the user turn alone, A with the system prompt its template adds."""
    full = tokenizer.apply_chat_template([{"role": "user", "content": "2+2?"}], add_generation_prompt=True, tokenize=False)
    bare = "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    assert full.endswith(bare) and full != bare
    ids_a = tokenizer(full, add_special_tokens=False)["input_ids"]
    ids_b = tokenizer(bare, add_special_tokens=False)["input_ids"]
    check = compare_tokens(_rendered(tokenizer, ids_a), _rendered(tokenizer, ids_b))
    assert check.position == 1 and check.token_a == "system" and check.token_b == "user"
    assert check.defect == "missing system prompt on B"
    swapped = compare_tokens(_rendered(tokenizer, ids_b), _rendered(tokenizer, ids_a))
    assert swapped.defect == "missing system prompt on A"


def test_identical_tokens_and_an_unnamed_difference():
    a = RenderedPrompt((5, 6, 7), ("x", "y", "z"), "a")
    assert compare_tokens(a, a).identical
    other = compare_tokens(a, RenderedPrompt((5, 9, 7), ("x", "w", "z"), "b"))
    assert (other.position, other.token_a, other.token_b, other.defect) == (1, "y", "w", None)


def _generation(*steps: tuple[str, float, dict[str, float]]) -> Generation:
    return Generation(text="".join(s[0] for s in steps), steps=tuple(Step(*s) for s in steps))


def test_replays_are_compared_only_up_to_the_harness_stop_sequence():
    a = _generation(("4", -0.1, {"4": -0.1, "5": -3.0}), ("\n", -0.2, {"\n": -0.2}), ("Question", -0.5, {"Question": -0.5}))
    b = _generation(("4", -0.1, {"4": -0.1, "5": -3.0}), ("\n", -0.2, {"\n": -0.2}), ("Answer", -0.4, {"Answer": -0.4}))
    assert cut_at_stop(a, ("Question",)).text == "4\n"
    assert compare_replays(a, b, ("Question", "Answer"), epsilon=0.1).divergence is None  # they differ after the stop only
    assert compare_replays(a, b, (), epsilon=0.1).divergence == 2


def test_a_replay_records_where_the_divergent_token_starts_and_both_top_logprobs_there():
    a = _generation(("It", -0.1, {"It": -0.1}), (" is", -0.2, {" is": -0.2}), (" 4", -0.6, {" 4": -0.6, " 5": -0.9}))
    b = _generation(("It", -0.1, {"It": -0.1}), (" is", -0.2, {" is": -0.2}), (" 5", -0.5, {" 5": -0.5, " 4": -1.1}))
    replay = compare_replays(a, b, (), epsilon=0.1)
    assert (replay.divergence, replay.offset) == (2, len("It is"))
    assert replay.text_a[replay.offset:] == replay.token_a == " 4" and replay.text_b[replay.offset:] == " 5"
    assert (replay.top_a, replay.top_b) == ({" 4": -0.6, " 5": -0.9}, {" 5": -0.5, " 4": -1.1})
    same = compare_replays(a, a, (), epsilon=0.1)
    assert (same.divergence, same.offset, same.top_a, same.top_b) == (None, None, None, None)


IDENTICAL = TokenCheck(identical=True, length_a=3, length_b=3)


def _replay(**values) -> Replay:
    base = dict(divergence=4, token_a="x", token_b="y", gap_a=2.0, gap_b=1.5, max_abs_delta_before=0.01,
                not_greedy_a=None, not_greedy_b=None, text_a="a", text_b="b")
    return Replay(**(base | values))


@pytest.mark.parametrize(("tokens", "replay", "sampled", "expected"), [
    (TokenCheck(identical=False, length_a=3, length_b=4, position=1, token_a="s", token_b="<b>"), _replay(), False, "prompt differs"),
    (IDENTICAL, _replay(not_greedy_b=2), False, "sampler setting"),
    (IDENTICAL, _replay(gap_a=0.02), False, "near tie"),
    (IDENTICAL, _replay(gap_b=0.05), True, "near tie"),
    (IDENTICAL, _replay(), False, "distribution shift"),
    (IDENTICAL, _replay(divergence=None, token_a=None, token_b=None, max_abs_delta_before=2.5), False, "distribution shift"),
    (IDENTICAL, _replay(divergence=None, token_a=None, token_b=None), True, "sampling"),
    (IDENTICAL, _replay(divergence=None, token_a=None, token_b=None), False, "not reproduced"),
    (IDENTICAL, None, False, "not replayed"),
])
def test_each_flip_class_is_reached_by_its_own_evidence(tokens, replay, sampled, expected):
    flip_class, detail = classify(tokens, replay, sampled=sampled, epsilon=0.1, shift_threshold=1.0)
    assert flip_class == expected, detail


def test_a_sampler_penalty_is_seen_as_a_non_top_token_before_the_divergence():
    greedy = _generation(("a", -0.1, {"a": -0.1, "b": -2.5}), ("c", -0.3, {"c": -0.3, "d": -3.0}))
    penalised = _generation(("a", -0.1, {"a": -0.1, "b": -2.5}), ("d", -3.0, {"c": -0.3, "d": -3.0}))
    replay = compare_replays(greedy, penalised, (), epsilon=0.1)
    assert (replay.divergence, replay.not_greedy_a, replay.not_greedy_b) == (1, None, 1)
    assert classify(IDENTICAL, replay, sampled=False, epsilon=0.1, shift_threshold=1.0)[0] == "sampler setting"


def test_lm_eval_chat_arguments_become_messages_and_generation_kwargs_give_the_stops():
    sample = {"arguments": {"gen_args_0": {
        "arg_0": ['[{"role": "user", "content": "Question: 1+1?\\nAnswer:"}]'], "arg_1": {"until": ["Question:"], "max_gen_toks": 8},
    }}}
    prompt = sent_prompt_of(sample, path=Path("s.jsonl"), line=3)
    assert prompt == SentPrompt(messages=({"role": "user", "content": "Question: 1+1?\nAnswer:"},), stop=("Question:",))
    with pytest.raises(InputError, match="arguments"):
        sent_prompt_of({"doc_id": 0}, path=Path("s.jsonl"), line=4)


def test_a_comparison_where_nothing_moved_says_so_without_starting_any_engine():
    env = validate_env(dict(name="a", benchmarks={"gsm8k": {"limit": 2}}, seeds=1))
    records = _records({"g/0": [1.0], "g/1": [0.0]})
    result = explain(env, env.model_copy(update={"name": "b"}), records, records)
    assert result.items == () and result.summary().startswith("no item flipped and no item changed")


def test_an_endpoint_without_logprobs_is_one_clear_error(fake_openai):
    side = OpenAISide(fake_openai.base_url, model="fake-model")
    with pytest.raises(InputError, match="returned no logprobs"):
        side.replay([SentPrompt(text="2+2=")], [None], max_tokens=4, top_k=2)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from statrepro.cli import app; app()", *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=1800)


def test_explain_on_a_store_without_those_runs_or_without_the_env_files_is_one_line(tmp_path):
    env = REPO / "configs/explain/hf-fp32.yaml"
    for args in (
        [str(env), str(tmp_path / "missing.yaml"), "--store", str(tmp_path)],
        [str(env), str(REPO / "configs/explain/llama-cpp-f32.yaml"), "--store", str(tmp_path / "nowhere")],
        [str(env), str(REPO / "configs/explain/llama-cpp-f32.yaml"), "--store", str(tmp_path)],
    ):
        completed = _cli("explain", *args, cwd=tmp_path)
        assert completed.returncode == 2, completed.stderr
        lines = completed.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in completed.stderr, completed.stderr
    assert "no finished run of 'hf-fp32'" in lines[0]


@pytest.mark.model
@pytest.mark.slow
def test_explain_names_the_llama_cpp_repeat_penalty_and_nothing_once_it_is_pinned(tmp_path):
    """The proof on real engines: in-process transformers (float32) against the managed llama.cpp server on the
    same float32 weights, gsm8k greedy. With the server's default repeat penalty (1.1) the moved items are
    classed as a sampler setting naming repeat_penalty; with 1.0 on both sides nothing moves."""
    store = str(tmp_path / "store")
    hf, default, pinned = (str(REPO / "configs/explain" / name) for name in
                           ("hf-fp32.yaml", "llama-cpp-f32-penalty-default.yaml", "llama-cpp-f32.yaml"))
    common = ["--limit", "3", "--store", store, "--margin", "absolute", "--tolerance", "0.05"]
    completed = _cli("compare", hf, default, *common, "--explain", "--explain-limit", "2", "--report", str(tmp_path / "report"),
                     cwd=tmp_path)
    assert completed.returncode in (0, 4), completed.stdout + completed.stderr
    explained = json.loads((tmp_path / "report/explain.json").read_text())
    assert explained["classes"] == {"sampler setting": 2}, explained
    assert "repeat_penalty 1.0 vs 1.1" in explained["summary"]
    assert all(item["tokens"]["identical"] for item in explained["items"])
    assert 'id="explain"' in (tmp_path / "report/report.html").read_text()
    assert "the tokens are identical" in completed.stdout  # compare's own token check on the differing hashes

    completed = _cli("compare", hf, pinned, *common, cwd=tmp_path)
    assert completed.returncode in (0, 4), completed.stdout + completed.stderr
    completed = _cli("explain", hf, pinned, "--store", store, "--run-limit", "3", "--json", str(tmp_path / "pinned.json"), cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert json.loads((tmp_path / "pinned.json").read_text())["items"] == []
    assert "nothing to explain" in " ".join(completed.stdout.split())


def test_layers_dump_takes_the_prompts_of_an_explanations_top_items(tmp_path):
    from statrepro.diagnose.common import choose_prompts

    path = tmp_path / "explain.json"
    path.write_text(json.dumps({"items": [{"tokens": {"prompt_a": "<|im_start|>user\nq1"}}, {"tokens": {"prompt_a": "q2"}}]}))
    assert choose_prompts(None, None, data_dir=None, limit=1, explain=path) == ["<|im_start|>user\nq1"]
    path.write_text(json.dumps({"verdict": "different"}))
    with pytest.raises(InputError, match="not an explain --json file"):
        choose_prompts(None, None, data_dir=None, limit=1, explain=path)
