"""The layers of docs/architecture.md, enforced on the source: every module has a layer and imports only from its
own part and the layers below, and no modules import each other in a loop. Imports are parsed with ast, so
imports inside functions count, and so do imports under ``if TYPE_CHECKING:``: an annotation that points up a
layer is a loop waiting for its first run-time import.

``python tests/test_architecture.py`` prints the numbers the house is measured by (``house_numbers``).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "statrepro"

# The layers, lowest first. Each names its parts: a package (every module under it, so a new module of stats/ or
# of the cli/ package is covered by its prefix) or a root module. A module imports its own part and the parts of
# lower layers, never a part beside it in its own layer nor anything above.
LAYERS = (
    ("errors", ("statrepro.errors",)),
    ("foundation", ("statrepro.atomic", "statrepro.redaction", "statrepro.machine", "statrepro.registry")),
    ("statistics", ("statrepro.stats",)),
    ("schemas", ("statrepro.config", "statrepro.models", "statrepro.verdict_schema")),
    ("registries", ("statrepro.engines", "statrepro.benchmarks")),
    ("adapters", ("statrepro.harness",)),
    ("loading and pairing", ("statrepro.envfile", "statrepro.analysis")),
    ("work", ("statrepro.run", "statrepro.diagnose", "statrepro.report")),
    ("measurements", ("statrepro.bench",)),
    ("entry points", ("statrepro.api",)),
    ("more entry points", ("statrepro.api_bench", "statrepro.api_candidates", "statrepro.api_diagnose", "statrepro.api_view", "statrepro.api_store",
     "statrepro.api_plan", "statrepro.api_ci")),
    ("interface", ("statrepro.cli", "statrepro")),
)
# Narrower than their layer: reports render an Analysis; they run, serve and read nothing themselves. The one
# exception: the config reference lists the registered engine kinds (metadata only).
NARROWER = {
    "statrepro.report": ("statrepro.run", "statrepro.harness", "statrepro.engines", "statrepro.envfile", "statrepro.diagnose"),
}
ALLOWED = {"statrepro.report.config_reference": ("statrepro.engines.kinds",)}
# The public API: statrepro/__init__.py re-exports these modules' entries.
API_MODULES = ("statrepro.api", "statrepro.api_bench", "statrepro.api_candidates", "statrepro.api_diagnose", "statrepro.api_view", "statrepro.api_store",
               "statrepro.api_plan", "statrepro.api_ci")
# The version string, set first in statrepro/__init__.py, is a constant: importing it is not importing the API.
VERSION = "statrepro.__version__"
# File and network I/O: the statistics core takes arrays and returns results.
IO_MODULES = ("pathlib", "json", "yaml", "pandas", "io", "shutil", "subprocess", "tempfile", "pickle", "csv", "glob",
              "socket", "httpx", "sqlite3")
# Size limits the house is held to (reported by house_numbers; the module one is asserted for cli/ and stats/).
MODULE_LINES = 500
MODULE_LINES_UNDER = ("statrepro.cli", "statrepro.stats")
FUNCTION_LINES = 80


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, module: str | None = None) -> set[str]:
    """Absolute names of everything ``path`` (the statrepro ``module``) imports, TYPE_CHECKING and function-level
    imports included (``from . import x`` gives package.x)."""
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if node.module:
                names.add(source)
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


SOURCES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
IMPORTS = {module: imports_of(path) for module, path in SOURCES.items()}


def _within(name: str, part: str) -> bool:
    return name == part or name.startswith(part + ".")


def part_of(module: str) -> tuple[int, str] | None:
    """(layer index, part) of a statrepro module: the longest part naming it (None: no layer)."""
    found = [(len(part), index, part) for index, (_, parts) in enumerate(LAYERS) for part in parts if _within(module, part)]
    if not found:
        return None
    _, index, part = max(found)
    return index, part


def module_graph() -> dict[str, set[str]]:
    """Module -> the statrepro modules it imports (a name inside a module, such as a class, counts as the module)."""
    graph = {}
    for module, names in IMPORTS.items():
        targets = set()
        for name in names:
            if name == VERSION or not _within(name, "statrepro"):
                continue
            target = name if name in SOURCES else name.rpartition(".")[0]
            if target in SOURCES and target != module:
                targets.add(target)
        graph[module] = targets
    return graph


def import_cycles(graph: dict[str, set[str]] | None = None) -> list[list[str]]:
    """The groups of modules that import each other, directly or in a loop (strongly connected components of more
    than one module, Tarjan's algorithm), each sorted."""
    graph = module_graph() if graph is None else graph
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def _line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def house_numbers() -> dict:
    """What the house is measured by: import cycles (groups of modules in a loop), the modules over
    MODULE_LINES lines in cli/ and stats/, and the functions over FUNCTION_LINES lines anywhere in statrepro."""
    cycles = import_cycles()
    long_modules = {
        module: _line_count(path)
        for module, path in SOURCES.items()
        if any(_within(module, part) for part in MODULE_LINES_UNDER) and _line_count(path) > MODULE_LINES
    }
    long_functions = {}
    for module, path in SOURCES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > FUNCTION_LINES:
                    long_functions[f"{module}.{node.name}"] = lines
    return {
        "modules": len(SOURCES),
        "import_cycles": len(cycles),
        "modules_in_cycles": sum(len(group) for group in cycles),
        f"modules_over_{MODULE_LINES}_lines_in_cli_and_stats": dict(sorted(long_modules.items())),
        f"functions_over_{FUNCTION_LINES}_lines": dict(sorted(long_functions.items())),
    }


def test_every_module_has_a_layer():
    assert [module for module in SOURCES if part_of(module) is None] == []


def test_modules_import_only_their_own_part_and_the_layers_below():
    violations = []
    for module, targets in module_graph().items():
        layer, part = part_of(module)
        for target in sorted(targets):
            target_layer, target_part = part_of(target)
            if target_part == part or target_layer < layer:
                continue
            where = "beside it" if target_layer == layer else "above it"
            violations.append(f"{module} ({LAYERS[layer][0]}) imports {target} ({LAYERS[target_layer][0]}, {where})")
    assert violations == []


@pytest.mark.parametrize("part", sorted(NARROWER))
def test_narrower_parts_stay_narrow(part):
    violations = [
        f"{module} imports {name}"
        for module, names in IMPORTS.items()
        if _within(module, part)
        for name in names
        for forbidden in NARROWER[part]
        if _within(name, forbidden) and not any(_within(name, allowed) for allowed in ALLOWED.get(module, ()))
    ]
    assert violations == []


def test_stats_is_pure_computation():
    """stats/ imports nothing of statrepro's outside stats/ and does no file or network I/O (os only for cpu_count)."""
    violations = []
    for module, path in SOURCES.items():
        if not _within(module, "statrepro.stats"):
            continue
        for name in IMPORTS[module]:
            if _within(name, "statrepro") and not _within(name, "statrepro.stats"):
                violations.append(f"{module} imports {name}")
            if any(_within(name, io) for io in IO_MODULES):
                violations.append(f"{module} imports {name}")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
                violations.append(f"{module} calls open()")
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" and node.attr != "cpu_count":
                violations.append(f"{module} uses os.{node.attr}")
    assert not violations, violations


def test_the_schema_is_pure():
    """config.py is the schema only: it builds on nothing of statrepro's but the redaction marker, so the engines,
    harnesses and benchmarks can describe themselves in its terms without a loop (the checks that need them are
    statrepro.envfile's)."""
    assert {name for name in IMPORTS["statrepro.config"] if _within(name, "statrepro")} <= {"statrepro.redaction", "statrepro.redaction.REDACTED"}


def test_only_the_cli_imports_typer_and_only_the_entry_points_import_the_cli_and_api():
    typer_users = sorted(module for module, names in IMPORTS.items() if any(_within(name, "typer") for name in names))
    assert typer_users and all(_within(module, "statrepro.cli") for module in typer_users)
    cli_users = sorted(
        module for module, names in IMPORTS.items()
        if not _within(module, "statrepro.cli") and any(_within(name, "statrepro.cli") for name in names)
    )
    assert cli_users == []
    api_users = sorted(
        module for module, names in IMPORTS.items()
        if module not in API_MODULES and any(_within(name, api) for name in names for api in API_MODULES)
    )
    assert api_users and all(module == "statrepro" or _within(module, "statrepro.cli") for module in api_users)


def test_the_cli_reaches_statrepro_only_through_the_api():
    """Every command calls the public API; besides it the CLI uses only errors and stats/ (the verdict labels and
    the rules' defaults shown in --help)."""
    allowed = ("statrepro.cli", "statrepro.errors", "statrepro.stats", *API_MODULES)
    violations = [
        f"{module} imports {name}"
        for module, names in IMPORTS.items()
        if _within(module, "statrepro.cli")
        for name in names
        if _within(name, "statrepro") and not any(_within(name, part) for part in allowed)
    ]
    assert not violations, violations


def test_verdict_labels_are_spelled_only_in_stats():
    """Outside stats/, code keys on the label constants of stats/verdict.py: no string that is a label, and the
    one label that cannot be an English word (within_tolerance) nowhere in the source, not even inside a string."""
    from statrepro.stats.verdict import VERDICTS, WITHIN_TOLERANCE

    violations = []
    for module, path in SOURCES.items():
        if _within(module, "statrepro.stats"):
            continue
        text = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Constant) and node.value in VERDICTS:
                violations.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {node.value!r}")
        violations += [
            f"{path.relative_to(PACKAGE.parent)}:{number}: {WITHIN_TOLERANCE}"
            for number, line in enumerate(text.splitlines(), 1)
            if WITHIN_TOLERANCE in line
        ]
    assert not violations, violations


