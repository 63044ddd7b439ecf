"""Stored baselines and the CI gate: `statrepro baseline save|list|show` and `statrepro gate`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .common import (
    ALPHA, BASELINES_DIR, BENCHMARKS, CORRECTION, DATA_DIR, EXECUTOR, FLIP_MARGIN, GITHUB, JSON_PATH, JUNIT, KL_MARGIN, LIMIT,
    MARGIN, MAX_MISSING, MODE, RAY_ADDRESS, REPORT, RESAMPLES, RNG_SEED, SCORE_RANGE, SEEDS, STORE, TOLERANCE, TOP1_MARGIN,
    WAIT, Correction, MarginKind, Mode, api_options, parse_benchmarks, parse_score_range, parse_seeds, stop_on_sigterm,
    user_errors,
)
from .render import print_decision

baseline_app = typer.Typer(no_args_is_help=True, help="Save, list and show stored baselines (the reference side that `gate` loads).")

AS_JSON = typer.Option(False, "--json", help="Print JSON instead of text.")


@baseline_app.command("save")
@user_errors
def save(
    sources: list[Path] = typer.Argument(..., help="The reference's environment file (its missing runs are run), or its result directories.", metavar="ENV.yaml | DIR..."),
    name: Optional[str] = typer.Option(None, help="The baseline's name (default: the environment's, or the first directory's)."),
    control: bool = typer.Option(False, "--control", help="Also run the A/A control (A's environment again) and store it for the gate's noise floor."),
    control_dir: Optional[Path] = typer.Option(None, help="With result directories: the A/A control's results."),
    benchmarks: Optional[str] = BENCHMARKS,
    seeds: Optional[str] = SEEDS,
    limit: Optional[int] = LIMIT,
    store: Path = STORE,
    data_dir: Optional[Path] = DATA_DIR,
    executor: str = EXECUTOR,
    ray_address: Optional[str] = RAY_ADDRESS,
    wait: bool = WAIT,
    baselines_dir: Optional[Path] = BASELINES_DIR,
) -> None:
    """Save a baseline bundle: every per-item record of every seed, the manifests, the item-set, data, prompt and
    template hashes and the versions, in one verified file named by its sha256."""
    from ..api_ci import SaveBaselineOptions, save_baseline

    options = api_options(
        SaveBaselineOptions, name=name, control=control, benchmarks=parse_benchmarks(benchmarks), seeds=parse_seeds(seeds),
        limit=limit, store=store, data_dir=data_dir, executor=executor, ray_address=ray_address, wait=wait,
        baselines_dir=baselines_dir,
    )
    stop_on_sigterm()
    saved = save_baseline(sources, options, control_dir=control_dir)
    typer.echo(f"saved baseline {saved.label}: {saved.path} (sha256 {saved.id})")


@baseline_app.command("list")
@user_errors
def list_command(baselines_dir: Optional[Path] = BASELINES_DIR, as_json: bool = AS_JSON) -> None:
    """List the baselines of the baselines directory (each verified)."""
    from ..api_ci import list_baselines

    listed = list_baselines(baselines_dir)
    if as_json:
        typer.echo(json.dumps(listed, indent=2))
        return
    if not listed:
        typer.echo("no baselines found" + (f" in {baselines_dir}" if baselines_dir else ""))
    for entry in listed:
        if "error" in entry:
            typer.echo(f"{entry['label']}  DAMAGED: {entry['error']}")
            continue
        benchmarks = ", ".join(f"{name} ({info['items']} items x {len(info['runs'])} runs)" for name, info in entry["benchmarks"].items())
        control = ", with control" if entry["control"] else ""
        typer.echo(f"{entry['label']}  statrepro {entry['statrepro_version']}  {benchmarks}{control}")


@baseline_app.command("show")
@user_errors
def show(
    baseline: str = typer.Argument(..., help="A bundle's path, label (<name>-<short id>), id prefix or name."),
    baselines_dir: Optional[Path] = BASELINES_DIR,
    as_json: bool = AS_JSON,
) -> None:
    """Describe one baseline (verified): its source, seeds, benchmarks with their hashes, versions and factors."""
    from ..api_ci import show_baseline

    shown = show_baseline(baseline, baselines_dir)
    if as_json:
        typer.echo(json.dumps(shown, indent=2, default=str))
        return
    header = shown["header"]
    typer.echo(f"{shown['label']}  format {shown['format_version']}, statrepro {shown['statrepro_version']}")
    typer.echo(f"  sha256 {shown['id']}\n  file {shown['path']}\n  from {header['source']}")
    typer.echo(f"  seeds {header.get('seeds')}, control {'yes' if header.get('control') else 'no'}, template {header.get('template')}")
    for name, info in header["benchmarks"].items():
        typer.echo(f"  {name}: {info['items']} items, runs {', '.join(info['runs'])}, metric {info['metric']}, "
                   f"few-shot {info.get('num_fewshot')}, mode {info.get('mode')}, items sha256 {info['item_set_sha256'][:16]}, "
                   f"prompts sha256 {(info.get('prompt_sha256') or '-')[:16]}, data {'recorded' if info.get('data_sha256') else 'not recorded'}")
    typer.echo(f"  versions {json.dumps(header.get('versions'), sort_keys=True)}")


@user_errors
def gate(
    candidate: Optional[Path] = typer.Argument(None, help="The candidate's environment file (run on the baseline's benchmarks, items and seeds).", metavar="CAND.yaml"),
    baseline: str = typer.Option(..., "--baseline", help="The stored baseline: a bundle's path, label, id prefix or name."),
    results: Optional[Path] = typer.Option(None, "--results", help="The candidate's existing results instead of running CAND.yaml."),
    tolerance: float = TOLERANCE,
    alpha: float = ALPHA,
    mode: Mode = MODE,
    margin: MarginKind = MARGIN,
    correction: Correction = CORRECTION,
    json_path: Optional[Path] = JSON_PATH,
    report: Optional[Path] = REPORT,
    junit: Optional[Path] = JUNIT,
    github: bool = GITHUB,
    store: Path = STORE,
    data_dir: Optional[Path] = DATA_DIR,
    executor: str = EXECUTOR,
    ray_address: Optional[str] = RAY_ADDRESS,
    rng_seed: int = RNG_SEED,
    resamples: int = RESAMPLES,
    max_missing: float = MAX_MISSING,
    score_range: Optional[str] = SCORE_RANGE,
    wait: bool = WAIT,
    kl_margin: Optional[float] = KL_MARGIN,
    top1_margin: Optional[float] = TOP1_MARGIN,
    flip_margin: Optional[float] = FLIP_MARGIN,
    baselines_dir: Optional[Path] = BASELINES_DIR,
) -> None:
    """Run only the candidate and decide, paired, whether it still scores like a stored baseline.

    A baseline that cannot pair with the candidate (another item set, data revision, prompt or template, few-shot
    count, mode or metric) is refused; the baseline's A/A control, when it has one, gives the noise floor.

    Exit codes: 0 equivalent or within tolerance, 3 different, 4 inconclusive, 2 bad input.
    """
    from ..api_ci import GateOptions, gate as run_gate

    options = api_options(
        GateOptions, tolerance=tolerance, alpha=alpha, mode=mode.value, margin=margin.value, correction=correction.value,
        max_missing=max_missing, rng_seed=rng_seed, resamples=resamples, score_range=parse_score_range(score_range),
        store=store, data_dir=data_dir, executor=executor, ray_address=ray_address, wait=wait, kl_margin=kl_margin,
        top1_margin=top1_margin, flip_margin=flip_margin, baselines_dir=baselines_dir,
    )
    stop_on_sigterm()
    analysis = run_gate(candidate, baseline, options, results=results, json_path=json_path, report=report, junit=junit, github=github)
    print_decision(analysis)
    raise typer.Exit(analysis.decision.exit_code)
