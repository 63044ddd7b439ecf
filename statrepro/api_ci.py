"""Stored baselines and the CI gate: ``save_baseline``, ``list_baselines``, ``show_baseline`` and ``gate``.

A baseline is the reference side of a comparison, run once and saved as a verified bundle
(``statrepro.run.baseline``). ``gate`` then runs only the candidate, on exactly the baseline's benchmarks, items
and seeds, and decides paired under the same analysis and verdict rules as ``compare_environments``: it replaces
"run side A" with "load side A from the bundle", and uses the bundle's A/A control, when it holds one, for the
noise floor. A baseline that cannot pair honestly with the candidate (another item set, data revision, prompt or
template, few-shot count, mode or metric) is refused with one line naming the factor.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from pydantic import field_validator, model_validator

from . import __version__
from .api import RunOptions, VerdictOptions, _analysis_options, _write_outputs, load_environments
from .errors import InputError

if TYPE_CHECKING:
    from rich.console import Console

    from .analysis import Analysis
    from .run.baseline import Baseline

# What makes a baseline and a candidate measure different things: a difference refuses the gate.
REFUSED_FACTORS = ("num_fewshot", "mode", "chat_template", "system_instruction", "prompt", "metric")
# The benchmark options that select the items: the candidate takes the baseline's.
ITEM_SELECTION = ("limit", "subsets", "drop_flagged", "item_rows")


class SaveBaselineOptions(RunOptions):
    """Options of ``save_baseline``: what to run (an environment file's missing runs) and where the bundle goes."""

    name: Optional[str] = None
    """The baseline's name (default: the environment's name, or the first result directory's)."""
    control: bool = False
    """Also run (or, with result directories, read) the A/A control and store it for the gate's noise floor."""
    baselines_dir: Optional[Path] = None
    """Where bundles are saved and looked up by name (None: ./baselines)."""

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: Optional[str]) -> Optional[str]:
        from pydantic import ValidationError

        from .config import EnvConfig

        try:
            if value is not None:
                EnvConfig.model_validate({"name": value})  # the same rule as an environment's name
        except ValidationError as error:
            raise ValueError(error.errors()[0]["ctx"]["error"]) from None
        return value


class GateOptions(VerdictOptions, RunOptions):
    """Options of ``gate``: the verdict's and where the candidate runs. Its benchmarks, items and seeds are the
    baseline's, never chosen here."""

    baselines_dir: Optional[Path] = None
    """Where a baseline given by name is looked up (None: ./baselines)."""

    @model_validator(mode="after")
    def _baseline_selects(self) -> "GateOptions":
        for key in ("benchmarks", "seeds", "limit"):
            if getattr(self, key) is not None:
                raise ValueError(f"the gate runs the baseline's benchmarks, items and seeds; {key} cannot be set")
        return self


def _template(harness: dict | None) -> dict | None:
    """The prompt settings of the harness that wrap every item: chat template on or off, the system prompt."""
    if not harness:
        return None
    return {"apply_chat_template": harness.get("apply_chat_template", True), "system_instruction": harness.get("system_instruction")}


def _dataset_hashes(manifests: list[dict], benchmark: str) -> dict[str, str] | None:
    """The data files' sha256 the benchmark's runs recorded (None: the harness records none)."""
    found: dict[str, str] = {}
    for manifest in manifests:
        if manifest.get("benchmark") == benchmark:
            found.update(manifest.get("dataset_sha256") or {})
    return dict(sorted(found.items())) or None


def _recorded_mode(manifests: list[dict], benchmark: str) -> str | None:
    modes = {manifest.get("mode") for manifest in manifests if manifest.get("benchmark") == benchmark} - {None}
    return sorted(modes)[0] if modes else None


def _finished_runs(config, store) -> tuple[Any, list[dict], dict[str, str]]:
    """The records and manifests of every job of ``config``; seeds skipped as a deterministic side's repeats are
    allowed (job key -> why), any other unfinished job is refused."""
    from .run.orchestrate import load_env_records, unneeded_seeds
    from .run.plan import plan_jobs

    jobs = plan_jobs([config])
    unfinished = [job for job in jobs if not store.is_done(job)]
    skipped = unneeded_seeds(jobs, unfinished, store)
    for job in unfinished:
        if job.key not in skipped:
            raise InputError(f"{job.label} did not finish; a baseline holds every seed: run the same command again",
                             path=store.job_dir(job))
    return load_env_records(config, store), [store.manifest(job) for job in jobs if store.is_done(job)], skipped


