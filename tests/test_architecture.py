"""The layers of docs/architecture.md, enforced on the source: who may import whom (parsed with ast, so
imports inside functions count too; imports under ``if TYPE_CHECKING:`` are annotations only and do not)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "statrepro"

# Packages (or top-level modules) and the statrepro parts each must never import.
FORBIDDEN = {
    "statrepro.harness": ("statrepro.run", "statrepro.diagnose", "statrepro.report", "statrepro.api", "statrepro.cli"),
    "statrepro.engines": (
        "statrepro.run", "statrepro.harness", "statrepro.diagnose", "statrepro.report", "statrepro.api", "statrepro.cli",
    ),
    "statrepro.benchmarks": (
        "statrepro.run", "statrepro.harness", "statrepro.engines", "statrepro.diagnose", "statrepro.report",
        "statrepro.api", "statrepro.cli",
    ),
    "statrepro.run": ("statrepro.diagnose", "statrepro.report", "statrepro.api", "statrepro.cli"),
    "statrepro.diagnose": ("statrepro.run", "statrepro.report", "statrepro.api", "statrepro.cli"),
    "statrepro.report": (
        "statrepro.run", "statrepro.harness", "statrepro.engines", "statrepro.diagnose", "statrepro.api", "statrepro.cli",
    ),
}
# The public API: statrepro/__init__.py re-exports these modules' entries; "statrepro.api" above stands for all three.
API_MODULES = ("statrepro.api", "statrepro.api_bench", "statrepro.api_diagnose")
# Documented exceptions: the config reference lists the registered engine kinds (metadata only).
ALLOWED = {"statrepro.report.config_reference": ("statrepro.engines.kinds",)}
# The foundation everyone may use; it builds on nothing of statrepro's but errors.
FOUNDATION = ("statrepro.errors", "statrepro.atomic", "statrepro.redaction", "statrepro.machine", "statrepro.registry")
# File and network I/O: the statistics core takes arrays and returns results.
IO_MODULES = ("pathlib", "json", "yaml", "pandas", "io", "shutil", "subprocess", "tempfile", "pickle", "csv", "glob",
              "socket", "httpx", "sqlite3")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
            else:
                stack.append(child)


def imports_of(path: Path) -> set[str]:
    """Absolute names of everything ``path`` imports at run time (``from . import x`` gives package.x too)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names.add(source)
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


SOURCES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
IMPORTS = {module: imports_of(path) for module, path in SOURCES.items()}


def _within(name: str, part: str) -> bool:
    return name == part or name.startswith(part + ".")


def _in_api(name: str) -> bool:
    return any(_within(name, module) for module in API_MODULES)


def _forbidden(layer: str) -> tuple[str, ...]:
    return tuple(module for part in FORBIDDEN[layer] for module in (API_MODULES if part == "statrepro.api" else (part,)))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_what_they_may(layer):
    violations = [
        f"{module} imports {name}"
        for module, names in IMPORTS.items()
        if _within(module, layer)
        for name in names
        for forbidden in _forbidden(layer)
        if _within(name, forbidden) and not any(_within(name, allowed) for allowed in ALLOWED.get(module, ()))
    ]
    assert not violations, violations


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


def test_foundation_builds_on_nothing_but_errors():
    violations = [
        f"{module} imports {name}"
        for module in FOUNDATION
        for name in IMPORTS[module]
        if _within(name, "statrepro") and not _within(name, "statrepro.errors")
    ]
    assert not violations, violations


def test_only_the_cli_imports_typer_and_only_the_entry_points_import_the_cli_and_api():
    typer_users = [module for module, names in IMPORTS.items() if any(_within(name, "typer") for name in names)]
    assert typer_users and all(_within(module, "statrepro.cli") for module in typer_users), typer_users
    cli_users = sorted(
        module for module, names in IMPORTS.items()
        if not _within(module, "statrepro.cli") and any(_within(name, "statrepro.cli") for name in names)
    )
    assert cli_users == []
    api_users = sorted(
        module for module, names in IMPORTS.items()
        if not _in_api(module) and not _within(module, "statrepro.cli") and any(_in_api(name) for name in names)
    )
    assert api_users == ["statrepro"]


def test_the_cli_reaches_statrepro_only_through_the_api():
    """Every command calls the public API; besides it the CLI uses only errors and the verdict labels of stats/."""
    allowed = ("statrepro.cli", "statrepro.errors", "statrepro.stats", *API_MODULES)
    violations = [
        f"{module} imports {name}"
        for module, names in IMPORTS.items()
        if _within(module, "statrepro.cli")
        for name in names
        if _within(name, "statrepro") and not any(_within(name, part) for part in allowed)
    ]
    assert not violations, violations


def test_no_import_cycles_between_modules():
    """Cycles (such as executors <-> ray_executor once) mean two modules are really one, or a seam is missing.
    A package's __init__ re-exporting its own modules is not a cycle of design, so package-to-child edges are left out."""
    graph = {
        module: {
            target
            for name in names
            for target in (name, name.rpartition(".")[0])
            if target in SOURCES and target != module and not _within(target, module) and not _within(module, target)
        }
        for module, names in IMPORTS.items()
    }
    cycles = []

    def visit(node: str, path: list[str], on_path: set[str], done: set[str]) -> None:
        for target in sorted(graph[node]):
            if target in on_path:
                cycles.append(path[path.index(target):] + [target])
            elif target not in done:
                visit(target, path + [target], on_path | {target}, done)
        done.add(node)

    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module], {module}, done)
    assert not cycles, cycles[:5]
