"""Configuration doctor (``statrepro doctor A B``): which score-moving factors differ between two runs.

Sources: environment YAML files, lm-eval results JSON files (or output dirs holding results_*.json),
evalscope ``configs/task_config*.yaml`` files, and statrepro manifest JSON (``{"env": {...},
"harness_version": ..., "hardware": ...}``). Each is reduced to a flat dict of canonical factors (environments
and manifests here, harness output by its adapter's ``doctor_factors``) (values are plain strings/numbers, None = unknown); ``diff_factors`` is a pure function
on two such dicts, so the report and the run path can reuse it.

Files do not record everything: which server answered an API client, its version, its served context, and the
sampling defaults it applied to settings the requests left out. ``compare_sources`` can ask the running server
(``probe_endpoints``; the questions are each engine kind's ``live_factors``) and ``merge_live`` decides between
a file's value and the server's answer; each side's ``SideReport`` says what was asked and what stayed unseen.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..engines.kinds import ENGINE_KINDS, ask_endpoint
from ..engines.live import SERVER_DEFAULTS
from ..harness.contract import DETERMINISM_FACTORS, DOCTOR_FACTORS, ENDPOINT_FACTOR, mode_factor, per_task

if TYPE_CHECKING:
    from ..config import EnvConfig

FACTORS = DOCTOR_FACTORS
# Factors only a running server states: its answer wins over a file's, which names an engine kind or a
# harness's API client rather than the server behind it.
SERVER_FACTORS = ("engine", "engine_version", "max_context")
# Seconds doctor waits for each answer of a server it asks.
PROBE_TIMEOUT_SECONDS = 10.0

# (severity, why, fix) per factor. high = known to move scores by points; medium = can flip some items; low = should not matter.
KNOWLEDGE: dict[str, tuple[str, str, str]] = {
    "harness": ("high", "harnesses build prompts, parse answers and score differently", "run both sides with the same harness"),
    "harness_version": ("medium", "task definitions, filters and prompts change between harness releases", "pin the same harness version"),
    "metric": ("high", "different metrics measure different things", "compare the same metric (--metric BENCH=METRIC)"),
    "filters": ("high", "answer extraction (regex, strict vs flexible) changes what counts as correct", "use the same filter_list / answer extraction"),
    "prompt": ("high", "a different prompt text (doc_to_text) changes answers", "use identical task definitions on both sides"),
    "chat_template": ("high", "the chat template wraps every prompt; instruct models are very sensitive to it", "use the same template (apply_chat_template, same tokenizer); check with `statrepro template A B`"),
    "system_instruction": ("high", "a system prompt is part of every prompt", "set the same system_instruction (or none) on both sides"),
    "num_fewshot": ("high", "few-shot count moves accuracy by points", "use the same num_fewshot per benchmark"),
    "fewshot_order": ("medium", "the choice and order of few-shot exemplars changes answers", "fix the few-shot sampler and its seed"),
    "stop": ("high", "stop sequences truncate answers differently", "use the same stop / until sequences"),
    "max_tokens": ("high", "a lower limit truncates reasoning before the final answer", "use the same max_tokens (max_gen_toks)"),
    "seed": ("medium", "with sampling the seed picks different outputs; irrelevant under greedy decoding", "fix the seeds, or decode greedily"),
    "temperature": ("high", "sampling vs greedy decoding changes answers and their variance", "use temperature 0 on both sides, or the same value with several seeds"),
    "top_p": ("medium", "nucleus sampling changes sampled answers (no effect at temperature 0)", "use the same top_p"),
    "repeat_penalty": ("high", "a repetition penalty changes greedy outputs (llama.cpp defaults to 1.1, transformers to 1.0)", "set repeat_penalty: 1.0 explicitly on both sides; check with `statrepro logprobs A B`"),
    "batch_size": ("medium", "batch size changes kernel reduction order; in bf16 it flips near-tie tokens", "use batch size 1 or batch-invariant kernels; measure with `statrepro probe`"),
    "concurrency": ("low", "requests in flight change how a server batches them; without batch-invariant kernels a near-tie token can flip (each request keeps its seed)", "use the same engine.concurrency, or batch-invariant kernels"),
    "dtype": ("medium", "precision changes logits (bf16 ~1e-2 relative); near-tie answers flip", "use the same dtype; see where it diverges with `statrepro layers`"),
    "quantization": ("high", "quantized weights change logits substantially", "compare like with like, or accept a wider tolerance"),
    "hardware": ("medium", "different kernels and reduction orders change low-order bits", "expected for a hardware move: judge it with `statrepro analyze`"),
    "device": ("medium", "cpu, cuda, npu and mps kernels reduce in different orders; low-order bits and near-tie answers change", "run both sides on the same device, or judge the move with `statrepro analyze`"),
    "engine": ("medium", "engines differ in kernels, defaults (penalties, stop handling) and tokenisation", "align engine defaults; compare with `statrepro logprobs A B`"),
    "engine_version": ("medium", "kernels, sampling code and defaults change between releases of one engine (as the running server reports its version)", "pin the same engine version, or judge the upgrade with `statrepro analyze`"),
    "max_context": ("medium", "the context the server serves: a shorter one truncates or rejects long prompts (many few-shot examples, long reasoning)", "serve the same context length (llama.cpp --n_ctx, vLLM --max-model-len, SGLang --context-length)"),
    "model": ("high", "different weights", "point both sides at the same model and revision"),
    "mode": ("high", "multiple choice scored by option perplexity (ppl), label probability (clp) or generated letter (gen) gives different accuracies on the same model", "set the same benchmarks.<name>.mode on both sides"),
}


@dataclass(frozen=True)
class FactorDiff:
    """One factor that differs between A and B."""

    name: str
    a: Any
    b: Any
    severity: str
    why: str
    fix: str


@dataclass(frozen=True)
class ChecklistItem:
    """One determinism requirement, judged per side as met / not met / unknown."""

    item: str
    a: str
    b: str


@dataclass(frozen=True)
class SideReport:
    """How one side's factors were read: from which files, which server was asked and what it stated, which
    server-side factors stayed unseen (and how to see them), and one-line notes (a server that could not be
    asked, a recorded setting the server's own default contradicts)."""

    side: str
    source: str
    """What the side's files are: "env file", "manifest", "evalscope outputs", ..."""
    endpoint: str | None
    """The server asked, or that the files name (None: none named, e.g. an in-process model)."""
    live: dict[str, Any] = field(default_factory=dict)
    """What the server stated (EngineKind.live_factors); empty when it was not asked or did not answer."""
    unseen: tuple[str, ...] = ()
    """Server-side factors neither the files nor a server stated."""
    hint: str = ""
    """How to see the unseen factors."""
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        head = f"{self.side} ({self.source})"
        names = ", ".join(f"{name} (server default)" if name in SERVER_DEFAULTS else name for name in self.unseen)
        if self.live:
            about = self._stated(name for name in self.live if name not in (*SERVER_DEFAULTS, "engine"))
            defaults = self._stated(SERVER_DEFAULTS)
            text = f"{head}: asked {self.live.get('engine') or 'an unidentified server'} at {self.endpoint}"
            text += (f": {about}" if about else "") + (f"; request defaults: {defaults}" if defaults else "")
            return text + (f"; the server does not state {names}" if names else "")
        if names:
            return f"{head}: not recorded in the {self.source}: {names} - {self.hint}"
        return f"{head}: no server to ask" if self.endpoint is None else f"{head}: server at {self.endpoint}"

    def _stated(self, names) -> str:
        return ", ".join(f"{name} {self.live[name]}" for name in names if self.live.get(name) is not None)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary()}


