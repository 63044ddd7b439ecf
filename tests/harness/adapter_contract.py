"""The shared harness adapter suite: what every adapter (built-in or plugin) must do. A plugin author calls
``check_adapter`` from a test of their own, with output their harness wrote (or ``run=True`` and a job
context, to let the suite run the harness itself):

    from adapter_contract import check_adapter

    def test_my_adapter(tmp_path):
        records = check_adapter(MyHarness(), output=tmp_path / "my-output", scratch=tmp_path / "scratch")
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest

from statrepro.errors import InputError
from statrepro.harness import get_harness
from statrepro.harness.contract import (
    DETERMINISM_FACTORS, DOCTOR_FACTORS, ENDPOINT_FACTOR, HarnessAdapter, Invocation, JobContext, SentPrompt,
)
from statrepro.harness.records import RECORD_COLUMNS, REQUIRED_COLUMNS


def check_invocation(adapter: HarnessAdapter, context: JobContext) -> Invocation:
    """``build_invocation`` gives an argument list (never a shell string) writing under the job's work dir."""
    invocation = adapter.build_invocation(context)
    assert isinstance(invocation, Invocation)
    assert invocation.argv and all(isinstance(arg, str) for arg in invocation.argv)
    assert context.work_dir in (invocation.output_dir, *invocation.output_dir.parents)
    assert all(isinstance(key, str) and isinstance(value, str) for key, value in invocation.env.items())
    json.dumps(invocation.manifest)  # goes into the run manifest as JSON
    return invocation


def run_invocation(invocation: Invocation, work_dir: Path) -> Path:
    """Run the harness as statrepro's run path does: argv, no shell, the invocation's environment on top."""
    completed = subprocess.run(
        invocation.argv, env={**os.environ, **invocation.env}, cwd=work_dir, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return invocation.output_dir


def check_records(records) -> None:
    """The records table of statrepro.harness.records: its columns in order, no gaps where they are required,
    finite scores, texts as text and one row per (benchmark, item, run)."""
    assert list(records.columns) == list(RECORD_COLUMNS)
    assert len(records) > 0
    for column in REQUIRED_COLUMNS:
        assert records[column].notna().all(), f"column {column!r} has nulls"
    assert records["score"].dtype == "float64" and all(math.isfinite(score) for score in records["score"])
    assert not records.duplicated(subset=["benchmark", "item_key", "run_id"]).any()
    for column in ("output", "prompt"):  # whole texts for the report's item browser, or null where not logged
        assert all(value is None or isinstance(value, str) for value in records[column]), f"column {column!r} holds non-text"


def check_doctor_factors(adapter: HarnessAdapter, output: Path, empty: Path) -> None:
    """Factors use the doctor's vocabulary, with plain JSON values; another format's path gives None."""
    factors = adapter.doctor_factors(output)
    if factors is not None:
        known = {*DOCTOR_FACTORS, *DETERMINISM_FACTORS, ENDPOINT_FACTOR}
        assert set(factors) <= known, set(factors) - known
        json.dumps(factors)
    assert adapter.doctor_factors(empty) is None


def check_adapter(
    adapter: HarnessAdapter,
    *,
    output: Path | None = None,
    scratch: Path,
    context: JobContext | None = None,
    run: bool = False,
):
    """Every rule of the contract; returns the records loaded from ``output`` for adapter-specific checks."""
    assert isinstance(adapter, HarnessAdapter), "missing a method of statrepro.harness.contract.HarnessAdapter"
    assert isinstance(get_harness(adapter.name), type(adapter)), f"{adapter.name!r} is not registered"
    assert isinstance(adapter.output_description, str) and adapter.output_description, "say what its output looks like"
    assert isinstance(adapter.unit_range_metrics, frozenset) and all(isinstance(m, str) for m in adapter.unit_range_metrics)
    assert isinstance(adapter.guards_requests, bool), "declare guards_requests (or subclass HarnessAdapter for False)"
    if context is not None:
        invocation = check_invocation(adapter, context)
        if run:
            output = run_invocation(invocation, context.work_dir)
    assert output is not None, "give the output of a harness run, or a context with run=True"
    empty = scratch / "empty"
    empty.mkdir(parents=True)
    assert adapter.detect(output)
    assert not adapter.detect(empty)
    records = adapter.load(output, metric_overrides={})
    check_records(records)
    with pytest.raises(InputError):
        adapter.load(empty, metric_overrides={})
    check_doctor_factors(adapter, output, empty)
    check_sent_prompts(adapter, output, records)
    return records


def check_sent_prompts(adapter: HarnessAdapter, output: Path, records) -> None:
    """Prompts are keyed like the records (explain replays exactly them); an output that records no prompts
    gives none."""
    prompts = adapter.sent_prompts(output)
    assert set(prompts) <= set(records["item_key"]), set(prompts) - set(records["item_key"])
    for prompt in prompts.values():
        assert isinstance(prompt, SentPrompt)
        assert (prompt.text is None) != (prompt.messages is None), "exactly one of text and messages"
        json.dumps(prompt.to_dict())