def _baseline_from_env(path: Path, options: SaveBaselineOptions, console) -> tuple[dict, Any, Any, list[dict]]:
    """Run what is missing of the environment (and its control) and gather the bundle's parts."""
    from .diagnose.doctor import factors_of_config
    from .run.orchestrate import get_executor, run_environments
    from .run.plan import control_env
    from .run.store import ResultStore

    config = load_environments([path], options)[0]
    envs = [config] + ([control_env(config)] if options.control else [])
    store = ResultStore(options.store)
    with store.locked(wait=options.wait):
        summary = run_environments(envs, store, get_executor(options.executor, ray_address=options.ray_address),
                                   data_dir=options.data_dir, console=console)
    console.print(summary.summary())
    records, manifests, skipped = _finished_runs(config, store)
    control = _finished_runs(envs[1], store)[0] if options.control else None
    benchmarks = {}
    for name, spec in config.benchmarks.items():
        benchmarks[name] = {
            "spec": spec.model_dump(mode="json"), "num_fewshot": spec.num_fewshot,
            "mode": _recorded_mode(manifests, name) or spec.mode, "data_sha256": _dataset_hashes(manifests, name),
            "skipped_seeds": sorted(int(job.rsplit("/seed-", 1)[1]) for job in skipped if f"/{name}-" in job),
        }
    first = manifests[0] if manifests else {}
    server = first.get("endpoint") or {}
    header = {
        "source": {"kind": "environment", "path": str(path)}, "env": config.public_dict(), "seeds": config.seed_list,
        "benchmarks": benchmarks, "template": _template(config.public_dict()["harness"]), "factors": factors_of_config(config),
        "versions": {**(first.get("versions") or {}), "statrepro": __version__, "engine": config.engine.kind,
                     "engine_server": server.get("version")},
    }
    return header, records, control, manifests


def _factors_of_results(path: Path) -> dict:
    from .diagnose.doctor import extract_factors

    try:
        return extract_factors(path)
    except InputError:
        return {}  # a harness output that records no settings


def _baseline_from_results(paths: list[Path], control_dir: Path | None) -> tuple[dict, Any, Any, list[dict]]:
    import pandas as pd

    from .harness import load_side

    records = pd.concat([load_side(path) for path in paths], ignore_index=True)
    control = load_side(control_dir) if control_dir is not None else None
    factors = _factors_of_results(paths[0])
    template = None
    if factors.get("chat_template") is not None:
        template = {"chat_template": factors.get("chat_template"), "system_instruction": factors.get("system_instruction")}
    header = {
        "source": {"kind": "results", "paths": [str(path) for path in paths]}, "env": None, "seeds": None,
        "benchmarks": {name: {"spec": None, "num_fewshot": None, "mode": None, "data_sha256": None, "skipped_seeds": []}
                       for name in sorted(set(records["benchmark"]))},
        "template": template, "factors": factors,
        "versions": {"statrepro": __version__, "harness": factors.get("harness_version")},
    }
    return header, records, control, [{"source": str(path)} for path in paths]


def _directory_name(path: Path) -> str:
    from pydantic import ValidationError

    try:
        return SaveBaselineOptions(name=path.resolve().name).name
    except ValidationError:
        raise InputError(f"the directory's name {path.resolve().name!r} cannot name a baseline: pass --name", path=path) from None


def save_baseline(
    sources: list[str | Path], options: SaveBaselineOptions | None = None, *, control_dir: str | Path | None = None,
    console: Console | None = None,
) -> Baseline:
    """Save a baseline bundle from one environment file (running what is missing) or from existing result
    directories (``control_dir``: the control's results), into ``options.baselines_dir``; return it, loaded."""
    from rich.console import Console

    from .run.baseline import benchmark_hashes, load_bundle, sha256_text, write_bundle

    options = options or SaveBaselineOptions()
    console = console or Console(stderr=True)
    paths = [Path(source) for source in sources]
    if not paths:
        raise InputError("needs an environment file or result directories", key="SOURCES")
    if len(paths) == 1 and paths[0].suffix.lower() in (".yaml", ".yml"):
        if control_dir is not None:
            raise InputError("with an environment file the control is run: pass --control, not --control-dir", key="--control-dir")
        header, records, control, manifests = _baseline_from_env(paths[0], options, console)
        name = options.name or header["env"]["name"]
    else:
        if options.control:
            raise InputError("with result directories the control is read, not run: pass --control-dir DIR", key="--control")
        header, records, control, manifests = _baseline_from_results(paths, Path(control_dir) if control_dir else None)
        name = options.name or _directory_name(paths[0])
    if records.empty:
        raise InputError("no finished runs to save; see the failures above", path=paths[0])
    label = f"baseline {name}"
    records = records.assign(source=label)
    control = control.assign(source=f"{label} control") if control is not None else None
    hashes = benchmark_hashes(records)
    header["benchmarks"] = {bench: {**hashes[bench], **header["benchmarks"].get(bench, {})} for bench in hashes}
    header.update(name=name, statrepro_version=__version__,
                  template_sha256=sha256_text(json.dumps(header["template"], sort_keys=True)) if header["template"] else None)
    return load_bundle(write_bundle(options.baselines_dir, header, records, control, manifests))


