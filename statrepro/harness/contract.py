"""The contract between statrepro and a harness adapter: what an adapter is given, what it must return.

An adapter (lm-eval, evalscope, ..., or a plugin's, registered under the entry-point group
``statrepro.harnesses``) implements ``HarnessAdapter``:

- ``name``, ``output_description``, ``unit_range_metrics``: the name environment files use, what its output
  looks like (for the error when no harness recognises a path), and the metrics whose per-item scores it
  declares to lie in [0, 1] (the exact tests and the tipping-point check take the bounds from there).

- ``build_invocation(context)``: the harness command line of one job (``JobContext`` in, ``Invocation`` out);
  statrepro runs it as a subprocess in ``context.work_dir`` and never through a shell.
- ``detect(path)`` / ``load(path, metric_overrides=...)``: recognise the harness's output and turn it into the
  records table of ``statrepro.harness.records`` (one row per item and run).
- ``doctor_factors(path)``: the score-moving settings the output records (keys from ``DOCTOR_FACTORS`` and
  ``DETERMINISM_FACTORS``, plus ``ENDPOINT_FACTOR``), or None when ``path`` is not this harness's format.
- ``sent_prompts(path)``: what the harness sent the engine for each item (``SentPrompt``), rebuilt from its
  own per-item output, so that ``statrepro explain`` replays exactly that and never re-renders the dataset.
- ``guards_requests`` (default False): whether the harness's requests to a served engine go through statrepro's
  request guard (``engines/relay.py``; the harness sends to ``JobContext.guard_url``, with its own retries off).
  A request the guard gave up on reaches the harness as a placeholder answer; the job finds its item by the
  prompt ``sent_prompts`` reports and drops it as a missing run, so only declare it when that is exact.
  A class that subclasses ``HarnessAdapter`` inherits the default.

``tests/harness/adapter_contract.py`` is the suite a plugin author runs against an adapter.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..engines.contract import SentPrompt  # what an adapter returns per item; the engine kind renders it
from ..errors import InputError
from .records import messages_text

if TYPE_CHECKING:
    import pandas as pd

    from ..config import BenchmarkSpec, EnvConfig
    from ..engines.servers import ServerInfo

# Settings that move scores, compared between two sides by `statrepro doctor` (statrepro.diagnose.doctor
# ranks them). An adapter reports the ones its output records; None or absent means unknown.
DOCTOR_FACTORS = (
    "harness", "harness_version", "metric", "filters", "prompt", "chat_template", "system_instruction", "num_fewshot",
    "fewshot_order", "stop", "max_tokens", "seed", "temperature", "top_p", "repeat_penalty", "batch_size", "concurrency", "dtype",
    "quantization", "hardware", "device", "engine", "engine_version", "max_context", "model", "mode",
)
# The OpenAI-compatible URL the harness sent its requests to, when its output records one (absent or None for
# an in-process model). Not compared: `statrepro doctor --probe-endpoints` asks that server what the output
# does not record (which engine it is, its version, served context and sampling defaults).
ENDPOINT_FACTOR = "endpoint"


def sent_text(sent: SentPrompt | None) -> str | None:
    """A sent prompt as one text for the records' ``prompt`` column: the raw prompt, or its chat messages rendered."""
    if sent is None:
        return None
    return sent.text if sent.text is not None else messages_text(sent.messages)


def mode_factor(modes) -> str | None:
    """The doctor's ``mode`` factor: the multiple-choice evaluation modes in use (ppl, clp, gen), sorted and
    comma-joined so that environment files, manifests and harness outputs compare; None without multiple choice."""
    found = sorted({mode for mode in modes if mode})
    return ",".join(found) or None


# Per-side facts the doctor's determinism checklist reads (True, False or None = unknown).
DETERMINISM_FACTORS = ("prefix_cache_off", "deterministic")


class HarnessJob(Protocol):
    """What an adapter sees of one planned job (``statrepro.run.plan.Job`` is one)."""

    @property
    def env(self) -> EnvConfig: ...

    @property
    def benchmark(self) -> str: ...

    @property
    def spec(self) -> BenchmarkSpec: ...

    @property
    def seed(self) -> int: ...

    @property
    def key(self) -> str:
        """Unique, path-safe name of the job in the store."""
        ...


@dataclass(frozen=True)
class JobContext:
    """Everything a harness adapter needs to build one invocation."""

    job: HarnessJob
    data_dir: Path
    work_dir: Path  # scratch dir: generated tasks and the harness's output
    model_path: Path
    endpoint: ServerInfo | None  # where the engine answers; None for in-process engines
    guard_url: str | None = None
    """Where the harness sends its requests instead of ``endpoint.base_url``: the request guard (engines/relay.py)
    of a harness adapter with ``guards_requests``."""


