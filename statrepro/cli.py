"""The statrepro command line. It only parses and prints; heavy imports happen inside commands."""

from __future__ import annotations

import functools
import json
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


# Options shared by several commands: one definition each, so their meaning cannot drift apart.
TOLERANCE = typer.Option(0.05, help="Relative tolerance (margin = tolerance x score_A); absolute with --margin absolute.")
ALPHA = typer.Option(0.05, help="Significance level, in (0, 0.5).")
MODE = typer.Option(Mode.equivalence, help="equivalence (two-sided) or non-inferiority (B may be better).")
MARGIN = typer.Option(MarginKind.relative, help="relative: tolerance x score_A; absolute: tolerance in score points.")
CORRECTION = typer.Option(Correction.holm, help="Multiple-benchmark adjustment for 'any benchmark differs'.")
JSON_PATH = typer.Option(None, "--json", help="Write the versioned JSON verdict here.")
REPORT = typer.Option(None, help="Write report.html, report.md and verdict.json into this directory.")
RNG_SEED = typer.Option(0, help="Seed of the resampling RNG (bootstrap and permutations).")
SCORE_RANGE = typer.Option(
    None, help="The metric's range LOW,HIGH when statrepro does not know it (accuracy-like metrics are 0,1)."
)
MAX_MISSING = typer.Option(0.05, help="Largest share of items without results before the verdict is inconclusive.")
BENCHMARKS = typer.Option(None, help="Comma-separated benchmarks to run (default: the env's).")
SEEDS = typer.Option(None, help="Seed count, or a comma-separated list of seeds.")
LIMIT = typer.Option(None, help="Items per task (smoke runs; sign-off needs full sets).")
STORE = typer.Option(Path("store"), "--store", "--out", help="Result store directory (resumable; finished runs are never redone).")
DATA_DIR = typer.Option(None, "--data-dir", help="Local benchmark data (default: the env's data_dir, else $STATREPRO_DATA_DIR).")
EXECUTOR = typer.Option("local", help="local (this machine) or ray (a Ray cluster).")
RAY_ADDRESS = typer.Option(None, help="Ray cluster address (default: start a local one).")
WAIT = typer.Option(False, help="Wait for another run holding the store instead of refusing.")
PROMPT_BENCHMARK = typer.Option(None, "--benchmark", help="Take the prompts from this local benchmark (by name, e.g. gsm8k).")
PROMPT_LIMIT = typer.Option(8, "--limit", help="With --benchmark: how many items (spread over its subsets).")
MODEL = typer.Option(None, help="HF model directory (default: the embedded SmolLM2-135M-Instruct).")
DEVICE = typer.Option("auto", help="Where the model runs: auto (cuda when present, else cpu), cpu, cuda, cuda:N, npu or mps.")
SUBMODULES = typer.Option(False, help="Also hook each layer's attention and MLP outputs.")
COSINE_THRESHOLD = typer.Option(0.99, help="Report the first layer whose worst-token cosine falls below this.")
LAYERS_PLOT = typer.Option(None, help="Write the divergence curve as a PNG here.")


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
        except KeyboardInterrupt as error:  # Ctrl-C: one line on what was kept (the run path says), exit 130
            typer.echo(str(error) or "interrupted", err=True)
            raise typer.Exit(130) from None
        except (OSError, UnicodeDecodeError) as error:
            filename = getattr(error, "filename", None)
            _fail(f"{filename}: {error.strerror}" if filename and getattr(error, "strerror", None) else str(error))

    return wrapper


def _parse_score_range(text: Optional[str]) -> Optional[tuple[float, float]]:
    if text is None:
        return None
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise InputError(f"takes LOW,HIGH (e.g. 0,100), got {text!r}", key="--score-range") from None
    return (low, high)


def _options(options_class, **values):
    """The API's options object from command-line values; a bad value is the usual one-line error naming its flag."""
    from pydantic import ValidationError

    from .errors import validation_error

    try:
        return options_class(**values)
    except ValidationError as error:
        raise validation_error(error, options_class, as_option=True) from None


def _parse_metric_overrides(values: list[str]) -> dict[str, str]:
    overrides = {}
    for value in values:
        if "=" not in value:
            raise InputError(f"takes BENCHMARK=METRIC, got {value!r}", key="--metric")
        benchmark, metric = value.split("=", 1)
        overrides[benchmark.strip()] = metric.strip()
    return overrides


def _needs(power) -> str:
    """'~N items (range A-B) or ~K seeds per side (range ...)', open-ended where no finite amount suffices."""

    def one(central, spread, unit):
        if not central:
            return None
        low, high = spread or (central, central)
        span = f"{low or '?'}-{high}" if high else f"{low or central} or more"
        return f"~{central} {unit} (plausible range {span})"

    needs = [one(power.items_needed, power.items_needed_range, "items"), one(power.seeds_needed, power.seeds_needed_range, "seeds per side")]
    return " or ".join(need for need in needs if need)