@dataclass(frozen=True)
class DoctorResult:
    """Differing factors (highest severity first), the determinism checklist, the factors unknown on a side and,
    from ``compare_sources``, how each side was read (``sides``)."""

    factors: tuple[FactorDiff, ...]
    checklist: tuple[ChecklistItem, ...]
    not_comparable: tuple[str, ...]
    sides: tuple[SideReport, ...] = ()

    def summary(self) -> str:
        unseen = "".join(f"; not seen on {side.side}: {', '.join(side.unseen)}" for side in self.sides if side.unseen)
        if not self.factors:
            return "no known score-moving factor differs" + (f" ({len(self.not_comparable)} unknown on a side)" if self.not_comparable else "") + unseen
        counts = {level: sum(f.severity == level for f in self.factors) for level in ("high", "medium", "low")}
        return (f"{len(self.factors)} factors differ (high {counts['high']}, medium {counts['medium']}, low {counts['low']}): "
                + ", ".join(f.name for f in self.factors) + unseen)

    def to_dict(self) -> dict[str, Any]:
        return {"factors": [asdict(f) for f in self.factors], "checklist": [asdict(c) for c in self.checklist],
                "not_comparable": list(self.not_comparable), "sides": [side.to_dict() for side in self.sides],
                "summary": self.summary()}


