"""lm-eval output -> records table.

``lm_eval --output_path OUT --log_samples`` writes, per invocation, ``OUT/<model>/results_<date>.json`` and one
``samples_<task>_<date>.jsonl`` per leaf task (``--output_path x.json`` writes ``x_<date>.json`` with the
samples beside it). One results file with its samples files is one run; several runs of the same task are
repeats (seeds). A samples line holds one document under one filter: doc_id, doc_hash, prompt_hash, target,
arguments (the requests sent: prompt and continuation or generation kwargs), resps (the raw responses),
filtered_resps, filter, metrics (the names of the per-metric keys on the same line).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..engines.kinds import engine_kind
from ..errors import InputError
from .records import check_unique, coerce_score, make_records, messages_text
from .contract import HarnessAdapter, mode_factor, Invocation, SentPrompt, guarded_client_timeout, harness_environment, per_task, short_hash
from .files import all_files, benchmark_for_task, iter_jsonl, read_json

# lm-eval's date_id: datetime.now().isoformat() with ':' replaced by '-'.
_DATE = r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?"
_RESULTS_NAME = re.compile(rf"^(?P<stem>.+)_(?P<date>{_DATE})\.json$")
_SAMPLES_NAME = re.compile(rf"^samples_(?P<task>.+)_(?P<date>{_DATE})\.jsonl$")
# Keys of results[task] that are not "<metric>,<filter>" values.
_NON_METRIC_KEYS = {"alias", "name", "sample_len", "sample_count", " ", ""}

def available_metrics(task_results: dict) -> list[str]:
    """The "<metric>,<filter>" pairs a task reports, in lm-eval's order (stderr entries left out)."""
    return [
        key
        for key, value in task_results.items()
        if key not in _NON_METRIC_KEYS and "," in key and "_stderr," not in key and not isinstance(value, (dict, list))
    ]


def choose_metric(benchmark: str, task: str, present: list[str], overrides: dict[str, str], *, path: Path) -> str:
    """The primary "<metric>,<filter>" of a task: the override (by task or benchmark), else the benchmark's
    ``lm_eval_metrics``, else the first pair the task reports."""
    override = overrides.get(task) or overrides.get(benchmark)
    if override:
        if override in present:
            return override
        # A bare metric name is enough when exactly one filter reports it.
        matches = [pair for pair in present if pair.split(",", 1)[0] == override]
        if len(matches) == 1:
            return matches[0]
        raise InputError(
            f"metric {override!r} for {benchmark} is not unique or not present in task {task!r}; "
            f"present: {', '.join(present) or 'none'}",
            path=path,
            key=f"results.{task}",
        )
    from ..benchmarks import BENCHMARKS

    preferred = BENCHMARKS[benchmark].lm_eval_metrics if benchmark in BENCHMARKS else ()
    for candidate in preferred:
        if candidate in present:
            return candidate
    if not present:
        raise InputError(f"task {task!r} reports no metrics (a --predict_only run?)", path=path, key=f"results.{task}")
    return present[0]


def _gen_kwargs_seed(gen_kwargs: object) -> int | None:
    """The 'seed' of lm-eval gen_kwargs, which are a dict or a 'k=v,k=v' string."""
    if isinstance(gen_kwargs, dict):
        value = gen_kwargs.get("seed")
    elif isinstance(gen_kwargs, str):
        pairs = dict(part.split("=", 1) for part in gen_kwargs.split(",") if "=" in part)
        value = pairs.get("seed")
    else:
        value = None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def sampling_seed(results: dict) -> int | None:
    """The seed sampling used: an explicit generation seed, else torch's seed (HF sampling), else Python's."""
    config = results.get("config") or {}
    seed = _gen_kwargs_seed(config.get("gen_kwargs"))
    if seed is None:
        task_seeds = {
            _gen_kwargs_seed((task_config or {}).get("generation_kwargs"))
            for task_config in (results.get("configs") or {}).values()
        } - {None}
        if len(task_seeds) == 1:
            seed = task_seeds.pop()
    for key in ("torch_seed", "random_seed", "seed"):
        if seed is None and isinstance(config.get(key), int):
            seed = config[key]
    return seed


