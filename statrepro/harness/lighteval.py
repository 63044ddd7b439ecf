"""lighteval output dirs -> records table (reading only: statrepro does not run lighteval).

lighteval (0.13, ``EvaluationTracker.save``) writes ``<output_dir>/results/<model>/results_<date>.json`` and,
with ``--save-details``, ``<output_dir>/details/<model>/<date>/details_<task>_<date>.parquet``: one row per
sample with the struct columns ``doc`` (``Doc``: ``query``, ``choices``, ``gold_index``, ``instruction``,
``id``, ``task_name``, ...), ``model_response`` (``ModelResponse``: ``input``, ``text``,
``text_post_processed``, ...) and ``metric`` (metric name -> the sample's score). ``<task>`` is lighteval's
full task name, ``[suite|]name|num_fewshot``.

One details file is one task in one run (its date); its rows are the items. The item key is
``<task name>/<doc.id>`` (the row index when the id is empty), the score the first metric of ``metric`` or the
one ``--metric TASK=NAME`` names. Reading parquet needs pyarrow (a dependency of ``datasets``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputError
from .contract import HarnessAdapter, SentPrompt, per_task, sent_text, short_hash
from .evalscope import target_text
from .files import all_files, benchmark_for_task, error_reason, read_json
from .records import check_unique, coerce_score, make_records

_DETAILS_NAME = re.compile(r"^details_(?P<task>.+)_(?P<date>\d{4}-\d\d-\d\dT[\d-]+(?:\.\d+)?)\.parquet$")


def details_files(path: Path) -> list[Path]:
    return [file for file in all_files(path) if _DETAILS_NAME.match(file.name)]


def task_parts(full_name: str) -> tuple[str, int | None]:
    """``[suite|]name|num_fewshot`` -> (name, num_fewshot)."""
    parts = full_name.split("|")
    if len(parts) >= 2 and parts[-1].isdigit():
        return parts[-2], int(parts[-1])
    return parts[-1], None


def read_details(path: Path) -> pd.DataFrame:
    """One details parquet file; a damaged one is a located InputError."""
    try:
        frame = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError and others for a damaged file
        raise InputError(f"not a readable lighteval details parquet ({error_reason(error)})", path=path) from None
    missing = [column for column in ("doc", "metric") if column not in frame.columns]
    if missing:
        raise InputError(f"lighteval details without column {missing[0]!r}", path=path, key=missing[0])
    return frame


def _gold(doc: dict) -> str | None:
    """The reference answer: the gold choice(s) of the doc."""
    choices, gold = doc.get("choices"), doc.get("gold_index")
    if choices is None or gold is None:
        return None
    indices = [int(gold)] if isinstance(gold, (int, float)) else [int(index) for index in gold]
    return target_text([str(choices[index]) for index in indices if 0 <= index < len(choices)])


def _prediction(response: Any) -> str | None:
    if not isinstance(response, dict):
        return None
    texts = response.get("text_post_processed")
    texts = texts if texts is not None and len(texts) else response.get("text")
    return str(texts[0]) if texts is not None and len(texts) else None


def _output(response: Any) -> str | None:
    """The raw generation, before lighteval's post-processing: ``model_response.text[0]``."""
    texts = response.get("text") if isinstance(response, dict) else None
    return str(texts[0]) if texts is not None and len(texts) else None


def _sent(response: Any) -> SentPrompt | None:
    """What lighteval sent: ``model_response.input``, a prompt string or chat messages."""
    sent = response.get("input") if isinstance(response, dict) else None
    if isinstance(sent, str) and sent:
        return SentPrompt(text=sent)
    if sent is not None and not isinstance(sent, str) and len(sent):
        return SentPrompt(messages=tuple({"role": m.get("role"), "content": m.get("content")} for m in sent))
    return None


def _item_id(doc: dict, row: int) -> str:
    return str(doc.get("id") or row)


def details_rows(path: Path, metric_overrides: dict[str, str], model: str | None) -> list[dict]:
    match = _DETAILS_NAME.match(path.name)
    task, _ = task_parts(match["task"])
    benchmark = benchmark_for_task(task)
    override = metric_overrides.get(task) or metric_overrides.get(benchmark)
    rows = []
    for row, sample in enumerate(read_details(path).to_dict("records")):
        doc, scores = sample["doc"], sample["metric"]
        where = f"row {row}"
        if not isinstance(doc, dict) or not isinstance(scores, dict):
            raise InputError("doc and metric must be structs", path=path, key=where)
        present = [name for name, value in scores.items() if value is not None]
        metric = override or (present[0] if present else None)
        if metric not in present:
            raise InputError(f"metric {metric!r} not in the sample's metric (present: {', '.join(present) or 'none'})",
                             path=path, key=f"{where}.metric")
        sent = _sent(sample.get("model_response"))
        rows.append({
            "benchmark": benchmark,
            "subset": task,
            "item_key": f"{task}/{_item_id(doc, row)}",
            "run_id": match["date"],
            "seed": None,
            "metric": metric,
            "score": coerce_score(scores[metric], path=str(path), line=None, key=f"{where}.metric.{metric}"),
            "prediction": _prediction(sample.get("model_response")),
            "output": _output(sample.get("model_response")),
            "prompt": sent_text(sent),
            "target": _gold(doc),
            "prompt_hash": sent.digest() if sent else None,
            "doc_hash": None,
            "model": model,
            "source": str(path),
        })
    return rows


