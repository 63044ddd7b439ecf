"""OpenCompass work dirs -> records table (reading only: statrepro does not run OpenCompass).

An OpenCompass run writes ``<work_dir>/<timestamp>/`` with ``predictions/<model>/<dataset>.json`` (or, when
the inference task was partitioned, ``<dataset>_0.json``, ``<dataset>_1.json``, ... whose items follow one
another, each shard indexed from "0"), ``results/<model>/<dataset>.json`` and ``summary/``. A predictions file
maps the item index ("0", "1", ...) to ``origin_prompt``, ``prediction`` and ``gold``; a ``ppl`` dataset's
items add one ``"label: <choice>"`` entry per choice and predict the lowest-perplexity label; minus each label's
``PPL`` (a mean token loss over the prompt with that label) becomes ``choice_logprobs`` of kind ``prompt_token_mean``. With
``dump_details`` (``eval.runner.task.dump_details=True``) the results file carries ``details``: per item
``predictions``, ``references`` and ``correct``, the format read here (OpenICLEvalTask.format_details).

One timestamp dir is one run. The item key is ``<dataset>/<index>``, the score the item's ``correct``
(metric ``accuracy``). Without details, a ``ppl`` dataset is scored as OpenCompass's accuracy scores it (the
predicted label equals the gold one); a ``gen`` dataset without details cannot be scored per item.

The doctor factors come from the work dir and from the config OpenCompass dumps beside it,
``configs/<timestamp>[_<pid>].py`` (mmengine ``Config.dump``: top-level assignments such as ``models = [dict(...)]``
and ``datasets = [dict(...)]``). That file is read with ``ast`` and never executed. It gives the model (``path``,
else ``abbr``) and its type (as ``engine``), the generation settings (``max_out_len``, ``max_seq_len`` as
``max_context``, ``batch_size``, ``generation_kwargs``, ``stop_words``; a dataset's inferencer overrides the
model's, as OpenICLInferTask applies them), each dataset's few-shot count and retriever (ZeroRetriever: 0,
FixKRetriever: its ``fix_id_list``), prompt template (hashed) and inferencer, and the chat template (a
``*withChatTemplate`` model type applies the tokenizer's, else a ``meta_template``, hashed). Values that differ
between datasets are ``dataset=value; ...`` as for other harnesses' tasks. A work dir without ``configs/``
yields the harness, the model folder names and the mode only.
"""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputError
from .contract import HarnessAdapter, SentPrompt, mode_factor, per_task, sent_text, short_hash
from .files import all_files, benchmark_for_task, read_json
from .records import check_unique, make_records

_SHARD = re.compile(r"^(?P<dataset>.+)_(?P<shard>\d+)$")
_PPL_LABEL = "label: "
# Inferencers whose mode the predictions show too (a ppl item holds one "label: <choice>" entry per choice).
_INFERENCER_MODES = {"PPLInferencer": "ppl", "GenInferencer": "gen"}
# Inferencers that score by likelihood and generate nothing: generation settings do not apply to them.
_LIKELIHOOD_INFERENCERS = ("PPLInferencer", "PPLOnlyInferencer", "CLPInferencer", "LLInferencer")
# Local model types that send the prompt as it is when no meta_template is given.
_RAW_PROMPT_MODELS = ("HuggingFace", "HuggingFaceCausalLM", "HuggingFaceBaseModel", "VLLM", "TurboMindModel")


def run_dirs(path: Path) -> list[Path]:
    """Every OpenCompass run dir under ``path``: a dir with predictions/<model>/*.json."""
    roots = {file.parent.parent.parent for file in all_files(path)
             if file.suffix == ".json" and file.parent.parent.name == "predictions"}
    return sorted(roots)


def predictions_of(run_dir: Path) -> dict[tuple[str, str], list[Path]]:
    """(model, dataset) -> its predictions files in order (one file, or the shards _0, _1, ...)."""
    files: dict[tuple[str, str], list[tuple[int, Path]]] = {}
    for file in sorted((run_dir / "predictions").glob("*/*.json")):
        shard = _SHARD.match(file.stem)
        whole = file.with_name(f"{shard['dataset']}.json") if shard else None
        # A dataset whose own name ends in _<n> is no shard when the unsuffixed file is absent and no _0 exists.
        is_shard = shard is not None and not (whole and whole.exists()) and file.with_name(f"{shard['dataset']}_0.json").exists()
        dataset, order = (shard["dataset"], int(shard["shard"])) if is_shard else (file.stem, 0)
        files.setdefault((file.parent.name, dataset), []).append((order, file))
    return {key: [file for _, file in sorted(shards)] for key, shards in files.items()}


