"""The item browser's data: every paired item of an Analysis with both sides' runs, as compressed JSON.

Per item: its benchmark, key and subset; each side's item mean; the flags the browser filters on (flipped,
harmful, beneficial, answer churn, missing runs), computed with the same functions as the verdict JSON's counts;
per run of each side its score, extracted answer, output, prompt and choice log-likelihoods where the records
hold them; and, where
``explain`` ran, its class, token check and greedy replays. Texts are stored once in a string table (a prompt
repeats over seeds and sides). The page decompresses the payload with the browser's DecompressionStream.
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import numpy as np
import pandas as pd

from ..analysis import answer_changed
from ..stats import item_means
from ..stats.control import flip_indicators
from .content import natural_key

ITEM_DATA_VERSION = 1
# Optional record columns shown when present: the raw output and the prompt text (the records' prediction is the
# extracted answer; prompt_hash is always there and shown when the text is not).
TEXT_COLUMNS = ("prediction", "output", "prompt", "prompt_hash")


class _Strings:
    """A string table: each distinct text stored once, referred to by its index (-1: none)."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def ref(self, value: Any) -> int:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return -1
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        return self.index.setdefault(text, len(self.index))

    def table(self) -> list[str]:
        return list(self.index)


def _choices(values: Any) -> list[float | None] | None:
    """A run's per-choice log-likelihoods as JSON numbers (None for -inf or NaN), or None when not logged."""
    if not isinstance(values, (list, tuple, np.ndarray)) or not len(values):
        return None
    return [float(value) if np.isfinite(value) else None for value in np.asarray(values, float)]


def _runs_by_item(records: pd.DataFrame | None, benchmark: str, strings: _Strings) -> dict[tuple[str, str], list]:
    """(item key, run id) -> string refs of TEXT_COLUMNS and the choice log-likelihoods, from that run's first row."""
    if records is None or not len(records):
        return {}
    part = records[records["benchmark"] == benchmark]
    values = [part[column].tolist() if column in part.columns else [None] * len(part) for column in (*TEXT_COLUMNS, "choice_logprobs")]
    found: dict[tuple[str, str], list] = {}
    for key, run, *texts, choices in zip(part["item_key"].astype(str), part["run_id"].astype(str), *values):
        if (key, run) not in found:
            found[(key, run)] = [*(strings.ref(text) for text in texts), _choices(choices)]
    return found


def _first_by_item(records: pd.DataFrame | None, benchmark: str, column: str) -> dict[str, Any]:
    if records is None or column not in records.columns:
        return {}
    part = records[records["benchmark"] == benchmark].dropna(subset=[column]).drop_duplicates("item_key")
    return dict(zip(part["item_key"].astype(str), part[column]))


def item_subsets(bench, records_a: pd.DataFrame | None, records_b: pd.DataFrame | None) -> list[str]:
    """Each item's subset (the records' ``subset``; the benchmark's name where no record names one)."""
    found = _first_by_item(records_a, bench.name, "subset") | _first_by_item(records_b, bench.name, "subset")
    return [str(found.get(key, bench.name)) for key in bench.item_keys]


def _side_runs(scores: np.ndarray, runs: tuple[str, ...], texts: dict, key: str) -> list[list]:
    """One side's runs of one item: [score or None, *TEXT_COLUMNS refs, choice log-likelihoods or None]."""
    none = [-1] * len(TEXT_COLUMNS) + [None]
    return [
        [None if np.isnan(score) else float(score), *texts.get((key, str(run)), none)]
        for score, run in zip(scores, runs)
    ]


def _explained(explain: dict | None) -> dict[tuple[str, str], dict]:
    """(benchmark, item key) -> the parts of explain's item the browser shows."""
    if not explain:
        return {}
    found = {}
    for item in explain.get("items", []):
        tokens, replay = item.get("tokens") or {}, item.get("replay")
        found[(item["benchmark"], item["item_key"])] = {
            "class": item["flip_class"], "detail": item["detail"], "reason": item["reason"],
            "tokens": {name: tokens.get(name) for name in ("identical", "position", "token_a", "token_b", "context_a",
                                                            "context_b", "defect", "prompt_a", "summary")},
            "replay": replay,
        }
    return found


def _benchmark_items(name: str, bench, records_a, records_b, strings: _Strings, explained: dict) -> tuple[dict, list[dict]]:
    """One benchmark's header and its items."""
    mean_a, mean_b = item_means(bench.scores_a), item_means(bench.scores_b)
    flags = flip_indicators(mean_a, mean_b)
    changed = None
    if records_a is not None and records_b is not None:
        changed = answer_changed(records_a[records_a["benchmark"] == name], records_b[records_b["benchmark"] == name], bench.item_keys)
    present = np.isfinite(mean_a) & np.isfinite(mean_b)
    churn = np.zeros(len(bench.item_keys), bool) if changed is None else (changed == 1.0) & ~flags["flips"] & present
    missing = np.isnan(bench.scores_a).any(axis=1) | np.isnan(bench.scores_b).any(axis=1)
    texts_a, texts_b = _runs_by_item(records_a, name, strings), _runs_by_item(records_b, name, strings)
    subsets = item_subsets(bench, records_a, records_b)
    targets = _first_by_item(records_b, name, "target") | _first_by_item(records_a, name, "target")
    items = []
    for row in sorted(range(len(bench.item_keys)), key=lambda row: natural_key(bench.item_keys[row])):
        key = bench.item_keys[row]
        item = {
            "key": key, "subset": subsets[row], "target": strings.ref(targets.get(key)),
            "mean_a": None if np.isnan(mean_a[row]) else float(mean_a[row]),
            "mean_b": None if np.isnan(mean_b[row]) else float(mean_b[row]),
            "harmful": bool(flags["harmful"][row]), "beneficial": bool(flags["beneficial"][row]),
            "churn": bool(churn[row]), "missing": bool(missing[row]),
            "a": _side_runs(bench.scores_a[row], bench.runs_a, texts_a, key),
            "b": _side_runs(bench.scores_b[row], bench.runs_b, texts_b, key),
        }
        if (name, key) in explained:
            item["explain"] = explained[(name, key)]
        items.append(item)
    header = {"name": name, "metric": bench.metric, "runs_a": list(map(str, bench.runs_a)), "runs_b": list(map(str, bench.runs_b))}
    return header, items


def item_data(analysis, records_a: pd.DataFrame | None = None, records_b: pd.DataFrame | None = None, explain: dict | None = None) -> dict:
    """Every paired item of ``analysis`` as plain JSON-able data (see the module docstring)."""
    strings, explained = _Strings(), _explained(explain)
    benchmarks, items = [], []
    for index, (name, bench) in enumerate(analysis.pairing.benchmarks.items()):
        header, found = _benchmark_items(name, bench, records_a, records_b, strings, explained)
        benchmarks.append(header)
        items += [{"bench": index} | item for item in found]
    return {
        "version": ITEM_DATA_VERSION, "columns": list(TEXT_COLUMNS), "benchmarks": benchmarks,
        "explain_classes": (explain or {}).get("class_meanings", {}), "items": items, "strings": strings.table(),
    }


def encode_item_data(data: dict) -> str:
    """gzip + base64 of the JSON: what the page embeds (base64 holds no character HTML could misread)."""
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return base64.b64encode(gzip.compress(raw, compresslevel=9, mtime=0)).decode("ascii")
