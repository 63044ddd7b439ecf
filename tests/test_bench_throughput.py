"""`statrepro bench run`'s fake endpoint and its bad input (the figures themselves are printed, never asserted)."""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from typer.testing import CliRunner

from statrepro.bench.throughput import ANSWER, SERVED_MODEL, LatencyEndpoint
from statrepro.cli import app


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_latency_endpoint_serves_requests_in_parallel_and_counts_them():
    with LatencyEndpoint(latency=0.3) as endpoint:
        with urllib.request.urlopen(endpoint.base_url + "/models", timeout=30) as response:
            assert json.loads(response.read())["data"][0]["id"] == SERVED_MODEL
        chat = {"model": SERVED_MODEL, "messages": [{"role": "user", "content": "2+2?"}]}
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: _post(endpoint.base_url + "/chat/completions", chat), range(4)))
        assert {answer["choices"][0]["message"]["content"] for answer in answers} == {ANSWER}
        assert endpoint.requests == 4 and endpoint.max_in_flight == 4  # no request waited for another
        assert _post(endpoint.base_url + "/completions", {"prompt": "x"})["choices"][0]["text"] == ANSWER
        endpoint.reset()
        assert (endpoint.requests, endpoint.window_seconds) == (0, 0.0)


@pytest.mark.parametrize("args", [["--concurrency", "0"], ["--concurrency", "four"], ["--items", "0"]])
def test_bench_run_rejects_bad_input_in_one_line(args):
    result = CliRunner().invoke(app, ["bench", "run", *args])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and "--" in result.output