def baseline_summary(baseline: Baseline) -> dict:
    """What ``baseline list`` and ``baseline show`` print of a bundle."""
    header = baseline.header
    return {
        "label": baseline.label, "id": baseline.id, "path": str(baseline.path), "name": baseline.name,
        "format_version": header["format_version"], "statrepro_version": header.get("statrepro_version"),
        "source": header.get("source"), "seeds": header.get("seeds"), "control": header.get("control", False),
        "benchmarks": {name: {key: described.get(key) for key in ("items", "runs", "metric", "num_fewshot", "mode")}
                       for name, described in header["benchmarks"].items()},
        "versions": header.get("versions"),
    }


def list_baselines(baselines_dir: str | Path | None = None) -> list[dict]:
    """Every bundle of ``baselines_dir`` (verified), by name; a damaged one is listed with its error."""
    from .run.baseline import bundles_in, load_bundle

    listed = []
    for path in bundles_in(baselines_dir):
        try:
            listed.append(baseline_summary(load_bundle(path)))
        except InputError as error:
            listed.append({"label": path.name, "path": str(path), "error": error.message})
    return listed


def show_baseline(reference: str | Path, baselines_dir: str | Path | None = None) -> dict:
    """One bundle, verified, by path, label, id prefix or name: its summary plus its header's hashes and factors."""
    from .run.baseline import find_bundle, load_bundle

    baseline = load_bundle(find_bundle(reference, baselines_dir))
    return {**baseline_summary(baseline), "header": baseline.header}


def _candidate_env(path: Path, baseline: Baseline, options: GateOptions, console: Console):
    """The candidate's environment on the baseline's benchmarks and seeds (its own few-shot count, mode and every
    other setting, which the gate then checks against the baseline's). A benchmark the candidate's file selects
    other items of than the baseline did is refused: the baseline is stale; one it does not list takes the
    baseline's selection."""
    from pydantic import ValidationError

    from .config import EnvConfig
    from .envfile import validate_env
    from .errors import validation_error

    config = load_environments([path], options)[0]
    if config.name == baseline.name:
        raise InputError(f"the candidate is named {config.name!r}, as the baseline is; names key the store", path=path, key="name")
    benchmarks = {}
    for name, described in baseline.header["benchmarks"].items():
        selection = {key: described["spec"][key] for key in ITEM_SELECTION} if described.get("spec") else {}
        own = config.benchmarks[name].model_dump() if name in config.benchmarks else selection
        changed = [key for key in selection if own.get(key) != selection[key]]
        if changed:
            raise InputError(f"baseline {baseline.label} is not comparable: the item set of benchmark {name!r} differs "
                             f"({changed[0]}: baseline {selection[changed[0]]!r}, candidate {own.get(changed[0])!r})",
                             path=path, key=f"benchmarks.{name}.{changed[0]}")
        benchmarks[name] = own
    extra = sorted(set(config.benchmarks) - set(benchmarks))
    if extra:
        console.print(f"note: the baseline holds no {', '.join(extra)}; the gate runs only its benchmarks", markup=False, highlight=False)
    seeds = baseline.header.get("seeds") or len(next(iter(baseline.header["benchmarks"].values()))["runs"])
    try:
        return validate_env({**config.model_dump(), "benchmarks": benchmarks, "seeds": seeds})
    except ValidationError as error:
        raise validation_error(error, EnvConfig, path=path) from None