def print_decision(analysis) -> None:
    """A rich table of the per-benchmark verdicts and the overall line."""
    from rich.console import Console
    from rich.table import Table

    from .stats import VERDICTS

    decision = analysis.decision
    colours = {"equivalent": "green", "within_tolerance": "green", "different": "red", "inconclusive": "yellow"}
    assert colours.keys() == set(VERDICTS), "every verdict label needs a colour"
    table = Table(
        title=f"statrepro verdict (alpha={decision.alpha}, tolerance={decision.tolerance}, {decision.mode})",
        box=None,
        padding=(0, 0, 0, 2),  # no borders, two spaces between columns: the table fits 80 columns
        pad_edge=False,
        header_style="bold underline",
    )
    for column in ("benchmark", "n x runs", "A", "B", "rel diff", "p adj", "TOST p", "flips", "verdict"):
        table.add_column(column, justify="left" if column in ("benchmark", "verdict") else "right", no_wrap=True)
    for item in decision.benchmarks:
        c = item.comparison
        table.add_row(
            item.name,
            f"{c.n_items}x{c.n_runs_a}/{c.n_runs_b}" + (f" (-{c.n_missing})" if c.n_missing else ""),
            f"{c.score_a:.3f}",
            f"{c.score_b:.3f}",
            f"{c.rel_diff:+.1%}",
            f"{item.p_adjusted:.2g}",
            f"{c.tost.p_value:.2g}",
            f"{c.flips.rate:.0%}",
            f"[{colours[item.verdict]}]{item.verdict}[/]",
        )
    console = Console()
    console.print(table)
    for item in decision.benchmarks:
        c = item.comparison
        lo, hi = c.bootstrap.diff_ci
        tost_lo, tost_hi = c.tost.ci
        console.print(
            f"  [bold]{item.name}[/]: diff {c.diff:+.4f}, {c.bootstrap.confidence:.0%} CI [{lo:+.4f}, {hi:+.4f}], "
            f"{c.tost.ci_level:.0%} CI (the TOST's) [{tost_lo:+.4f}, {tost_hi:+.4f}], margin ±{c.tost.margin:.4f}"
        )
        if c.flips.expected_rate is not None:
            console.print(f"    flips {c.flips.rate:.1%} ({c.flips.down} down, {c.flips.up} up); seed noise alone: ~{c.flips.expected_rate:.1%}")
        console.print(f"    {item.reason}")
        if analysis.control is not None:
            print_control(console, analysis.control[item.name])
        if item.verdict == "inconclusive" and (c.power.items_needed or c.power.seeds_needed):
            console.print(f"    to conclude, likely need {_needs(c.power)}")
    for difference in analysis.pairing.config_differences:
        console.print(f"  [yellow]config difference[/] {difference.benchmark}: {difference.factor}: {difference.detail}")
    for name, count in analysis.pairing.dropped.items():
        console.print(f"  [yellow]dropped[/] {count} unpaired items of {name}")
    console.print(f"[bold]overall: [{colours[decision.verdict]}]{decision.verdict}[/][/]")
    if analysis.explain is not None:
        print_explanation(analysis.explain)


def _rate(rate) -> str:
    """'4.0% [2.1%, 7.5%]', or 'n/a' without items."""
    return "n/a" if not rate.n_items else f"{rate.rate:.1%} [{rate.ci[0]:.1%}, {rate.ci[1]:.1%}]"


def print_control(console, control) -> None:
    """The A/A control's line of one benchmark: flips of A vs A' and A vs B, the excess and its test, any warning."""
    excess = control.excess_flips
    console.print(
        f"    control: flips A/A' {_rate(control.control.flips)}, A/B {_rate(control.candidate.flips)}, excess "
        f"{excess.excess:+.1%} [{excess.ci[0]:+.1%}, {excess.ci[1]:+.1%}], p={control.excess_test.p_value:.3g} "
        f"(one-sided, that A/B flips more); harmful A/A' {_rate(control.control.harmful)} vs A/B {_rate(control.candidate.harmful)}",
        markup=False, highlight=False,
    )
    if control.warning:
        from rich.markup import escape

        console.print(f"    [yellow]baseline {control.baseline}:[/] {escape(control.warning)}", highlight=False)


