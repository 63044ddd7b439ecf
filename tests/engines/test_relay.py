"""The request guard (engines/relay.py) against the real llama.cpp server behind the fault proxy
(bench/fault_proxy.py): every fault of the matrix is retried and recovered, or, with its retries spent, a
placeholder plus a failure with its reason, never a spoiled answer passed on. Retry-After parsing and the
budget are unit-tested here too."""

from __future__ import annotations

import email.utils
import os
import random
import time

import httpx
import pytest

from statrepro.bench.fault_proxy import FAULTS, FaultProxy
from statrepro.engines.client import RetryPolicy, parse_retry_after
from statrepro.engines.relay import RequestRelay, answer_fault, process_alive

# Fast: a try may take 1.5 s, retries wait 0.05 s and up; stalls outlast the try.
POLICY = RetryPolicy(timeout_seconds=1.5, max_tries=3, base_delay_seconds=0.05, max_delay_seconds=0.2, budget_seconds=12.0)
LOGPROB_FAULTS = ("no-logprobs", "short-logprobs")


def test_the_matrix_names_every_fault_the_issue_lists():
    assert set(FAULTS) == {"429", "429-date", "500", "503", "reset", "stall", "truncated", "wrong-model", "no-logprobs", "short-logprobs"}


def test_retry_after_in_seconds_and_as_an_http_date():
    now = time.time()
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now=now) == 0.0  # a date in the past
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None and parse_retry_after("nan") is None


def test_retry_after_is_honoured_in_full_and_one_past_the_budget_ends_the_retries_at_once():
    rng = random.Random(0)
    policy = RetryPolicy.for_engine(max_retries=3, timeout=10.0)
    assert (policy.max_tries, policy.timeout_seconds, policy.budget_seconds) == (4, 10.0, 40.0)
    wait, _ = policy.next_wait(1, elapsed=0.0, rng=rng, retry_after=25.0)
    assert wait == 25.0  # longer than max_delay_seconds, still inside the budget: honoured as asked
    wait, why = policy.next_wait(1, elapsed=20.0, rng=rng, retry_after=25.0)
    assert wait is None and why == "gave up after 1 try: Retry-After 25 s exceeds the remaining budget (20.0 s)"
    wait, why = policy.next_wait(4, elapsed=0.0, rng=rng)
    assert wait is None and why == "gave up after 4 tries"
    backoffs = [policy.next_wait(attempt, 0.0, rng)[0] for attempt in (1, 2, 3)]
    assert 0.25 <= backoffs[0] <= 0.75 and 0.5 <= backoffs[1] <= 1.5 and 1.0 <= backoffs[2] <= 3.0  # doubling, jittered


def test_answer_validation_names_each_spoiled_answer():
    good = {"model": "m", "choices": [{"index": 0, "text": "x", "logprobs": {"tokens": ["a", "b"], "token_logprobs": [None, -1.0], "top_logprobs": [None, {"b": -1.0}]}}]}
    echo = {"model": "m", "prompt": "a", "logprobs": 1, "echo": True}
    assert answer_fault("/completions", echo, good) is None
    assert "wrong model" in answer_fault("/completions", echo, {**good, "model": "other"})
    assert answer_fault("/completions", echo, {"model": "m", "choices": [{"index": 0, "text": "x", "logprobs": None}]}) == "logprobs missing from the answer"
    short = {"model": "m", "choices": [{"index": 0, "text": "x", "logprobs": {**good["choices"][0]["logprobs"], "token_logprobs": [None]}}]}
    assert answer_fault("/completions", echo, short).startswith("logprobs of the wrong length")
    assert answer_fault("/chat/completions", {"model": "m"}, {"model": "m", "choices": []}) == "answer has no choices"


@pytest.fixture(scope="module")
def proxied_llama(tmp_path_factory):
    pytest.importorskip("llama_cpp")
    from statrepro.engines.llama_cpp import llama_cpp_server

    with llama_cpp_server(work_dir=tmp_path_factory.mktemp("llama"), repeat_penalty=1.0) as server:
        with FaultProxy(server.base_url, stall_seconds=2.5, retry_after=0.3) as proxy:
            yield server, proxy