# ---------------------------------------------------------------------------------------------
# Diff (pure)


def _severity(name: str, a: dict, b: dict) -> str:
    severity = KNOWLEDGE[name][0]
    greedy = all(_number(side.get("temperature")) == 0.0 for side in (a, b))
    if name in ("seed", "top_p") and greedy:
        return "low"  # greedy decoding ignores both
    return severity


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _same(x: Any, y: Any) -> bool:
    nx, ny = _number(x), _number(y)
    if nx is not None and ny is not None and not isinstance(x, bool) and not isinstance(y, bool):
        return nx == ny
    return x == y


# Float weights are not a quantization: a GGUF stored in F32, F16 or BF16 holds what an unquantized model does
# (their precision is the dtype factor).
UNQUANTIZED = ("none", "F32", "F16", "BF16")


def _quantization_values(a: dict[str, Any], b: dict[str, Any]) -> tuple[Any, Any]:
    """The quantization factor of A and B as compared: the weights' type (a GGUF's file type where a side read
    one), with the per-tensor storage type counts where both sides know them and they differ."""
    qa, qb = a.get("quantization"), b.get("quantization")
    if qa in UNQUANTIZED and qb in UNQUANTIZED:
        return qa, qa
    ta, tb = a.get("tensor_types"), b.get("tensor_types")
    if ta and tb and ta != tb:
        def counts(types: dict[str, int]) -> str:
            return ", ".join(f"{name} x{count}" for name, count in sorted(types.items(), key=lambda item: (-item[1], item[0])))

        return f"{qa} ({counts(ta)})", f"{qb} ({counts(tb)})"
    return qa, qb


def checklist(factors: dict[str, Any]) -> dict[str, str]:
    """Determinism requirements judged from one side's factors."""
    def judge(value: bool | None) -> str:
        return "unknown" if value is None else ("met" if value else "not met")

    temperature = _number(factors.get("temperature"))
    batch = _number(factors.get("batch_size"))
    dtype = factors.get("dtype")
    engine = str(factors.get("engine") or "")
    return {
        "greedy decoding (temperature 0)": judge(None if temperature is None else temperature == 0.0),
        "fixed seed": judge(None if "seed" not in factors or factors.get("seed") is None else True),
        "prefix cache off": judge(factors.get("prefix_cache_off")),
        "deterministic algorithms": judge(factors.get("deterministic")),
        "batch size 1 (or batch-invariant kernels)": judge(None if batch is None else batch == 1 or engine == "batch-invariant"),
        "fp32": judge(None if dtype in (None, "auto") else dtype == "float32"),
    }


def diff_factors(a: dict[str, Any], b: dict[str, Any]) -> DoctorResult:
    """Compare two flat factor dicts (from the extractors). Pure: no I/O."""
    order = {"high": 0, "medium": 1, "low": 2}
    differing, unknown = [], []
    for name in FACTORS:
        va, vb = _quantization_values(a, b) if name == "quantization" else (a.get(name), b.get(name))
        if va is None and vb is None:
            continue
        if va is None or vb is None:
            unknown.append(name)
            continue
        if not _same(va, vb):
            _, why, fix = KNOWLEDGE[name]
            differing.append(FactorDiff(name, va, vb, _severity(name, a, b), why, fix))
    differing.sort(key=lambda f: order[f.severity])
    list_a, list_b = checklist(a), checklist(b)
    items = tuple(ChecklistItem(item, list_a[item], list_b[item]) for item in list_a)
    return DoctorResult(factors=tuple(differing), checklist=items, not_comparable=tuple(unknown))