def results_file(details_path: Path) -> Path | None:
    """The results_<date>.json of a details file's run: <out>/results/<model>/ beside <out>/details/<model>/<date>/."""
    date = _DETAILS_NAME.match(details_path.name)["date"]
    details_dir = next((parent for parent in details_path.parents if parent.name == "details"), None)
    results_dir = details_dir.parent / "results" if details_dir is not None else None
    # The model name may hold a '/', so it can be more than one folder deep.
    candidates = sorted(results_dir.rglob(f"results_{date}.json")) if results_dir and results_dir.is_dir() else []
    return candidates[0] if candidates else None


def is_lighteval_results(results: dict) -> bool:
    return isinstance(results.get("config_general"), dict)


def doctor_factors_of_results(results: dict[str, Any]) -> dict[str, Any]:
    general = results.get("config_general") or {}
    model_config = general.get("model_config") or {}
    generation = model_config.get("generation_parameters") or {}
    tasks = results.get("config_tasks") or {}
    fewshots = {name: task_parts(name)[1] for name in tasks} or {name: task_parts(name)[1] for name in results.get("results") or {} if name != "all"}
    return {
        "harness": "lighteval",
        "harness_version": general.get("lighteval_sha"),
        "model": general.get("model_name") or model_config.get("model_name"),
        "temperature": generation.get("temperature"),
        "top_p": generation.get("top_p"),
        "max_tokens": generation.get("max_new_tokens"),
        "seed": generation.get("seed"),
        "stop": json.dumps(generation["stop_tokens"]) if generation.get("stop_tokens") else None,
        "repeat_penalty": generation.get("repetition_penalty"),
        "system_instruction": short_hash(model_config.get("system_prompt")) or "none",
        "num_fewshot": per_task(fewshots),
        "endpoint": model_config.get("base_url"),
    }


class LightevalHarness(HarnessAdapter):
    """Reads a lighteval output dir (``details/`` parquet files, ``results/`` JSON beside them), or one details file."""

    name = "lighteval"
    output_description = "details/*.parquet"
    unit_range_metrics = frozenset({"em"})

    def build_invocation(self, context):
        raise InputError("harness lighteval is reading only: run lighteval with --save-details and analyze its output dir",
                         key="harness.name")

    def detect(self, path: Path) -> bool:
        path = Path(path)
        return bool(_DETAILS_NAME.match(path.name)) if path.is_file() else bool(details_files(path))

    def doctor_factors(self, path: Path) -> dict[str, Any] | None:
        """Factors of the newest lighteval results JSON under a directory, or of one such file."""
        path = Path(path)
        found = sorted(path.rglob("results_*.json")) if path.is_dir() else [path] if path.suffix == ".json" else []
        for candidate in reversed(found):
            results = read_json(candidate)
            if is_lighteval_results(results):
                return doctor_factors_of_results(results)
        return None

    def sent_prompts(self, path: Path) -> dict[str, SentPrompt]:
        """Each sample's ``model_response.input``."""
        prompts: dict[str, SentPrompt] = {}
        for file in details_files(Path(path)):
            task, _ = task_parts(_DETAILS_NAME.match(file.name)["task"])
            for row, sample in enumerate(read_details(file).to_dict("records")):
                sent = _sent(sample.get("model_response"))
                if sent is not None and isinstance(sample["doc"], dict):
                    prompts.setdefault(f"{task}/{_item_id(sample['doc'], row)}", sent)
        return prompts

    def load(self, path: Path, *, metric_overrides: dict[str, str]) -> pd.DataFrame:
        path = Path(path)
        files = details_files(path)
        if not files:
            raise InputError("no lighteval details_<task>_<date>.parquet (run lighteval with --save-details)", path=path)
        rows = []
        for file in files:
            results = results_file(file)
            general = read_json(results).get("config_general") or {} if results else {}
            rows += details_rows(file, metric_overrides, general.get("model_name"))
        records = make_records(rows)
        check_unique(records, str(path))
        return records