def test_no_import_cycles_between_modules():
    """Cycles (such as config <-> engines <-> harness.contract once) mean two modules are really one, or a seam is
    missing. TYPE_CHECKING imports count: an annotation that points back is a loop waiting to happen."""
    assert import_cycles() == []


def test_house_numbers_count_what_the_rules_see():
    numbers = house_numbers()
    assert numbers["modules"] == len(SOURCES) and numbers["import_cycles"] == 0 == numbers["modules_in_cycles"]
    long_modules = numbers[f"modules_over_{MODULE_LINES}_lines_in_cli_and_stats"]
    assert all(lines > MODULE_LINES and any(_within(module, part) for part in MODULE_LINES_UNDER) for module, lines in long_modules.items())
    assert all(lines > FUNCTION_LINES for lines in numbers[f"functions_over_{FUNCTION_LINES}_lines"].values())


def test_modules_in_cli_and_stats_stay_under_the_line_limit():
    assert house_numbers()[f"modules_over_{MODULE_LINES}_lines_in_cli_and_stats"] == {}


def test_import_cycles_are_found_and_counted(tmp_path):
    """The counter behind house_numbers counts one group per loop, and a TYPE_CHECKING import is an edge."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c"], ["d", "e"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []
    annotated = tmp_path / "annotated.py"
    annotated.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..config import EnvConfig\n")
    assert "statrepro.config.EnvConfig" in imports_of(annotated, "statrepro.engines.annotated")


if __name__ == "__main__":
    print(json.dumps(house_numbers(), indent=2))
