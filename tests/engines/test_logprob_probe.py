"""The log-likelihood capability probe: judged by value (a misaligned server has the right shape), both answers
from real servers, and the one-line error that suggests ``mode: gen``."""

from __future__ import annotations

import pytest

from statrepro.engines import EngineError, llama_cpp_server
from statrepro.engines.logprob_probe import PROBE_PROMPT, judge_echo, probe_prompt_logprobs, require_prompt_logprobs


def _answer(tokens, values, tops):
    return {"choices": [{"text": "".join(tokens), "logprobs": {"tokens": tokens, "token_logprobs": values, "top_logprobs": tops}}]}


def _counting_tokens():
    tokens, rest = [], PROBE_PROMPT
    for part in PROBE_PROMPT.split(" "):
        piece = part if not tokens else " " + part
        tokens.append(piece)
        rest = rest[len(piece):]
    assert "".join(tokens) == PROBE_PROMPT and not rest
    return tokens + [", 21"]  # the one generated token


def test_aligned_values_pass_and_next_token_values_fail():
    tokens = _counting_tokens()
    good = [None] + [-0.05] * (len(tokens) - 1)
    tops = [None] + [{t: -0.05} for t in tokens[1:]]
    assert judge_echo(_answer(tokens, good, tops)).usable
    # Misaligned: each token's value comes from the distribution over the next one, so it is never the top-1.
    shifted = [None] + [-12.0] * (len(tokens) - 1)
    shifted_tops = [None] + [{"x": -0.05, t: -12.0} for t in tokens[1:]]
    result = judge_echo(_answer(tokens, shifted, shifted_tops))
    assert not result.usable and "value check" in result.reason and result.top1_fraction == 0.0


@pytest.mark.parametrize(
    "answer, reason",
    [
        ({"choices": [{"text": "x"}]}, "no choices[0].logprobs"),
        (_answer(["1", ",", " 2"], [None, -1.0, -1.0], [None, {}, {}]), "do not reproduce the prompt"),
    ],
)
def test_shapes_that_cannot_be_scored(answer, reason):
    assert reason in judge_echo(answer).reason


def test_first_token_must_have_no_logprob():
    tokens = _counting_tokens()
    values = [-0.05] * len(tokens)
    assert "first prompt token" in judge_echo(_answer(tokens, values, [{t: -0.05} for t in tokens])).reason


def test_endpoint_without_prompt_logprobs_is_a_one_line_error_suggesting_gen(fake_openai):
    with pytest.raises(EngineError) as caught:
        require_prompt_logprobs(fake_openai.base_url, "fake-model", key="benchmarks.mmlu_redux.mode")
    message = str(caught.value)
    assert "\n" not in message and fake_openai.base_url in message and "benchmarks.mmlu_redux.mode: gen" in message
    sent = fake_openai.generation_requests()[0].body
    assert sent["echo"] is True and sent["logprobs"] == 1 and sent["max_tokens"] == 1


@pytest.mark.model
def test_real_llama_cpp_server_passes_and_fails_without_the_alignment(tmp_path, monkeypatch):
    """llama-cpp-python scores prompt tokens with the next token's row when the prompt has no BOS (SmolLM2):
    the kind's launcher realigns them; without it the probe must refuse the endpoint."""
    with llama_cpp_server(work_dir=tmp_path, n_threads=2) as info:
        good = probe_prompt_logprobs(info.base_url, info.served_model)
    assert good.usable and good.top1_fraction >= 0.9, good
    from statrepro.engines import llama_cpp

    monkeypatch.setattr(llama_cpp, "ALIGN", [])
    with llama_cpp_server(work_dir=tmp_path, n_threads=2) as info:
        bad = probe_prompt_logprobs(info.base_url, info.served_model)
    assert not bad.usable and bad.top1_fraction <= 0.2, bad