def _request(fault: str, model: str) -> tuple[str, dict]:
    if fault in LOGPROB_FAULTS:  # a log-likelihood request, as lm-eval scores multiple choice
        return "/completions", {"model": model, "prompt": "The capital of France is Paris", "max_tokens": 1, "logprobs": 1, "echo": True, "temperature": 0}
    return "/completions", {"model": model, "prompt": "One, two, three,", "max_tokens": 2, "temperature": 0, "seed": 1}


# Representative faults in the default suite; the slower ones (waits of whole seconds, timeouts) in CI's slow phase.
SLOW_FAULTS = ("429-date", "500", "503", "stall", "no-logprobs")


@pytest.mark.model
@pytest.mark.parametrize("fault", [pytest.param(f, marks=pytest.mark.slow) if f in SLOW_FAULTS else f for f in FAULTS])
def test_each_fault_against_the_real_server_is_retried_then_recovered_or_missing_with_its_reason(proxied_llama, fault):
    server, proxy = proxied_llama
    path, body = _request(fault, server.served_model)
    clean = httpx.post(server.base_url + path, json=body, timeout=30).json()
    with RequestRelay(proxy.base_url, policy=POLICY) as relay:
        proxy.script(fault)  # the first try fails, the second gets through
        recovered = httpx.post(relay.base_url + path, json=body, timeout=30).json()
        proxy.script(*[fault] * POLICY.max_tries)  # every try fails
        spent = httpx.post(relay.base_url + path, json=body, timeout=30).json()
    proxy.clear()
    assert proxy.injected[fault] >= 1 + POLICY.max_tries
    assert answer_fault(path, body, recovered) is None
    assert recovered["choices"][0]["text"] == clean["choices"][0]["text"]  # the engine's own answer, unspoiled
    assert relay.stats.recovered == 1 and relay.stats.failed == 1 and relay.stats.retries == 1 + (POLICY.max_tries - 1)
    assert spent.get("statrepro_missing") is True and spent["choices"][0]["text"] == ""
    (failure,) = relay.failures
    assert failure["prompt"] == body["prompt"] and failure["tries"] == POLICY.max_tries
    expected = {"429": "HTTP 429", "429-date": "HTTP 429", "500": "HTTP 500", "503": "HTTP 503", "reset": "connection failed",
                "stall": "timed out", "truncated": "malformed answer (not JSON)", "wrong-model": "wrong model",
                "no-logprobs": "logprobs missing", "short-logprobs": "logprobs of the wrong length"}[fault]
    assert expected in failure["reason"] and "gave up after 3 tries" in failure["reason"]


@pytest.mark.model
def test_a_retry_after_past_the_budget_ends_the_retries_at_once(proxied_llama):
    server, proxy = proxied_llama
    path, body = _request("429", server.served_model)
    proxy.retry_after, policy = 30.0, RetryPolicy(timeout_seconds=2.0, max_tries=5, budget_seconds=10.0)
    try:
        with RequestRelay(proxy.base_url, policy=policy) as relay:
            proxy.script("429")
            spent = httpx.post(relay.base_url + path, json=body, timeout=30).json()
    finally:
        proxy.retry_after = 0.3
    assert spent.get("statrepro_missing") is True
    (failure,) = relay.failures
    assert failure["tries"] == 1 and "Retry-After 30 s exceeds the remaining budget" in failure["reason"]


def test_an_endpoint_that_refuses_connections_is_down_not_a_missing_item(tmp_path):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    policy = RetryPolicy(timeout_seconds=1.0, max_tries=2, base_delay_seconds=0.01, budget_seconds=5.0)
    with RequestRelay(f"http://127.0.0.1:{port}/v1", policy=policy, engine_alive=lambda: False) as relay:
        answer = httpx.post(relay.base_url + "/completions", json={"model": "m", "prompt": "x"}, timeout=10)
    assert answer.status_code == 502 and relay.failures == []
    assert relay.engine_down.startswith("the managed server is gone (its process died; connection refused")
    assert process_alive(os.getpid()) and not process_alive(2**22 + 1)
