"""Plugins through entry points (statrepro/registry.py): a real package, pip-installed into a temporary directory,
adds an engine kind, a harness and a benchmark that environment files and `statrepro analyze` then use; and the
one-line errors of a broken plugin.

The plugin package is tests/support/plugins/statrepro-toy-plugins. Its users run in a subprocess, as a user's
statrepro would: the registries are filled once per process, and config's engine-kind names on import.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Protocol
from pathlib import Path

import pytest
import yaml

from statrepro.errors import InputError
from statrepro.registry import Registry

REPO = Path(__file__).resolve().parents[1]
PLUGIN_SOURCE = REPO / "tests" / "support" / "plugins" / "statrepro-toy-plugins"
TIMEOUT = 120


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    """The toy plugin package installed by pip (offline, no build isolation) into a directory of its own."""
    root = tmp_path_factory.mktemp("plugins")
    source = shutil.copytree(PLUGIN_SOURCE, root / "source")  # pip builds in the source tree: never in the repo
    target = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
         "--target", str(target), str(source)],
        check=True, capture_output=True, timeout=TIMEOUT,
    )
    return target


def _environment(plugin_path: Path) -> dict[str, str]:
    python_path = os.pathsep.join(filter(None, [str(plugin_path), str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": python_path}


def _python(plugin_path: Path, script: str, *args: str) -> dict:
    """Run ``script`` in a fresh interpreter that has the plugin installed; it prints one JSON object."""
    done = subprocess.run([sys.executable, "-c", script, *args], env=_environment(plugin_path), capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


_LOAD_ENVS = """
import json, sys
from statrepro.envfile import load_env
from statrepro.errors import InputError
out = {}
for path in sys.argv[1:]:
    try:
        out[path] = load_env(path).model_dump(mode="json")
    except InputError as error:
        out[path] = str(error)