# ---------------------------------------------------------------------------------------------
# Extractors


def factors_from_env(
    env: dict[str, Any], *, harness_version: str | None = None, hardware: str | None = None, concurrency: int | None = None
) -> dict[str, Any]:
    """Factors of an environment config given as a dict (EnvConfig.public_dict() or a manifest's "env");
    ``concurrency`` is the requests in flight a job had (a manifest's), else the configured value counts."""
    model, engine = env.get("model") or {}, env.get("engine") or {}
    harness, generation = env.get("harness") or {}, env.get("generation") or {}
    kind = engine.get("kind", "hf")
    engine_kind = ENGINE_KINDS.get(kind)  # None for a kind this version does not know (an old manifest)
    hardware = hardware or env.get("hardware", "cpu")
    repeat_penalty = generation.get("repeat_penalty")
    if repeat_penalty is None and engine_kind is not None:
        repeat_penalty = engine_kind.default_repeat_penalty  # the engine default actually in force
    seeds = env.get("seeds", 3)
    benchmarks = env.get("benchmarks") or {}
    return {
        "harness": harness.get("name", "lm-eval"),
        "harness_version": harness_version,
        "chat_template": "model default" if harness.get("apply_chat_template", True) else "none",
        "system_instruction": harness.get("system_instruction") or "none",
        "num_fewshot": per_task({name: (spec or {}).get("num_fewshot") for name, spec in benchmarks.items()}) if benchmarks else None,
        "stop": json.dumps(sorted(generation.get("stop") or [])),
        "max_tokens": generation.get("max_tokens", 256),
        "seed": json.dumps(list(range(seeds)) if isinstance(seeds, int) else seeds),
        "temperature": generation.get("temperature", 0.0),
        "top_p": generation.get("top_p", 1.0),
        "repeat_penalty": repeat_penalty,
        "batch_size": env.get("batch_size", 1),
        "concurrency": concurrency or engine.get("concurrency") or (engine_kind.default_concurrency if engine_kind else None),
        "dtype": model.get("dtype", "float32"),
        "quantization": model.get("quantization", "none"),
        "hardware": hardware,
        "engine": kind,
        "model": model.get("path", "embedded"),
        "device": engine.get("device", "auto"),
        "mode": _env_modes(benchmarks, engine_kind, generative_only=harness.get("name") == "evalscope"),
        **_determinism_factors(engine_kind, hardware, bool(engine.get("deterministic", False))),
    }


def factors_of_config(env: EnvConfig) -> dict[str, Any]:
    """The factors of a loaded environment, its engine kind's view of the weights included."""
    kind = ENGINE_KINDS[env.engine.kind]
    return {**factors_from_env(env.public_dict(), concurrency=kind.requests_in_flight(env)), **kind.weights_factors(env)}


def _determinism_factors(engine_kind, hardware: str, deterministic: bool, recorded: dict | None = None) -> dict[str, Any]:
    """The checklist facts: as a run manifest recorded them, else as the engine kind states them."""
    if isinstance(recorded, dict) and all(key in recorded for key in DETERMINISM_FACTORS):
        return {key: recorded[key] for key in DETERMINISM_FACTORS}
    if engine_kind is None:  # a kind this version does not know (an old manifest)
        return dict.fromkeys(DETERMINISM_FACTORS)
    report = engine_kind.determinism(hardware, deterministic)
    return {key: report[key] for key in DETERMINISM_FACTORS}


def _env_modes(benchmarks: dict[str, Any], engine_kind, *, generative_only: bool) -> str | None:
    from ..benchmarks import BENCHMARKS

    modes = []
    for name, spec in benchmarks.items():
        if name not in BENCHMARKS or len(BENCHMARKS[name].modes) <= 1:
            continue
        requested = (spec or {}).get("mode") if (spec or {}).get("generative") is None else ("gen" if spec["generative"] else "clp")
        if generative_only:
            modes.append("gen")
        elif engine_kind is None:  # a kind this version does not know: no log-likelihoods by default
            modes.append(requested or "gen")
        else:
            modes.append(engine_kind.evaluation_mode(BENCHMARKS[name].modes, requested))
    return mode_factor(modes)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise InputError(f"not valid JSON: {error}", path=path) from None