def read_items(files: list[Path]) -> list[tuple[Path, str, dict]]:
    """(file, index inside the file, item) of every item, shards concatenated in order as OpenCompass does."""
    items = []
    for file in files:
        payload = read_json(file)
        for index in range(len(payload)):
            item = payload.get(str(index))
            if not isinstance(item, dict):
                raise InputError(f"item {index} missing or not an object (items must be numbered 0..{len(payload) - 1})",
                                 path=file, key=str(index))
            items.append((file, str(index), item))
    return items


def is_ppl(item: dict) -> bool:
    return any(key.startswith(_PPL_LABEL) for key in item)


def choice_scores(item: dict, *, path: Path, key: str) -> list[float] | None:
    """A ppl item's per-choice scores, in its labels' order: minus each label's ``PPL``. PPLInferencer stores as
    ``PPL`` the model's mean token cross-entropy (nats, not exponentiated) over the whole prompt with that label,
    question included, so this is the prompt's mean token log-likelihood (kind ``prompt_token_mean``), not the
    label's log-likelihood; its lowest ``PPL`` is OpenCompass's prediction."""
    scores = []
    for label in (name for name in item if name.startswith(_PPL_LABEL)):
        value = item[label].get("PPL") if isinstance(item[label], dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"PPL {value!r} is not a finite number", path=path, key=f"{key}.{label}.PPL")
        scores.append(-float(value))
    return scores or None


def sent_prompt(item: dict) -> SentPrompt | None:
    """A gen item's ``origin_prompt``: a string, or OpenCompass's role list [{role, prompt}, ...]."""
    return _as_sent(item.get("origin_prompt"))


def prompt_and_output(item: dict) -> tuple[str | None, str | None]:
    """The prompt and raw output texts: a gen item's ``origin_prompt`` and ``prediction``; a ppl item generates
    nothing (its predicted label is the prediction), and its prompt is the one scored for that label (``prompt``
    of the ``label: <prediction>`` entry: in-context examples, question and that label)."""
    if not is_ppl(item):
        output = item.get("prediction")
        return sent_text(sent_prompt(item)), output if isinstance(output, str) else None
    chosen = item.get(f"{_PPL_LABEL}{item.get('prediction')}")
    return sent_text(_as_sent(chosen.get("prompt"))) if isinstance(chosen, dict) else None, None


def _as_sent(prompt: object) -> SentPrompt | None:
    if isinstance(prompt, str) and prompt:
        return SentPrompt(text=prompt)
    if isinstance(prompt, list) and prompt and all(isinstance(turn, dict) for turn in prompt):
        return SentPrompt(messages=tuple({"role": turn.get("role"), "content": turn.get("prompt")} for turn in prompt))
    return None


def dataset_rows(run_dir: Path, model: str, dataset: str, files: list[Path]) -> list[dict]:
    items = read_items(files)
    results_path = run_dir / "results" / model / f"{dataset}.json"
    details = read_json(results_path).get("details") if results_path.is_file() else None
    if details is not None and (not isinstance(details, dict) or len(details) != len(items)):
        count = len(details) if isinstance(details, (dict, list)) else 0
        raise InputError(f"details hold {count} items, the predictions {len(items)}", path=results_path, key="details")
    benchmark = benchmark_for_task(dataset)
    rows = []
    for position, (file, index, item) in enumerate(items):
        scores = choice_scores(item, path=file, key=index) if is_ppl(item) else None
        prompt_text, output_text = prompt_and_output(item)
        if details is not None:
            detail = details.get(str(position))
            if not isinstance(detail, dict) or not isinstance(detail.get("correct"), bool):
                raise InputError("detail has no boolean 'correct'", path=results_path, key=f"details.{position}.correct")
            score, prediction, target = float(detail["correct"]), detail.get("predictions"), detail.get("references")
        elif is_ppl(item):
            prediction, target = item.get("prediction"), item.get("gold")
            score = float(str(prediction) == str(target))
        else:
            raise InputError(
                "gen dataset without per-item results: rerun the evaluation with eval.runner.task.dump_details=True",
                path=results_path if results_path.is_file() else file,
            )
        rows.append({
            "benchmark": benchmark,
            "subset": dataset,
            "item_key": f"{dataset}/{position}",
            "run_id": run_dir.name,
            "seed": None,
            "metric": "accuracy",
            "score": score,
            "prediction": None if prediction is None else str(prediction),
            "output": output_text,
            "prompt": prompt_text,
            "target": None if target is None else str(target),
            "choice_logprobs": scores,
            "choice_logprob_kind": None if scores is None else "prompt_token_mean",
            "prompt_hash": sent.digest() if (sent := None if is_ppl(item) else sent_prompt(item)) else None,
            "doc_hash": None,
            "model": model,
            "source": str(file),
        })
    return rows


