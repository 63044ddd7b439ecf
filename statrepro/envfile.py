"""Environment files, read and checked against what is registered: the engine kinds, harnesses and benchmarks.

``load_env(path)`` turns YAML into an ``EnvConfig`` or raises an InputError naming the file and the line or key;
``validate_env(data)`` checks plain data the same way (command-line overrides, tests). The schema itself
(``statrepro.config``) knows nothing of engines, harnesses or benchmarks; this module sits above them and adds
what depends on them: a registered engine kind, its default concurrency and its own checks, a known harness, known
benchmarks and their modes, and log-likelihood modes only where the kind returns prompt log-likelihoods. Every
problem is raised as a pydantic ValidationError at the key it concerns, so both paths report alike. A file with
several problems gets the first of an unknown engine kind, then the schema's, then the registries'.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

from pydantic import ValidationError

from .benchmarks import BENCHMARKS
from .config import EngineSpec, EnvConfig
from .engines.kinds import ENGINE_KINDS
from .errors import InputError, did_you_mean, validation_error


def validate_env(data: dict[str, Any]) -> EnvConfig:
    """``data`` (an environment file's mapping) as an EnvConfig: the schema's checks, then the registries';
    a pydantic ValidationError for the first problem found."""
    from .harness import harness_names  # imports the adapters (and pandas): only when a config is checked

    engine = data.get("engine", {})
    if isinstance(engine, dict):
        kind = engine.get("kind", "hf")
        if not isinstance(kind, str) or kind not in ENGINE_KINDS:
            *others, last = (repr(name) for name in ENGINE_KINDS)
            _fail("literal_error", ("engine", "kind"), kind, {"expected": f"{', '.join(others)} or {last}" if others else last})
        if engine.get("concurrency") is None:
            data = {**data, "engine": {**engine, "concurrency": ENGINE_KINDS[kind].default_concurrency}}
    env = EnvConfig.model_validate(data)
    _check_engine(env.engine)
    _check_model(env)
    if env.harness.name not in (known := harness_names()):
        _invalid(("harness", "name"), env.harness.name, f"unknown harness {env.harness.name!r}{did_you_mean(env.harness.name, known)}")
    _check_benchmarks(env)
    return env


def _check_engine(engine: EngineSpec) -> None:
    """What the engine kind requires of the engine section (EngineKind.check_common, then its own check)."""
    kind = ENGINE_KINDS[engine.kind]
    try:
        kind.check_common(engine)
        kind.check(engine)
    except ValueError as error:
        _invalid(("engine",), engine, str(error))


def _check_model(env: EnvConfig) -> None:
    """What the engine kind requires of the model section (EngineKind.check_model: e.g. llama.cpp's own
    quantization types), located at model.quantization."""
    try:
        ENGINE_KINDS[env.engine.kind].check_model(env.model)
    except ValueError as error:
        _invalid(("model", "quantization"), env.model.quantization, str(error))


def _check_benchmarks(env: EnvConfig) -> None:
    """Known benchmarks, each in a mode it has, and a log-likelihood mode only where the engine scores one."""
    benchmarks = env.benchmarks
    for name in benchmarks:
        if name not in BENCHMARKS:
            _invalid(("benchmarks",), benchmarks, f"unknown benchmark {name!r}{did_you_mean(name, BENCHMARKS)}")
    if not benchmarks:
        _invalid(("benchmarks",), benchmarks, "no benchmarks")
    for name, spec in benchmarks.items():
        modes = BENCHMARKS[name].modes
        if spec.mode is not None and spec.mode not in modes:
            _invalid(("benchmarks",), benchmarks,
                     f"benchmark {name!r} has no mode {spec.mode!r} (its modes: {', '.join(modes)}); `mode` is for multiple choice")
    if ENGINE_KINDS[env.engine.kind].capabilities.prompt_logprobs is False:
        for name, spec in benchmarks.items():
            if spec.mode in ("ppl", "clp"):
                _invalid((), env, f"benchmarks.{name}.mode {spec.mode!r} needs prompt log-likelihoods, which engine kind "
                                  f"{env.engine.kind!r} does not return; use mode: gen")


def _invalid(location: tuple, value: Any, message: str) -> None:
    _fail("value_error", location, value, {"error": ValueError(message)})


def _fail(kind: str, location: tuple, value: Any, context: dict) -> None:
    """Raise the problem as pydantic would have, had the schema checked it itself."""
    raise ValidationError.from_exception_data(EnvConfig.__name__, [{"type": kind, "loc": location, "input": value, "ctx": context}])


# ---------------------------------------------------------------------------------------------
# Loading with located errors


def _key_line(text: str, location: tuple) -> Optional[int]:
    """Best-effort line of a dotted key in the YAML text (by walking the YAML node tree)."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for part in location:
        if not isinstance(node, yaml.MappingNode):
            break
        for key_node, value_node in node.value:
            if key_node.value == str(part):
                line = key_node.start_mark.line + 1
                node = value_node
                break
        else:
            break
    return line


def load_env(path: str | Path) -> EnvConfig:
    """Read and validate an environment YAML file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError("environment file not found", path=path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise InputError("file is not valid UTF-8", path=path, line=line) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise InputError(f"YAML syntax error: {problem}", path=path, line=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise InputError("an environment file must be a YAML mapping", path=path)
    data.setdefault("name", re.sub(r"[^A-Za-z0-9._-]", "-", path.stem)[:64] or "env")
    try:
        return validate_env(data)
    except ValidationError as error:
        raise validation_error(error, EnvConfig, path=path, line_of=lambda location: _key_line(text, location)) from None
