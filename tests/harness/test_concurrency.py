"""engine.concurrency reaches both harnesses with one meaning: requests in flight, each with the job's seed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from statrepro.engines.servers import ServerInfo
from statrepro.envfile import validate_env
from statrepro.harness.contract import JobContext
from statrepro.harness.evalscope import build_evalscope_invocation
from statrepro.harness.lm_eval import build_lm_eval_invocation
from statrepro.run.plan import plan_jobs

ENDPOINT = ServerInfo(kind="openai", base_url="http://127.0.0.1:9/v1", served_model="m")


def _context(tmp_path: Path, **env) -> JobContext:
    config = validate_env(
        {"name": "e", "engine": {"kind": "openai", "base_url": ENDPOINT.base_url, "served_model": "m", **env.pop("engine", {})},
         "benchmarks": {"gsm8k": {"limit": 2}}, "seeds": [7], **env}
    )
    job = plan_jobs([config])[0]
    return JobContext(job, Path(os.environ["STATREPRO_DATA_DIR"]), tmp_path, tmp_path, ENDPOINT)


def _lm_eval_args(context: JobContext) -> dict[str, str]:
    argv = build_lm_eval_invocation(context).argv
    model_args = dict(part.split("=", 1) for part in argv[argv.index("--model_args") + 1].split(","))
    return {**model_args, "batch_size": argv[argv.index("--batch_size") + 1]}


def _eval_batch_size(context: JobContext) -> tuple[int, dict]:
    argv = build_evalscope_invocation(context).argv
    return int(argv[argv.index("--eval-batch-size") + 1]), json.loads(argv[argv.index("--generation-config") + 1])


@pytest.mark.parametrize("engine, expected", [({}, 8), ({"concurrency": 3}, 3)])  # 8: the openai kind's default
def test_concurrency_maps_to_num_concurrent_and_eval_batch_size(tmp_path, engine, expected):
    context = _context(tmp_path, engine=engine)
    args = _lm_eval_args(context)
    assert (args["num_concurrent"], args["batch_size"]) == (str(expected), "1")  # one prompt per request
    size, generation = _eval_batch_size(context)
    assert size == expected and generation["seed"] == 7  # the job's seed travels in every request


def test_sampled_requests_on_a_shared_rng_go_one_at_a_time(tmp_path):
    context = _context(tmp_path, engine={"concurrency": 16}, generation={"temperature": 0.7})
    assert _lm_eval_args(context)["num_concurrent"] == "1"
    assert _eval_batch_size(context)[0] == 1