@dataclass(frozen=True)
class _Source:
    """One side's files, read: their factors, and what a running server could add to them."""

    factors: dict[str, Any]
    label: str
    endpoint: str | None = None
    """A server URL the files name (an external endpoint, or the one a harness sent its requests to)."""
    served: bool = False
    """A server answered this side's requests (an in-process model has nothing to ask)."""
    names_engine: bool = True
    """The files name the engine itself, not only a kind of endpoint or a harness's API client."""
    assumed: frozenset[str] = frozenset()
    """Factors filled with the engine kind's stated default, not recorded: a server's answer replaces them."""
    env: EnvConfig | None = None
    """An env file's config: doctor can start its managed server."""


def _env_source(env: dict[str, Any], factors: dict[str, Any], label: str, config: EnvConfig | None = None) -> _Source:
    engine = env.get("engine") or {}
    kind = ENGINE_KINDS.get(engine.get("kind", "hf"))
    external = kind is not None and not kind.managed and not kind.capabilities.in_process
    return _Source(
        factors=factors,
        label=label,
        endpoint=engine.get("base_url") if external else None,
        served=kind is not None and not kind.capabilities.in_process,
        names_engine=not external,
        assumed=frozenset({"repeat_penalty"}) if (env.get("generation") or {}).get("repeat_penalty") is None else frozenset(),
        env=config,
    )


def _read_source(source: str | Path) -> _Source:
    """Detect the kind of ``source`` and read it: a statrepro manifest or environment file here; any other
    format by the harness adapter that recognises it."""
    from ..harness import harness_adapters

    path = Path(source)
    if not path.exists():
        raise InputError("file not found", path=path)
    if path.is_file() and path.suffix.lower() == ".json":
        payload = _read_json(path)
        if isinstance(payload, dict) and isinstance(payload.get("env"), dict):
            hardware = payload.get("hardware")
            label = hardware if isinstance(hardware, str) else (hardware or {}).get("label") if isinstance(hardware, dict) else None
            factors = factors_from_env(
                payload["env"], harness_version=payload.get("harness_version"), hardware=label, concurrency=payload.get("concurrency")
            )
            recorded = payload.get("determinism")
            if isinstance(recorded, dict):  # what the run actually applied wins over what the config asked for
                factors.update(_determinism_factors(None, label or "", False, recorded))
            weights = (payload.get("endpoint") or {}).get("weights")
            if isinstance(weights, dict) and weights.get("file_type"):  # the file the server loaded, as read from it
                factors.update(quantization=weights["file_type"], tensor_types=weights.get("tensor_types"))
            return _env_source(payload["env"], factors, "manifest")
    for adapter in harness_adapters():
        factors = adapter.doctor_factors(path)
        if factors is not None:
            endpoint = factors.pop(ENDPOINT_FACTOR, None)
            return _Source(factors, f"{adapter.name} outputs", endpoint=endpoint, served=endpoint is not None, names_engine=endpoint is None)
    if path.is_dir():
        raise InputError("directory holds no lm-eval results_*.json, evalscope configs/task_config*.yaml nor inspect_ai log", path=path)
    if path.suffix.lower() == ".json":
        raise InputError("JSON is neither an lm-eval results file nor a statrepro manifest", path=path)
    if path.suffix.lower() in (".yaml", ".yml"):
        from ..envfile import load_env

        env = load_env(path)
        return _env_source(env.public_dict(), factors_of_config(env), "env file", env)
    raise InputError("expected an env .yaml, an lm-eval results .json or dir, an evalscope task_config .yaml or a manifest .json", path=path)


def extract_factors(source: str | Path) -> dict[str, Any]:
    """The flat factor dict of ``source`` as its files record it (see ``_read_source``)."""
    return _read_source(source).factors


# ---------------------------------------------------------------------------------------------
# Asking the running servers


