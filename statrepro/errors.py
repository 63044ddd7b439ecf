"""One exception type for every bad input, rendered by the CLI as a one-line error and exit 2."""

from __future__ import annotations

from pathlib import Path


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