# ---------------------------------------------------------------------------------------------
# Doctor factors: the config OpenCompass dumps into <run>/configs/, read without executing it.


def dumped_config_path(run_dir: Path) -> Path | None:
    """The newest ``configs/<timestamp>[_<pid>].py`` of a run (``--reuse`` dumps one more each time)."""
    found = sorted((run_dir / "configs").glob("*.py"))
    return found[-1] if found else None


def read_dumped_config(path: Path) -> dict[str, Any]:
    """The top-level assignments of a dumped config. Only literals, lists, tuples, dicts and ``dict(key=...)``
    calls are evaluated; any other expression (a class name such as ``GenInferencer``, an attribute, another
    call) is kept as its source text, so nothing in the file ever runs."""
    try:
        source = path.read_bytes().decode("utf-8")
        tree = ast.parse(source, filename=str(path))
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise InputError("not UTF-8", path=path, line=line) from None
    except SyntaxError as error:
        raise InputError(f"not a readable OpenCompass config ({error.msg})", path=path, line=error.lineno) from None
    except ValueError as error:  # null bytes (Python 3.11)
        raise InputError(f"not a readable OpenCompass config ({error})", path=path) from None
    except (MemoryError, RecursionError):  # the parser's limit on nesting
        raise InputError("not a readable OpenCompass config (nested too deeply)", path=path) from None
    return {statement.targets[0].id: _config_value(statement.value, source) for statement in tree.body
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name)}


def _config_value(node: ast.expr, source: str) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, (int, float))):
        return -node.operand.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_config_value(element, source) for element in node.elts]
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {(key.value if isinstance(key, ast.Constant) else ast.get_source_segment(source, key)): _config_value(value, source)
                for key, value in zip(node.keys, node.values)}
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args
            and all(keyword.arg for keyword in node.keywords)):
        return {keyword.arg: _config_value(keyword.value, source) for keyword in node.keywords}
    return ast.get_source_segment(source, node)


def _dicts(value: Any) -> list[dict]:
    """The dicts of a config list, nested lists flattened (``datasets = [mmlu_datasets]`` dumps a list of lists)."""
    if isinstance(value, dict):
        return [value]
    return [found for element in value for found in _dicts(element)] if isinstance(value, list) else []


def _part(config: dict, *keys: str) -> dict:
    """A nested dict of the config, {} where it is absent or no dict."""
    for key in keys:
        config = config.get(key) if isinstance(config.get(key), dict) else {}
    return config


def _class_name(value: Any) -> str | None:
    """The class a ``type`` names, whether dumped as a dotted path string or an imported name."""
    return str(value).rsplit(".", 1)[-1] if value else None


def dataset_abbr(dataset: dict) -> str:
    """The dataset's name in predictions/ (OpenCompass's dataset_abbr_from_cfg)."""
    if dataset.get("abbr"):
        return str(dataset["abbr"])
    name = str(dataset.get("path")) + (f"_{dataset['name']}" if dataset.get("name") else "")
    return name.replace("/", "_")


def _inferencer(dataset: dict) -> str | None:
    return _class_name(_part(dataset, "infer_cfg", "inferencer").get("type"))


