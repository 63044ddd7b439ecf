"""`statrepro schema`: the JSON Schema of the verdict file."""

from __future__ import annotations

import json

import typer


def schema() -> None:
    """Print the JSON Schema of the verdict file (its schema_version is in the output)."""
    from ..verdict_schema import VerdictJson

    typer.echo(json.dumps(VerdictJson.model_json_schema(), indent=2))

