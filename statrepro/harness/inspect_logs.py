"""inspect_ai evaluation logs -> records table (reading only: statrepro does not run inspect).

An inspect run writes one log per task: a ``.eval`` zip (``header.json`` + ``samples/<id>_epoch_<n>.json``)
or a ``.json`` file (``{"version", "status", "eval", "plan", "results", "samples"}``). Logs are read with
inspect_ai's own log API (``inspect_ai.log.read_eval_log``), which knows every format version and the zstd
compression of recent ``.eval`` files, so reading them needs ``pip install inspect_ai``.

One sample is one item in one epoch: epochs are the runs. The item key is ``<task>/<sample id>``, the task
name is the subset. The item score is the primary scorer's value (the first scorer of the log, or the one a
``--metric TASK=SCORER`` override names; ``SCORER/KEY`` for a scorer that returns a dict), with inspect's
letter grades mapped as inspect does: C=1, I=0, P=0.5, N=0. A multiple-choice sample generated with logprobs and
top_logprobs gives ``choice_logprobs``: each letter's log-probability at the answer letter (answer_letter_logprobs).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import InputError
from .contract import HarnessAdapter, SentPrompt, short_hash
from .evalscope import prompt_hash, target_text
from .files import all_files, benchmark_for_task, error_reason
from .records import check_unique, coerce_score, make_records, messages_text

if TYPE_CHECKING:
    from inspect_ai.log import EvalLog, EvalSample

# inspect_ai.scorer's CORRECT, INCORRECT, PARTIAL and NOANSWER, valued as its value_to_float does.
LETTER_SCORES = {"C": 1.0, "I": 0.0, "P": 0.5, "N": 0.0}
# A JSON log begins with these keys (inspect writes "version" first); read this much to recognise one.
_JSON_HEAD_BYTES = 4096


def is_inspect_log(path: Path) -> bool:
    """An inspect ``.eval`` zip, or a ``.json`` file whose head looks like an inspect log."""
    if path.suffix == ".eval":
        return True
    if path.suffix != ".json":
        return False
    with open(path, "rb") as handle:
        head = handle.read(_JSON_HEAD_BYTES).decode("utf-8", errors="replace")
    return re.match(r'\s*\{\s*"version"\s*:', head) is not None and '"eval"' in head


def log_files(path: Path) -> list[Path]:
    return [file for file in all_files(path) if is_inspect_log(file)]


def read_log(path: Path, *, header_only: bool = False) -> EvalLog:
    """One log through inspect's API; a damaged file is a located InputError, not a traceback."""
    try:
        from inspect_ai.log import read_eval_log
    except ImportError:
        raise InputError("reading inspect_ai logs needs inspect_ai installed (pip install inspect_ai)", path=path) from None
    try:
        return read_eval_log(str(path), header_only=header_only)
    except Exception as error:  # inspect raises zip, JSON, pydantic and its own errors for a damaged log
        raise InputError(f"not a readable inspect_ai log ({error_reason(error)})", path=path) from None


def score_value(value: Any, *, path: Path, key: str) -> float:
    """A Score.value as a number: letter grades as inspect values them, numbers and booleans as they are."""
    if isinstance(value, str) and value in LETTER_SCORES:
        return LETTER_SCORES[value]
    return coerce_score(value, path=str(path), line=None, key=key)


def primary_scorer(log: EvalLog, override: str | None) -> tuple[str, str | None]:
    """(scorer name, key inside a dict value): the override, else the log's first scorer."""
    if override:
        scorer, _, key = override.partition("/")
        return scorer, key or None
    names = [score.name for score in log.results.scores] if log.results and log.results.scores else []
    names = names or [scorer.name for scorer in log.eval.scorers or []]
    if not names:
        raise InputError("log names no scorer", path=log.location, key="results.scores")
    return names[0], None


