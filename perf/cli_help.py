"""Wall time of `statrepro --help` and of every subcommand's `--help` (target: under 0.5 s each).

Prints min and median per command; never asserts. Run: /work/venv/bin/python perf/cli_help.py [--repeats N]
A slow `--help` usually means a heavy module-level import; find it with:
    python -X importtime -c "import statrepro.cli" 2>&1 | sort -t'|' -k2 -n | tail
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_SECONDS = 0.5


def entry_point() -> list[str]:
    """The installed `statrepro` script next to this interpreter, else the Typer app through python -c."""
    script = Path(sys.executable).with_name("statrepro")
    if script.is_file():
        return [str(script)]
    if found := shutil.which("statrepro"):
        return [found]
    return [sys.executable, "-c", "from statrepro.cli import app; app()"]


def command_paths() -> list[list[str]]:
    """Every command and sub-group path of the CLI, e.g. [], ['analyze'], ['bench'], ['bench', 'stats']."""
    import typer.main

    from statrepro.cli import app

    paths: list[list[str]] = []

    def walk(command, prefix: list[str]) -> None:
        paths.append(prefix)
        # Typer vendors its own click, so duck-type groups instead of isinstance(click.Group).
        if hasattr(command, "commands"):
            for name in sorted(command.commands):
                walk(command.commands[name], prefix + [name])

    walk(typer.main.get_command(app), [])
    return paths


def time_help(base: list[str], path: list[str], repeats: int) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) seconds per run. On a loaded machine wall time overstates the cost; CPU does not."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(base + path + ["--help"], capture_output=True, check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per command (the first warms the file cache)")
    args = parser.parse_args()
    base = entry_point()
    print(f"entry point: {' '.join(base)}; {args.repeats} repeats; target < {TARGET_SECONDS} s")
    print(f"{'command':<34} {'min s':>7} {'median s':>9} {'median CPU s':>13}")
    for path in command_paths():
        walls, cpus = time_help(base, path, args.repeats)
        label = " ".join(["statrepro", *path, "--help"])
        median = statistics.median(walls)
        flag = "" if median < TARGET_SECONDS else "  <- over target"
        print(f"{label:<34} {min(walls):>7.3f} {median:>9.3f} {statistics.median(cpus):>13.3f}{flag}")


if __name__ == "__main__":
    main()