def model_name(results: dict) -> str | None:
    config = results.get("config") or {}
    model_args = config.get("model_args")
    pretrained = model_args.get("pretrained") if isinstance(model_args, dict) else None
    return results.get("model_name") or pretrained or config.get("model")


def _log_likelihood(value: object, *, path: Path, line: int) -> float:
    """lm-eval logs multiple-choice responses as strings ("-12.3", "False"); parse them here."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"log-likelihood {str(value)[:40]!r} is not a number", path=path, line=line) from None


def choice_log_likelihoods(sample: dict, *, path: Path, line: int) -> list[float] | None:
    """A multiple-choice sample's per-choice log-likelihoods (``filtered_resps``: one ``[ll, is_greedy]`` per choice),
    in the task's choice order; None for a generation sample or a single continuation."""
    responses = sample.get("filtered_resps")
    if not isinstance(responses, list) or len(responses) < 2:
        return None
    if not all(isinstance(choice, list) and choice for choice in responses):
        return None
    return [_log_likelihood(choice[0], path=path, line=line) for choice in responses]


def _best_choice(sample: dict, metric: str, *, path: Path, line: int) -> int | None:
    """A multiple-choice sample's argmax choice (under ``acc_norm`` by log-likelihood per character of the choice,
    as lm-eval does); None for a generation sample or a single continuation."""
    scores = choice_log_likelihoods(sample, path=path, line=line)
    if scores is None:
        return None
    if metric.startswith("acc_norm"):
        continuations = [str(request.get("arg_1", "")) for request in _requests(sample)[: len(scores)]]
        continuations += [""] * (len(scores) - len(continuations))
        scores = [score / max(len(text), 1) for score, text in zip(scores, continuations)]
    return max(range(len(scores)), key=lambda i: -math.inf if math.isnan(scores[i]) else scores[i])


def prediction_of(sample: dict, metric: str, *, path: Path, line: int) -> str | None:
    """The filtered answer: the generated text, or for multiple choice the argmax choice index."""
    responses = sample.get("filtered_resps")
    if not isinstance(responses, list) or not responses:
        return None
    if all(isinstance(choice, list) and choice for choice in responses):
        if len(responses) == 1:
            return repr(_log_likelihood(responses[0][0], path=path, line=line))
        return str(_best_choice(sample, metric, path=path, line=line))
    first = responses[0]
    while isinstance(first, list) and first:
        first = first[0]
    return None if first is None else str(first)


def _requests(sample: dict) -> list[dict]:
    """The sample's requests (``arguments.gen_args_<i>``) in order; [] when not logged."""
    arguments = sample.get("arguments")
    if not isinstance(arguments, dict):
        return []
    return [arguments[key] for key in sorted(arguments, key=natural_order) if isinstance(arguments[key], dict)]


def prompt_text_of(sample: dict) -> str | None:
    """The prompt as text: the context of the first request (chat messages rendered as ``[role]`` blocks); for a
    single log-likelihood request (one continuation scored) the context followed by that continuation."""
    requests = _requests(sample)
    if not requests:
        return None
    context = requests[0].get("arg_0")
    if isinstance(context, list) and len(context) == 1 and isinstance(context[0], str):
        try:
            context = messages_text(json.loads(context[0])) or context[0]
        except ValueError:
            context = context[0]
    if not isinstance(context, str):
        return None
    continuation = requests[0].get("arg_1")
    return context + continuation if len(requests) == 1 and isinstance(continuation, str) else context


def output_of(sample: dict, metric: str, *, path: Path, line: int) -> str | None:
    """The raw output: for generation the first generated text before lm-eval's filters (``resps``), for
    multiple choice the text of the choice the model ranks first (the continuation of the predicted choice), and
    None for a single log-likelihood request, where nothing is chosen."""
    responses = sample.get("filtered_resps")
    if isinstance(responses, list) and responses and all(isinstance(choice, list) and choice for choice in responses):
        best = _best_choice(sample, metric, path=path, line=line)
        requests = _requests(sample)
        continuation = requests[best].get("arg_1") if best is not None and best < len(requests) else None
        return continuation if isinstance(continuation, str) else None
    first = sample.get("resps")
    while isinstance(first, list) and first:
        first = first[0]
    return first if isinstance(first, str) else None


