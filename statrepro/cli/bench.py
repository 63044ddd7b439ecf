"""`statrepro bench ...`: performance and calibration figures (benchmarks, never tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..errors import InputError
from .common import ALPHA, DATA_DIR, MARGIN, RESAMPLES, TOLERANCE, MarginKind, api_options, user_errors

bench_app = typer.Typer(help="Print performance and calibration figures (benchmarks, never tests).", no_args_is_help=True)


@bench_app.command("stats")
def bench_stats(
    items: int = typer.Option(10_000, help="Items per benchmark."),
    seeds: int = typer.Option(10, help="Seeds per environment."),
    benchmarks: int = typer.Option(4, help="Benchmarks."),
    resamples: int = RESAMPLES,
    skip_scipy: bool = typer.Option(False, help="Skip the (slow) scipy reference timing."),
) -> None:
    """Time the statistics core against scipy.stats.bootstrap + permutation_test on the same workload."""
    from ..bench import run_stats_bench

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
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the figures, bounds and failures here."),
) -> None:
    """Calibration grid (accuracy x items x engine): A/A false 'different', size at the margin, false pass
    beyond it, 'different' at half of it, and CI coverage, each marked against its bound."""
    from ..api import VerdictOptions

    api_options(VerdictOptions, tolerance=tolerance, alpha=alpha)  # the usual one-line errors for bad values

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
    if sims < 1 or resamples < 10 or workers < 1:
        raise InputError("--sims and --workers must be at least 1 and --resamples at least 10")
    if not concentration > 0:
        raise InputError(f"must be positive, got {concentration}", key="--concentration")
    if not 0 <= flip_rate <= 2 * min(min(accuracy_values), 1 - max(accuracy_values)):
        raise InputError(f"{flip_rate} is not reachable at every accuracy of the grid", key="--flip-rate")
    from ..bench import run_calibration_bench

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
    )
    if json_path is not None:
        from ..atomic import atomic_write_text

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
    from ..bench_throughput import run_throughput_bench

    run_throughput_bench(data_dir=data_dir, items=items, concurrencies=levels, latency=latency, repeats=repeats, keep=keep)



@bench_app.command("control")
@user_errors
def bench_control(
    sims: int = typer.Option(1000, help="Simulated A, A', B per cell (accuracy 0.3/0.6/0.9 x 200/1000 items x 1/3 seeds)."),
    alpha: float = ALPHA,
    excess: float = typer.Option(0.05, help="For the power column: the share of items B flips beyond the control."),
) -> None:
    """Calibration of the A/A control's excess-flip test: false alarm on A/A/A and power against extra flips."""
    from ..api import VerdictOptions

    api_options(VerdictOptions, alpha=alpha)
    if sims < 1 or not 0 < excess < 1:
        raise InputError("--sims must be at least 1 and --excess in (0, 1)")
    from ..bench import run_control_bench

    run_control_bench(sims=sims, alpha=alpha, excess_flips=excess)


@bench_app.command("sequential")
@user_errors
def bench_sequential(
    sims: Optional[int] = typer.Option(None, help="Simulated comparisons per scenario [default: 1000; --over items: 50]."),
    items: int = typer.Option(2000, help="Items per simulated benchmark (--over seeds)."),
    max_seeds: Optional[int] = typer.Option(None, help="Seed budget per side, all run by the fixed design [default: 5; --over items: 3 per item]."),
    tolerance: float = TOLERANCE,
    alpha: float = ALPHA,
    spending: str = typer.Option("obrien-fleming", help="Alpha spending: obrien-fleming or pocock."),
    over: str = typer.Option("seeds", help="seeds: today's seed rounds vs the fixed design; items: the item-sequential scenario mix (variance kind x item counts x shifts): item blocks with every seed, and item blocks at one seed then seed rounds, vs the fixed and seeds-only designs."),
    item_counts: str = typer.Option("200,1000,5000", help="With --over items: the benchmark sizes of the mix, comma-separated."),
    blocks: int = typer.Option(10, help="With --over items: item blocks (looks) per benchmark."),
    futility: float = typer.Option(0.1, help="With --over items: stop as inconclusive below this conditional power (0 = never)."),
    seed: int = typer.Option(0, help="Random seed of the simulations."),
) -> None:
    """Simulate sequential verdicts vs the fixed design: error rates and model calls, side by side."""
    from ..api import VerdictOptions

    api_options(VerdictOptions, tolerance=tolerance, alpha=alpha)
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
        from ..bench import run_item_sequential_bench

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
    from ..bench import run_sequential_bench

    run_sequential_bench(
        sims=sims, items=items, max_seeds=max_seeds, tolerance=tolerance, alpha=alpha, spending=spending, seed=seed
    )
