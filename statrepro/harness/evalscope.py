"""evalscope work dirs -> records table.

An evalscope run writes ``<work_dir>/<timestamp>/`` with ``configs/task_config.yaml``, ``predictions/<model>/``,
``reports/<model>/<benchmark>.json`` and ``reviews/<model>/<benchmark>_<subset>.jsonl``. One review line is a
``ReviewResult`` dump: ``index`` (sample id), ``target`` (accepted answers), ``messages`` and ``sample_score``
= {``score``: {``value``: {metric: number}, ``main_score_name``, ``status``, ``prediction``,
``extracted_prediction``}, ``sample_id``, ``group_id`` (the document), ``generation_index`` (the repeat)}.
Repeats (``repeats: k``) share ``group_id`` and differ in ``generation_index``: they are runs here; several
timestamped work dirs are further runs. A benchmark whose evalscope copies are a custom dataset scored by
statrepro (``Benchmark.evalscope_rescored``, e.g. LiveBench through general_qa) has each raw ``prediction``
rescored on read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..engines.kinds import ENGINE_KINDS, engine_kind
from ..errors import InputError
from .records import check_unique, coerce_score, content_text, make_records, messages_text
from .contract import (
    HarnessAdapter, Invocation, SentPrompt, guarded_client_timeout, harness_environment, mode_factor, per_task, short_hash,
)
from .files import all_files, benchmark_for_task, iter_jsonl

if TYPE_CHECKING:
    from ..benchmarks.base import ScoredPrediction
    from ..benchmarks.spec import Benchmark

_MARKER_DIRS = ("reviews", "predictions", "reports")
# Custom-dataset benchmarks: the subset (the user's dataset name) decides the statrepro benchmark.
_CUSTOM_DATASETS = ("general_qa", "general_mcq")


def _evalscope_names() -> list[str]:
    """evalscope benchmark names that can prefix a review file, besides those a run's task_config lists."""
    from ..benchmarks import BENCHMARKS

    names = [name for benchmark in BENCHMARKS.values() for name in (benchmark.name, *benchmark.evalscope_names)]
    return names + list(_CUSTOM_DATASETS)
# Statuses whose score may enter aggregation (evalscope.constants.ScoreStatus); others mean "no score".
_USABLE_STATUSES = ("success", "fallback")


@dataclass
class WorkDir:
    """One evalscope run directory and its review files."""

    root: Path
    reviews: list[Path] = field(default_factory=list)
    task_config: Path | None = None


def find_work_dirs(path: Path) -> list[WorkDir]:
    """Every evalscope work dir under ``path`` (a dir with reviews/, predictions/, reports/ or configs/task_config.yaml)."""
    work_dirs: dict[Path, WorkDir] = {}
    for file in all_files(path):
        parts = file.parts
        if file.name == "task_config.yaml" and file.parent.name == "configs":
            work_dirs.setdefault(file.parent.parent, WorkDir(file.parent.parent)).task_config = file
        elif len(parts) >= 3 and parts[-3] in _MARKER_DIRS and file.suffix in (".jsonl", ".json"):
            # lm-eval output that happens to sit in a folder named like evalscope's is not a work dir.
            if file.name.startswith(("results", "samples_")) or (parts[-3] == "reports" and file.suffix != ".json"):
                continue
            if parts[-3] == "predictions" and file.suffix == ".json":
                continue  # evalscope's predictions are JSONL; predictions/<model>/<dataset>.json is OpenCompass's
            root = file.parent.parent.parent
            work_dir = work_dirs.setdefault(root, WorkDir(root))
            if parts[-3] == "reviews" and file.suffix == ".jsonl":
                work_dir.reviews.append(file)
    return [work_dirs[root] for root in sorted(work_dirs)]


def _load_task_config(path: Path | None) -> dict:
    if path is None:
        return {}
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            config = yaml.safe_load(handle)
    except UnicodeDecodeError:
        raise InputError("not UTF-8", path=path) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise InputError("invalid YAML", path=path, line=mark.line + 1 if mark else None) from None
    return config if isinstance(config, dict) else {}


def split_review_name(stem: str, benchmark_names: list[str]) -> tuple[str, str]:
    """``<benchmark>_<subset>`` -> (benchmark, subset); benchmark names contain '_' so the longest known wins."""
    for name in sorted(benchmark_names, key=len, reverse=True):
        if stem.startswith(name + "_"):
            return name, stem[len(name) + 1:]
    name, _, subset = stem.partition("_")
    return name, subset or "default"