@dataclass(frozen=True)
class LmEvalRun:
    """One lm-eval invocation: its results file and its samples file per leaf task."""

    results_path: Path
    date: str | None
    results: dict
    samples: dict[str, Path]


def _is_results_json(path: Path) -> bool:
    """A results JSON by its name, unless it is lighteval's (named alike, with config_general inside)."""
    if not (path.suffix == ".json" and (path.name.startswith("results") or bool(_RESULTS_NAME.match(path.name)))):
        return False
    from .lighteval import is_lighteval_results

    try:
        return not is_lighteval_results(read_json(path))
    except InputError:
        return True  # unreadable: loading it as lm-eval's says where and why


def find_runs(path: Path) -> list[LmEvalRun]:
    """Pair every results JSON with its samples files; orphans either way are bad input."""
    files = all_files(path)
    if path.is_file():
        if _SAMPLES_NAME.match(path.name) or path.suffix == ".jsonl":
            raise InputError("a samples file without its results_<date>.json; pass the output directory", path=path)
        results_files = [path]
        samples_files = [f for f in path.parent.iterdir() if _SAMPLES_NAME.match(f.name)]
    else:
        results_files = [f for f in files if _is_results_json(f)]
        samples_files = [f for f in files if _SAMPLES_NAME.match(f.name)]
    samples_by_run: dict[tuple[Path, str], dict[str, Path]] = {}
    for samples_path in samples_files:
        match = _SAMPLES_NAME.match(samples_path.name)
        samples_by_run.setdefault((samples_path.parent, match["date"]), {})[match["task"]] = samples_path
    runs, used = [], set()
    for results_path in results_files:
        results = read_json(results_path)
        if not isinstance(results.get("results"), dict):
            if path.is_file() or results_path.name.startswith("results"):
                raise InputError("not an lm-eval results file (no 'results' object)", path=results_path)
            continue
        match = _RESULTS_NAME.match(results_path.name)
        date = match["date"] if match else None
        available = samples_by_run.get((results_path.parent, date), {}) if date else {}
        leaf_tasks = sorted(results.get("configs") or {}) or sorted(available)
        if not leaf_tasks:
            raise InputError("results file lists no tasks", path=results_path, key="configs")
        missing = [task for task in leaf_tasks if task not in available]
        if missing:
            expected = f"samples_{missing[0]}_{date}.jsonl" if date else f"samples_{missing[0]}_<date>.jsonl"
            raise InputError(
                f"results without per-item samples: {expected} not found beside it (run lm-eval with --log_samples)",
                path=results_path,
                key=f"configs.{missing[0]}",
            )
        used.add((results_path.parent, date))
        runs.append(LmEvalRun(results_path, date, results, {task: available[task] for task in leaf_tasks}))
    if not path.is_file():
        for (directory, date), tasks in sorted(samples_by_run.items()):
            if (directory, date) not in used:
                orphan = sorted(tasks.values())[0]
                raise InputError(f"samples without results: no results_{date}.json beside it", path=orphan)
    return runs


def run_ids(runs: list[LmEvalRun]) -> dict[Path, tuple[str, int | None]]:
    """Stable run ids: ``seed=<s>`` when that seed's invocations cover disjoint tasks (one run split over
    several invocations), else ``seed=<s>@<date>`` so repeats with the same seed stay distinct."""
    by_seed: dict[int | None, list[LmEvalRun]] = {}
    for run in runs:
        by_seed.setdefault(sampling_seed(run.results), []).append(run)
    ids = {}
    for seed, group in by_seed.items():
        tasks = [task for run in group for task in run.samples]
        shared = seed is not None and len(tasks) == len(set(tasks))
        for run in group:
            stamp = run.date or run.results_path.stem
            if seed is None:
                ids[run.results_path] = (stamp, None)
            else:
                ids[run.results_path] = (f"seed={seed}" if shared else f"seed={seed}@{stamp}", seed)
    return ids


