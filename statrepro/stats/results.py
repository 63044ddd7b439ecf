"""Shared behaviour of the frozen result objects returned by the statistics core."""

from __future__ import annotations

import dataclasses
import math
from typing import Any


def _plain(value: Any) -> Any:
    """JSON-ready value: tuples become lists, NaN/inf become None, numpy scalars become Python numbers."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class ResultMixin:
    """``to_dict()`` for JSON and a one-paragraph ``summary()`` for humans."""

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    def summary(self) -> str:
        parts = []
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            if isinstance(value, float):
                parts.append(f"{field.name}={value:.4g}")
            elif not dataclasses.is_dataclass(value):
                parts.append(f"{field.name}={value}")
        return f"{type(self).__name__}(" + ", ".join(parts) + ")"
