"""One exception type for every bad input, rendered by the CLI as a one-line error and exit 2."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


class InputError(Exception):
    """A user-facing problem with an input file, argument or config.

    The CLI prints ``str(error)`` on one line and exits with code 2; it never shows a traceback.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.key = key
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path
            if self.line is not None:
                where += f":{self.line}"
            if self.key is not None:
                where += f" [{self.key}]"
            where += ": "
        elif self.key is not None:
            where = f"{self.key}: "
        # Keep it to one line whatever the message holds.
        return (where + self.message).replace("\n", " ").strip()


def did_you_mean(name: str, known: Iterable[str], *, list_known: bool = True) -> str:
    """The hint that ends an "unknown name" message: the nearest known name, else the known names (or
    nothing, with ``list_known=False``, where the list would be long)."""
    known = list(known)
    near = difflib.get_close_matches(name, known, n=1)
    if near:
        return f"; did you mean {near[0]!r}?"
    return f"; known: {', '.join(known)}" if list_known and known else ""


def validation_error(
    error: Any,
    model: Any,
    *,
    path: str | Path | None = None,
    line_of: Callable[[tuple], int | None] | None = None,
    context: str = "",
    as_option: bool = False,
) -> InputError:
    """A pydantic ValidationError of ``model`` as a one-line InputError about its first problem, keyed by the
    dotted field path (or, ``as_option``, the command-line option of that name: max_seeds -> --max-seeds);
    an unknown key names the nearest valid one. ``line_of`` maps the location to a file line."""
    first = error.errors()[0]
    location = tuple(p for p in first["loc"] if not str(p).startswith(("function-after", "union", "list[")))
    if first["type"] == "extra_forbidden" and location:
        message = "unknown key" + did_you_mean(str(location[-1]), _field_names(model, location[:-1]), list_known=False)
    else:
        message = first["msg"].removeprefix("Value error, ")
    key = ".".join(str(p) for p in location)
    if as_option and key:
        key = "--" + key.replace("_", "-")
    return InputError(f"{context}{message}", path=path, line=line_of(location) if line_of else None, key=key or None)


def _field_names(model: Any, section: tuple) -> list[str]:
    """Field names of the nested pydantic model at ``section`` ([] where the path leaves nested models)."""
    for part in section:
        field = getattr(model, "model_fields", {}).get(str(part))
        model = field.annotation if field is not None else None
    return list(getattr(model, "model_fields", {}))