def read_task_samples(
    samples_path: Path, *, task: str, benchmark: str, metric: str, run_id: str, seed: int | None, model: str | None
) -> list[dict]:
    """The rows of one task's samples file under the chosen metric's filter, streamed line by line."""
    metric_name, filter_name = metric.split(",", 1)
    rows, seen_docs = [], {}
    for line, sample in iter_jsonl(samples_path):
        if sample.get("filter", "none") != filter_name:
            continue
        if "doc_id" not in sample:
            raise InputError("sample has no doc_id", path=samples_path, line=line)
        doc_id = sample["doc_id"]
        if doc_id in seen_docs:
            raise InputError(
                f"duplicate doc_id {doc_id!r} (first on line {seen_docs[doc_id]}) for filter {filter_name!r}",
                path=samples_path,
                line=line,
            )
        seen_docs[doc_id] = line
        if metric_name not in sample:
            present = [name for name in sample.get("metrics", []) if name in sample]
            raise InputError(
                f"sample has no {metric_name!r} value (present: {', '.join(present) or 'none'})",
                path=samples_path,
                line=line,
            )
        choice_logprobs = choice_log_likelihoods(sample, path=samples_path, line=line)
        rows.append(
            {
                "benchmark": benchmark,
                "subset": task,
                "item_key": f"{task}/{doc_id}",
                "run_id": run_id,
                "seed": seed,
                "metric": metric,
                "score": coerce_score(sample[metric_name], path=str(samples_path), line=line, key=metric_name),
                "prediction": prediction_of(sample, metric_name, path=samples_path, line=line),
                "output": output_of(sample, metric_name, path=samples_path, line=line),
                "prompt": prompt_text_of(sample),
                "target": None if sample.get("target") is None else str(sample["target"]),
                "choice_logprobs": choice_logprobs,
                "choice_logprob_kind": None if choice_logprobs is None else "continuation_sum",
                "prompt_hash": sample.get("prompt_hash"),
                "doc_hash": sample.get("doc_hash"),
                "model": model,
                "source": str(samples_path),
            }
        )
    if not rows:
        raise InputError(f"no samples for filter {filter_name!r} (metric {metric})", path=samples_path)
    return rows


def sent_prompt_of(sample: dict, *, path: Path, line: int) -> SentPrompt:
    """What lm-eval sent for one sample, from its ``arguments``: ``gen_args_<i>`` holds one request each,
    ``arg_0`` the context (a string; for chat-completions models a one-element list holding the messages as
    JSON) and ``arg_1`` the generation kwargs (a dict) or a log-likelihood continuation (a string)."""
    arguments = sample.get("arguments")
    requests = [arguments[key] for key in sorted(arguments, key=natural_order)] if isinstance(arguments, dict) else []
    if not requests or not all(isinstance(request, dict) and "arg_0" in request for request in requests):
        raise InputError("sample has no arguments.gen_args_0.arg_0 (the prompt lm-eval sent)", path=path, line=line, key="arguments")
    context = requests[0]["arg_0"]
    continuations = tuple(r["arg_1"] for r in requests if isinstance(r.get("arg_1"), str))
    kwargs = requests[0].get("arg_1") if isinstance(requests[0].get("arg_1"), dict) else {}
    until = kwargs.get("until") or ()
    stop = (until,) if isinstance(until, str) else tuple(str(s) for s in until)
    if isinstance(context, list) and len(context) == 1 and isinstance(context[0], str):
        try:
            messages = json.loads(context[0])
        except ValueError:
            raise InputError("chat prompt is not JSON", path=path, line=line, key="arguments.gen_args_0.arg_0") from None
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise InputError("chat prompt is not a list of messages", path=path, line=line, key="arguments.gen_args_0.arg_0")
        return SentPrompt(messages=tuple(messages), continuations=continuations, stop=stop)
    if not isinstance(context, str):
        raise InputError("prompt is neither text nor chat messages", path=path, line=line, key="arguments.gen_args_0.arg_0")
    return SentPrompt(text=context, continuations=continuations, stop=stop)