def statrepro_benchmark(evalscope_name: str, subset: str, task_config: dict) -> str:
    """Map an evalscope benchmark (and, for custom datasets, its subset or dataset folder) to ours."""
    if evalscope_name not in _CUSTOM_DATASETS:
        return benchmark_for_task(evalscope_name)
    if subset.startswith("statrepro_"):
        return benchmark_for_task(subset)
    dataset_args = (task_config.get("dataset_args") or {}).get(evalscope_name) or {}
    folder = Path(str(dataset_args.get("dataset_id") or "")).name
    from ..benchmarks import BENCHMARKS

    return folder if folder in BENCHMARKS else benchmark_for_task(subset)


def prompt_hash(messages: object) -> str | None:
    """sha256 of the prompt messages (the final assistant answer left out), to spot prompt differences."""
    if not isinstance(messages, list) or not messages:
        return None
    prompt = messages[:-1] if isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant" else messages
    payload = [(m.get("role"), m.get("content")) for m in prompt if isinstance(m, dict)]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


def sent_messages(messages: object) -> tuple[dict, ...] | None:
    """The messages evalscope sent: the logged conversation without the model's final answer."""
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return None
    return tuple(messages[:-1] if messages[-1].get("role") == "assistant" else messages)


def output_text(review: dict, score: dict) -> str | None:
    """The raw completion: ``score.prediction``, else the logged conversation's final assistant message."""
    if isinstance(score.get("prediction"), str):
        return score["prediction"]
    messages = review.get("messages")
    last = messages[-1] if isinstance(messages, list) and messages else None
    if isinstance(last, dict) and last.get("role") == "assistant":
        return content_text(last.get("content"))
    return None


def target_text(target: object) -> str | None:
    if target is None:
        return None
    if isinstance(target, list):
        return str(target[0]) if len(target) == 1 else json.dumps(target, ensure_ascii=False)
    return str(target)


def _user_prompt(messages: object) -> str | None:
    """The text of the last user message: the prompt evalscope sent."""
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"] if isinstance(messages, list) else []
    content = users[-1].get("content") if users else None
    return content if isinstance(content, str) else None


def _rescore(review: dict, score: dict, spec: Benchmark, *, path: Path, line: int) -> ScoredPrediction:
    """statrepro's score of the review's raw prediction, located InputErrors for what it lacks."""
    texts = {
        "sample_score.score.prediction": score.get("prediction"),
        "target": target_text(review.get("target")),
        "messages": _user_prompt(review.get("messages")),
    }
    for key, value in texts.items():
        if not isinstance(value, str):
            raise InputError("review has no text to rescore", path=path, line=line, key=key)
    prediction, target, prompt = texts.values()
    try:
        return spec.score_evalscope_prediction(prediction, target=target, prompt=prompt)
    except InputError as error:
        raise InputError(error.message, path=path, line=line, key=error.key) from None


def document_of(review: dict, *, path: Path, line: int) -> object:
    """The review's document id (its group for repeated generations), which keys the item."""
    sample_score = review.get("sample_score") if isinstance(review.get("sample_score"), dict) else {}
    document = sample_score.get("group_id")
    document = review.get("index", sample_score.get("sample_id")) if document is None else document
    if document is None:
        raise InputError("review has neither index nor group_id", path=path, line=line)
    return document


