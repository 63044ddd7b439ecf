"""The one error type the engines raise."""

from __future__ import annotations

from ..errors import InputError


class EngineError(InputError):
    """A managed server could not start, or an endpoint kept failing.

    Subclasses InputError so the CLI reports it on one line (no traceback); the message names the
    server, its log file and the last log lines, with secrets already redacted.
    """