def natural_order(key: str) -> tuple:
    """gen_args_2 before gen_args_10."""
    head, _, number = key.rpartition("_")
    return (head, int(number)) if number.isdigit() else (key, -1)


def read_sent_prompts(path: Path) -> dict[str, SentPrompt]:
    """Item key -> SentPrompt over one samples file or every one under ``path`` (a doc's first line)."""
    path = Path(path)
    match = _SAMPLES_NAME.match(path.name) if path.is_file() else None
    samples = [(match["task"], path)] if match else [item for run in find_runs(path) for item in run.samples.items()]
    prompts: dict[str, SentPrompt] = {}
    for task, samples_path in samples:
        for line, sample in iter_jsonl(samples_path):
            key = f"{task}/{sample.get('doc_id')}"
            if key not in prompts:
                prompts[key] = sent_prompt_of(sample, path=samples_path, line=line)
    return prompts


# ---------------------------------------------------------------------------------------------
# Doctor factors: the settings a results JSON records.


def _dtype_name(value: Any) -> str | None:
    if value in (None, ""):
        return None
    return str(value).replace("torch.", "")


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _parse_model_args(model_args: Any) -> dict[str, str]:
    if isinstance(model_args, dict):
        return {str(k): str(v) for k, v in model_args.items()}
    pairs = {}
    for part in str(model_args or "").split(","):
        key, sep, value = part.partition("=")
        if sep:
            pairs[key.strip()] = value.strip()
    return pairs


def doctor_factors_of_results(results: dict[str, Any]) -> dict[str, Any]:
    """Factors of an lm-eval results_*.json payload."""
    config = results.get("config") or {}
    configs = results.get("configs") or {}
    model_args = _parse_model_args(config.get("model_args"))
    gen = {task: (c.get("generation_kwargs") or {}) for task, c in configs.items()}
    gen_override = config.get("gen_kwargs") if isinstance(config.get("gen_kwargs"), dict) else {}

    def gen_value(key: str, *aliases: str) -> Any:
        def pick(kwargs: dict) -> Any:
            merged = {**kwargs, **gen_override}
            for name in (key, *aliases):
                if name in merged:
                    return merged[name]
            return None
        return per_task({task: pick(kwargs) for task, kwargs in gen.items()}) if gen else gen_override.get(key)

    def temperature(kwargs: dict) -> Any:
        merged = {**kwargs, **gen_override}
        if merged.get("do_sample") is False:
            return 0.0
        return merged.get("temperature")

    generative = any(c.get("output_type") == "generate_until" for c in configs.values())
    quantization = next((f"{k}={v}" for k, v in model_args.items() if k in ("load_in_8bit", "load_in_4bit", "quantization", "gguf_file") and v not in ("False", "false", "None")), "none")
    device = str(config.get("device") or "")
    api_model = config.get("model") in _API_MODEL.values()
    return {
        "harness": "lm-eval",
        "harness_version": results.get("lm_eval_version"),
        "metric": per_task({t: sorted(m.get("metric") for m in (c.get("metric_list") or [])) for t, c in configs.items()}),
        "filters": per_task({t: short_hash(c.get("filter_list")) for t, c in configs.items()}),
        "prompt": per_task({t: short_hash([c.get("doc_to_text"), c.get("doc_to_target"), c.get("target_delimiter"), c.get("fewshot_delimiter")]) for t, c in configs.items()}),
        "chat_template": results.get("chat_template_sha") or ("none" if "chat_template" in results and not results.get("chat_template") else None),
        "system_instruction": results.get("system_instruction_sha") or ("none" if "system_instruction" in results and not results.get("system_instruction") else None),
        "num_fewshot": per_task(results.get("n-shot") or {t: c.get("num_fewshot") for t, c in configs.items()}),
        "fewshot_order": json.dumps([config.get("fewshot_seed"), per_task({t: (c.get("fewshot_config") or {}).get("sampler") for t, c in configs.items()})]),
        "stop": json.dumps(gen_value("until"), sort_keys=True) if generative else None,
        "max_tokens": gen_value("max_gen_toks", "max_new_tokens", "max_tokens") if generative else None,
        "seed": json.dumps([config.get("random_seed"), config.get("numpy_seed"), config.get("torch_seed")]) if "random_seed" in config else None,
        "temperature": (per_task({t: temperature(k) for t, k in gen.items()}) if gen else None) if generative else 0.0,
        "top_p": gen_value("top_p") if generative else None,
        "repeat_penalty": gen_value("repetition_penalty", "repeat_penalty") or model_args.get("repeat_penalty") or (1.0 if config.get("model") == LM_EVAL_HF_MODEL else None),
        "batch_size": config.get("batch_size"),
        "concurrency": _int_or_none(model_args.get("num_concurrent", 1)) if api_model else (1 if config.get("model") == LM_EVAL_HF_MODEL else None),
        "dtype": _dtype_name(model_args.get("dtype") or config.get("model_dtype")),
        "quantization": quantization,
        "hardware": "cpu" if device.startswith("cpu") else (device or None),
        "device": device or None,
        "engine": config.get("model"),
        "model": results.get("model_name") or model_args.get("pretrained") or model_args.get("model"),
        "mode": mode_factor(_task_mode(c) for c in configs.values()),
        "prefix_cache_off": True if config.get("model") == LM_EVAL_HF_MODEL else None,
        "deterministic": None,
        "endpoint": model_args.get("base_url") if api_model else None,
    }


