"""OpenCompass work dirs -> records table (reading only: statrepro does not run OpenCompass).

An OpenCompass run writes ``<work_dir>/<timestamp>/`` with ``predictions/<model>/<dataset>.json`` (or, when
the inference task was partitioned, ``<dataset>_0.json``, ``<dataset>_1.json``, ... whose items follow one
another, each shard indexed from "0"), ``results/<model>/<dataset>.json`` and ``summary/``. A predictions file
maps the item index ("0", "1", ...) to ``origin_prompt``, ``prediction`` and ``gold``; a ``ppl`` dataset's
items add one ``"label: <choice>"`` entry per choice and predict the lowest-perplexity label. With
``dump_details`` (``eval.runner.task.dump_details=True``) the results file carries ``details``: per item
``predictions``, ``references`` and ``correct``, the format read here (OpenICLEvalTask.format_details).

One timestamp dir is one run. The item key is ``<dataset>/<index>``, the score the item's ``correct``
(metric ``accuracy``). Without details, a ``ppl`` dataset is scored as OpenCompass's accuracy scores it (the
predicted label equals the gold one); a ``gen`` dataset without details cannot be scored per item.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputError
from . import register_harness
from .contract import SentPrompt, mode_factor
from .files import all_files, benchmark_for_task, read_json
from .records import check_unique, make_records

_SHARD = re.compile(r"^(?P<dataset>.+)_(?P<shard>\d+)$")
_PPL_LABEL = "label: "


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


def sent_prompt(item: dict) -> SentPrompt | None:
    """A gen item's ``origin_prompt``: a string, or OpenCompass's role list [{role, prompt}, ...]."""
    prompt = item.get("origin_prompt")
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
    for position, (file, _, item) in enumerate(items):
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
            "target": None if target is None else str(target),
            "prompt_hash": sent.digest() if (sent := None if is_ppl(item) else sent_prompt(item)) else None,
            "doc_hash": None,
            "model": model,
            "source": str(file),
        })
    return rows


@register_harness("opencompass")
class OpencompassHarness:
    """Reads OpenCompass work dirs: one <timestamp> dir, or a dir of them (each one more run)."""

    def build_invocation(self, context):
        raise InputError("harness opencompass is reading only: run OpenCompass with dump_details and analyze its work dir",
                         key="harness.name")

    def detect(self, path: Path) -> bool:
        path = Path(path)
        return path.is_dir() and bool(run_dirs(path))

    def doctor_factors(self, path: Path) -> dict[str, Any] | None:
        """What the work dir itself shows: the harness, the model, and ppl or gen scoring (the generation
        settings live in the run's Python config, which statrepro does not execute)."""
        path = Path(path)
        found = run_dirs(path) if path.is_dir() else []
        if not found:
            return None
        datasets = predictions_of(found[-1])
        models = sorted({model for model, _ in datasets})
        modes = ["ppl" if is_ppl(item) else "gen" for files in datasets.values() for _, _, item in read_items(files)[:1]]
        return {"harness": "opencompass", "model": ",".join(models) or None, "mode": mode_factor(modes)}

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