def read_review_file(
    review_path: Path, *, benchmark: str, subset: str, metric_override: str | None, run_prefix: str,
    seed: int | None, model: str | None, rescorer: Benchmark | None = None,
) -> list[dict]:
    """The rows of one review file, streamed line by line; one row per (document, generation).

    With ``rescorer``, each raw prediction is scored by ``rescorer.score_evalscope_prediction`` (unless
    ``metric_override`` names one of evalscope's own metrics).
    """
    rows, seen = [], {}
    for line, review in iter_jsonl(review_path):
        sample_score = review.get("sample_score")
        score = sample_score.get("score") if isinstance(sample_score, dict) else None
        if not isinstance(score, dict):
            raise InputError("review has no sample_score.score object", path=review_path, line=line)
        values = score.get("value") or {}
        if not isinstance(values, dict):
            raise InputError("sample_score.score.value is not an object", path=review_path, line=line)
        rescored = _rescore(review, score, rescorer, path=review_path, line=line) if rescorer is not None else None
        if rescored is not None and metric_override in (None, rescored.metric):
            metric, value = rescored.metric, rescored.score
            prediction, target = score["prediction"], rescored.target
        else:
            metric = metric_override or score.get("main_score_name") or next(iter(values), None)
            if metric not in values:
                if str(score.get("status", "success")) not in _USABLE_STATUSES:
                    continue  # evalscope marks the score unavailable: the item is missing, not 0
                raise InputError(
                    f"metric {metric!r} not in sample_score.score.value (present: {', '.join(values) or 'none'})",
                    path=review_path,
                    line=line,
                    key="sample_score.score.value",
                )
            value = coerce_score(values[metric], path=str(review_path), line=line, key=f"value.{metric}")
            extracted = score.get("extracted_prediction")
            prediction = extracted if extracted is not None else score.get("prediction")
            target = target_text(review.get("target"))
        document = document_of(review, path=review_path, line=line)
        generation = sample_score.get("generation_index") or 0
        if (document, generation) in seen:
            raise InputError(
                f"duplicate item {document!r} generation {generation} (first on line {seen[(document, generation)]})",
                path=review_path,
                line=line,
            )
        seen[(document, generation)] = line
        rows.append(
            {
                "benchmark": benchmark,
                "subset": subset,
                "item_key": f"{subset}/{document}",
                "run_id": f"{run_prefix}/gen={generation}",
                "seed": seed,
                "metric": metric,
                "score": value,
                "prediction": prediction,
                "output": output_text(review, score),
                "prompt": messages_text(sent_messages(review.get("messages"))),
                "target": target,
                "prompt_hash": prompt_hash(review.get("messages")),
                "doc_hash": None,
                "model": model,
                "source": str(review_path),
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Doctor factors: the settings a task_config.yaml records.


def doctor_factors_of_task_config(task_config: dict[str, Any]) -> dict[str, Any]:
    """Factors of an evalscope configs/task_config*.yaml payload."""
    generation = task_config.get("generation_config") or {}
    dataset_args = task_config.get("dataset_args") or {}
    temperature = 0.0 if generation.get("do_sample") is False else generation.get("temperature")
    api = str(task_config.get("eval_type") or "").endswith("_api")
    return {
        "harness": "evalscope",
        "harness_version": task_config.get("evalscope_version") or task_config.get("version"),
        "system_instruction": short_hash(generation.get("system_prompt") or task_config.get("system_prompt")) or "none",
        "prompt": per_task({name: short_hash(args.get("prompt_template")) for name, args in dataset_args.items()}),
        "num_fewshot": per_task({name: args.get("few_shot_num") for name, args in dataset_args.items()}),
        "stop": json.dumps(generation.get("stop"), sort_keys=True) if "stop" in generation else None,
        "max_tokens": generation.get("max_tokens") or generation.get("max_new_tokens"),
        "seed": task_config.get("seed"),
        "temperature": temperature,
        "top_p": generation.get("top_p"),
        "repeat_penalty": generation.get("repetition_penalty") or generation.get("repeat_penalty"),
        # Against an API, eval_batch_size is the requests in flight, each with one prompt.
        "batch_size": 1 if api else task_config.get("eval_batch_size"),
        "concurrency": task_config.get("eval_batch_size") if api else None,
        "engine": task_config.get("eval_type"),
        "model": task_config.get("model_id") or task_config.get("model"),
        # evalscope scores multiple choice by generating the letter.
        "mode": mode_factor("gen" for name in dataset_args if _is_multiple_choice(name)),
        "endpoint": task_config.get("api_url") if api else None,
    }


def _is_multiple_choice(dataset: str) -> bool:
    from ..benchmarks import BENCHMARKS

    benchmark = BENCHMARKS.get(benchmark_for_task(dataset))
    return benchmark is not None and len(benchmark.modes) > 1


# ---------------------------------------------------------------------------------------------
# The run side: one statrepro job -> one `evalscope eval` command line against an OpenAI-compatible server.

# A placeholder key for local servers; a real key never goes on the command line unredacted (see run.jobs).
_NO_KEY = "EMPTY"


def build_evalscope_invocation(context):
    """Write the job's local datasets and build the `evalscope eval` command line (API engines only)."""
    import sys

    from ..benchmarks import BenchmarkOptions, get_benchmark

    job, env, endpoint = context.job, context.job.env, context.endpoint
    if engine_kind(env.engine.kind).capabilities.in_process:
        served = [name for name, kind in ENGINE_KINDS.items() if not kind.capabilities.in_process]
        raise InputError(
            "evalscope runs against an OpenAI-compatible server here (its in-process backend fails on "
            f"transformers 5.x): use an engine kind that serves one ({', '.join(served)})",
            key="engine.kind",
        )
    spec = get_benchmark(job.benchmark)
    if job.spec.mode in ("ppl", "clp"):
        raise InputError(
            f"evalscope scores multiple choice by generating the letter: set mode: gen, or harness lm-eval for mode {job.spec.mode}",
            key=f"benchmarks.{job.benchmark}.mode",
        )
    options = BenchmarkOptions(drop_flagged=job.spec.drop_flagged)
    datasets = spec.evalscope_dataset_args(
        context.work_dir / "tasks",
        data_dir=context.data_dir,
        limit=job.spec.limit,
        num_fewshot=job.spec.num_fewshot,
        subsets=job.spec.subsets,
        options=options,
        item_rows=job.spec.item_rows,
    )
    row_ids = spec.prepared_row_ids(
        datasets.item_counts, job.spec.item_rows, data_dir=context.data_dir, subsets=job.spec.subsets, options=options
    )
    generation = env.generation
    config = {"temperature": generation.temperature, "max_tokens": generation.max_tokens, "seed": job.seed}
    if generation.temperature > 0:
        config["top_p"] = generation.top_p
    if generation.repeat_penalty is not None:
        config["repetition_penalty"] = generation.repeat_penalty
    if generation.stop:
        config["stop"] = list(generation.stop)
    model_args = {}
    if context.guard_url:
        # The request guard (engines/relay.py) owns the retries: evalscope tries once (its `retries` counts tries)
        # with a timeout past the guard's whole budget, and its OpenAI client does not retry either.
        config |= {"retries": 1, "retry_interval": 0, "timeout": guarded_client_timeout(env.engine)}
        model_args["max_retries"] = 0
    output_dir = context.work_dir / "output"
    api_key = env.engine.api_key.get_secret_value() if env.engine.api_key else _NO_KEY
    argv = [
        sys.executable, "-c", "import sys; from evalscope.cli.cli import run_cmd; sys.exit(run_cmd())",
        "eval",
        "--model", endpoint.served_model,
        "--api-url", context.guard_url or endpoint.base_url,
        "--api-key", api_key,
        "--eval-type", "openai_api",
        "--datasets", *datasets.datasets,
        "--dataset-args", json.dumps(datasets.dataset_args),
        "--generation-config", json.dumps(config),
        *(["--model-args", json.dumps(model_args)] if model_args else []),
        # Requests in flight: the same meaning as lm-eval's num_concurrent.
        "--eval-batch-size", str(engine_kind(env.engine.kind).requests_in_flight(env)),
        "--work-dir", str(output_dir),
        "--no-timestamp",
        "--seed", str(job.seed),
        *env.harness.extra_args,
    ]
    manifest = {"evalscope_datasets": datasets.to_dict(), "dataset_sha256": datasets.dataset_sha256}
    return Invocation(
        argv=argv, output_dir=output_dir, env=harness_environment(context.work_dir), manifest=manifest, row_ids=row_ids
    )


def work_dirs_of(path: Path) -> list[WorkDir]:
    """The work dirs under ``path`` (or of one review file), each with reviews."""
    if path.is_file():
        work_dirs = [WorkDir(path.parent.parent.parent, [path])]
        config_path = work_dirs[0].root / "configs" / "task_config.yaml"
        work_dirs[0].task_config = config_path if config_path.is_file() else None
    else:
        work_dirs = find_work_dirs(path)
    for work_dir in work_dirs:
        if not work_dir.reviews:
            raise InputError("evalscope work dir without reviews/<model>/*.jsonl (did the review step run?)", path=work_dir.root)
    return work_dirs


def read_sent_prompts(path: Path) -> dict[str, SentPrompt]:
    """Item key -> the messages evalscope sent, from every review file under ``path``."""
    prompts: dict[str, SentPrompt] = {}
    for work_dir in work_dirs_of(Path(path)):
        names = _evalscope_names() + [str(name) for name in _load_task_config(work_dir.task_config).get("datasets") or []]
        for review_path in sorted(work_dir.reviews):
            _, subset = split_review_name(review_path.stem, names)
            for line, review in iter_jsonl(review_path):
                messages = sent_messages(review.get("messages"))
                if messages is None:
                    raise InputError("review has no messages (the prompt evalscope sent)", path=review_path, line=line, key="messages")
                prompts.setdefault(f"{subset}/{document_of(review, path=review_path, line=line)}", SentPrompt(messages=messages))
    return prompts


class EvalscopeHarness(HarnessAdapter):
    """Reads one evalscope work dir, or a directory of timestamped work dirs (each one more run)."""

    name = "evalscope"
    output_description = "a work dir with reviews/"
    # On its own evalscope retries without Retry-After and scores any 200 answer: statrepro's request guard
    # (engines/relay.py) stands between it and the served engine, and a request it gave up on is found again
    # by the review's logged messages (``sent_prompts``) and dropped as a missing run.
    guards_requests = True
    unit_range_metrics = frozenset({"acc", "AverageAccuracy", "mean_acc", "pass@1"})

    def build_invocation(self, context):
        """The `evalscope eval` command line of one statrepro job (see statrepro.run.jobs)."""
        return build_evalscope_invocation(context)

    def detect(self, path: Path) -> bool:
        path = Path(path)
        if path.is_file():
            return path.suffix == ".jsonl" and path.parent.parent.name == "reviews"
        return bool(find_work_dirs(path))

    def doctor_factors(self, path: Path) -> dict[str, Any] | None:
        """Factors of the last configs/task_config*.yaml under a directory, or of one such file."""
        path = Path(path)
        if path.is_dir():
            found = sorted(path.rglob("task_config*.yaml"))
            return doctor_factors_of_task_config(_load_task_config(found[-1])) if found else None
        if path.suffix.lower() not in (".yaml", ".yml"):
            return None
        config = _load_task_config(path)
        return doctor_factors_of_task_config(config) if {"datasets", "dataset_args", "eval_type"} & set(config) else None

    def sent_prompts(self, path: Path) -> dict[str, SentPrompt]:
        """From each review's logged ``messages`` (the final answer left out)."""
        return read_sent_prompts(path)

    def load(self, path: Path, *, metric_overrides: dict[str, str]) -> pd.DataFrame:
        from rich.progress import Progress

        from ..benchmarks import BENCHMARKS

        path = Path(path)
        work_dirs = work_dirs_of(path)
        rows: list[dict] = []
        with Progress(transient=True) as progress:
            reading = progress.add_task("reading evalscope reviews", total=sum(len(w.reviews) for w in work_dirs))
            for work_dir in work_dirs:
                config = _load_task_config(work_dir.task_config)
                generation_config = config.get("generation_config") or {}
                seed = generation_config.get("seed") if isinstance(generation_config, dict) else None
                seed = seed if isinstance(seed, int) else config.get("seed") if isinstance(config.get("seed"), int) else None
                run_prefix = (f"seed={seed}@" if seed is not None else "") + work_dir.root.name
                names = _evalscope_names() + [str(name) for name in config.get("datasets") or []]
                for review_path in sorted(work_dir.reviews):
                    evalscope_name, subset = split_review_name(review_path.stem, names)
                    benchmark = statrepro_benchmark(evalscope_name, subset, config)
                    # Only statrepro's custom-dataset copies carry what its scorers read; evalscope's adapters score themselves.
                    spec = BENCHMARKS.get(benchmark) if evalscope_name in _CUSTOM_DATASETS else None
                    rescorer = spec if spec is not None and spec.evalscope_rescored else None
                    rows += read_review_file(
                        review_path,
                        benchmark=benchmark,
                        subset=subset,
                        metric_override=metric_overrides.get(subset) or metric_overrides.get(benchmark),
                        run_prefix=run_prefix,
                        seed=seed,
                        model=config.get("model_id") or review_path.parent.name,
                        rescorer=rescorer,
                    )
                    progress.advance(reading)
        if not rows:
            raise InputError("evalscope reviews hold no usable scores", path=path)
        records = make_records(rows)
        check_unique(records, str(path))
        return records