def _task_mode(config: dict) -> str | None:
    """ppl, clp or gen for a multiple-choice task config (None for other tasks): letters as choices is clp."""
    if config.get("output_type") == "multiple_choice":
        return "clp" if config.get("doc_to_choice") in (["A", "B", "C", "D"], "ABCD") else "ppl"
    if config.get("output_type") == "generate_until" and any("letter" in str(f.get("name")) for f in config.get("filter_list") or []):
        return "gen"
    return None


# ---------------------------------------------------------------------------------------------
# The run side: one statrepro job -> one `lm_eval run` command line.

# Few-shot exemplars must not change with the sampling seed, or seeds would vary prompts, not samples.
FEWSHOT_SEED = 1234
_API_MODEL = {True: "local-chat-completions", False: "local-completions"}
# lm-eval's in-process transformers model type (also what its results JSON records as config.model).
LM_EVAL_HF_MODEL = "hf"


def _generation_kwargs(context) -> dict:
    """The env's sampling settings as lm-eval generation_kwargs for this engine."""
    generation = context.job.env.generation
    kind = engine_kind(context.job.env.engine.kind)
    kwargs: dict = {"temperature": generation.temperature, "do_sample": generation.temperature > 0}
    if generation.temperature > 0:
        kwargs["top_p"] = generation.top_p
    if generation.repeat_penalty is not None:
        kwargs[kind.repeat_penalty_field] = generation.repeat_penalty
    if not kind.capabilities.in_process:
        # lm-eval's --seed seeds only the local process; an API engine needs the seed in every request.
        kwargs["seed"] = context.job.seed
        kwargs.pop("do_sample")
    return kwargs


def _tokenizer_dir(model_path: Path) -> Path:
    """The tokenizer directory lm-eval counts an API model's tokens with: the model directory, or for a GGUF
    file its own vocabulary converted once (a GGUF's directory holds no tokenizer files)."""
    if model_path.is_file() and model_path.suffix == ".gguf":
        from ..models import gguf_tokenizer_dir

        return gguf_tokenizer_dir(model_path)
    return model_path if model_path.is_dir() else model_path.parent



