"""What the command families share: the bad-input contract, the option definitions and the value parsers."""

from __future__ import annotations

import functools
from enum import Enum
from pathlib import Path
from typing import Callable, Optional, get_args

import typer

from ..errors import InputError
from ..stats import rules

EXIT_BAD_INPUT = 2


def _choices(name: str, literal) -> type[Enum]:
    """A typer choice type from one of stats.rules' Literal vocabularies (the one list of each)."""
    return Enum(name, {value.replace("-", "_"): value for value in get_args(literal)}, type=str)


Mode = _choices("Mode", rules.Mode)
MarginKind = _choices("MarginKind", rules.MarginKind)
Correction = _choices("Correction", rules.Correction)
DEFAULTS = rules.DEFAULT_RULES


# Options shared by several commands: one definition each, so their meaning cannot drift apart.
TOLERANCE = typer.Option(DEFAULTS.tolerance, help="Relative tolerance (margin = tolerance x score_A); absolute with --margin absolute.")
ALPHA = typer.Option(DEFAULTS.alpha, help="Significance level, in (0, 0.5).")
MODE = typer.Option(Mode(DEFAULTS.mode), help="equivalence (two-sided) or non-inferiority (B may be better).")
MARGIN = typer.Option(MarginKind(DEFAULTS.margin_kind), help="relative: tolerance x score_A; absolute: tolerance in score points.")
CORRECTION = typer.Option(Correction(DEFAULTS.correction), help="Multiple-benchmark adjustment for 'any benchmark differs'.")
JSON_PATH = typer.Option(None, "--json", help="Write the versioned JSON verdict here.")
REPORT = typer.Option(None, help="Write report.html, report.md and verdict.json into this directory.")
JUNIT = typer.Option(
    None, "--junit", help="Write a JUnit XML file here: one test case per benchmark (per candidate and benchmark); different is a failure, inconclusive an error.",
)
GITHUB = typer.Option(
    False, "--github", help="GitHub Actions: ::error/::warning annotations on stdout and a Markdown job summary appended to $GITHUB_STEP_SUMMARY.",
)
BASELINES_DIR = typer.Option(
    None, "--baselines-dir", envvar="STATREPRO_BASELINES_DIR",
    help="Where bundles are saved and looked up by name (default ./baselines, or $STATREPRO_BASELINES_DIR).",
)
RNG_SEED = typer.Option(0, help="Seed of the resampling RNG (bootstrap and permutations).")
SCORE_RANGE = typer.Option(
    None, help="The metric's range LOW,HIGH when statrepro does not know it (accuracy-like metrics are 0,1)."
)
MAX_MISSING = typer.Option(
    DEFAULTS.max_missing_share,
    help="Largest share of paired information lost to missing runs (per item the larger side's lost share of its runs) before the verdict is inconclusive.",
)
RESAMPLES = typer.Option(DEFAULTS.n_resamples, help="Bootstrap resamples and Monte Carlo permutations.")
KL_MARGIN = typer.Option(
    DEFAULTS.kl_margin,
    help="Evidence gate (off by default): the upper 95% bound (one-sided, at alpha) of the mean choice KL(A||B) in nats must be <= this; modes ppl and clp.",
)
TOP1_MARGIN = typer.Option(
    DEFAULTS.top1_margin, help="Evidence gate (off by default): the upper bound of the share of items whose top choice changed must be <= this."
)
FLIP_MARGIN = typer.Option(
    DEFAULTS.flip_margin, help="Evidence gate (off by default): the upper bound of the excess harmful flips over the A/A control must be <= this; needs --control."
)
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


def parse_score_range(text: Optional[str]) -> Optional[tuple[float, float]]:
    if text is None:
        return None
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise InputError(f"takes LOW,HIGH (e.g. 0,100), got {text!r}", key="--score-range") from None
    return (low, high)


def api_options(options_class, **values):
    """The API's options object from command-line values; a bad value is the usual one-line error naming its flag."""
    from pydantic import ValidationError

    from ..errors import validation_error

    try:
        return options_class(**values)
    except ValidationError as error:
        raise validation_error(error, options_class, as_option=True) from None


def parse_metric_overrides(values: list[str]) -> dict[str, str]:
    overrides = {}
    for value in values:
        if "=" not in value:
            raise InputError(f"takes BENCHMARK=METRIC, got {value!r}", key="--metric")
        benchmark, metric = value.split("=", 1)
        overrides[benchmark.strip()] = metric.strip()
    return overrides


def parse_seeds(seeds: Optional[str]) -> int | list[int] | None:
    if seeds is None:
        return None
    try:
        return [int(s) for s in seeds.split(",")] if "," in seeds else int(seeds)
    except ValueError:
        raise InputError(f"takes a count or a comma-separated list, got {seeds!r}", key="--seeds") from None


def parse_benchmarks(benchmarks: Optional[str]) -> list[str] | None:
    return [name.strip() for name in benchmarks.split(",") if name.strip()] if benchmarks else None


def stop_on_sigterm() -> None:
    """Turn SIGTERM (a scheduler's stop, `kill`) into a normal exit, so managed servers are stopped and the
    store lock released by the usual cleanup paths."""
    import signal

    def _exit(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
