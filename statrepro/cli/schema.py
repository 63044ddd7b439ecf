"""`statrepro schema`: the JSON Schema of the verdict file."""

from __future__ import annotations

import json

import typer


def schema() -> None:
    """Print the JSON Schema of the verdict file (its schema_version is in the output)."""
    from ..api import verdict_json_schema

    typer.echo(json.dumps(verdict_json_schema(), indent=2))