def _model_arguments(context) -> tuple[str, str, dict[str, str]]:
    """(--model, --model_args, extra environment) for the job's engine."""
    env, endpoint = context.job.env, context.endpoint
    if engine_kind(env.engine.kind).capabilities.in_process:
        model_path = context.model_path
        if model_path.is_file() and model_path.suffix == ".gguf":
            args = f"pretrained={model_path.parent},gguf_file={model_path.name}"
        else:
            args = f"pretrained={model_path}"
        args += f",dtype={env.model.dtype}"
        if env.model.revision:
            args += f",revision={env.model.revision}"
        model = "hf-dynamic-int8" if env.model.quantization == "dynamic-int8" else LM_EVAL_HF_MODEL
        return model, args, {}
    chat = env.harness.apply_chat_template
    suffix = "/chat/completions" if chat else "/completions"
    tokenizer = env.engine.tokenizer or str(_tokenizer_dir(context.model_path))
    concurrency = engine_kind(env.engine.kind).requests_in_flight(env)
    args = (
        f"model={endpoint.served_model},base_url={(context.guard_url or endpoint.base_url).rstrip('/')}{suffix},num_concurrent={concurrency},"
        f"max_retries=1,timeout={guarded_client_timeout(env.engine)},tokenized_requests=False,tokenizer_backend=huggingface,tokenizer={tokenizer}"
    )
    extra_env = {}
    if env.engine.api_key is not None:
        # Passed through the environment, never on the command line (which the manifest records).
        extra_env["OPENAI_API_KEY"] = env.engine.api_key.get_secret_value()
    return _API_MODEL[chat], args, extra_env


def build_lm_eval_invocation(context):
    """Generate the job's tasks into its work dir and build the `lm_eval run` command line."""
    from ..benchmarks import BenchmarkOptions, get_benchmark

    job, env = context.job, context.job.env
    kind = engine_kind(env.engine.kind)
    spec = get_benchmark(job.benchmark)
    mode = kind.evaluation_mode(spec.modes, job.spec.mode)
    probe = None
    if mode != "gen" and not kind.capabilities.in_process:
        if env.harness.apply_chat_template:
            # lm-eval scores log-likelihoods only through /completions, and its chat template needs token-id prompts there.
            raise InputError(
                f"mode {mode!r} over an endpoint scores raw prompts: set harness.apply_chat_template: false (on both sides) or mode: gen",
                key=f"benchmarks.{job.benchmark}.mode",
            )
        # One echo request at job start: an endpoint that cannot give usable prompt log-likelihoods stops here.
        from ..engines.logprob_probe import require_prompt_logprobs

        api_key = env.engine.api_key.get_secret_value() if env.engine.api_key is not None else None
        probe = require_prompt_logprobs(
            context.endpoint.base_url, context.endpoint.served_model, key=f"benchmarks.{job.benchmark}.mode", api_key=api_key
        ).to_dict()
    options = BenchmarkOptions(
        max_gen_toks=env.generation.max_tokens,
        generation_kwargs=_generation_kwargs(context),
        extra_stops=list(env.generation.stop),
        drop_flagged=job.spec.drop_flagged,
    )
    tasks = spec.write_lm_eval_tasks(
        context.work_dir / "tasks",
        data_dir=context.data_dir,
        limit=job.spec.limit,
        num_fewshot=job.spec.num_fewshot,
        subsets=job.spec.subsets,
        mode=mode,
        options=options,
        item_rows=job.spec.item_rows,
    )
    row_ids = spec.prepared_row_ids(
        tasks.item_counts, job.spec.item_rows, data_dir=context.data_dir, subsets=job.spec.subsets, options=options
    )
    model, model_args, extra_env = _model_arguments(context)
    output_dir = context.work_dir / "output"
    module = "statrepro.harness.lm_eval_int8" if model == "hf-dynamic-int8" else "lm_eval"
    argv = kind.harness_launcher(env, module) + [
        "run",
        "--model", model,
        "--model_args", model_args,
        "--tasks", ",".join(tasks.task_names),
        "--include_path", tasks.include_path,
        "--output_path", str(output_dir),
        "--log_samples",
        "--seed", f"{job.seed},{job.seed},{job.seed},{FEWSHOT_SEED}",
        # API engines batch on the server side; lm-eval's client batching would send prompt lists that
        # transformers serve rejects, so the client sends one prompt per request, num_concurrent at once.
        "--batch_size", str(env.batch_size if kind.capabilities.in_process else 1),
    ]
    device = kind.device(env)
    if device is not None:
        argv += ["--device", device]
    if env.harness.apply_chat_template:
        argv += ["--apply_chat_template"]
    if env.harness.system_instruction:
        argv += ["--system_instruction", env.harness.system_instruction]
    argv += list(env.harness.extra_args)
    manifest = {"tasks": tasks.to_dict(), "dataset_sha256": tasks.dataset_sha256, "mode": mode}
    if probe is not None:
        manifest["logprob_probe"] = probe
    engine_env = kind.job_environment(env)
    return Invocation(
        argv=argv, output_dir=output_dir, env={**harness_environment(context.work_dir), **engine_env, **extra_env},
        manifest=manifest, row_ids=row_ids,
    )


