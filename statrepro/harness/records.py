"""The normalised per-item table that every harness adapter produces and the statistics consume.

One row is one item scored in one run (seed) of one environment. See ``docs/schema.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

from ..errors import InputError

# Column -> meaning. The order is the canonical column order of a records table.
RECORD_COLUMNS: dict[str, str] = {
    "benchmark": "Benchmark the item belongs to (a statrepro benchmark name, or the harness task's own name).",
    "subset": "Task or subject inside the benchmark (e.g. ceval-valid_law, mmlu_redux_anatomy_generative).",
    "item_key": "Stable key of the item inside its benchmark, used to pair A with B (e.g. '<subset>/<doc_id>').",
    "run_id": "Identifier of the run (one seed / one generation index) the row comes from.",
    "seed": "Sampling seed of the run when known, else null.",
    "metric": "Name of the primary metric the score is taken from (e.g. exact_match,flexible-extract).",
    "score": "The item's score in this run; finite, usually 0/1 or in [0, 1].",
    "prediction": "The model's (filtered) answer, when the harness logs it.",
    "output": "The model's raw output before answer extraction (for log-likelihood scoring, the chosen choice's text), when the harness logs it.",
    "prompt": "The prompt text sent for the item (chat messages as '[role]' blocks), when the harness logs it.",
    "target": "The reference answer, when the harness logs it.",
    "choice_logprobs": "Multiple choice scored by log-likelihood (modes ppl, clp): each choice's log-likelihood in the harness's choice order, else null.",
    "choice_logprob_kind": "What choice_logprobs holds: 'continuation_sum' (the choice's summed log-likelihood, lm-eval), 'prompt_token_mean' (minus the mean token loss over the whole prompt with the choice, OpenCompass ppl) or 'answer_letter_token' (the letter's next-token log-probability where the model wrote its answer, inspect); null read as continuation_sum.",
    "prompt_hash": "Hash of the rendered prompt, to detect prompt differences between environments.",
    "doc_hash": "Hash of the source document, a check that paired items really are the same item.",
    "model": "Model name the harness recorded, to detect mixed models within one side.",
    "harness": "Harness whose output the row was read from (set on reading), to report a harness difference and pair across harnesses.",
    "source": "File the row was read from, for error messages and provenance.",
}

REQUIRED_COLUMNS = ("benchmark", "subset", "item_key", "run_id", "metric", "score")
# Column types when a stored records.jsonl is read back: text stays text (pandas would turn an output "0018" or an
# answer "42" into a number). Columns a file lacks (stores from before output and prompt) are simply absent.
READ_DTYPES = {name: str for name in ("item_key", "run_id", "subset", "prediction", "target", "output", "prompt")}


def content_text(content: object) -> str:
    """A chat message's content as text: a string as it is; content parts (``[{"type": "text", "text": ...}]``)
    by their text."""
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) if isinstance(part, dict) else str(part) for part in content)
    return "" if content is None else str(content)


def messages_text(messages: object) -> str | None:
    """Chat messages as one readable text: each message a ``[role]`` line and its content, a blank line between."""
    if not isinstance(messages, (list, tuple)) or not messages:
        return None
    return "\n\n".join(
        f"[{message.get('role')}]\n{content_text(message.get('content'))}" if isinstance(message, dict) else str(message)
        for message in messages
    )


def empty_records() -> pd.DataFrame:
    """An empty records table with the canonical columns."""
    return pd.DataFrame({name: pd.Series(dtype="float64" if name == "score" else "object") for name in RECORD_COLUMNS})


def make_records(rows: list[dict]) -> pd.DataFrame:
    """Build a records table from row dicts, filling optional columns with None."""
    if not rows:
        return empty_records()
    frame = pd.DataFrame.from_records(rows)
    for name in RECORD_COLUMNS:
        if name not in frame.columns:
            frame[name] = None
    frame = frame[list(RECORD_COLUMNS)]
    frame["score"] = frame["score"].astype("float64")
    return frame


def concat_records(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Records tables as one, in the canonical column order, empty ones skipped (an empty table for none)."""
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return empty_records()
    combined = pd.concat(frames, ignore_index=True)
    return combined[[column for column in RECORD_COLUMNS if column in combined.columns]]


def coerce_score(value: object, *, path: str, line: int | None, key: str) -> float:
    """Turn a harness score value into a finite float, or raise a located InputError.

    lm-eval logs booleans and numbers; evalscope logs numbers; both may log numeric strings.
    NaN, inf and non-numeric strings are bad input: silently dropping or zeroing them would bias the verdict.
    """
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise InputError(f"score {value[:40]!r} is not a number", path=path, line=line, key=key) from None
    else:
        raise InputError(f"score of type {type(value).__name__} is not a number", path=path, line=line, key=key)
    if not math.isfinite(number):
        raise InputError(f"score is {number}, not a finite number", path=path, line=line, key=key)
    return number


def check_unique(records: pd.DataFrame, side: str) -> None:
    """Reject duplicate (benchmark, item_key, run_id) rows: a doubled item would be counted twice."""
    dup = records.duplicated(subset=["benchmark", "item_key", "run_id"], keep=False)
    if dup.any():
        row = records[dup].iloc[0]
        raise InputError(
            f"duplicate item {row['item_key']!r} in run {row['run_id']!r} of benchmark {row['benchmark']!r}",
            path=row["source"] or side,
        )