@dataclass(frozen=True)
class Invocation:
    """A harness command line and where its output lands."""

    argv: list[str]
    output_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)  # dataset hashes, task names, item counts
    row_ids: dict[str, list[int]] = field(default_factory=dict)
    """A run of selected rows (``benchmarks.<name>.item_rows``): harness task or subset name -> the row index of
    each prepared row, so the output's ``<name>/<position>`` item keys become ``<name>/<row index>``."""


ROW_IDS_FILE = "statrepro-row-ids.json"
"""Written beside a run of selected rows' harness output: its ``Invocation.row_ids``."""


def row_key(item_key: str, row_ids: dict[str, list[int]]) -> str:
    """``<name>/<position>`` of a run of selected rows -> ``<name>/<row index>``: the key the item has in a full
    run, so items of separate blocks pair and never collide."""
    name, _, position = item_key.rpartition("/")
    rows = row_ids.get(name)
    if rows is None or not position.isdigit() or int(position) >= len(rows):
        raise InputError(f"item {item_key!r} is not one of the selected rows of {sorted(row_ids)}")
    return f"{name}/{rows[int(position)]}"


def row_ids_of(output: Path) -> dict[str, list[int]]:
    """The row ids of the run of selected rows whose harness output holds ``output`` ({} for a full run)."""
    for folder in (output, *output.parents):
        path = folder / ROW_IDS_FILE
        if path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise InputError("unreadable row ids of a run of selected rows", path=path) from None
    return {}


def guarded_client_timeout(engine) -> int:
    """A guarded harness's own request timeout: past the guard's whole budget (every try and wait of
    ``engine.max_retries`` and ``engine.timeout``), so only the guard, which always answers, ends a request."""
    tries = engine.max_retries + 1
    return math.ceil(tries * engine.timeout + tries * 20.0 + 60)


def harness_environment(work_dir: Path) -> dict[str, str]:
    """Environment every harness subprocess gets: offline, and a per-job `datasets` cache, because offline
    `datasets` may otherwise serve a stale cached copy of a same-named dataset (seen: evalscope read another
    run's gsm8k instead of this job's prepared files). The Hugging Face libraries' own bars (dataset maps,
    checkpoint shards) are off: the harness's request bars are what its log is read for (``run.progress``)."""
    return {
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_DATASETS_CACHE": str(work_dir / "datasets-cache"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "MODELSCOPE_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


@runtime_checkable
class HarnessAdapter(Protocol):
    """One evaluation harness, seen from statrepro. Register an implementation in ``statrepro.harness.HARNESSES``
    (built-ins) or under the entry-point group ``statrepro.harnesses`` (plugins)."""

    name: str
    output_description: str
    unit_range_metrics: frozenset[str]
    guards_requests: bool = False
    """Whether its requests to a served engine go through the request guard (``JobContext.guard_url``); see the
    module docstring for what that takes."""

    def build_invocation(self, context: JobContext) -> Invocation:
        """The command line that runs ``context.job`` and writes its per-item output under ``output_dir``."""
        ...

    def detect(self, path: Path) -> bool:
        """Whether ``path`` (a file or a directory) holds output of this harness."""
        ...

    def load(self, path: Path, *, metric_overrides: dict[str, str]) -> pd.DataFrame:
        """The records table of the output under ``path``; located InputError on bad input."""
        ...

    def doctor_factors(self, path: Path) -> dict[str, Any] | None:
        """The score-moving settings recorded in ``path``, or None when it is not this harness's output."""
        ...

    def sent_prompts(self, path: Path) -> dict[str, SentPrompt]:
        """Item key (as in the records of ``load``) -> what was sent for that item, from the output under ``path``."""
        ...


# ---------------------------------------------------------------------------------------------
# Helpers for doctor_factors: values must compare equal exactly when the setting is the same.


def short_hash(value: Any) -> str | None:
    """A 12-hex-digit digest of a text or JSON-able value (prompts, filters), None for None."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def per_task(values: dict[str, Any]) -> Any:
    """One value if every task agrees, else 'task=value; ...' (stable order)."""
    known = {task: value for task, value in values.items() if value is not None}
    if not known:
        return None
    distinct = {json.dumps(v, sort_keys=True, default=str) for v in known.values()}
    if len(distinct) == 1:
        return next(iter(known.values()))
    return "; ".join(f"{task}={json.dumps(value, sort_keys=True, default=str)}" for task, value in sorted(known.items()))