class LmEvalHarness(HarnessAdapter):
    """Reads lm-eval ``--output_path`` trees (with ``--log_samples``) or a single results JSON."""

    name = "lm-eval"
    output_description = "results_*.json with samples_*.jsonl"
    # Its API models retry without Retry-After, crash the job when retries are spent and score any 200 answer:
    # statrepro's request guard (engines/relay.py) stands between it and a served engine and owns the retries.
    guards_requests = True
    unit_range_metrics = frozenset({"acc", "acc_norm", "exact_match", "mc1", "mc2", "score"})

    def build_invocation(self, context):
        """The `lm_eval run` command line of one statrepro job (see statrepro.run.jobs)."""
        return build_lm_eval_invocation(context)

    def detect(self, path: Path) -> bool:
        path = Path(path)
        if path.is_file():
            from .inspect_logs import is_inspect_log

            return (path.suffix == ".json" and not is_inspect_log(path)) or bool(_SAMPLES_NAME.match(path.name))
        return any(_is_results_json(f) or _SAMPLES_NAME.match(f.name) for f in all_files(path))

    def doctor_factors(self, path: Path) -> dict[str, Any] | None:
        """Factors of the newest results JSON under a directory, or of one results JSON file."""
        path = Path(path)
        if path.is_dir():
            found = sorted(path.rglob("results_*.json"))  # lm-eval names files by date: the last is the newest
            return doctor_factors_of_results(read_json(found[-1])) if found else None
        if path.suffix.lower() != ".json":
            return None
        results = read_json(path)
        return doctor_factors_of_results(results) if ("configs" in results or "config" in results) and "results" in results else None

    def sent_prompts(self, path: Path) -> dict[str, SentPrompt]:
        """From each sample's ``arguments`` (see ``sent_prompt_of``)."""
        return read_sent_prompts(path)

    def load(self, path: Path, *, metric_overrides: dict[str, str]) -> pd.DataFrame:
        from rich.progress import Progress

        path = Path(path)
        runs = find_runs(path)
        if not runs:
            raise InputError("no lm-eval results_<date>.json found", path=path)
        ids = run_ids(runs)
        rows: list[dict] = []
        with Progress(transient=True) as progress:
            reading = progress.add_task("reading lm-eval samples", total=sum(len(run.samples) for run in runs))
            for run in runs:
                run_id, seed = ids[run.results_path]
                task_results = run.results.get("results") or {}
                for task, samples_path in run.samples.items():
                    benchmark = benchmark_for_task(task)
                    present = available_metrics(task_results.get(task) or {})
                    metric = choose_metric(benchmark, task, present, metric_overrides, path=run.results_path)
                    rows += read_task_samples(
                        samples_path,
                        task=task,
                        benchmark=benchmark,
                        metric=metric,
                        run_id=run_id,
                        seed=seed,
                        model=model_name(run.results),
                    )
                    progress.advance(reading)
        records = make_records(rows)
        check_unique(records, str(path))
        return records
