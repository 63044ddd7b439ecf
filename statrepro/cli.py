"""The statrepro command line. It only parses and prints; heavy imports happen inside commands."""

from __future__ import annotations

import functools
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Callable, Optional

import typer

from .errors import InputError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Paired, calibrated sign-off that a model still scores the same after a hardware, engine or precision change.",
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(help="Print performance and calibration figures (benchmarks, never tests).", no_args_is_help=True)
app.add_typer(bench_app, name="bench")

EXIT_BAD_INPUT = 2


class Mode(str, Enum):
    equivalence = "equivalence"
    non_inferiority = "non-inferiority"


class MarginKind(str, Enum):
    relative = "relative"
    absolute = "absolute"


class Correction(str, Enum):
    holm = "holm"
    bh = "bh"


def _fail(message: str) -> None:
    """One line on stderr, exit 2: the contract for every bad input."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def user_errors(command: Callable) -> Callable:
    """Turn InputError (and unreadable files) into a one-line message and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except InputError as error:
            _fail(str(error))
        except (OSError, UnicodeDecodeError) as error:
            filename = getattr(error, "filename", None)
            _fail(f"{filename}: {error.strerror}" if filename and getattr(error, "strerror", None) else str(error))

    return wrapper


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not (low < value < high):
        raise InputError(f"{name} must be in ({low}, {high}), got {value}", key=f"--{name}")


def _parse_metric_overrides(values: list[str]) -> dict[str, str]:
    overrides = {}
    for value in values:
        if "=" not in value:
            raise InputError(f"--metric takes BENCHMARK=METRIC, got {value!r}", key="--metric")
        benchmark, metric = value.split("=", 1)
        overrides[benchmark.strip()] = metric.strip()
    return overrides


def _write_json(path: Path, payload: str) -> None:
    from .store import atomic_write_text

    atomic_write_text(path, payload)


def print_decision(analysis) -> None:
    """A rich table of the per-benchmark verdicts and the overall line."""
    from rich.console import Console
    from rich.table import Table

    decision = analysis.decision
    colours = {"equivalent": "green", "within_tolerance": "green", "different": "red", "inconclusive": "yellow"}
    table = Table(title=f"statrepro verdict (alpha={decision.alpha}, tolerance={decision.tolerance}, {decision.mode})")
    for column in ("benchmark", "items", "runs A/B", "score A", "score B", "rel diff [CI]", "p adj", "TOST p", "flips", "verdict"):
        table.add_column(column, justify="left" if column in ("benchmark", "verdict") else "right")
    for item in decision.benchmarks:
        c = item.comparison
        lo, hi = c.bootstrap.rel_diff_ci
        table.add_row(
            item.name,
            f"{c.n_items}" + (f" (-{c.n_missing})" if c.n_missing else ""),
            f"{c.n_runs_a}/{c.n_runs_b}",
            f"{c.score_a:.4f}",
            f"{c.score_b:.4f}",
            f"{c.rel_diff:+.2%} [{lo:+.2%}, {hi:+.2%}]",
            f"{item.p_adjusted:.3g}",
            f"{c.tost.p_value:.3g}",
            f"{c.flips.rate:.1%}",
            f"[{colours[item.verdict]}]{item.verdict}[/]",
        )
    console = Console()
    console.print(table)
    for item in decision.benchmarks:
        console.print(f"  [bold]{item.name}[/]: {item.reason}")
        power = item.comparison.power
        if item.verdict == "inconclusive" and (power.items_needed or power.seeds_needed):
            needs = []
            if power.items_needed:
                needs.append(f"~{power.items_needed} items")
            if power.seeds_needed:
                needs.append(f"~{power.seeds_needed} seeds per side")
            console.print(f"    to conclude, likely need {' or '.join(needs)}")
    for difference in analysis.pairing.config_differences:
        console.print(f"  [yellow]config difference[/] {difference.benchmark}: {difference.factor}: {difference.detail}")
    for name, count in analysis.pairing.dropped.items():
        console.print(f"  [yellow]dropped[/] {count} unpaired items of {name}")
    console.print(f"[bold]overall: [{colours[decision.verdict]}]{decision.verdict}[/][/]")