print(json.dumps(out))
"""


def _write_env(path: Path, **sections) -> str:
    path.write_text(yaml.safe_dump({"name": path.stem, "model": {"path": "toy/model"}, **sections}))
    return str(path)


def test_a_plugin_engine_kind_is_usable_from_an_environment_file(plugin_path, tmp_path):
    engine = {"kind": "toy-endpoint", "base_url": "http://127.0.0.1:9/v1", "served_model": "m"}
    good = _write_env(tmp_path / "good.yaml", engine=engine, benchmarks={"gsm8k": {"limit": 2}})
    typo = _write_env(tmp_path / "typo.yaml", engine={**engine, "kind": "toy-endpont"}, benchmarks={"gsm8k": {"limit": 2}})
    checked = _write_env(tmp_path / "checked.yaml", engine={"kind": "toy-endpoint"}, benchmarks={"gsm8k": {"limit": 2}})
    loaded = _python(plugin_path, _LOAD_ENVS, good, typo, checked)
    assert loaded[good]["engine"]["kind"] == "toy-endpoint"
    assert loaded[good]["engine"]["concurrency"] == 3  # the plugin kind's default, asked through the registry
    assert "[engine.kind]" in loaded[typo] and "'toy-endpoint'" in loaded[typo]  # a known name, listed
    assert "engine kind 'toy-endpoint' needs base_url" in loaded[checked]  # the kind's own check ran


def test_a_plugin_benchmark_is_usable_from_an_environment_file(plugin_path, tmp_path):
    env = _write_env(tmp_path / "env.yaml", benchmarks={"toy-bench": {"limit": 2}, "gsm8k": {"limit": 2}})
    typo = _write_env(tmp_path / "typo.yaml", benchmarks={"toy-bnch": {"limit": 2}})
    loaded = _python(plugin_path, _LOAD_ENVS, env, typo)
    assert loaded[env]["benchmarks"]["toy-bench"]["limit"] == 2
    assert "unknown benchmark 'toy-bnch'; did you mean 'toy-bench'?" in loaded[typo]
    items = _python(plugin_path, "import json; from statrepro.benchmarks import get_benchmark; "
                                 "print(json.dumps(get_benchmark('toy-bench').load_items(None)))")
    assert [item["answer"] for item in items["main"]] == ["2", "4", "6"]


def _toy_reader_run(path: Path, scores: list[int], benchmark: str = "gsm8k") -> Path:
    path.mkdir(parents=True)
    lines = [json.dumps({"benchmark": benchmark, "item": item, "seed": 0, "score": score}) for item, score in enumerate(scores)]
    (path / "toy_reader.jsonl").write_text("\n".join(lines) + "\n")
    return path


def test_a_plugin_harness_is_usable_from_an_environment_file_and_analyze_reads_its_output(plugin_path, tmp_path):
    env = _write_env(tmp_path / "env.yaml", harness={"name": "toy-reader"}, benchmarks={"gsm8k": {"limit": 2}})
    assert _python(plugin_path, _LOAD_ENVS, env)[env]["harness"]["name"] == "toy-reader"

    scores = [1, 0, 1, 1, 0] * 40  # A and B score every item alike
    a, b = _toy_reader_run(tmp_path / "a", scores), _toy_reader_run(tmp_path / "b", scores)

    def analyze(*extra: str) -> dict:
        verdict = tmp_path / "verdict.json"
        done = subprocess.run(
            [sys.executable, "-c", "from statrepro.cli import app; app()", "analyze", str(a), str(b), "--json",
             str(verdict), "--resamples", "500", *extra],
            env=_environment(plugin_path), capture_output=True, text=True, timeout=TIMEOUT,
        )
        assert done.returncode in (0, 3, 4), done.stderr
        return json.loads(verdict.read_text())

    declared = analyze()
    benchmark = declared["benchmarks"]["gsm8k"]
    assert benchmark["metric"] == "toy_acc" and benchmark["n_items"] == 200
    assert benchmark["score_range"] == [0.0, 1.0]  # declared by the plugin adapter's unit_range_metrics
    assert declared["verdict"] == "equivalent"
    undeclared = analyze("--metric", "gsm8k=toy_points")  # the same scores under a metric no harness declares
    assert undeclared["benchmarks"]["gsm8k"]["metric"] == "toy_points"
    assert undeclared["benchmarks"]["gsm8k"]["score_range"] is None


# --- the registry's own errors: a plugin as a temporary dist-info on sys.path ---------------------------


def _plugin(root: Path, module_source: str, entry_points: str, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, "toy_things", raising=False)  # another test's toy_things
    (root / "toy_things.py").write_text(module_source)
    dist_info = root / "toy_things-0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-things\nVersion: 0\n")
    (dist_info / "entry_points.txt").write_text(f"[statrepro.test-things]\n{entry_points}\n")


class Thing:
    name = "built-in"


class ThingContract(Protocol):
    name: str
    careful: bool = False

    def act(self) -> None: ...


def _things() -> Registry:
    return Registry(
        "thing", group="statrepro.test-things", key="things", builtins=(f"{__name__}:Thing",), contract=f"{__name__}:ThingContract",
    )


@pytest.mark.parametrize(
    "module_source, entry_points, message",
    [
        ("raise RuntimeError('boom')", "broken = toy_things:Thing",
         r"cannot load thing plugin 'broken' \(toy_things:Thing, entry point group 'statrepro.test-things'\): RuntimeError: boom"),
        ("class Thing:\n    name = 'other'", "mine = toy_things:Thing",
         r"thing plugin toy_things:Thing is registered as 'mine' but its name is 'other'"),
        ("class Thing:\n    name = 'built-in'", "built-in = toy_things:Thing",
         r"thing plugin toy_things:Thing takes the name 'built-in', which test_registry already has"),
        ("class Thing:\n    name = 'mine'", "mine = toy_things:Thing",
         r"thing plugin toy_things:Thing lacks act, careful of the contract test_registry:ThingContract \(subclass it"),
    ],
    ids=["import-fails", "name-mismatch", "name-taken", "contract-member-missing"],
)
def test_a_broken_plugin_is_one_line_naming_it(tmp_path, monkeypatch, module_source, entry_points, message):
    _plugin(tmp_path, module_source, entry_points, monkeypatch)
    with pytest.raises(InputError, match=message):
        _things().get_or_fail("built-in")


def test_plugins_are_found_on_first_use_and_unknown_names_get_the_nearest(tmp_path, monkeypatch):
    things = _things()  # made before the plugin is on sys.path: nothing is looked up until first use
    _plugin(tmp_path, "class Gadget:\n    name = 'gadget'\n    careful = True\n    def act(self): pass", "gadget = toy_things:Gadget", monkeypatch)
    assert list(things) == ["built-in", "gadget"] and type(things["gadget"]).__name__ == "Gadget"
    with pytest.raises(InputError, match=r"^things: unknown thing 'gadgett'; did you mean 'gadget'\?$"):
        things.get_or_fail("gadgett")
