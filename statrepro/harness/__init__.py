"""Harness adapters behind the registry of ``statrepro.registry`` (plugins: entry-point group ``statrepro.harnesses``).

Each adapter implements ``statrepro.harness.contract.HarnessAdapter``: it builds the harness invocation of a
job, normalises the harness's output into the records table of ``statrepro.harness.records``, and reports
the score-moving settings that output records (for ``statrepro doctor``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..errors import InputError
from ..registry import Registry

if TYPE_CHECKING:
    from .contract import HarnessAdapter

# Imported on first lookup, so `statrepro --help` stays fast.
HARNESSES: Registry[HarnessAdapter] = Registry(
    "harness",
    group="statrepro.harnesses",
    key="harness",
    builtins=(
        "statrepro.harness.lm_eval:LmEvalHarness",
        "statrepro.harness.evalscope:EvalscopeHarness",
        "statrepro.harness.inspect_logs:InspectHarness",
        "statrepro.harness.lighteval:LightevalHarness",
        "statrepro.harness.opencompass:OpencompassHarness",
    ),
    contract="statrepro.harness.contract:HarnessAdapter",
)


def harness_names() -> list[str]:
    return sorted(HARNESSES)


def harness_adapters() -> list[HarnessAdapter]:
    """Every registered adapter, built-ins first (in registration order)."""
    return list(HARNESSES.values())


def get_harness(name: str) -> HarnessAdapter:
    """The adapter registered as ``name``; an InputError suggesting the nearest name otherwise."""
    return HARNESSES.get_or_fail(name)


def unit_range_metrics() -> frozenset[str]:
    """The metrics some registered harness declares to score each item in [0, 1] (``unit_range_metrics``)."""
    return frozenset().union(*(adapter.unit_range_metrics for adapter in HARNESSES.values()))


def load_side(path: str | Path, *, metric_overrides: dict[str, str] | None = None) -> pd.DataFrame:
    """Read every run of one environment under ``path``, whichever harness wrote it."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or directory", path=path)
    frames = []
    for name in sorted(HARNESSES):
        adapter = HARNESSES[name]
        if adapter.detect(path):
            frames.append(adapter.load(path, metric_overrides=metric_overrides or {}).assign(harness=name))
    if not frames:
        if path.is_dir() and not any(path.iterdir()):
            raise InputError("directory is empty", path=path)
        outputs = [f"{name} ({adapter.output_description})" for name, adapter in HARNESSES.items()]
        raise InputError(f"no recognisable run: expected output of {', '.join(outputs[:-1])} or {outputs[-1]}", path=path)
    return pd.concat(frames, ignore_index=True)