@app.command()
@user_errors
def analyze(
    a: Path = typer.Argument(..., help="Results of environment A: lm-eval output dir(s) or an evalscope work dir."),
    b: Path = typer.Argument(..., help="Results of environment B, likewise."),
    tolerance: float = typer.Option(0.05, help="Relative tolerance (margin = tolerance x score_A); absolute with --margin absolute."),
    alpha: float = typer.Option(0.05, help="Significance level, in (0, 0.5)."),
    mode: Mode = typer.Option(Mode.equivalence, help="equivalence (two-sided) or non-inferiority (B may be better)."),
    margin: MarginKind = typer.Option(MarginKind.relative, help="relative: tolerance x score_A; absolute: tolerance in score points."),
    correction: Correction = typer.Option(Correction.holm, help="Multiple-benchmark adjustment for 'any benchmark differs'."),
    intersect: bool = typer.Option(False, help="Analyse only the items and benchmarks both sides have, reporting what was dropped."),
    metric: list[str] = typer.Option([], help="Primary metric override, BENCHMARK=METRIC (e.g. gsm8k=exact_match,strict-match)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the versioned JSON verdict here."),
    report: Optional[Path] = typer.Option(None, help="Write report.html, report.md and verdict.json into this directory."),
    rng_seed: int = typer.Option(0, help="Seed of the resampling RNG (bootstrap and permutations)."),
    resamples: int = typer.Option(10_000, help="Bootstrap resamples and Monte Carlo permutations."),
    seed_level: bool = typer.Option(False, help="Two-level bootstrap: also resample seeds within items."),
    max_missing: float = typer.Option(0.05, help="Largest share of items without results before the verdict is inconclusive."),
) -> None:
    """Compare two existing result sets item by item and print a calibrated verdict.

    Exit codes: 0 equivalent or within tolerance, 3 different, 4 inconclusive, 2 bad input.
    """
    _check_range("tolerance", tolerance, 0.0, 1.0)
    _check_range("alpha", alpha, 0.0, 0.5)
    _check_range("max-missing", max_missing, -1e-12, 1.0)
    if resamples < 100:
        raise InputError(f"--resamples must be at least 100, got {resamples}", key="--resamples")
    from .analysis import AnalysisOptions, analyze as run_analysis
    from .harness import load_side

    overrides = _parse_metric_overrides(metric)
    records_a = load_side(a, metric_overrides=overrides)
    records_b = load_side(b, metric_overrides=overrides)
    options = AnalysisOptions(
        tolerance=tolerance,
        alpha=alpha,
        mode=mode.value,
        margin_kind=margin.value,
        correction=correction.value,
        intersect=intersect,
        n_resamples=resamples,
        n_permutations=resamples,
        seed_level_bootstrap=seed_level,
        max_missing_share=max_missing,
        rng_seed=rng_seed,
    )
    analysis = run_analysis(records_a, records_b, options, inputs={"a": str(a), "b": str(b)})
    print_decision(analysis)
    verdict = analysis.to_json()
    if json_path is not None:
        _write_json(json_path, verdict.model_dump_json(indent=2))
    if report is not None:
        from .report import write_report

        write_report(report, analysis, records_a=records_a, records_b=records_b, argv=sys.argv)
    raise typer.Exit(analysis.decision.exit_code)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the verdict file (schema_version 1)."""
    from .verdict_schema import VerdictJson

    typer.echo(json.dumps(VerdictJson.model_json_schema(), indent=2))


@bench_app.command("stats")
def bench_stats(
    items: int = typer.Option(10_000, help="Items per benchmark."),
    seeds: int = typer.Option(10, help="Seeds per environment."),
    benchmarks: int = typer.Option(4, help="Benchmarks."),
    resamples: int = typer.Option(10_000, help="Bootstrap resamples and permutations."),
    skip_scipy: bool = typer.Option(False, help="Skip the (slow) scipy reference timing."),
) -> None:
    """Time the statistics core against scipy.stats.bootstrap + permutation_test on the same workload."""
    from .bench import run_stats_bench

    run_stats_bench(items=items, seeds=seeds, benchmarks=benchmarks, resamples=resamples, skip_scipy=skip_scipy)


@bench_app.command("calibration")
def bench_calibration(
    sims: int = typer.Option(2000, help="Simulated comparisons per scenario."),
    items: int = typer.Option(500, help="Items per simulated benchmark."),
    seeds: int = typer.Option(3, help="Seeds per environment."),
    tolerance: float = typer.Option(0.05, help="Relative tolerance."),
    alpha: float = typer.Option(0.05, help="Significance level."),
) -> None:
    """Simulate comparisons with known truth and print false-alarm rates, CI coverage and power."""
    from .bench import run_calibration_bench

    run_calibration_bench(sims=sims, items=items, seeds=seeds, tolerance=tolerance, alpha=alpha)
