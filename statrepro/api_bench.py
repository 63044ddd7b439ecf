"""The benchmarks' Python API (the figures are the statrepro.bench package's): printed as tables and returned, never
asserted.

One options model per benchmark validates its values (a bad one is a pydantic ValidationError naming the
field, with the messages the CLI prints); each ``bench_*`` call prints its table and returns its figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Literal, Optional

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator

# The verdict options' own range checks, so a bench's --tolerance and --alpha fail as compare's do.
from .api import _at_least, _open_interval
from .stats.rules import DEFAULT_RULES


def _every(holds: Callable[[float], bool], message: str):
    """A validator of a grid (a tuple of values): ``message`` unless every value ``holds``."""

    def check(cls, value: tuple) -> tuple:
        if not all(holds(one) for one in value):
            raise ValueError(message)
        return value

    return classmethod(check)


def _is_accuracy(value: float) -> bool:
    return 0 < value < 1


class _BenchOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StatsBenchOptions(_BenchOptions):
    """The workload timed against scipy.stats."""

    items: int = 10_000
    """Items per benchmark."""
    seeds: int = 10
    """Seeds per environment."""
    benchmarks: int = 4
    """Benchmarks per analysis."""
    resamples: int = DEFAULT_RULES.n_resamples
    """Bootstrap resamples and permutations."""
    skip_scipy: bool = False
    """Skip the (slow) scipy reference timing."""


class CalibrationBenchOptions(_BenchOptions):
    """The calibration grid (accuracy x items x engine) and the verdict rules each simulated comparison uses."""

    items: tuple[int, ...] = (200, 1000)
    """Item counts of the grid (at least 2 each)."""
    accuracies: tuple[float, ...] = (0.3, 0.6, 0.9)
    """Base accuracies of the grid, in (0, 1)."""
    engines: tuple[int, ...] = (0, 1, 3, 5)
    """Engines of the grid: 0 is greedy (deterministic), else a stochastic engine's seed count per side."""
    margin: Literal["relative", "absolute"] = DEFAULT_RULES.margin_kind
    """How the tolerance becomes a margin: relative to A's score, or absolute score points."""
    tolerance: float = DEFAULT_RULES.tolerance
    """The verdict's tolerance."""
    alpha: float = DEFAULT_RULES.alpha
    """The verdict's significance level."""
    sims: int = 1000
    """Simulated comparisons per scenario (4 scenarios per cell)."""
    resamples: int = 1000
    """Bootstrap resamples and permutations per comparison (at least 10)."""
    workers: int = 2
    """Processes (the figures do not depend on it)."""
    seed: int = 0
    """Seed of the simulations (the figures are reproducible from it)."""
    concentration: float = 3.0
    """Stochastic engines: Beta concentration of item difficulty."""
    flip_rate: float = 0.03
    """Greedy engines: share of items that flip in an A/A (half each way)."""

    edge_sims: int = 10_000
    """Simulations per greedy edge cell (relative-margin size with churn, one-way flip coverage); 0 skips them."""

    _tolerance_range = field_validator("tolerance")(_open_interval(0.0, 1.0))
    _alpha = field_validator("alpha")(_open_interval(0.0, 0.5))

    _item_counts = field_validator("items")(_every(lambda count: count >= 2, "item counts must be at least 2"))
    _accuracies = field_validator("accuracies")(_every(_is_accuracy, "accuracies must be in (0, 1)"))

    @field_validator("engines")
    @classmethod
    def _engines(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if min(value, default=0) < 0:
            raise ValueError("engines are 'greedy' or a seed count of at least 1")
        return value

    @field_validator("tolerance")
    @classmethod
    def _tolerance_reachable(cls, value: float, info: ValidationInfo) -> float:
        accuracies = info.data.get("accuracies")
        # An absolute margin 20% past the tolerance must stay a reachable score for the 'false pass' scenario.
        if accuracies and info.data.get("margin") == "absolute" and 1.2 * value > min(accuracies):
            raise ValueError(f"1.2 x {value} exceeds the lowest accuracy")
        return value

    @field_validator("concentration")
    @classmethod
    def _concentration(cls, value: float) -> float:
        if not value > 0:
            raise ValueError(f"must be positive, got {value}")
        return value

    @field_validator("flip_rate")
    @classmethod
    def _flip_rate(cls, value: float, info: ValidationInfo) -> float:
        accuracies = info.data.get("accuracies")
        if accuracies and not 0 <= value <= 2 * min(min(accuracies), 1 - max(accuracies)):
            raise ValueError(f"{value} is not reachable at every accuracy of the grid")
        return value

    @field_validator("edge_sims")
    @classmethod
    def _edge_sims(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be 0 or more")
        return value

    @model_validator(mode="after")
    def _counts(self) -> CalibrationBenchOptions:
        if self.sims < 1 or self.resamples < 10 or self.workers < 1:
            raise ValueError("--sims and --workers must be at least 1 and --resamples at least 10")
        return self


class ThroughputBenchOptions(_BenchOptions):
    """The fake endpoint's latency and the concurrencies measured against it."""

    data_dir: Optional[Path] = None
    """Local benchmark data (default: $STATREPRO_DATA_DIR)."""
    items: int = 200
    """gsm8k items per job."""
    concurrency: tuple[int, ...] = (1, 4, 16, 32)
    """Concurrencies to measure (the first is the speed-up baseline)."""
    latency: float = 0.2
    """Seconds the fake endpoint takes per request."""
    repeats: int = 1
    """Measurements per figure; the fastest counts."""
    keep: Optional[Path] = None
    """Keep the stores and harness output here (default: a temporary dir)."""

    @model_validator(mode="after")
    def _counts(self) -> ThroughputBenchOptions:
        if any(level < 1 for level in self.concurrency) or self.items < 1 or self.repeats < 1 or self.latency < 0:
            raise ValueError("--concurrency, --items and --repeats must be at least 1 and --latency not negative")
        return self


class FaultsBenchOptions(_BenchOptions):
    """The fault matrix run against the real llama.cpp server (bench/faults.py)."""

    data_dir: Optional[Path] = None
    """Local benchmark data (default: $STATREPRO_DATA_DIR)."""
    items: int = 20
    """gsm8k items per run."""
    max_tokens: int = 16
    """Most new tokens per answer."""
    max_retries: int = 2
    """engine.max_retries of every run."""
    timeout: float = 20.0
    """engine.timeout of every run (the stall fault outlasts it by 5 s)."""
    faults: Optional[tuple[str, ...]] = None
    """Faults to inject (default: all, the managed-server kill last)."""
    keep: Optional[Path] = None
    """Keep the store and harness output here (default: a temporary dir)."""

    @model_validator(mode="after")
    def _counts(self) -> FaultsBenchOptions:
        from .bench.fault_proxy import FAULTS
        from .bench.faults import KILL

        if self.items < 2 or self.max_tokens < 1 or self.max_retries < 1 or self.timeout <= 0:
            raise ValueError("--items must be at least 2, --max-tokens and --max-retries at least 1, --timeout above 0")
        unknown = sorted(set(self.faults or ()) - {*FAULTS, KILL})
        if unknown:
            raise ValueError(f"unknown faults {unknown}; known: {', '.join((*FAULTS, KILL))}")
        return self


class ControlBenchOptions(_BenchOptions):
    """The A/A control's excess-flip test: its level and the extra flips its power is measured against."""

    sims: int = 1000
    """Simulated A, A', B per cell (accuracy 0.3/0.6/0.9 x 200/1000 items x 1/3 seeds)."""
    alpha: float = DEFAULT_RULES.alpha
    """Level of the excess-flip test."""
    excess: float = 0.05
    """For the power column: the share of items B flips beyond the control."""

    _alpha = field_validator("alpha")(_open_interval(0.0, 0.5))

    @model_validator(mode="after")
    def _counts(self) -> ControlBenchOptions:
        if self.sims < 1 or not 0 < self.excess < 1:
            raise ValueError("--sims must be at least 1 and --excess in (0, 1)")
        return self


class SequentialBenchOptions(_BenchOptions):
    """Sequential verdicts against the fixed design, over seed rounds or item blocks (``over``)."""

    tolerance: float = DEFAULT_RULES.tolerance
    """Relative tolerance."""
    alpha: float = DEFAULT_RULES.alpha
    """Significance level, spent over the looks."""
    spending: str = "obrien-fleming"
    """Alpha spending: obrien-fleming or pocock."""
    over: str = "seeds"
    """seeds: seed rounds vs the fixed design; items: the item-sequential scenario mix."""
    sims: Optional[int] = None
    """Simulated comparisons per scenario (None: 1000; over items: 50)."""
    items: int = 2000
    """Items per simulated benchmark (over seeds)."""
    max_seeds: Optional[int] = None
    """Seed budget per side, all run by the fixed design (None: 5; over items: 3 per item)."""
    blocks: int = 10
    """Over items: item blocks (looks) per benchmark."""
    item_counts: tuple[int, ...] = (200, 1000, 5000)
    """Over items: the benchmark sizes of the mix (or their comma-separated text, read only over items)."""
    futility: float = 0.1
    """Over items: stop as inconclusive below this conditional power (0 = never)."""
    seed: int = 0
    """Seed of the simulations."""

    _tolerance = field_validator("tolerance")(_open_interval(0.0, 1.0))
    _alpha = field_validator("alpha")(_open_interval(0.0, 0.5))

    @field_validator("spending")
    @classmethod
    def _spending(cls, value: str) -> str:
        if value not in ("obrien-fleming", "pocock"):
            raise ValueError(f"must be obrien-fleming or pocock, got {value!r}")
        return value

    @field_validator("over")
    @classmethod
    def _over(cls, value: str) -> str:
        if value not in ("seeds", "items"):
            raise ValueError(f"must be seeds or items, got {value!r}")
        return value

    @field_validator("item_counts", mode="before")
    @classmethod
    def _read_item_counts(cls, value, info: ValidationInfo):
        if not isinstance(value, str):
            return value
        if info.data.get("over") != "items":  # the text is not read over seeds, where the mix is not used
            return cls.model_fields["item_counts"].default
        try:
            return tuple(int(part) for part in value.split(","))
        except ValueError:
            raise ValueError(f"must be comma-separated integers, got {value!r}") from None

    @field_validator("item_counts")
    @classmethod
    def _item_counts_fit_blocks(cls, value: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
        blocks = info.data.get("blocks")
        if info.data.get("over") == "items" and blocks is not None and any(count < 2 * blocks for count in value):
            raise ValueError(f"every item count must be at least 2 x --blocks ({2 * blocks})")
        return value

    @model_validator(mode="after")
    def _counts(self) -> SequentialBenchOptions:
        too_few = [value is not None and value < 1 for value in (self.sims, self.max_seeds, self.blocks)]
        if any(too_few) or self.items < 2:
            raise ValueError("--sims, --max-seeds and --blocks must be at least 1 and --items at least 2")
        return self


def bench_stats(options: StatsBenchOptions | None = None) -> dict[str, float]:
    """Time the statistics core against scipy.stats.bootstrap + permutation_test on the same workload."""
    from .bench.speed import run_stats_bench

    options = options or StatsBenchOptions()
    return run_stats_bench(items=options.items, seeds=options.seeds, benchmarks=options.benchmarks,
                           resamples=options.resamples, skip_scipy=options.skip_scipy)


def bench_calibration(options: CalibrationBenchOptions | None = None, *, json_path: str | Path | None = None) -> dict:
    """The calibration grid: A/A false 'different', size at the margin, false pass beyond it, 'different' at half
    of it, and CI coverage, each marked against its bound; ``json_path`` receives the figures and failures."""
    from .bench.calibration import run_calibration_bench

    options = options or CalibrationBenchOptions()
    result = run_calibration_bench(
        sims=options.sims, items=options.items, accuracies=options.accuracies, engines=options.engines,
        tolerance=options.tolerance, alpha=options.alpha, margin_kind=options.margin, n_resamples=options.resamples,
        workers=options.workers, seed=options.seed, concentration=options.concentration, flip_rate=options.flip_rate,
        edge_sims=options.edge_sims,
    )
    if json_path is not None:
        import json

        from .atomic import atomic_write_text

        atomic_write_text(json_path, json.dumps(result, indent=2) + "\n")
    return result


class AdviceBenchOptions(_BenchOptions):
    """The advice's realised power: pilots, their advised items or seeds on fresh data, analysed again."""

    sims: int = 200
    """Simulated pilots per row (accuracy 0.3/0.6/0.9 x greedy/3 seeds x truth 0/0.5/2 margins)."""
    pilot_items: int = 200
    """Items of each pilot."""
    tolerance: float = DEFAULT_RULES.tolerance
    """The verdict's tolerance."""
    alpha: float = DEFAULT_RULES.alpha
    """The verdict's significance level."""
    workers: int = 2
    """Processes (the figures do not depend on it)."""
    seed: int = 0
    """Seed of the simulation."""

    _tolerance = field_validator("tolerance")(_open_interval(0.0, 1.0))
    _alpha = field_validator("alpha")(_open_interval(0.0, 0.5))

    @model_validator(mode="after")
    def _counts(self) -> AdviceBenchOptions:
        if self.sims < 1 or self.pilot_items < 2 or self.workers < 1:
            raise ValueError("--sims and --workers must be at least 1 and --pilot-items at least 2")
        return self


def bench_advice(options: AdviceBenchOptions | None = None, *, json_path: str | Path | None = None) -> dict:
    """Realised power of the advice after an inconclusive verdict, with Monte Carlo SEs."""
    from .bench.advice import run_advice_bench

    options = options or AdviceBenchOptions()
    result = run_advice_bench(sims=options.sims, pilot_items=options.pilot_items, tolerance=options.tolerance,
                              alpha=options.alpha, seed=options.seed, workers=options.workers)
    if json_path is not None:
        import json

        from .atomic import atomic_write_text

        atomic_write_text(json_path, json.dumps(result, indent=2) + "\n")
    return result


def bench_run(options: ThroughputBenchOptions | None = None) -> list:
    """`statrepro bench run`: throughput against a fake 127.0.0.1 endpoint: wall time and speed-up per concurrency, and statrepro's
    time against the raw lm_eval command at the same concurrency (``bench.throughput.ThroughputRow`` rows)."""
    from .bench.throughput import run_throughput_bench

    options = options or ThroughputBenchOptions()
    return run_throughput_bench(data_dir=options.data_dir, items=options.items, concurrencies=list(options.concurrency),
                                latency=options.latency, repeats=options.repeats, keep=options.keep)


def bench_faults(options: FaultsBenchOptions | None = None) -> list:
    """`statrepro bench faults`: each fault of the matrix injected during a run against the real llama.cpp server;
    per fault what was injected, retried, recovered, counted missing, scored wrong, finished jobs lost and whether
    the verdict changed (``bench.faults.FaultRow`` rows)."""
    from .bench.fault_proxy import FAULTS
    from .bench.faults import KILL, run_fault_bench

    options = options or FaultsBenchOptions()
    return run_fault_bench(data_dir=options.data_dir, items=options.items, max_tokens=options.max_tokens,
                           max_retries=options.max_retries, timeout=options.timeout,
                           faults=options.faults or (*FAULTS, KILL), keep=options.keep)


def bench_control(options: ControlBenchOptions | None = None) -> dict[str, dict[str, float]]:
    """Calibration of the A/A control's excess-flip test: false alarm on A/A/A and power against extra flips."""
    from .bench.control import run_control_bench

    options = options or ControlBenchOptions()
    return run_control_bench(sims=options.sims, alpha=options.alpha, excess_flips=options.excess)


class SelectionBenchOptions(_BenchOptions):
    """Ladders of five greedy candidates against one reference: the error of shipping one."""

    sims: int = 400
    """Simulated ladders per row."""
    tolerance: float = DEFAULT_RULES.tolerance
    """The absolute margin."""
    alpha: float = DEFAULT_RULES.alpha
    """The verdicts' significance level."""
    seed: int = 0
    """Seed of the simulation."""

    _tolerance = field_validator("tolerance")(_open_interval(0.0, 0.3))
    _alpha = field_validator("alpha")(_open_interval(0.0, 0.5))
    _sims = field_validator("sims")(_at_least(1))


def bench_selection(options: SelectionBenchOptions | None = None) -> dict[str, dict[str, float]]:
    """Shipping error of "the smallest candidate that passes" against the fixed sequence (docs/methodology.md §15)."""
    from .bench.selection import run_selection_bench

    options = options or SelectionBenchOptions()
    return run_selection_bench(sims=options.sims, tolerance=options.tolerance, alpha=options.alpha, seed=options.seed)


def bench_sequential(options: SequentialBenchOptions | None = None) -> dict:
    """Error rates and model calls of sequential verdicts against the fixed design, over seed rounds or over
    item blocks (the item-sequential scenario mix)."""
    options = options or SequentialBenchOptions()
    over_items = options.over == "items"
    sims = options.sims if options.sims is not None else (50 if over_items else 1000)
    max_seeds = options.max_seeds if options.max_seeds is not None else (3 if over_items else 5)
    rules = dict(tolerance=options.tolerance, alpha=options.alpha, spending=options.spending, seed=options.seed)
    if over_items:
        from .bench.sequential import run_item_sequential_bench

        return run_item_sequential_bench(sims=sims, items=options.item_counts, seeds=max_seeds, blocks=options.blocks,
                                         futility=options.futility, **rules)
    from .bench.sequential import run_sequential_bench

    return run_sequential_bench(sims=sims, items=options.items, max_seeds=max_seeds, **rules)


class GatesBenchOptions(_BenchOptions):
    """statrepro's paired test beside the peer gates (TensorRT-LLM, vLLM, SGLang, lm-eval) on greedy comparisons."""

    accuracies: tuple[float, ...] = (0.6,)
    """Base accuracies, in (0, 1)."""
    items: tuple[int, ...] = (200, 1319)
    """Item counts (at least 10 each)."""
    flip_rates: tuple[float, ...] = (0.02, 0.1, 0.2)
    """Shares of the items an A/A comparison flips (half each way), in [0, 1]."""
    tolerance: float = DEFAULT_RULES.tolerance
    """The margin relative to the base accuracy (a 5% tolerance at 0.6 is a 3-point margin)."""
    alpha: float = DEFAULT_RULES.alpha
    """statrepro's significance level; the equal guarantees ask every gate for a false pass at most alpha."""
    mode: Literal["equivalence", "non-inferiority"] = "non-inferiority"
    """statrepro's test: one-sided, as TensorRT-LLM's and SGLang's gates are, or two-sided equivalence."""
    sims: int = 200
    """Simulated comparisons per figure."""
    seed: int = 0
    """Seed of the simulation (every drop is simulated from it: common random numbers)."""

    _tolerance = field_validator("tolerance")(_open_interval(0.0, 1.0))
    _alpha = field_validator("alpha")(_open_interval(0.0, 0.5))
    _sims = field_validator("sims")(_at_least(10))

    _item_counts = field_validator("items")(_every(lambda count: count >= 10, "item counts must be at least 10"))
    _accuracies = field_validator("accuracies")(_every(_is_accuracy, "accuracies must be in (0, 1)"))

    @model_validator(mode="after")
    def _reachable(self) -> GatesBenchOptions:
        for accuracy in self.accuracies:
            for flips in self.flip_rates:
                if not 0 <= flips <= 2 * min(accuracy, 1 - accuracy):
                    raise ValueError(f"--flip-rates: {flips:g} is not reachable at accuracy {accuracy:g} (half the flips go each way)")
                if self.tolerance * accuracy > accuracy - flips / 2:
                    raise ValueError(f"--tolerance: a loss of the margin is not reachable at accuracy {accuracy:g} with {flips:g} flips")
        return self


def bench_gates(options: GatesBenchOptions | None = None) -> dict[str, dict[str, dict]]:
    """False alarm, false pass at the margin, the drop detected in 80% of runs and the margin certifiable under
    equal guarantees, for statrepro and each peer gate (docs/gates.md)."""
    from .bench.gates import run_gates_bench

    options = options or GatesBenchOptions()
    return run_gates_bench(accuracies=options.accuracies, items=options.items, flip_rates=options.flip_rates,
                           tolerance=options.tolerance, sims=options.sims, alpha=options.alpha, mode=options.mode,
                           seed=options.seed)