def sent_messages(sample: EvalSample) -> tuple[dict, ...]:
    """The conversation up to the model's first answer: what inspect sent for the item."""
    sent = []
    for message in sample.messages:
        if message.role == "assistant":
            break
        sent.append({"role": message.role, "content": message.text})
    return tuple(sent)


_ANSWER_SO_FAR = re.compile(r"ANSWER\s*:\s*$", re.IGNORECASE)


def answer_letter_logprobs(sample: EvalSample) -> list[float] | None:
    """A multiple-choice sample's per-choice scores where the log holds them (generated with ``logprobs`` and
    ``top_logprobs``): at the token that writes the answer letter after ``ANSWER:`` (the multiple_choice solver's
    format), each letter's log-probability from that position's ``top_logprobs`` (case and leading-space variants
    of a letter pooled), letters in the order shown. That is the next-token letter distribution after the model's own
    prefix (kind ``answer_letter_token``). None when the sample has no choices, no such token, several targets, or
    a letter outside the top-k (its probability is then unknown, not 0)."""
    output = sample.output
    if not sample.choices or output is None or not output.choices or output.choices[0].logprobs is None:
        return None
    if isinstance(sample.target, list) and len(sample.target) > 1:
        return None
    letters = [chr(ord("A") + index) for index in range(len(sample.choices))]
    written = ""
    for token in output.choices[0].logprobs.content:
        if token.token.strip().upper() in letters and _ANSWER_SO_FAR.search(written):
            pooled: dict[str, float] = {}
            for alternative in token.top_logprobs or []:
                letter = alternative.token.strip().upper()
                if letter in letters:
                    pooled[letter] = float(np.logaddexp(pooled.get(letter, -np.inf), alternative.logprob))
            return [pooled[letter] for letter in letters] if len(pooled) == len(letters) else None
        written += token.token
    return None


def sample_rows(log: EvalLog, path: Path, metric_overrides: dict[str, str]) -> list[dict]:
    """The rows of one log: one per (sample, epoch) that was scored."""
    task = log.eval.task.split("/")[-1]
    benchmark = benchmark_for_task(task)
    scorer, value_key = primary_scorer(log, metric_overrides.get(task) or metric_overrides.get(benchmark))
    seed = generation_config(log).get("seed")
    rows = []
    for sample in log.samples or []:
        where = f"samples[{sample.id} epoch {sample.epoch}]"
        if not sample.scores:
            if sample.error is not None:
                continue  # the sample failed: the item is missing, not 0
            raise InputError("sample has no scores", path=path, key=f"{where}.scores")
        if scorer not in sample.scores:
            present = ", ".join(sample.scores)
            raise InputError(f"scorer {scorer!r} not in the sample's scores (present: {present})", path=path, key=f"{where}.scores")
        score = sample.scores[scorer]
        value = score.value
        if isinstance(value, dict):
            if value_key not in value:
                raise InputError(
                    f"scorer {scorer!r} gives several values ({', '.join(value)}); name one with --metric {task}={scorer}/KEY",
                    path=path, key=f"{where}.scores.{scorer}",
                )
            value = value[value_key]
        letters = answer_letter_logprobs(sample)
        rows.append({
            "benchmark": benchmark,
            "subset": task,
            "item_key": f"{task}/{sample.id}",
            "run_id": f"{path.stem}/epoch={sample.epoch}",
            "seed": seed,
            "metric": scorer if value_key is None else f"{scorer}/{value_key}",
            "score": score_value(value, path=path, key=f"{where}.scores.{scorer}.value"),
            "prediction": score.answer if score.answer is not None else (sample.output.completion if sample.output else None),
            "output": sample.output.completion if sample.output else None,
            "prompt": messages_text(sent_messages(sample)),
            "target": target_text(sample.target),
            "choice_logprobs": letters,
            "choice_logprob_kind": None if letters is None else "answer_letter_token",
            "prompt_hash": prompt_hash(list(sent_messages(sample))),
            "doc_hash": None,
            "model": log.eval.model,
            "source": str(path),
        })
    return rows


