"""The public API's entry points: every name statrepro exports resolves, lazily."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import statrepro


def test_every_exported_name_resolves():
    missing = [name for name in statrepro.__all__ if not callable(getattr(statrepro, name, None))]
    assert not missing


def test_no_exported_name_is_also_a_module_of_the_package():
    """`import statrepro.bench` would replace a function statrepro.bench with the module."""
    modules = {path.stem for path in Path(statrepro.__file__).parent.iterdir() if path.suffix == ".py" or path.is_dir()}
    assert not modules & set(statrepro.__all__)


def test_importing_statrepro_and_the_cli_leaves_the_api_unimported():
    """`statrepro --help` stays fast: the API (pydantic, the run path) is imported by the commands, not by the app."""
    code = "import sys, statrepro, statrepro.cli; print(sorted(m for m in sys.modules if m.startswith(('statrepro.api', 'pydantic'))))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_verdict_json_schema_is_the_verdict_files():
    schema = statrepro.verdict_json_schema()
    # A candidate's full comparison is itself a verdict, so the schema is a reference into its definitions.
    root = schema["$defs"][schema["$ref"].rsplit("/", 1)[-1]] if "$ref" in schema else schema
    assert root["title"] == "VerdictJson" and "schema_version" in root["properties"]
