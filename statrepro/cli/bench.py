"""`statrepro bench ...`: the figures of the statrepro.bench package (performance and calibration), never tests."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import InputError
from .common import ALPHA, DATA_DIR, DEFAULTS, MARGIN, RESAMPLES, TOLERANCE, MarginKind, Mode, api_options, user_errors

bench_app = typer.Typer(help="Print performance and calibration figures (benchmarks, never tests).", no_args_is_help=True)


def _parse_numbers(name: str, text: str, kind) -> tuple:
    """A comma-separated list of ``kind`` (empty parts skipped); --NAME in the error."""
    try:
        values = tuple(kind(part.strip()) for part in text.split(",") if part.strip())
    except ValueError:
        raise InputError(f"takes a comma-separated list of numbers, got {text!r}", key=f"--{name}") from None
    if not values:
        raise InputError("is empty", key=f"--{name}")
    return values


@bench_app.command("stats")
def bench_stats(
    items: int = typer.Option(10_000, help="Items per benchmark."),
    seeds: int = typer.Option(10, help="Seeds per environment."),
    benchmarks: int = typer.Option(4, help="Benchmarks."),
    resamples: int = RESAMPLES,
    skip_scipy: bool = typer.Option(False, help="Skip the (slow) scipy reference timing."),
) -> None:
    """Time the statistics core against scipy.stats.bootstrap + permutation_test on the same workload."""
    from ..api_bench import StatsBenchOptions, bench_stats as run_bench

    run_bench(api_options(StatsBenchOptions, items=items, seeds=seeds, benchmarks=benchmarks, resamples=resamples,
                          skip_scipy=skip_scipy))


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
    from ..api_bench import CalibrationBenchOptions, bench_calibration as run_bench

    engine_seeds = ",".join("0" if engine.strip() == "greedy" else engine for engine in engines.split(","))
    options = api_options(
        CalibrationBenchOptions, items=_parse_numbers("items", items, int), accuracies=_parse_numbers("accuracies", accuracies, float),
        engines=_parse_numbers("engines", engine_seeds, int), margin=margin.value, tolerance=tolerance, alpha=alpha, sims=sims,
        resamples=resamples, workers=workers, seed=seed, concentration=concentration, flip_rate=flip_rate,
        edge_sims=edge_sims,
    )
    run_bench(options, json_path=json_path)


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
    from ..api_bench import AdviceBenchOptions, bench_advice as run_bench

    run_bench(api_options(AdviceBenchOptions, sims=sims, pilot_items=pilot_items, tolerance=tolerance, alpha=alpha,
                          workers=workers, seed=seed), json_path=json_path)


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
    from ..api_bench import ThroughputBenchOptions, bench_run as run_bench

    try:
        levels = tuple(int(value) for value in concurrency.split(","))
    except ValueError:
        raise InputError(f"takes comma-separated integers, got {concurrency!r}", key="--concurrency") from None
    run_bench(api_options(ThroughputBenchOptions, data_dir=data_dir, items=items, concurrency=levels, latency=latency,
                          repeats=repeats, keep=keep))


@bench_app.command("faults")
@user_errors
def bench_faults(
    data_dir: Optional[Path] = DATA_DIR,
    items: int = typer.Option(20, help="gsm8k items per run."),
    max_tokens: int = typer.Option(16, help="Most new tokens per answer."),
    max_retries: int = typer.Option(2, help="engine.max_retries of every run."),
    timeout: float = typer.Option(20.0, help="engine.timeout of every run (the stall fault outlasts it)."),
    faults: Optional[str] = typer.Option(None, help="Comma-separated faults (default: all; see docs/hardening.md)."),
    keep: Optional[Path] = typer.Option(None, help="Keep the store and harness output here (default: a temporary dir)."),
) -> None:
    """Inject each fault of the matrix during a run against the real llama.cpp server (through a fault proxy; last,
    a SIGKILL of a managed server): injected, retried, recovered, counted missing, scored wrong (must be 0),
    finished jobs lost (must be 0), verdict changed (must be "no" unless missing runs force inconclusive)."""
    from ..api_bench import FaultsBenchOptions, bench_faults as run_bench

    chosen = tuple(part.strip() for part in faults.split(",") if part.strip()) if faults else None
    run_bench(api_options(FaultsBenchOptions, data_dir=data_dir, items=items, max_tokens=max_tokens, max_retries=max_retries,
                          timeout=timeout, faults=chosen, keep=keep))


@bench_app.command("control")
@user_errors
def bench_control(
    sims: int = typer.Option(1000, help="Simulated A, A', B per cell (accuracy 0.3/0.6/0.9 x 200/1000 items x 1/3 seeds)."),
    alpha: float = ALPHA,
    excess: float = typer.Option(0.05, help="For the power column: the share of items B flips beyond the control."),
) -> None:
    """Calibration of the A/A control's excess-flip test: false alarm on A/A/A and power against extra flips."""
    from ..api_bench import ControlBenchOptions, bench_control as run_bench

    run_bench(api_options(ControlBenchOptions, sims=sims, alpha=alpha, excess=excess))


@bench_app.command("gates")
@user_errors
def bench_gates(
    accuracies: str = typer.Option("0.6", help="Comma-separated base accuracies, in (0, 1)."),
    items: str = typer.Option("200,1319", help="Comma-separated item counts."),
    flip_rates: str = typer.Option("0.02,0.1,0.2", help="Comma-separated shares of items an A/A flips (half each way)."),
    tolerance: float = typer.Option(DEFAULTS.tolerance, help="The margin, relative to the base accuracy."),
    alpha: float = ALPHA,
    mode: Mode = typer.Option(Mode.non_inferiority, help="statrepro's test: non-inferiority (one-sided, as the peers) or equivalence."),
    sims: int = typer.Option(200, help="Simulated comparisons per figure."),
    seed: int = typer.Option(0, help="Seed of the simulation."),
) -> None:
    """statrepro beside the accuracy gates of TensorRT-LLM, vLLM, SGLang and lm-eval (docs/gates.md): false alarm
    at no change, false pass at the margin, the drop detected in 80% of runs, and the margin certifiable at n."""
    from ..api_bench import GatesBenchOptions, bench_gates as run_bench

    run_bench(api_options(
        GatesBenchOptions, accuracies=_parse_numbers("accuracies", accuracies, float), items=_parse_numbers("items", items, int),
        flip_rates=_parse_numbers("flip-rates", flip_rates, float), tolerance=tolerance, alpha=alpha, mode=mode.value,
        sims=sims, seed=seed,
    ))


@bench_app.command("selection")
@user_errors
def bench_selection(
    sims: int = typer.Option(400, help="Simulated ladders of five candidates per row."),
    tolerance: float = typer.Option(DEFAULTS.tolerance, help="The absolute margin."),
    alpha: float = ALPHA,
    seed: int = typer.Option(0, help="Seed of the simulation."),
) -> None:
    """Shipping error with several candidates: "the smallest that passes" against the fixed sequence compare uses."""
    from ..api_bench import SelectionBenchOptions, bench_selection as run_bench

    run_bench(api_options(SelectionBenchOptions, sims=sims, tolerance=tolerance, alpha=alpha, seed=seed))


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
    from ..api_bench import SequentialBenchOptions, bench_sequential as run_bench

    run_bench(api_options(
        SequentialBenchOptions, tolerance=tolerance, alpha=alpha, spending=spending, over=over, sims=sims, items=items,
        max_seeds=max_seeds, blocks=blocks, item_counts=item_counts, futility=futility, seed=seed,
    ))
