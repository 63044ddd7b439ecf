"""Reading harness output safely: streamed JSONL with located errors, a loop-proof directory walk,
and the task/dataset name -> statrepro benchmark mapping shared by both adapters."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterator

from ..errors import InputError

# Generated local tasks are named statrepro_<benchmark>[_<subset>] (see benchmarks/ and docs/schema.md).
GENERATED_PREFIX = "statrepro_"


def benchmark_for_task(task: str) -> str:
    """The statrepro benchmark a harness task or subset belongs to (by each benchmark's ``task_pattern``);
    any other task is its own benchmark."""
    from ..benchmarks import BENCHMARKS

    name = task[len(GENERATED_PREFIX):] if task.startswith(GENERATED_PREFIX) else task
    for benchmark in BENCHMARKS.values():
        if re.match(benchmark.task_pattern, name):
            return benchmark.name
    return task


# Longest JSONL line read (a samples line with a long few-shot prompt is well under 1 MiB).
MAX_LINE_BYTES = 64 << 20


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) per non-blank line, streaming; bad bytes or JSON raise a located InputError."""
    seen_any = False
    with open(path, "rb") as handle:
        # readline with a cap: a file with one endless line (or a sparse hole) must not be read into memory whole.
        for number, raw in enumerate(iter(lambda: handle.readline(MAX_LINE_BYTES + 1), b""), start=1):
            if len(raw) > MAX_LINE_BYTES:
                raise InputError(f"line longer than {MAX_LINE_BYTES >> 20} MiB; not a harness record", path=path, line=number)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise InputError(f"not UTF-8 (byte {error.start} of the line)", path=path, line=number) from None
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                truncated = not raw.endswith(b"\n")
                what = "truncated JSON line" if truncated else f"invalid JSON ({error.msg})"
                raise InputError(what, path=path, line=number) from None
            if not isinstance(value, dict):
                raise InputError(f"expected a JSON object, got {type(value).__name__}", path=path, line=number)
            seen_any = True
            yield number, value
    if not seen_any:
        raise InputError("empty file: no JSON records", path=path)


def read_json(path: Path) -> dict:
    """A whole JSON object file (small metadata files only); located InputError when unreadable."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise InputError("not UTF-8", path=path, line=line) from None
    if not text.strip():
        raise InputError("empty file", path=path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"invalid JSON ({error.msg})", path=path, line=error.lineno) from None
    if not isinstance(value, dict):
        raise InputError(f"expected a JSON object, got {type(value).__name__}", path=path)
    return value


def walk_files(root: Path) -> Iterator[Path]:
    """Every regular file under ``root`` in sorted order, following directory symlinks once.

    A symlink that points back to one of its own ancestors (a loop) is bad input; a second link to an
    already-read directory is skipped so no file is counted twice.
    """
    seen: set[str] = set()

    def visit(directory: Path, ancestors: tuple[str, ...]) -> Iterator[Path]:
        real = os.path.realpath(directory)
        if real in ancestors:
            raise InputError("symlink loop: the directory links back to its own ancestor", path=directory)
        if real in seen:
            return
        seen.add(real)
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError as error:
            raise InputError(f"cannot list directory ({error.strerror})", path=directory) from None
        for entry in entries:
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=True):
                yield from visit(path, ancestors + (real,))
            elif entry.is_file(follow_symlinks=True):
                yield path
            elif entry.is_symlink():
                raise InputError("broken or looping symlink", path=path)

    yield from visit(root, ())


def all_files(path: Path) -> list[Path]:
    """``path`` itself when it is a file, else every file below it."""
    return [path] if path.is_file() else list(walk_files(path))


def error_reason(error: Exception) -> str:
    """The first line of a third-party reader's error, short enough for a one-line InputError."""
    text = str(error)
    return text.splitlines()[0][:200] if text.strip() else type(error).__name__