def _endpoint(model: dict) -> str | None:
    """The URL an API model sends its requests to (None for a model run in process)."""
    url = model.get("openai_api_base", model.get("url"))
    return url if isinstance(url, str) else None


def _chat_template(model: dict) -> str | None:
    name = _class_name(model.get("type")) or ""
    if name.endswith("withChatTemplate"):
        return "model default"  # the tokenizer's own chat template
    if model.get("meta_template"):
        return f"meta_template {short_hash(model['meta_template'])}"
    return "none" if name in _RAW_PROMPT_MODELS else None


def _fewshot(dataset: dict) -> tuple[Any, str | None]:
    """(few-shot count, retriever with its choice of examples): ZeroRetriever none, FixKRetriever its
    fix_id_list (given to the inferencer before OpenCompass 0.2), another retriever its ice_num, else its name."""
    retriever, inferencer = _part(dataset, "infer_cfg", "retriever"), _part(dataset, "infer_cfg", "inferencer")
    name = _class_name(retriever.get("type"))
    fix_ids = retriever.get("fix_id_list", inferencer.get("fix_id_list"))
    if name == "ZeroRetriever":
        return 0, name
    if name == "FixKRetriever" and isinstance(fix_ids, list):
        return len(fix_ids), f"{name} {json.dumps(fix_ids)}"
    arguments = {key: value for key, value in retriever.items() if key != "type"}
    described = f"{name} {json.dumps(arguments, sort_keys=True, default=str)}" if arguments else name
    return retriever.get("ice_num", name), described


def _generation(model: dict, dataset: dict) -> dict[str, Any]:
    """The settings one dataset ran with on one model: a dataset's inferencer overrides the model's
    max_out_len, batch_size and generation_kwargs, as OpenICLInferTask applies them."""
    inferencer = _part(dataset, "infer_cfg", "inferencer")
    batch_size = inferencer.get("batch_size", model.get("batch_size"))
    if _inferencer(dataset) in _LIKELIHOOD_INFERENCERS:
        return {"batch_size": batch_size}
    kwargs = {**_part(model, "generation_kwargs"), **_part(inferencer, "generation_kwargs")}
    stop = [str(word) for key, part in (("stop_words", model), ("stopping_criteria", inferencer))
            if isinstance(part.get(key), list) for word in part[key]]
    return {
        "batch_size": batch_size,
        "max_tokens": inferencer.get("max_out_len", model.get("max_out_len")),
        "temperature": 0.0 if kwargs.get("do_sample") is False else kwargs.get("temperature", model.get("temperature")),
        "top_p": kwargs.get("top_p", model.get("top_p")),
        "repeat_penalty": kwargs.get("repetition_penalty"),
        "seed": kwargs.get("seed"),
        "stop": json.dumps(sorted(set(stop))) if stop else None,
    }


def check_modes(datasets: list[dict], predicted: dict[str, str], path: Path) -> None:
    """A dataset whose inferencer and predictions disagree on ppl or gen: the config is not this run's."""
    for dataset in datasets:
        inferencer, abbr = _inferencer(dataset), dataset_abbr(dataset)
        if inferencer in _INFERENCER_MODES and abbr in predicted and _INFERENCER_MODES[inferencer] != predicted[abbr]:
            raise InputError(f"dataset {abbr} runs {inferencer} here but its predictions are {predicted[abbr]} items: "
                             "the config does not describe this run", path=path)


