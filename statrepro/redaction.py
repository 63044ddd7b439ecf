"""Keeping secrets out of everything that leaves the process: logs, argv, manifests, reports, errors.

Two kinds of secret: known values (an env's api_key: ``redact_secrets``, ``scrub_files``) and values under
secret-sounding names in data or command lines we did not build (``redact_secret_keys``, ``redact_argv``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REDACTED = "***"
# Keys whose values are secrets wherever they appear in a config, manifest or command line.
SECRET_KEY = re.compile(r"api[_-]?key|token|authori[sz]ation|secret|passw(?:or)?d|credential", re.IGNORECASE)
_BEARER = re.compile(r"(bearer|basic)\s+\S+", re.IGNORECASE)


def redact_secrets(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every non-empty secret replaced by ***: for logs, argv and messages that leave the process."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def scrub_files(paths: list[Path], secrets: Sequence[str]) -> None:
    """Remove secrets from files a harness wrote (evalscope dumps its whole config, key included)."""
    if not any(secrets):
        return
    for path in paths:
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        cleaned = data
        for secret in secrets:
            if secret:
                cleaned = cleaned.replace(secret.encode(), REDACTED.encode())
        if cleaned != data:
            path.write_bytes(cleaned)


def redact_secret_keys(value: Any) -> Any:
    """A copy of ``value`` with every secret-named key's value replaced, and bearer tokens masked in strings."""
    if isinstance(value, dict):
        return {key: REDACTED if SECRET_KEY.search(str(key)) else redact_secret_keys(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_secret_keys(item) for item in value]
    if isinstance(value, str):
        return _BEARER.sub(lambda match: f"{match.group(1)} {REDACTED}", value)
    return value


def redact_argv(argv: list[str]) -> list[str]:
    """The command line with the values of secret-named options masked (``--api-key X`` and ``--token=X``)."""
    cleaned: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            cleaned.append(REDACTED)
            hide_next = False
            continue
        name, equals, _ = arg.partition("=")
        if name.startswith("-") and SECRET_KEY.search(name):
            if equals:
                cleaned.append(f"{name}={REDACTED}")
            else:
                cleaned.append(arg)
                hide_next = True
            continue
        cleaned.append(redact_secret_keys(arg))
    return cleaned
