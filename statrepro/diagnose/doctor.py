"""Configuration doctor (``statrepro doctor A B``): which score-moving factors differ between two runs.

Sources: environment YAML files, lm-eval results JSON files (or output dirs holding results_*.json),
evalscope ``configs/task_config*.yaml`` files, and statrepro manifest JSON (``{"env": {...},
"harness_version": ..., "hardware": ...}``). Each is reduced to a flat dict of canonical factors (environments
and manifests here, harness output by its adapter's ``doctor_factors``) (values are plain strings/numbers, None = unknown); ``diff_factors`` is a pure function
on two such dicts, so the report and the run path can reuse it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..engines.kinds import ENGINE_KINDS
from ..harness.contract import DETERMINISM_FACTORS, DOCTOR_FACTORS, mode_factor, per_task

FACTORS = DOCTOR_FACTORS

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
class DoctorResult:
    """Differing factors (highest severity first), the determinism checklist and the factors unknown on a side."""

    factors: tuple[FactorDiff, ...]
    checklist: tuple[ChecklistItem, ...]
    not_comparable: tuple[str, ...]

    def summary(self) -> str:
        if not self.factors:
            return "no known score-moving factor differs" + (f" ({len(self.not_comparable)} unknown on a side)" if self.not_comparable else "")
        counts = {level: sum(f.severity == level for f in self.factors) for level in ("high", "medium", "low")}
        return f"{len(self.factors)} factors differ (high {counts['high']}, medium {counts['medium']}, low {counts['low']}): " + ", ".join(f.name for f in self.factors)

    def to_dict(self) -> dict[str, Any]:
        return {"factors": [asdict(f) for f in self.factors], "checklist": [asdict(c) for c in self.checklist],
                "not_comparable": list(self.not_comparable), "summary": self.summary()}


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
        va, vb = a.get(name), b.get(name)
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
        "mode": _env_modes(benchmarks, kind, generative_only=harness.get("name") == "evalscope"),
        **_determinism_factors(engine_kind, hardware, bool(engine.get("deterministic", False))),
    }


def _determinism_factors(engine_kind, hardware: str, deterministic: bool, recorded: dict | None = None) -> dict[str, Any]:
    """The checklist facts: as a run manifest recorded them, else as the engine kind states them."""
    if isinstance(recorded, dict) and all(key in recorded for key in DETERMINISM_FACTORS):
        return {key: recorded[key] for key in DETERMINISM_FACTORS}
    if engine_kind is None:  # a kind this version does not know (an old manifest)
        return dict.fromkeys(DETERMINISM_FACTORS)
    report = engine_kind.determinism(hardware, deterministic)
    return {key: report[key] for key in DETERMINISM_FACTORS}


def _env_modes(benchmarks: dict[str, Any], kind: str, *, generative_only: bool) -> str | None:
    from ..benchmarks import BENCHMARKS
    from ..config import resolved_mode

    modes = [
        "gen" if generative_only else resolved_mode(name, (spec or {}).get("mode") if (spec or {}).get("generative") is None else ("gen" if spec["generative"] else "clp"), kind)
        for name, spec in benchmarks.items()
        if name in BENCHMARKS and len(BENCHMARKS[name].modes) > 1
    ]
    return mode_factor(modes)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise InputError(f"not valid JSON: {error}", path=path) from None


def extract_factors(source: str | Path) -> dict[str, Any]:
    """Detect the kind of ``source`` and return its flat factor dict: a statrepro manifest or environment
    file is read here; any other format by the harness adapter that recognises it."""
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
            return factors
    for adapter in harness_adapters():
        factors = adapter.doctor_factors(path)
        if factors is not None:
            return factors
    if path.is_dir():
        raise InputError("directory holds no lm-eval results_*.json nor evalscope configs/task_config*.yaml", path=path)
    if path.suffix.lower() == ".json":
        raise InputError("JSON is neither an lm-eval results file nor a statrepro manifest", path=path)
    if path.suffix.lower() in (".yaml", ".yml"):
        from ..config import load_env

        env = load_env(path)
        return factors_from_env(env.public_dict(), concurrency=ENGINE_KINDS[env.engine.kind].requests_in_flight(env))
    raise InputError("expected an env .yaml, an lm-eval results .json or dir, an evalscope task_config .yaml or a manifest .json", path=path)


def compare_sources(a: str | Path, b: str | Path) -> DoctorResult:
    """Extract both sources and diff them."""
    return diff_factors(extract_factors(a), extract_factors(b))
