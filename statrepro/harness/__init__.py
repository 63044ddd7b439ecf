"""Harness adapters behind a small registry (in the spirit of lm-eval's ``@register_model``).

Each adapter implements ``statrepro.harness.contract.HarnessAdapter``: it builds the harness invocation of a
job, normalises the harness's output into the records table of ``statrepro.harness.records``, and reports
the score-moving settings that output records (for ``statrepro doctor``).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Callable

import pandas as pd

from ..errors import InputError, did_you_mean

_REGISTRY: dict[str, type] = {}
# Modules that register adapters when imported; imported lazily so `statrepro --help` stays fast.
_ADAPTER_MODULES = (
    "statrepro.harness.lm_eval", "statrepro.harness.evalscope", "statrepro.harness.inspect_logs",
    "statrepro.harness.lighteval", "statrepro.harness.opencompass",
)


def register_harness(name: str) -> Callable[[type], type]:
    """Class decorator: make an adapter available under ``name``."""

    def decorate(cls: type) -> type:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def _load_adapters() -> None:
    """Import the built-in adapters and any plugins named in $STATREPRO_PLUGINS (comma-separated modules)."""
    plugins = [name.strip() for name in os.environ.get("STATREPRO_PLUGINS", "").split(",") if name.strip()]
    for module in (*_ADAPTER_MODULES, *plugins):
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise InputError(f"cannot import harness plugin {module!r}: {error}", key="STATREPRO_PLUGINS") from None


def harness_names() -> list[str]:
    _load_adapters()
    return sorted(_REGISTRY)


def harness_adapters() -> list:
    """One instance of every registered adapter, built-ins first (in registration order)."""
    _load_adapters()
    return [adapter() for adapter in _REGISTRY.values()]


def get_harness(name: str):
    """The adapter registered as ``name``; an InputError suggesting the nearest name otherwise."""
    _load_adapters()
    if name not in _REGISTRY:
        raise InputError(f"unknown harness {name!r}{did_you_mean(name, sorted(_REGISTRY))}", key="harness")
    return _REGISTRY[name]()


def load_side(path: str | Path, *, metric_overrides: dict[str, str] | None = None) -> pd.DataFrame:
    """Read every run of one environment under ``path``, whichever harness wrote it."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or directory", path=path)
    _load_adapters()
    frames = []
    for name in sorted(_REGISTRY):
        adapter = _REGISTRY[name]()
        if adapter.detect(path):
            frames.append(adapter.load(path, metric_overrides=metric_overrides or {}).assign(harness=name))
    if not frames:
        if path.is_dir() and not any(path.iterdir()):
            raise InputError("directory is empty", path=path)
        raise InputError(
            "no recognisable run: expected lm-eval results_*.json with samples_*.jsonl, "
            "an evalscope work dir with reviews/, inspect_ai logs (*.eval, *.json), lighteval details/*.parquet "
            "or an OpenCompass work dir with predictions/",
            path=path,
        )
    return pd.concat(frames, ignore_index=True)