def merge_live(
    recorded: dict[str, Any], live: dict[str, Any], assumed: frozenset[str] = frozenset(), source: str = "files"
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A side's factors completed with what its running server stated, and notes on disagreements.

    A server names itself, so its engine, version and served context win (SERVER_FACTORS). A setting the files
    record travelled with every request, so it wins over the server's default, which fills only what the files
    leave unset or ``assumed`` (an engine kind's documented default). Where a recorded repeat_penalty differs
    from the server's own default, a note says so: another client that omits it gets the server's value.
    """
    merged, notes = dict(recorded), []
    for name, value in live.items():
        if value is None or name not in FACTORS:
            continue
        current = recorded.get(name)
        if name in SERVER_FACTORS or current is None or name in assumed:
            merged[name] = value
        elif name == "repeat_penalty" and not _same(current, value):
            notes.append(f"the {source} set repeat_penalty {current}, which the requests carry; the server's own default is "
                         f"{value}, which any client that omits it gets")
    return merged, tuple(notes)


def _ask(source: _Source, timeout: float) -> tuple[dict[str, Any], str | None, tuple[str, ...]]:
    """(what the server stated, where it answered, notes): an env file's managed engine is started for the
    question and stopped; any other server is asked at the URL the files name. A server that cannot be asked
    is a note, not an error."""
    env = source.env
    kind = ENGINE_KINDS[env.engine.kind] if env is not None else None
    try:
        if kind is not None and kind.managed:
            import tempfile

            with ExitStack() as stack:
                work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="statrepro-doctor-")))
                try:
                    info = stack.enter_context(kind.serve(env, work_dir))
                except InputError as error:
                    return {}, None, (f"could not start its {kind.name} server to ask it: {error}",)
                return ask_endpoint(info.base_url, timeout=timeout, expected=kind.name), info.base_url, ()
        if source.endpoint is None:
            return {}, None, (f"no server URL in the {source.label} (a managed server of a past run is gone: give its env file)",)
        api_key = env.engine.api_key.get_secret_value() if env is not None and env.engine.api_key else None
        return ask_endpoint(source.endpoint, timeout=timeout, api_key=api_key), source.endpoint, ()
    except InputError as error:  # EngineError included: the server does not answer, or a URL that is none
        return {}, source.endpoint, (f"could not ask the server: {error}",)


def _side(label: str, source: _Source, probe_endpoints: bool | None, timeout: float) -> tuple[dict[str, Any], SideReport]:
    """One side's factors (with its server's answers, when asked) and its report."""
    ask = source.served and (probe_endpoints is True or (probe_endpoints is None and source.env is not None))
    live, endpoint, notes = _ask(source, timeout) if ask else ({}, source.endpoint, ())
    if probe_endpoints is True and not source.served:
        notes = (f"no server in the {source.label} (an in-process model): nothing to ask",)
    factors, disagreements = merge_live(source.factors, live, source.assumed, source.label)
    unseen = [name for name in (*SERVER_FACTORS, *SERVER_DEFAULTS) if factors.get(name) is None] if source.served else []
    if source.served and not source.names_engine and live.get("engine") is None and "engine" not in unseen:
        unseen.insert(0, "engine")  # the files name only a kind of endpoint or an API client
    if ask:
        hint = "the server could not be asked"
    elif source.env is not None:
        hint = "let doctor ask the server (drop --no-probe-endpoints)"
    else:
        hint = "pass --probe-endpoints with the server running, or give the env files"
    report = SideReport(label, source.label, endpoint, live, tuple(unseen), hint if unseen and not live else "", notes + disagreements)
    return factors, report


def compare_sources(
    a: str | Path, b: str | Path, *, probe_endpoints: bool | None = False, probe_timeout: float = PROBE_TIMEOUT_SECONDS
) -> DoctorResult:
    """Read both sources, ask their servers when ``probe_endpoints`` says so, and diff them.

    ``probe_endpoints``: False reads the files only; None (the CLI's default) also asks the servers of env
    files: an external endpoint over HTTP, a managed engine started for the question and stopped again (it costs
    the server's start-up); True also asks the server URL an lm-eval or evalscope output (or a manifest) records.
    """
    sources = [_read_source(a), _read_source(b)]  # every file is checked before any server is started
    (factors_a, report_a), (factors_b, report_b) = (
        _side(label, source, probe_endpoints, probe_timeout) for label, source in zip("AB", sources)
    )
    return replace(diff_factors(factors_a, factors_b), sides=(report_a, report_b))
