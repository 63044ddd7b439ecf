"""The evaluation commands: run environments, compare two of them end to end, analyze existing results."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import (
    ALPHA, BENCHMARKS, CORRECTION, DATA_DIR, EXECUTOR, FLIP_MARGIN, GITHUB, JSON_PATH, JUNIT, KL_MARGIN, LIMIT, MARGIN, MAX_MISSING, MODE,
    RAY_ADDRESS, REPORT, TOP1_MARGIN,
    RESAMPLES, RNG_SEED, SCORE_RANGE, SEEDS, STORE, TOLERANCE, WAIT, Correction, MarginKind, Mode, api_options, parse_benchmarks,
    parse_metric_overrides, parse_score_range, parse_seeds, stop_on_sigterm, user_errors,
)
from ..errors import InputError
from .render import print_candidates, print_decision


@user_errors
def analyze(
    a: Path = typer.Argument(..., help="Results of environment A: lm-eval output dir(s) or an evalscope work dir."),
    b: Path = typer.Argument(..., help="Results of environment B, likewise."),
    tolerance: float = TOLERANCE,
    alpha: float = ALPHA,
    mode: Mode = MODE,
    margin: MarginKind = MARGIN,
    correction: Correction = CORRECTION,
    intersect: bool = typer.Option(
        False, help="Analyse what both sides have: items one side lacks count as missing; one-sided benchmarks are dropped."
    ),
    metric: list[str] = typer.Option([], help="Primary metric override, BENCHMARK=METRIC (e.g. gsm8k=exact_match,strict-match)."),
    json_path: Optional[Path] = JSON_PATH,
    report: Optional[Path] = REPORT,
    junit: Optional[Path] = JUNIT,
    github: bool = GITHUB,
    rng_seed: int = RNG_SEED,
    resamples: int = RESAMPLES,
    seed_level: bool = typer.Option(False, help="Two-level bootstrap: also resample seeds within items."),
    max_missing: float = MAX_MISSING,
    score_range: Optional[str] = SCORE_RANGE,
    control: Optional[Path] = typer.Option(None, "--control", help="A third result set from A's environment (the A/A control A'), shown beside A vs B: flip rates, their excess and its exact test."),
    kl_margin: Optional[float] = KL_MARGIN,
    top1_margin: Optional[float] = TOP1_MARGIN,
    flip_margin: Optional[float] = FLIP_MARGIN,
) -> None:
    """Compare two existing result sets item by item and print a calibrated verdict.

    Exit codes: 0 equivalent or within tolerance, 3 different, 4 inconclusive, 2 bad input.
    """
    from ..api import AnalyzeOptions, analyze as analyze_results

    options = api_options(
        AnalyzeOptions, tolerance=tolerance, alpha=alpha, mode=mode.value, margin=margin.value, correction=correction.value,
        max_missing=max_missing, rng_seed=rng_seed, resamples=resamples, seed_level=seed_level, intersect=intersect,
        metric_overrides=parse_metric_overrides(metric), score_range=parse_score_range(score_range),
        kl_margin=kl_margin, top1_margin=top1_margin, flip_margin=flip_margin,
    )
    analysis = analyze_results(a, b, options, json_path=json_path, report=report, control=control, junit=junit, github=github)
    print_decision(analysis)
    raise typer.Exit(analysis.decision.exit_code)


@user_errors
def run(
    envs: list[Path] = typer.Argument(..., help="Environment YAML file(s)."),
    benchmarks: Optional[str] = BENCHMARKS,
    seeds: Optional[str] = SEEDS,
    limit: Optional[int] = LIMIT,
    store: Path = STORE,
    data_dir: Optional[Path] = DATA_DIR,
    executor: str = EXECUTOR,
    ray_address: Optional[str] = RAY_ADDRESS,
    wait: bool = WAIT,
) -> None:
    """Run the benchmarks over seeds for each environment; resumable, never redoes finished runs."""
    from rich.console import Console

    from ..api import RunOptions, run_environment_files

    options = api_options(
        RunOptions, benchmarks=parse_benchmarks(benchmarks), seeds=parse_seeds(seeds), limit=limit, store=store,
        data_dir=data_dir, executor=executor, ray_address=ray_address, wait=wait,
    )
    stop_on_sigterm()
    summary = run_environment_files(envs, options)
    Console(stderr=True).print(summary.summary())
    raise typer.Exit(1 if summary.failed else 0)


@user_errors
def compare(
    envs: list[Path] = typer.Argument(
        ..., help="The reference's environment file, then one candidate's, or several candidates' from the safest to the most aggressive.",
        show_default=False, metavar="REF.yaml CAND.yaml...",
    ),
    benchmarks: Optional[str] = BENCHMARKS,
    seeds: Optional[str] = SEEDS,
    limit: Optional[int] = LIMIT,
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
    max_missing: float = MAX_MISSING,
    wait: bool = WAIT,
    sequential: bool = typer.Option(False, help="Add one seed per side per round and stop at the first conclusive verdict (group-sequential, O'Brien-Fleming spending)."),
    max_seeds: int = typer.Option(5, help="With --sequential: the budget of seeds per side; reaching it without a verdict gives inconclusive."),
    block_size: Optional[int] = typer.Option(None, help="With --sequential: run each benchmark's items in blocks of this many, in a pre-registered random order, each block with every seed, deciding after each block (item-sequential) instead of adding seeds."),
    max_items: Optional[int] = typer.Option(None, help="With --block-size: the item budget per benchmark (default: all of its items)."),
    order_seed: Optional[int] = typer.Option(None, help="With --block-size: seeds the random order of the items (default: derived from both environments and the item sets). The pair's order is pre-registered in .statrepro-designs/ beside A's file; another seed is refused without --new-design."),
    new_design: bool = typer.Option(False, "--new-design", help="With --block-size: start a new item design (another --order-seed) for a pair that has one; the verdict records the design change."),
    first_seeds: Optional[int] = typer.Option(None, help="With --block-size: seeds per item while the blocks run; the environment's other seeds follow in rounds over the budgeted items once every block has run (default: every seed in each block)."),
    explain: bool = typer.Option(False, "--explain", help="After the verdict, explain the moved items (as statrepro explain; adds an Explain section to the report)."),
    explain_limit: int = typer.Option(10, help="With --explain: items to explain."),
    kld: bool = typer.Option(False, "--kld", help="After the verdict, the token-level KL divergence of B's next-token distributions from A's, as `statrepro kld` prints it (evidence beside the verdict)."),
    kld_limit: Optional[int] = typer.Option(None, "--kld-limit", help="With --kld: how many texts of A's first benchmark, with their gold answers (default 32)."),
    control: bool = typer.Option(False, "--control", help="Also run A a second time as the A/A control A' (stored as <A name>.control) and show A vs A' beside A vs B: flip rates, their excess and its exact test."),
    kl_margin: Optional[float] = KL_MARGIN,
    top1_margin: Optional[float] = TOP1_MARGIN,
    flip_margin: Optional[float] = FLIP_MARGIN,
) -> None:
    """Run whatever is missing for both environments, then decide whether B still scores like A.

    With several candidates (compare REF CAND1 CAND2 ...) the reference runs once, each candidate gets its own verdict, and the candidates are cleared in the order given, stopping at the first that does not pass: the chance of shipping one truly beyond the margin stays at most alpha. The exit code is the worst candidate's.

    Exit codes: 0 equivalent or within tolerance, 3 different, 4 inconclusive, 2 bad input.
    """
    from ..api import CompareOptions, ExplainOptions, compare_environments

    if len(envs) < 2:
        raise InputError("needs the reference's environment file and at least one candidate's", key="ENVS")

    options = api_options(
        CompareOptions, tolerance=tolerance, alpha=alpha, mode=mode.value, margin=margin.value, correction=correction.value,
        max_missing=max_missing, rng_seed=rng_seed, benchmarks=parse_benchmarks(benchmarks), seeds=parse_seeds(seeds),
        limit=limit, store=store, data_dir=data_dir, executor=executor, ray_address=ray_address, wait=wait,
        sequential=sequential, max_seeds=max_seeds, block_size=block_size, max_items=max_items, order_seed=order_seed,
        first_seeds=first_seeds, new_design=new_design,
        explain=api_options(ExplainOptions, limit=explain_limit) if explain else None,
        control=control, kld=kld, kld_limit=kld_limit, kl_margin=kl_margin, top1_margin=top1_margin, flip_margin=flip_margin,
    )
    stop_on_sigterm()
    if len(envs) > 2:
        from ..api_candidates import compare_candidates

        result = compare_candidates(envs[0], envs[1:], options, json_path=json_path, report=report, junit=junit, github=github)
        print_candidates(result)
        raise typer.Exit(result.exit_code)
    analysis = compare_environments(envs[0], envs[1], options, json_path=json_path, report=report, junit=junit, github=github)
    print_decision(analysis)
    raise typer.Exit(analysis.decision.exit_code)