def config_factors(config: dict[str, Any]) -> dict[str, Any]:
    """The doctor factors a dumped config records (None where it records nothing)."""
    models, datasets = _dicts(config.get("models")), _dicts(config.get("datasets"))
    model_names = {str(model.get("abbr") or model.get("path")): model for model in models}
    runs = {(f"{name}/" if len(models) > 1 else "") + dataset_abbr(dataset): _generation(model, dataset)
            for name, model in model_names.items() for dataset in datasets}
    generative = any(_inferencer(dataset) not in _LIKELIHOOD_INFERENCERS for dataset in datasets)
    endpoints = {_endpoint(model) for model in models}
    endpoint = endpoints.pop() if len(endpoints) == 1 else None
    batch_size = per_task({run: settings["batch_size"] for run, settings in runs.items()})

    def setting(name: str) -> Any:
        return per_task({run: settings.get(name) for run, settings in runs.items()})

    fewshot = {dataset_abbr(dataset): _fewshot(dataset) for dataset in datasets}
    templates = {dataset_abbr(dataset): [_part(dataset, "infer_cfg", part).get("template") for part in ("ice_template", "prompt_template")]
                 for dataset in datasets}
    return {
        "model": ",".join(sorted({str(model.get("path") or model.get("abbr")) for model in models})) or None,
        "engine": per_task({name: _class_name(model.get("type")) for name, model in model_names.items()}),
        "chat_template": per_task({name: _chat_template(model) for name, model in model_names.items()}),
        "prompt": per_task({abbr: short_hash(parts) for abbr, parts in templates.items() if any(parts)}),
        "num_fewshot": per_task({abbr: count for abbr, (count, _) in fewshot.items()}),
        "fewshot_order": per_task({abbr: retriever for abbr, (_, retriever) in fewshot.items()}),
        "max_tokens": setting("max_tokens"),
        "max_context": per_task({name: model.get("max_seq_len") for name, model in model_names.items()}),
        # An API model sends a batch as that many requests in flight, one prompt each.
        "batch_size": 1 if endpoint and batch_size is not None else batch_size,
        "concurrency": batch_size if endpoint else None,
        "temperature": setting("temperature") if generative else (0.0 if runs else None),
        "top_p": setting("top_p"),
        "repeat_penalty": setting("repeat_penalty"),
        "seed": setting("seed"),
        "stop": setting("stop"),
        "endpoint": endpoint,
    }


class OpencompassHarness(HarnessAdapter):
    """Reads OpenCompass work dirs: one <timestamp> dir, or a dir of them (each one more run)."""

    name = "opencompass"
    output_description = "a work dir with predictions/"
    unit_range_metrics = frozenset({"accuracy"})

    def build_invocation(self, context):
        raise InputError("harness opencompass is reading only: run OpenCompass with dump_details and analyze its work dir",
                         key="harness.name")

    def detect(self, path: Path) -> bool:
        path = Path(path)
        return path.is_dir() and bool(run_dirs(path))

    def doctor_factors(self, path: Path) -> dict[str, Any] | None:
        """Factors of the newest run dir: the harness, the model and ppl or gen scoring as its predictions show
        them, and what its dumped config records (parsed, never executed)."""
        path = Path(path)
        found = run_dirs(path) if path.is_dir() else []
        if not found:
            return None
        predictions = predictions_of(found[-1])
        predicted = {dataset: "ppl" if is_ppl(item) else "gen"
                     for (_, dataset), files in predictions.items() for _, _, item in read_items(files)[:1]}
        factors = {"harness": "opencompass", "model": ",".join(sorted({model for model, _ in predictions})) or None,
                   "mode": mode_factor(predicted.values())}
        config_path = dumped_config_path(found[-1])
        if config_path is None:
            return factors
        config = read_dumped_config(config_path)
        check_modes(_dicts(config.get("datasets")), predicted, config_path)
        return {**factors, **{name: value for name, value in config_factors(config).items() if value is not None}}

    def sent_prompts(self, path: Path) -> dict[str, SentPrompt]:
        """Each gen item's ``origin_prompt`` (ppl items send one prompt per label, left out)."""
        prompts: dict[str, SentPrompt] = {}
        for run_dir in run_dirs(Path(path)):
            for (_, dataset), files in predictions_of(run_dir).items():
                for position, (_, _, item) in enumerate(read_items(files)):
                    sent = None if is_ppl(item) else sent_prompt(item)
                    if sent is not None:
                        prompts.setdefault(f"{dataset}/{position}", sent)
        return prompts

    def load(self, path: Path, *, metric_overrides: dict[str, str]) -> pd.DataFrame:
        path = Path(path)
        found = run_dirs(path) if path.is_dir() else []
        if not found:
            raise InputError("no OpenCompass work dir (predictions/<model>/<dataset>.json)", path=path)
        rows = [row for run_dir in found for (model, dataset), files in predictions_of(run_dir).items()
                for row in dataset_rows(run_dir, model, dataset, files)]
        records = make_records(rows)
        check_unique(records, str(path))
        return records