# ---------------------------------------------------------------------------------------------
# Doctor factors: what the log's header records.


def generation_config(log: EvalLog) -> dict[str, Any]:
    """The generation settings in effect: the eval's (plan) config over the model's own."""
    model_config = log.eval.model_generate_config.model_dump(exclude_none=True) if log.eval.model_generate_config else {}
    plan_config = log.plan.config.model_dump(exclude_none=True) if log.plan and log.plan.config else {}
    return {**model_config, **plan_config}


def _plan_template(log: EvalLog, solver: str) -> str | None:
    steps = [step for step in (log.plan.steps if log.plan else []) if step.solver == solver]
    return str(steps[-1].params.get("template")) if steps else None


def doctor_factors_of_log(log: EvalLog) -> dict[str, Any]:
    config = generation_config(log)
    task_args = log.eval.task_args or {}
    system = _plan_template(log, "system_message") or config.get("system_message")
    return {
        "harness": "inspect_ai",
        "harness_version": (log.eval.packages or {}).get("inspect_ai"),
        "model": log.eval.model,
        "engine": log.eval.model.split("/", 1)[0],  # the inspect model provider (openai, vllm, hf, ...)
        "temperature": config.get("temperature"),
        "top_p": config.get("top_p"),
        "max_tokens": config.get("max_tokens"),
        "seed": config.get("seed"),
        "stop": json.dumps(config["stop_seqs"]) if "stop_seqs" in config else None,
        # inspect records the solver plan, so a plan without a system message step sent none.
        "system_instruction": short_hash(system) or "none",
        "prompt": short_hash(_plan_template(log, "prompt_template")),
        "num_fewshot": task_args.get("num_fewshot", task_args.get("fewshot")),
        "endpoint": log.eval.model_base_url,
    }


class InspectHarness(HarnessAdapter):
    """Reads inspect_ai logs: one ``.eval`` or ``.json`` log, or a directory of them (each task one log)."""

    name = "inspect_ai"
    output_description = "logs: *.eval, *.json"
    # inspect_ai's built-in scorers grade C/I (or F1), read as 1/0.
    unit_range_metrics = frozenset(
        {"match", "includes", "choice", "exact", "f1", "pattern", "answer", "model_graded_qa", "model_graded_fact"}
    )

    def build_invocation(self, context):
        raise InputError("harness inspect_ai is reading only: run inspect yourself and analyze its logs", key="harness.name")

    def detect(self, path: Path) -> bool:
        path = Path(path)
        return is_inspect_log(path) if path.is_file() else bool(log_files(path))

    def doctor_factors(self, path: Path) -> dict[str, Any] | None:
        """Factors of the last log under a directory, or of one log."""
        path = Path(path)
        found = log_files(path) if path.exists() else []
        return doctor_factors_of_log(read_log(found[-1], header_only=True)) if found else None

    def sent_prompts(self, path: Path) -> dict[str, SentPrompt]:
        """Each sample's messages before the model's first answer (its input and any solver-added system message)."""
        prompts: dict[str, SentPrompt] = {}
        for file in log_files(Path(path)):
            log = read_log(file)
            task = log.eval.task.split("/")[-1]
            for sample in log.samples or []:
                messages = sent_messages(sample)
                if messages:
                    prompts.setdefault(f"{task}/{sample.id}", SentPrompt(messages=messages))
        return prompts

    def load(self, path: Path, *, metric_overrides: dict[str, str]) -> pd.DataFrame:
        path = Path(path)
        files = log_files(path)
        if not files:
            raise InputError("no inspect_ai log (*.eval or *.json)", path=path)
        rows = [row for file in files for row in sample_rows(read_log(file), file, metric_overrides)]
        if not rows:
            raise InputError("inspect_ai logs hold no scored samples", path=path)
        records = make_records(rows)
        check_unique(records, str(path))
        return records
