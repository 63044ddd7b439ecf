"""Engines: the retrying client against the fault-injecting fake, managed server lifecycles, and seeds
that really reach llama.cpp and transformers serve."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import gone, group_gone, wait_for

from statrepro.engines import (
    Completion,
    EngineError,
    OpenAIClient,
    RequestFailure,
    RetryPolicy,
    engine_endpoint,
    llama_cpp_server,
    transformers_server,
)
from statrepro.engines.process import managed_server
from statrepro.envfile import validate_env
from statrepro.errors import InputError
from statrepro.redaction import redact_secrets

SECRET = "sk-test-5ecret-value"
FAST = RetryPolicy(timeout_seconds=5.0, max_tries=4, base_delay_seconds=0.01, max_delay_seconds=0.05)


def client_for(fake, *, policy=FAST, api_key=None, sleeps=None):
    return OpenAIClient(fake.base_url, api_key=api_key, policy=policy, sleep=(sleeps.append if sleeps is not None else time.sleep))


# --- client against the fake -------------------------------------------------------------------


def test_completion_and_chat_send_generation_settings(fake_openai):
    fake_openai.answers["2+2="] = "4"
    with client_for(fake_openai, api_key=SECRET) as client:
        done = client.complete("2+2=", model="m", max_tokens=8, temperature=0.7, seed=3, stop=["\n"])
        chat = client.chat([{"role": "user", "content": "hi"}], model="m", max_tokens=4)
        models = client.list_models()
    assert isinstance(done, Completion) and done.text == "4" and done.tries == 1
    assert chat.ok and chat.text == "42"
    assert models == ["fake-model"]
    sent = fake_openai.generation_requests()[0]
    assert sent.body == {"model": "m", "max_tokens": 8, "temperature": 0.7, "seed": 3, "stop": ["\n"], "prompt": "2+2="}
    assert sent.headers["Authorization"] == f"Bearer {SECRET}"


@pytest.mark.parametrize("fault", ["429", "500", "drop", "malformed", "bad_shape", "slow"])
def test_transient_fault_is_retried_then_succeeds(fake_openai, fault):
    fake_openai.slow_seconds = 1.0
    policy = RetryPolicy(timeout_seconds=0.3, max_tries=3, base_delay_seconds=0.01, max_delay_seconds=0.05)
    fake_openai.script(fault, "ok")
    sleeps: list[float] = []
    with client_for(fake_openai, policy=policy, sleeps=sleeps) as client:
        outcome = client.complete("q", model="m", max_tokens=4)
    assert outcome.ok, outcome.summary()
    assert outcome.tries == 2 and len(fake_openai.generation_requests()) == 2
    assert len(sleeps) == 1


@pytest.mark.parametrize("fault", ["500", "429", "malformed", "drop"])
def test_retries_are_bounded_and_end_in_a_typed_failure(fake_openai, fault):
    fake_openai.script(*[fault] * 10)
    sleeps: list[float] = []
    with client_for(fake_openai, sleeps=sleeps) as client:
        outcome = client.complete("q", model="m", max_tokens=4)
    assert isinstance(outcome, RequestFailure)
    assert not outcome.permanent and outcome.tries == FAST.max_tries
    assert len(fake_openai.generation_requests()) == FAST.max_tries
    assert len(sleeps) == FAST.max_tries - 1
    assert "gave up after 4 tries" in outcome.summary()


def test_permanent_4xx_is_not_retried(fake_openai):
    fake_openai.script("400", "ok")
    with client_for(fake_openai) as client:
        outcome = client.complete("q", model="m", max_tokens=4)
    assert isinstance(outcome, RequestFailure)
    assert outcome.permanent and outcome.status == 400 and outcome.tries == 1
    assert len(fake_openai.generation_requests()) == 1
    with pytest.raises(EngineError) as raised:
        outcome.unwrap()
    assert "\n" not in str(raised.value) and "HTTP 400" in str(raised.value)


def test_server_that_dies_gives_a_failure_not_a_traceback(fake_openai):
    fake_openai.script("die")
    with client_for(fake_openai) as client:
        outcome = client.complete("q", model="m", max_tokens=4)
        models = client.list_models()
    assert fake_openai.dead
    assert isinstance(outcome, RequestFailure) and not outcome.permanent
    assert "connection failed" in outcome.reason
    assert isinstance(models, RequestFailure)


def test_backoff_grows_exponentially_within_jitter_and_honours_retry_after():
    policy = RetryPolicy(base_delay_seconds=1.0, max_delay_seconds=5.0, jitter_fraction=0.5)
    rng = random.Random(0)
    delays = [policy.delay(attempt, rng) for attempt in (1, 2, 3, 4, 5)]
    for attempt, delay in zip((1, 2, 3, 4, 5), delays):
        nominal = min(2 ** (attempt - 1), 5.0)
        assert 0.5 * nominal <= delay <= 1.5 * nominal
    assert delays[2] > delays[0]
    assert policy.delay(1, random.Random(0), retry_after=4.0) >= 4.0
    assert policy.delay(1, random.Random(0), retry_after=100.0) <= 5.0 * 1.5


def test_api_key_never_appears_in_failures_logs_or_repr(fake_openai, caplog):
    # The fake echoes the Authorization header into its error bodies, as careless servers do.
    fake_openai.script("500", "500", "500", "500", "400")
    with caplog.at_level(logging.WARNING, logger="statrepro.engines"):
        with client_for(fake_openai, api_key=SECRET) as client:
            exhausted = client.complete("q", model="m", max_tokens=4)
            rejected = client.complete("q", model="m", max_tokens=4)
            assert SECRET not in repr(client)
    assert "Authorization: Bearer ***" in rejected.reason
    for text in (exhausted.reason, exhausted.summary(), rejected.reason, str(rejected.to_dict()), caplog.text):
        assert SECRET not in text
    assert len(caplog.records) == 3  # one warning per retried 500
    assert redact_secrets(f"a {SECRET} b", [SECRET, ""]) == "a *** b"


# --- process lifecycle (cheap stand-in servers) ------------------------------------------------

HTTP_SERVER = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1"]


def test_managed_server_starts_and_always_stops(tmp_path):
    with managed_server(lambda port: [*HTTP_SERVER, str(port)], name="http", log_path=tmp_path / "s.log", ready_path="/") as (
        port,
        process,
    ):
        assert process.poll() is None and port > 0
    assert gone(process.pid)

    for raised in (RuntimeError("body failed"), KeyboardInterrupt()):
        with pytest.raises(type(raised)):
            with managed_server(lambda port: [*HTTP_SERVER, str(port)], name="http", log_path=tmp_path / "s.log", ready_path="/") as (
                _,
                process,
            ):
                raise raised
        assert gone(process.pid)


def test_ctrl_c_in_the_parent_stops_the_server(tmp_path):
    # A real SIGINT to a process that holds a managed server, as a terminal Ctrl-C delivers it.
    holder = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from statrepro.engines.process import managed_server\n"
        "command = lambda port: [sys.executable, '-m', 'http.server', '--bind', '127.0.0.1', str(port)]\n"
        "with managed_server(command, name='http', log_path=Path(sys.argv[1]), ready_path='/') as (_, server):\n"
        "    print(server.pid, flush=True)\n"
        "    time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", holder, str(tmp_path / "s.log")], stdout=subprocess.PIPE, text=True)
    try:
        server_pid = int(parent.stdout.readline())
        assert not gone(server_pid)
        parent.send_signal(signal.SIGINT)
        assert parent.wait(timeout=30) != 0  # ended by KeyboardInterrupt, not by finishing the sleep
    finally:
        parent.kill()
        parent.wait()
    assert gone(server_pid)


def test_stop_kills_the_whole_group_even_if_sigterm_is_ignored(tmp_path):
    # The server ignores SIGTERM and has a child: both must be gone after the context ends.
    script = (
        "import signal, subprocess, sys, http.server\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "subprocess.Popen(['sleep', '300'])\n"
        "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), http.server.SimpleHTTPRequestHandler).serve_forever()\n"
    )
    with managed_server(
        lambda port: [sys.executable, "-c", script, str(port)],
        name="stubborn",
        log_path=tmp_path / "s.log",
        ready_path="/",
        grace_seconds=0.5,
    ) as (_, process):
        pgid = process.pid
    assert process.returncode == -signal.SIGKILL
    wait_for(lambda: group_gone(pgid), 5, "the orphaned child to be reaped by init")


def test_server_that_exits_at_startup_fails_fast_with_its_log(tmp_path):
    script = "import sys; print('model file is corrupt', file=sys.stderr); sys.exit(3)"
    with pytest.raises(EngineError) as raised:
        with managed_server(lambda port: [sys.executable, "-c", script], name="broken", log_path=tmp_path / "b.log", startup_timeout=60):
            pytest.fail("body must not run")
    message = str(raised.value)
    assert "exited with code 3" in message and "model file is corrupt" in message and "\n" not in message


def test_server_that_never_answers_times_out_and_is_stopped(tmp_path):
    pid_file = tmp_path / "pid"
    mute = ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 300"]
    with pytest.raises(EngineError, match="did not answer"):
        with managed_server(lambda port: mute, name="mute", log_path=tmp_path / "m.log", startup_timeout=1):
            pytest.fail("body must not run")
    assert gone(int(pid_file.read_text()))


# --- env -> endpoint mapping -------------------------------------------------------------------


def make_env(kind, *, quantization="none", base_url=None, served_model=None, api_key=None, repeat_penalty=None):
    return validate_env(dict(
        name="engines-test",
        engine={"kind": kind, "base_url": base_url, "served_model": served_model, "api_key": api_key},
        model={"quantization": quantization},
        generation={"repeat_penalty": repeat_penalty},
    ))


def test_engine_endpoint_for_in_process_and_external_engines(tmp_path, fake_openai):
    with engine_endpoint(make_env("hf"), tmp_path) as info:
        assert info is None
    with engine_endpoint(make_env("openai", base_url=fake_openai.base_url + "/", served_model="named"), tmp_path) as info:
        assert info.base_url == fake_openai.base_url and info.served_model == "named" and info.pid is None
        assert OpenAIClient(info.base_url).complete("q", model=info.served_model, max_tokens=2).ok
    # Without served_model the endpoint's only model is used, asked for with the API key.
    with engine_endpoint(make_env("openai", base_url=fake_openai.base_url, api_key=SECRET), tmp_path) as info:
        assert info.served_model == "fake-model"
        assert SECRET not in str(info.to_dict())
    assert fake_openai.requests[-1].headers["Authorization"] == f"Bearer {SECRET}"


@pytest.mark.parametrize(
    "env",
    [
        make_env("openai", base_url="http://127.0.0.1:9/v1"),  # nothing listens: no model list
        make_env("hf", quantization="fp8"),
        make_env("transformers-serve", quantization="gguf"),
    ],
)
def test_engine_endpoint_rejects_unusable_settings_as_input_errors(tmp_path, env):
    with pytest.raises(InputError):
        with engine_endpoint(env, tmp_path):
            pytest.fail("body must not run")


# --- real servers ------------------------------------------------------------------------------

PROMPT = "Once upon a time"


def sample_texts(info, seeds, temperature, max_tokens=8):
    with OpenAIClient(info.base_url, policy=RetryPolicy(timeout_seconds=120, max_tries=2)) as client:
        return [
            client.complete(PROMPT, model=info.served_model, max_tokens=max_tokens, temperature=temperature, seed=seed).unwrap().text
            for seed in seeds
        ]


def assert_seeds_reach_the_model(info):
    sampled = sample_texts(info, [1, 2, 3, 1], temperature=1.0)
    assert len(set(sampled[:3])) >= 2, f"different seeds gave identical samples: {sampled}"
    assert sampled[3] == sampled[0], f"the same seed gave different samples: {sampled}"
    greedy = sample_texts(info, [1, 2, 3], temperature=0.0)
    assert len(set(greedy)) == 1 and greedy[0].strip(), f"greedy output depends on the seed: {greedy}"


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    pytest.importorskip("llama_cpp")
    with llama_cpp_server(work_dir=tmp_path_factory.mktemp("llama")) as info:
        yield info


@pytest.mark.model
def test_llama_cpp_request_seed_reaches_the_model(llama_server):
    assert llama_server.supports_request_seed
    assert_seeds_reach_the_model(llama_server)


@pytest.mark.model
def test_llama_cpp_reports_its_defaults_and_serves_chat(llama_server):
    assert llama_server.effective_defaults["repeat_penalty"] == 1.1  # llama.cpp's own default, read from the server
    assert llama_server.base_url.startswith("http://127.0.0.1:")
    with OpenAIClient(llama_server.base_url) as client:
        assert client.list_models() == [llama_server.served_model]
        chat = client.chat([{"role": "user", "content": "Say hello."}], model=llama_server.served_model, max_tokens=8)
    assert chat.ok and chat.text.strip()


@pytest.mark.model
def test_llama_cpp_repeat_penalty_becomes_the_server_default(tmp_path):
    pytest.importorskip("llama_cpp")
    prompt = "List: apple, apple, apple, apple,"
    env = make_env("llama-cpp", repeat_penalty=1.0)
    with engine_endpoint(env, tmp_path) as info:
        assert info.effective_defaults["repeat_penalty"] == 1.0
        with OpenAIClient(info.base_url) as client:
            def text(**extra):
                return client.complete(prompt, model=info.served_model, max_tokens=16, extra=extra).unwrap().text

            omitted, explicit_one, llama_default = text(), text(repeat_penalty=1.0), text(repeat_penalty=1.1)
        pid = info.pid
    assert omitted == explicit_one
    assert omitted != llama_default  # the penalty matters on this prompt, so the check above can fail
    assert gone(pid)


@pytest.mark.model
@pytest.mark.slow
def test_transformers_serve_answers_and_honours_request_seed(tmp_path):
    pytest.importorskip("fastapi")
    with transformers_server(work_dir=tmp_path, dtype="float32") as info:
        assert info.served_model.endswith("served-model") and info.supports_request_seed
        assert_seeds_reach_the_model(info)
        pid = info.pid
    assert gone(pid)