def print_explanation(result) -> None:
    """The explain table: one row per moved item with its flip class and the numbers behind it."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if result.items:
        table = Table(title=f"explain: A {result.env_a}  B {result.env_b}", box=None, padding=(0, 0, 0, 2), pad_edge=False,
                      header_style="bold underline")
        for column in ("item", "moved", "A -> B", "class", "detail"):
            table.add_column(column, overflow="fold", no_wrap=column != "detail")
        for item in result.items:
            table.add_row(item.item_key, item.reason, f"{item.mean_a:.2f} -> {item.mean_b:.2f}", item.flip_class, item.detail)
        console.print(table, markup=False)
    console.print(f"explain: {result.summary()}", markup=False, highlight=False, soft_wrap=True)


@app.command()
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
    rng_seed: int = RNG_SEED,
    resamples: int = typer.Option(10_000, help="Bootstrap resamples and Monte Carlo permutations."),
    seed_level: bool = typer.Option(False, help="Two-level bootstrap: also resample seeds within items."),
    max_missing: float = MAX_MISSING,
    score_range: Optional[str] = SCORE_RANGE,
    control: Optional[Path] = typer.Option(None, "--control", help="A third result set from A's environment (the A/A control A'), shown beside A vs B: flip rates, their excess and its exact test."),
) -> None:
    """Compare two existing result sets item by item and print a calibrated verdict.

    Exit codes: 0 equivalent or within tolerance, 3 different, 4 inconclusive, 2 bad input.
    """
    from .api import AnalyzeOptions, analyze as analyze_results

    options = _options(
        AnalyzeOptions, tolerance=tolerance, alpha=alpha, mode=mode.value, margin=margin.value, correction=correction.value,
        max_missing=max_missing, rng_seed=rng_seed, resamples=resamples, seed_level=seed_level, intersect=intersect,
        metric_overrides=_parse_metric_overrides(metric), score_range=_parse_score_range(score_range),
    )
    analysis = analyze_results(a, b, options, json_path=json_path, report=report, control=control)
    print_decision(analysis)
    raise typer.Exit(analysis.decision.exit_code)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the verdict file (its schema_version is in the output)."""
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
@user_errors
def bench_calibration(
    sims: int = typer.Option(1000, help="Simulated comparisons per scenario (4 scenarios per cell)."),
    items: str = typer.Option("200,1000", help="Comma-separated item counts."),
    accuracies: str = typer.Option("0.3,0.6,0.9", help="Comma-separated base accuracies, in (0, 1)."),
    engines: str = typer.Option(
        "greedy,1,3,5", help="Comma-separated engines: 'greedy' (deterministic), or a stochastic seed count per side."
    ),
    tolerance: float = TOLERANCE,
    alpha: float = ALPHA,
    margin: MarginKind = MARGIN,
    resamples: int = typer.Option(1000, help="Bootstrap resamples and permutations per comparison."),
    workers: int = typer.Option(2, help="Processes (the figures do not depend on it)."),
    seed: int = typer.Option(0, help="Seed of the simulation."),
    concentration: float = typer.Option(3.0, help="Stochastic engines: Beta concentration of item difficulty."),
    flip_rate: float = typer.Option(0.03, help="Greedy engines: share of items that flip in an A/A (half each way)."),
    edge_sims: int = typer.Option(10_000, help="Simulations per greedy edge cell (relative-margin size with churn, one-way flip coverage); 0 skips them."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the figures, bounds and failures here."),
) -> None:
    """Calibration grid (accuracy x items x engine): A/A false 'different', size at the margin, false pass
    beyond it, 'different' at half of it, and CI coverage, each marked against its bound."""
    from .api import VerdictOptions

    _options(VerdictOptions, tolerance=tolerance, alpha=alpha)  # the usual one-line errors for bad values

    def numbers(name: str, text: str, kind):
        try:
            values = tuple(kind(part.strip()) for part in text.split(",") if part.strip())
        except ValueError:
            raise InputError(f"takes a comma-separated list of numbers, got {text!r}", key=f"--{name}") from None
        if not values:
            raise InputError("is empty", key=f"--{name}")
        return values

    item_counts = numbers("items", items, int)
    accuracy_values = numbers("accuracies", accuracies, float)
    engine_seeds = numbers("engines", ",".join("0" if e.strip() == "greedy" else e for e in engines.split(",")), int)
    if min(item_counts) < 2:
        raise InputError("item counts must be at least 2", key="--items")
    if not all(0 < acc < 1 for acc in accuracy_values):
        raise InputError("accuracies must be in (0, 1)", key="--accuracies")
    if min(engine_seeds) < 0:
        raise InputError("engines are 'greedy' or a seed count of at least 1", key="--engines")
    if margin == MarginKind.absolute and 1.2 * tolerance > min(accuracy_values):
        raise InputError(f"1.2 x {tolerance} exceeds the lowest accuracy", key="--tolerance")
    if edge_sims < 0:
        raise InputError("must be 0 or more", key="--edge-sims")
    if sims < 1 or resamples < 10 or workers < 1:
        raise InputError("--sims and --workers must be at least 1 and --resamples at least 10")
    if not concentration > 0:
        raise InputError(f"must be positive, got {concentration}", key="--concentration")
    if not 0 <= flip_rate <= 2 * min(min(accuracy_values), 1 - max(accuracy_values)):
        raise InputError(f"{flip_rate} is not reachable at every accuracy of the grid", key="--flip-rate")
    from .bench import run_calibration_bench

    result = run_calibration_bench(
        sims=sims,
        items=item_counts,
        accuracies=accuracy_values,
        engines=engine_seeds,
        tolerance=tolerance,
        alpha=alpha,
        margin_kind=margin.value,
        n_resamples=resamples,
        workers=workers,
        seed=seed,
        concentration=concentration,
        flip_rate=flip_rate,
        edge_sims=edge_sims,
    )
    if json_path is not None:
        from .atomic import atomic_write_text

        atomic_write_text(json_path, json.dumps(result, indent=2) + "\n")


@bench_app.command("run")
@user_errors
def bench_run(
    data_dir: Optional[Path] = DATA_DIR,
    items: int = typer.Option(200, help="gsm8k items per job."),
    concurrency: str = typer.Option("1,4,16,32", help="Comma-separated concurrencies to measure (the first is the speed-up baseline)."),
    latency: float = typer.Option(0.2, help="Seconds the fake endpoint takes per request."),
    repeats: int = typer.Option(1, help="Measurements per figure; the fastest counts."),
    keep: Optional[Path] = typer.Option(None, help="Keep the stores and harness output here (default: a temporary dir)."),
) -> None:
    """Throughput against a fake 127.0.0.1 endpoint with a fixed latency: wall time and speed-up per concurrency,
    and statrepro's time against the raw lm_eval command at the same concurrency."""
    try:
        levels = [int(value) for value in concurrency.split(",")]
    except ValueError:
        raise InputError(f"takes comma-separated integers, got {concurrency!r}", key="--concurrency") from None
    if any(level < 1 for level in levels) or items < 1 or repeats < 1 or latency < 0:
        raise InputError("--concurrency, --items and --repeats must be at least 1 and --latency not negative")
    from .bench_throughput import run_throughput_bench

    run_throughput_bench(data_dir=data_dir, items=items, concurrencies=levels, latency=latency, repeats=repeats, keep=keep)


def _parse_seeds(seeds: Optional[str]) -> int | list[int] | None:
    if seeds is None:
        return None
    try:
        return [int(s) for s in seeds.split(",")] if "," in seeds else int(seeds)
    except ValueError:
        raise InputError(f"takes a count or a comma-separated list, got {seeds!r}", key="--seeds") from None


def _parse_benchmarks(benchmarks: Optional[str]) -> list[str] | None:
    return [name.strip() for name in benchmarks.split(",") if name.strip()] if benchmarks else None


def _stop_on_sigterm() -> None:
    """Turn SIGTERM (a scheduler's stop, `kill`) into a normal exit, so managed servers are stopped and the
    store lock released by the usual cleanup paths."""
    import signal

    def _exit(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


@app.command()
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

    from .api import RunOptions, run_environment_files

    options = _options(
        RunOptions, benchmarks=_parse_benchmarks(benchmarks), seeds=_parse_seeds(seeds), limit=limit, store=store,
        data_dir=data_dir, executor=executor, ray_address=ray_address, wait=wait,
    )
    _stop_on_sigterm()
    summary = run_environment_files(envs, options)
    Console(stderr=True).print(summary.summary())
    raise typer.Exit(1 if summary.failed else 0)


@app.command()
@user_errors
def compare(
    env_a: Path = typer.Argument(..., help="Environment A (the reference)."),
    env_b: Path = typer.Argument(..., help="Environment B (the candidate)."),
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
    order_seed: int = typer.Option(0, help="With --block-size: seeds the random order of the items (part of the pre-registered design)."),
    first_seeds: Optional[int] = typer.Option(None, help="With --block-size: seeds per item while the blocks run; the environment's other seeds follow in rounds over the budgeted items once every block has run (default: every seed in each block)."),
    explain: bool = typer.Option(False, "--explain", help="After the verdict, explain the moved items (as statrepro explain; adds an Explain section to the report)."),
    explain_limit: int = typer.Option(10, help="With --explain: items to explain."),
    control: bool = typer.Option(False, "--control", help="Also run A a second time as the A/A control A' (stored as <A name>.control) and show A vs A' beside A vs B: flip rates, their excess and its exact test."),
) -> None:
    """Run whatever is missing for both environments, then decide whether B still scores like A.

    Exit codes: 0 equivalent or within tolerance, 3 different, 4 inconclusive, 2 bad input.
    """
    from .api import CompareOptions, ExplainOptions, compare_environments

    options = _options(
        CompareOptions, tolerance=tolerance, alpha=alpha, mode=mode.value, margin=margin.value, correction=correction.value,
        max_missing=max_missing, rng_seed=rng_seed, benchmarks=_parse_benchmarks(benchmarks), seeds=_parse_seeds(seeds),
        limit=limit, store=store, data_dir=data_dir, executor=executor, ray_address=ray_address, wait=wait,
        sequential=sequential, max_seeds=max_seeds, block_size=block_size, max_items=max_items, order_seed=order_seed,
        first_seeds=first_seeds,
        explain=_options(ExplainOptions, limit=explain_limit) if explain else None,
        control=control,
    )
    _stop_on_sigterm()
    analysis = compare_environments(env_a, env_b, options, json_path=json_path, report=report)
    print_decision(analysis)
    raise typer.Exit(analysis.decision.exit_code)


# ---------------------------------------------------------------------------------------------
# Diagnostics (statrepro/diagnose): why two environments differ.


@app.command()
@user_errors
def explain(
    env_a: Path = typer.Argument(..., help="Environment A of the finished comparison."),
    env_b: Path = typer.Argument(..., help="Environment B of the finished comparison."),
    store: Path = STORE,
    benchmarks: Optional[str] = BENCHMARKS,
    seeds: Optional[str] = SEEDS,
    run_limit: Optional[int] = typer.Option(None, help="The --limit the comparison ran with (it selects the same runs in the store)."),
    limit: int = typer.Option(10, help="Items to explain: flipped first, then the largest score changes, then changed answers."),
    epsilon: float = typer.Option(0.1, help="A divergence is a near tie when either side's top-2 logprob gap is below this (nats)."),
    shift_threshold: float = typer.Option(1.0, help="Identical tokens whose logprobs moved more than this (nats) are a distribution shift."),
    top_k: int = typer.Option(5, help="Top logprobs per replayed step (>= 2)."),
    max_tokens: int = typer.Option(128, help="New tokens per greedy replay (capped by each environment's max_tokens)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the explanation as JSON here."),
) -> None:
    """Why items moved between A and B: exact prompts, a token check, greedy replays with logprobs, flip classes.

    Starts each side's engine (managed servers are stopped again). Exit code 0 (also when nothing moved), 2 on bad input.
    """
    from .api import ExplainOptions, RunOptions, explain_environments

    run_options = _options(RunOptions, store=store, benchmarks=_parse_benchmarks(benchmarks), seeds=_parse_seeds(seeds), limit=run_limit)
    options = _options(ExplainOptions, limit=limit, epsilon=epsilon, shift_threshold=shift_threshold, top_k=top_k, max_tokens=max_tokens)
    _stop_on_sigterm()
    print_explanation(explain_environments(env_a, env_b, run_options, options, json_path=json_path))


# `layers` compares two settings in one process; `layers dump` / `layers diff` do it across machines.
layers_app = typer.Typer()
app.add_typer(layers_app, name="layers")


def _print_layers(result) -> None:
    """The per-point table of a layers comparison and its summary line."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"A: {result.setting_a}   B: {result.setting_b}   ({result.n_prompts} prompts, {result.n_tokens} tokens)")
    for column in ("point", "rel L2", "cos mean", "cos min", "max |diff|"):
        table.add_column(column, justify="left" if column == "point" else "right")
    for point in result.points:
        mark = " [red]<- jump[/]" if point.layer == result.jump_layer and point.name == f"layer.{point.layer}" else ""
        table.add_row(point.name + mark, f"{point.rel_l2:.3g}", f"{point.cosine_mean:.8f}", f"{point.cosine_min:.8f}", f"{point.max_abs:.3g}")
    console = Console()
    console.print(table)
    console.print(result.summary())


@layers_app.callback(invoke_without_command=True)
@user_errors
def layers(
    context: typer.Context,
    a: str = typer.Option("dtype=float32", "--a", help="Setting A: comma-separated dtype=float32|bfloat16|float16, attn=eager|sdpa, batch=alone|padded, quant=none|dynamic-int8."),
    b: str = typer.Option("dtype=bfloat16", "--b", help="Setting B, same syntax."),
    model: Optional[str] = MODEL,
    prompts: Optional[Path] = typer.Option(None, help="Text file, one prompt per line (default: built-in short prompts)."),
    submodules: bool = SUBMODULES,
    device: str = DEVICE,
    cosine_threshold: float = COSINE_THRESHOLD,
    plot: Optional[Path] = LAYERS_PLOT,
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the per-layer numbers as JSON here."),
) -> None:
    """Hidden-state divergence layer by layer between two numeric settings of one model; names the jump layer.

    Without a command both settings run here, on one device; across machines, run `layers dump` on each, then `layers diff`.
    """
    if context.invoked_subcommand is not None:
        return
    from .diagnose.common import progress_bar, read_prompts, resolve_model, write_json
    from .diagnose.layers import Setting, compare_layers, plot_layers

    setting_a, setting_b = Setting.parse(a, option="--a"), Setting.parse(b, option="--b")
    prompt_list = read_prompts(prompts)
    with progress_bar() as progress:
        result = compare_layers(resolve_model(model), setting_a, setting_b, prompt_list, submodules=submodules,
                                cosine_threshold=cosine_threshold, device=device, progress=progress)
    _print_layers(result)
    if plot is not None:
        plot_layers(result, plot)
    if json_path is not None:
        write_json(json_path, result.to_dict())


@layers_app.command("dump")
@user_errors
def layers_dump(
    env: Optional[Path] = typer.Argument(None, help="Environment YAML (engine kind hf): its model.path, model.dtype, model.quantization and engine.device, unless an option says otherwise."),
    out: Path = typer.Option(..., "--out", help="The dump file to write (.safetensors)."),
    model: Optional[str] = MODEL,
    dtype: Optional[str] = typer.Option(None, help="float32 (default), bfloat16 or float16."),
    attn: Optional[str] = typer.Option(None, help="Attention implementation: eager (default) or sdpa."),
    quant: Optional[str] = typer.Option(None, help="none (default) or dynamic-int8 (CPU only)."),
    batch: Optional[str] = typer.Option(None, help="alone (default: one prompt per forward pass) or padded (all prompts in one left-padded batch)."),
    device: Optional[str] = typer.Option(None, help="auto (cuda when present, else cpu), cpu, cuda, cuda:N, npu or mps (default: the env's engine.device, else auto)."),
    prompts: Optional[Path] = typer.Option(None, help="Text file, one prompt per line (default: built-in short prompts)."),
    benchmark: Optional[str] = PROMPT_BENCHMARK,
    limit: int = PROMPT_LIMIT,
    data_dir: Optional[Path] = DATA_DIR,
    explain: Optional[Path] = typer.Option(None, "--explain", help="Prompts of the top --limit items of an `explain --json` file, as side A's engine ran them."),
    submodules: bool = SUBMODULES,
) -> None:
    """Write this machine's hidden states (every hooked point, every prompt) and their provenance to a file for `layers diff`."""
    from .diagnose.common import choose_prompts, progress_bar
    from .diagnose.dumps import write_dump
    from .diagnose.layers import dump_model, dump_settings

    model_path, setting, resolved = dump_settings(env, model=model, dtype=dtype, attention=attn, quantization=quant, batch=batch, device=device)
    prompt_list = choose_prompts(prompts, benchmark, data_dir=data_dir, limit=limit, explain=explain)
    with progress_bar() as progress:
        dump = dump_model(model_path, setting, prompt_list, device=resolved, submodules=submodules, progress=progress)
    write_dump(dump, out)
    typer.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {dump.info.summary()}")


@layers_app.command("diff")
@user_errors
def layers_diff(
    dump_a: Path = typer.Argument(..., help="Dump of side A (the reference), from `layers dump`."),
    dump_b: Path = typer.Argument(..., help="Dump of side B, on the same prompts and weights."),
    allow_different_weights: bool = typer.Option(False, "--allow-different-weights", help="Compare dumps whose weight files differ (a quantized or converted copy)."),
    cosine_threshold: float = COSINE_THRESHOLD,
    plot: Optional[Path] = LAYERS_PLOT,
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the per-layer numbers as JSON here (the shape of `layers --json`)."),
) -> None:
    """Per-point divergence between two dumps, made on one machine or two; names the jump layer."""
    from .diagnose.common import write_json
    from .diagnose.dumps import read_dump
    from .diagnose.layers import diff_dumps, plot_layers

    side_a, side_b = read_dump(dump_a), read_dump(dump_b)
    result = diff_dumps(side_a, side_b, cosine_threshold=cosine_threshold, allow_different_weights=allow_different_weights)
    for side, dump in (("A", side_a), ("B", side_b)):
        typer.echo(f"{side}: {dump.summary()}")
    _print_layers(result)
    if plot is not None:
        plot_layers(result, plot)
    if json_path is not None:
        write_json(json_path, result.to_dict())


@app.command()
@user_errors
def probe(
    model: Optional[str] = MODEL,
    prompts: Optional[Path] = typer.Option(None, help="Text file, one sequence per line (default: built-in short prompts)."),
    dtype: list[str] = typer.Option(["float32", "bfloat16"], help="dtypes to probe (repeatable)."),
    attn: str = typer.Option("eager", help="Attention implementation: eager or sdpa."),
    device: str = DEVICE,
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the rows as JSON here."),
) -> None:
    """Batch-size, padding-side and packing invariance: max |logit diff| and argmax flips vs running each sequence alone."""
    from rich.console import Console
    from rich.table import Table

    from .diagnose.common import progress_bar, read_prompts, resolve_model, write_json
    from .diagnose.probe import probe as run_probe

    prompt_list = read_prompts(prompts)
    with progress_bar() as progress:
        result = run_probe(resolve_model(model), prompt_list, dtypes=tuple(dtype), attention=attn, device=device, progress=progress)
    table = Table(title=f"probe: {result.n_sequences} sequences, attention {result.attention}, device {result.device}, reference = each sequence alone")
    for column in ("dtype", "configuration", "max |logit diff|", "argmax flips", "positions"):
        table.add_column(column, justify="left" if column in ("dtype", "configuration") else "right")
    for row in result.rows:
        table.add_row(row.dtype, row.configuration, f"{row.max_abs_logit_diff:.3g}", str(row.argmax_flips), str(row.positions))
    console = Console()
    console.print(table)
    console.print(result.summary())
    if json_path is not None:
        write_json(json_path, result.to_dict())


@app.command()
@user_errors
def logprobs(
    a: str = typer.Argument(..., help="Side A: an OpenAI-compatible base URL (http://127.0.0.1:PORT/v1) or an env YAML (engine kind openai or hf)."),
    b: str = typer.Argument(..., help="Side B, likewise."),
    prompts: Optional[Path] = typer.Option(None, help="Text file, one prompt per line (default: built-in short prompts)."),
    benchmark: Optional[str] = PROMPT_BENCHMARK,
    limit: int = PROMPT_LIMIT,
    data_dir: Optional[Path] = DATA_DIR,
    chat: bool = typer.Option(False, help="Use /chat/completions (and the chat template in-process) instead of raw /completions."),
    max_tokens: int = typer.Option(32, help="New tokens per prompt."),
    top_k: int = typer.Option(5, help="Top logprobs requested per step (>= 2)."),
    epsilon: float = typer.Option(0.1, help="A divergence is a near tie when a side's top-2 logprob gap is below this."),
    timeout: float = typer.Option(60.0, help="Seconds to wait for each server answer."),
    model: Optional[str] = typer.Option(None, help="Model name to request from URL sides (default: the server's first model)."),
    param_a: list[str] = typer.Option([], help="Extra request field for side A, KEY=JSON_VALUE (e.g. repeat_penalty=1.0)."),
    param_b: list[str] = typer.Option([], help="Extra request field for side B, KEY=JSON_VALUE."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the comparison as JSON here."),
) -> None:
    """Token-level comparison of two engines at temperature 0: exact match, first divergence, logprob deltas, near ties.

    Exit code 0 when both sides decode identically, 1 when their behaviour differs, 2 on bad input.
    """
    from rich.console import Console
    from rich.table import Table

    from .diagnose.common import choose_prompts, progress_bar, write_json
    from .diagnose.logprobs import compare_sides, side_from_spec

    def parse_params(values: list[str], option: str) -> dict:
        params = {}
        for value in values:
            key, sep, raw = value.partition("=")
            if not sep or not key:
                raise InputError(f"expected KEY=VALUE, got {value!r}", key=option)
            try:
                params[key] = json.loads(raw)
            except ValueError:
                params[key] = raw
        return params

    prompt_list = choose_prompts(prompts, benchmark, data_dir=data_dir, limit=limit)
    from contextlib import ExitStack

    with ExitStack() as servers:
        side_a = side_from_spec(a, chat=chat, timeout=timeout, params=parse_params(param_a, "--param-a"), model=model, servers=servers)
        side_b = side_from_spec(b, chat=chat, timeout=timeout, params=parse_params(param_b, "--param-b"), model=model, servers=servers)
        with progress_bar() as progress:
            result = compare_sides(side_a, side_b, prompt_list, max_tokens=max_tokens, top_k=top_k, epsilon=epsilon, progress=progress)
    table = Table(title=f"A: {result.side_a}   B: {result.side_b}")
    for column in ("prompt", "match", "diverge at", "A token", "B token", "near tie", "top-k ok", "max |dlogprob|"):
        table.add_column(column)
    for item in result.prompts:
        table.add_row(
            item.prompt[:30].replace("\n", " "), "yes" if item.exact_match else "no",
            "-" if item.divergence is None else str(item.divergence), repr(item.token_a or ""), repr(item.token_b or ""),
            "-" if item.near_tie is None else str(item.near_tie), "-" if item.topk_accepted is None else str(item.topk_accepted),
            f"{max(item.abs_delta_logprobs, default=0.0):.3g}",
        )
    console = Console()
    console.print(table)
    console.print(result.summary())
    if json_path is not None:
        write_json(json_path, result.to_dict())
    raise typer.Exit(1 if result.behaviour_differs else 0)


@app.command()
@user_errors
def template(
    a: str = typer.Argument(..., help="Side A tokenizer: a model/tokenizer directory, a .gguf file, an env YAML, or 'embedded'."),
    b: str = typer.Argument(..., help="Side B tokenizer, likewise."),
    prompts: Optional[Path] = typer.Option(None, help="Text file, one user prompt per line (default: built-in benchmark-like prompts)."),
    benchmark: Optional[str] = PROMPT_BENCHMARK,
    limit: int = PROMPT_LIMIT,
    data_dir: Optional[Path] = DATA_DIR,
    system: Optional[str] = typer.Option(None, help="Also render this system instruction."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the comparison as JSON here."),
) -> None:
    """Render both chat templates (add_generation_prompt=True) and compare token ids.

    Exit code 0 when every prompt renders to identical ids, 1 when some differ, 2 on bad input.
    """
    from rich.console import Console

    from .diagnose.common import choose_prompts, write_json
    from .diagnose.template import compare_templates

    result = compare_templates(a, b, choose_prompts(prompts, benchmark, data_dir=data_dir, limit=limit), system=system)
    console = Console()
    for mismatch in result.mismatches:
        console.print(f"[red]mismatch[/] at token {mismatch.index} (lengths {mismatch.length_a}/{mismatch.length_b}) for {mismatch.prompt[:40]!r}")
        console.print(f"  A: {mismatch.context_a!r}", markup=False)
        console.print(f"  B: {mismatch.context_b!r}", markup=False)
    console.print(result.summary(), markup=False)
    if json_path is not None:
        write_json(json_path, result.to_dict())
    raise typer.Exit(0 if result.all_match else 1)


@app.command()
@user_errors
def doctor(
    a: Path = typer.Argument(..., help="Side A: env YAML, lm-eval results JSON or output dir, evalscope task_config YAML, or statrepro manifest JSON."),
    b: Path = typer.Argument(..., help="Side B, likewise."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write {factors, checklist, not_comparable, sides} as JSON here."),
    probe_endpoints: Optional[bool] = typer.Option(
        None, "--probe-endpoints/--no-probe-endpoints",
        help="Ask the running servers what files do not record: which engine answers, its version, its served context and "
        "the sampling defaults (repeat_penalty, temperature, top_p) a request that omits them gets. Default: on for env "
        "files, off for outputs and manifests. An env's external endpoint is asked over HTTP; a managed engine "
        "(llama-cpp, transformers-serve, vllm, sglang) is STARTED for the question and stopped, which costs its start-up: "
        "seconds for llama-cpp, ~20 s for transformers-serve on CPU, minutes for vllm/sglang. --probe-endpoints also asks "
        "the server URL an lm-eval (base_url) or evalscope (api_url) output records, when it is running.",
    ),
    probe_timeout: float = typer.Option(10.0, min=0.1, help="Seconds to wait for each answer of a server being asked."),
) -> None:
    """Name the score-moving factors that differ between two runs, with severity and a fix, plus a determinism checklist.

    Exit code 0 when no known factor differs, 1 when some do, 2 on bad input.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from .diagnose.common import write_json
    from .diagnose.doctor import compare_sources

    result = compare_sources(a, b, probe_endpoints=probe_endpoints, probe_timeout=probe_timeout)
    console, warnings = Console(), Console(stderr=True)
    for side in result.sides:
        for note in side.notes:
            warnings.print(f"[yellow]warning[/] {side.side}: {escape(note)}")
        if side.endpoint is not None or side.unseen:
            console.print(escape(side.summary()))
    colours = {"high": "red", "medium": "yellow", "low": "green"}
    table = Table(title="differing factors")
    for column in ("factor", "A", "B", "severity", "why", "fix"):
        table.add_column(column, overflow="fold")
    for factor in result.factors:
        table.add_row(factor.name, str(factor.a), str(factor.b), f"[{colours[factor.severity]}]{factor.severity}[/]", factor.why, factor.fix)
    if result.factors:
        console.print(table)
    checks = Table(title="determinism checklist")
    for column in ("requirement", "A", "B"):
        checks.add_column(column)
    marks = {"met": "[green]met[/]", "not met": "[red]not met[/]", "unknown": "[dim]unknown[/]"}
    for item in result.checklist:
        checks.add_row(item.item, marks[item.a], marks[item.b])
    console.print(checks)
    if result.not_comparable:
        console.print(f"unknown on one side: {', '.join(result.not_comparable)}")
    console.print(result.summary())
    if json_path is not None:
        write_json(json_path, result.to_dict())
    raise typer.Exit(1 if result.factors else 0)


@bench_app.command("control")
@user_errors
def bench_control(
    sims: int = typer.Option(1000, help="Simulated A, A', B per cell (accuracy 0.3/0.6/0.9 x 200/1000 items x 1/3 seeds)."),
    alpha: float = typer.Option(0.05, help="Significance level."),
    excess: float = typer.Option(0.05, help="For the power column: the share of items B flips beyond the control."),
) -> None:
    """Calibration of the A/A control's excess-flip test: false alarm on A/A/A and power against extra flips."""
    from .api import VerdictOptions

    _options(VerdictOptions, alpha=alpha)
    if sims < 1 or not 0 < excess < 1:
        raise InputError("--sims must be at least 1 and --excess in (0, 1)")
    from .bench import run_control_bench

    run_control_bench(sims=sims, alpha=alpha, excess_flips=excess)


@bench_app.command("advice")
@user_errors
def bench_advice(
    sims: int = typer.Option(200, help="Simulated pilots per row (accuracy 0.3/0.6/0.9 x greedy/3 seeds x truth 0/0.5/2 margins)."),
    pilot_items: int = typer.Option(200, help="Items of each pilot."),
    tolerance: float = TOLERANCE,
    alpha: float = ALPHA,
    workers: int = typer.Option(2, help="Processes (the figures do not depend on it)."),
    seed: int = typer.Option(0, help="Seed of the simulation."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the figures here."),
) -> None:
    """Realised power of the advice after an inconclusive verdict: a pilot, then its advised items or seeds on
    fresh data, analysed again; the share that concludes, with its Monte Carlo SE."""
    from .api import VerdictOptions

    _options(VerdictOptions, tolerance=tolerance, alpha=alpha)
    if sims < 1 or pilot_items < 2 or workers < 1:
        raise InputError("--sims and --workers must be at least 1 and --pilot-items at least 2")
    from .bench import run_advice_bench

    result = run_advice_bench(sims=sims, pilot_items=pilot_items, tolerance=tolerance, alpha=alpha, seed=seed, workers=workers)
    if json_path is not None:
        from .atomic import atomic_write_text

        atomic_write_text(json_path, json.dumps(result, indent=2) + "\n")


@bench_app.command("sequential")
@user_errors
def bench_sequential(
    sims: Optional[int] = typer.Option(None, help="Simulated comparisons per scenario [default: 1000; --over items: 50]."),
    items: int = typer.Option(2000, help="Items per simulated benchmark (--over seeds)."),
    max_seeds: Optional[int] = typer.Option(None, help="Seed budget per side, all run by the fixed design [default: 5; --over items: 3 per item]."),
    tolerance: float = typer.Option(0.05, help="Relative tolerance."),
    alpha: float = typer.Option(0.05, help="Significance level."),
    spending: str = typer.Option("obrien-fleming", help="Alpha spending: obrien-fleming or pocock."),
    over: str = typer.Option("seeds", help="seeds: today's seed rounds vs the fixed design; items: the item-sequential scenario mix (variance kind x item counts x shifts): item blocks with every seed, and item blocks at one seed then seed rounds, vs the fixed and seeds-only designs."),
    item_counts: str = typer.Option("200,1000,5000", help="With --over items: the benchmark sizes of the mix, comma-separated."),
    blocks: int = typer.Option(10, help="With --over items: item blocks (looks) per benchmark."),
    futility: float = typer.Option(0.1, help="With --over items: stop as inconclusive below this conditional power (0 = never)."),
    seed: int = typer.Option(0, help="Random seed of the simulations."),
) -> None:
    """Simulate sequential verdicts vs the fixed design: error rates and model calls, side by side."""
    from .api import VerdictOptions

    _options(VerdictOptions, tolerance=tolerance, alpha=alpha)
    if spending not in ("obrien-fleming", "pocock"):
        raise InputError(f"must be obrien-fleming or pocock, got {spending!r}", key="--spending")
    if over not in ("seeds", "items"):
        raise InputError(f"must be seeds or items, got {over!r}", key="--over")
    sims = sims if sims is not None else (50 if over == "items" else 1000)
    max_seeds = max_seeds if max_seeds is not None else (3 if over == "items" else 5)
    if sims < 1 or items < 2 or max_seeds < 1 or blocks < 1:
        raise InputError("--sims, --max-seeds and --blocks must be at least 1 and --items at least 2")
    if over == "items":
        try:
            counts = tuple(int(part) for part in item_counts.split(","))
        except ValueError:
            raise InputError(f"must be comma-separated integers, got {item_counts!r}", key="--item-counts") from None
        if any(count < 2 * blocks for count in counts):
            raise InputError(f"every item count must be at least 2 x --blocks ({2 * blocks})", key="--item-counts")
        from .bench import run_item_sequential_bench

        run_item_sequential_bench(
            sims=sims,
            items=counts,
            seeds=max_seeds,
            blocks=blocks,
            futility=futility,
            tolerance=tolerance,
            alpha=alpha,
            spending=spending,
            seed=seed,
        )
        return
    from .bench import run_sequential_bench

    run_sequential_bench(
        sims=sims, items=items, max_seeds=max_seeds, tolerance=tolerance, alpha=alpha, spending=spending, seed=seed
    )