def _refuse_factors(baseline: Baseline, factors: dict, where: Path, console: Console) -> dict | None:
    """Refuse a factor that makes the two sides measure different things; warn on those the doctor rates low
    and note the others (the change under test). Returns the doctor's diff for the report."""
    from .diagnose.doctor import diff_factors

    if not baseline.header.get("factors") or not factors:
        return None
    result = diff_factors(baseline.header["factors"], factors)
    for factor in result.factors:
        if factor.name in REFUSED_FACTORS:
            raise InputError(f"baseline {baseline.label} is not comparable: {factor.name} differs "
                             f"(baseline {factor.a!r}, candidate {factor.b!r})", path=where, key=factor.name)
    for factor in result.factors:
        tone = "warning" if factor.severity == "low" else "note"
        console.print(f"{tone}: {factor.name} differs from the baseline ({factor.a!r} -> {factor.b!r}; {factor.severity}: {factor.why})",
                      markup=False, highlight=False, soft_wrap=True)
    return result.to_dict()


def _check_config(baseline: Baseline, config, path: Path) -> None:
    """The template (chat template on or off, system prompt), few-shot count and requested mode, before anything
    runs (an environment's baseline only: result directories record these in the doctor's factors)."""
    from .run.baseline import sha256_text

    if baseline.header.get("env") is None:
        return
    template = _template(config.public_dict()["harness"])
    if sha256_text(json.dumps(template, sort_keys=True)) != baseline.header["template_sha256"]:
        raise InputError(f"baseline {baseline.label} is not comparable: template hash differs "
                         f"(baseline {baseline.header['template']}, candidate {template})", path=path, key="harness")
    for name, described in baseline.header["benchmarks"].items():
        spec = config.benchmarks[name]
        if spec.num_fewshot != described["num_fewshot"]:
            raise InputError(f"baseline {baseline.label} is not comparable: few-shot count of benchmark {name!r} differs "
                             f"(baseline {described['num_fewshot']}, candidate {spec.num_fewshot})", path=path, key=f"benchmarks.{name}.num_fewshot")
        if spec.mode is not None and described["mode"] not in (None, spec.mode):
            raise InputError(f"baseline {baseline.label} is not comparable: mode of benchmark {name!r} differs "
                             f"(baseline {described['mode']}, candidate {spec.mode})", path=path, key=f"benchmarks.{name}.mode")


def _check_records(baseline: Baseline, records, where: Path, *, strict: bool, manifests: list[dict]) -> None:
    """The candidate's records against the baseline's, per benchmark: item set, data revision, metric and the
    per-item prompt hashes. Items the baseline has and a run candidate lacks are its failed items (missing,
    counted by the verdict); with ``strict`` (results given) they too are a different item set."""
    from .run.baseline import benchmark_hashes

    described = benchmark_hashes(records)
    for name, expected in baseline.header["benchmarks"].items():
        if name not in described:
            raise InputError(f"the candidate has no results of benchmark {name!r}, which the baseline holds", path=where)
        part, reference = records[records["benchmark"] == name], baseline.records[baseline.records["benchmark"] == name]
        keys, known = set(part["item_key"].astype(str)), set(reference["item_key"].astype(str))
        if keys - known or (strict and known - keys):
            raise InputError(f"benchmark {name!r}: the candidate's item set differs from the baseline's: "
                             f"{len(known - keys)} items only in the baseline, {len(keys - known)} only in the candidate", path=where)
        if described[name]["metric"] != expected["metric"]:
            raise InputError(f"baseline {baseline.label} is not comparable: metric of benchmark {name!r} differs "
                             f"(baseline {expected['metric']!r}, candidate {described[name]['metric']!r})", path=where, key="metric")
        mode = _recorded_mode(manifests, name)
        if mode and expected.get("mode") and mode != expected["mode"]:
            raise InputError(f"baseline {baseline.label} is not comparable: mode of benchmark {name!r} differs "
                             f"(baseline {expected['mode']}, candidate {mode})", path=where, key="mode")
        data = _dataset_hashes(manifests, name)
        if data and expected.get("data_sha256") and data != expected["data_sha256"]:
            raise InputError(f"baseline {baseline.label} is not comparable: the data revision of benchmark {name!r} differs "
                             "(its data files' sha256)", path=where, key="data_sha256")
        _check_prompts(baseline, name, reference, part, where)


def _check_prompts(baseline: Baseline, name: str, reference, part, where: Path) -> None:
    prompts = [frame.dropna(subset=["prompt_hash"]).drop_duplicates("item_key").set_index("item_key")["prompt_hash"]
               for frame in (reference, part)]
    both = prompts[0].to_frame("a").join(prompts[1].to_frame("b"), how="inner")
    differing = both[both["a"] != both["b"]]
    if len(differing):
        raise InputError(f"baseline {baseline.label} is not comparable: prompt hash of benchmark {name!r} differs on "
                         f"{len(differing)} of {len(both)} items (e.g. {differing.index[0]!r})", path=where, key="prompt_hash")


def _run_candidate(config, options: GateOptions, console: Console):
    from .run.orchestrate import get_executor, load_env_records, run_environments
    from .run.plan import plan_jobs
    from .run.store import ResultStore

    store = ResultStore(options.store)
    with store.locked(wait=options.wait):
        summary = run_environments([config], store, get_executor(options.executor, ray_address=options.ray_address),
                                   data_dir=options.data_dir, console=console)
    console.print(f"gate: the candidate's runs: {summary.summary()}; the baseline's are not re-run", markup=False, highlight=False)
    records = load_env_records(config, store)
    if records.empty:
        raise InputError("no finished runs of the candidate; see the failures above", path=store.root)
    return records, [manifest for job in plan_jobs([config]) if (manifest := store.manifest(job)) and manifest.get("status") == "done"]


def gate(
    candidate: str | Path | None,
    baseline: str | Path,
    options: GateOptions | None = None,
    *,
    results: str | Path | None = None,
    json_path: str | Path | None = None,
    report: str | Path | None = None,
    junit: str | Path | None = None,
    github: bool = False,
    argv: list[str] | None = None,
    console: Console | None = None,
) -> Analysis:
    """Decide whether the candidate (an environment file, run here on the baseline's benchmarks, items and seeds;
    or ``results``, result directories it already has) still scores like the stored ``baseline`` (a path, label,
    id prefix or name in ``options.baselines_dir``). The analysis, verdict rules, outputs and exit codes are
    compare's; the verdict JSON's inputs name the baseline's id, and so do the CI outputs (``junit``, ``github``:
    see ``compare_environments``)."""
    from rich.console import Console

    from .analysis import analyze as analyze_records
    from .run.baseline import find_bundle, load_bundle

    options = options or GateOptions()
    console = console or Console(stderr=True)
    if (candidate is None) == (results is None):
        raise InputError("needs the candidate's environment file or --results DIR, not both", key="CANDIDATE")
    bundle = load_bundle(find_bundle(baseline, options.baselines_dir))
    if options.flip_margin is not None and bundle.control is None:
        raise InputError(f"baseline {bundle.label} holds no A/A control; save it with --control", key="--flip-margin")
    console.print(f"gate: baseline {bundle.label} (statrepro {bundle.header.get('statrepro_version')}, format "
                  f"{bundle.header['format_version']}, sha256 {bundle.id})", markup=False, highlight=False, soft_wrap=True)
    if results is not None:
        where = Path(results)
        from .harness import load_side

        doctor = _refuse_factors(bundle, _factors_of_results(where), where, console)
        records, manifests, strict, manifest_b = load_side(where), [], True, None
    else:
        where = Path(candidate)
        config = _candidate_env(where, bundle, options, console)
        _check_config(bundle, config, where)
        from .diagnose.doctor import factors_of_config

        doctor = _refuse_factors(bundle, factors_of_config(config), where, console)
        records, manifests = _run_candidate(config, options, console)
        strict, manifest_b = False, manifests[0] if manifests else None
    _check_records(bundle, records, where, strict=strict, manifests=manifests)
    inputs = {"a": f"baseline {bundle.label}", "b": str(where), "baseline": bundle.id}
    if bundle.control is not None:
        inputs["control"] = f"baseline {bundle.label} control"
    analysis = analyze_records(bundle.records, records, _analysis_options(options, unpaired="missing"), inputs=inputs,
                               records_control=bundle.control)
    manifest_a = next((manifest for manifest in bundle.manifests if isinstance(manifest, dict) and "env" in manifest), None)
    manifests_json = {side: manifest for side, manifest in (("A", manifest_a), ("B", manifest_b)) if manifest}
    _write_outputs(analysis, json_path, report, argv=argv or sys.argv, junit=junit, github=github, records_a=bundle.records,
                   records_b=records, manifests=manifests_json, doctor=doctor)
    return analysis
