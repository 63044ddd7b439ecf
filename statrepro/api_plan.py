"""Planning before a comparison: ``plan`` (``statrepro plan``), per benchmark the items needed for 80% power to
pass when B equals A and the margin certifiable with the items at hand, beside TensorRT-LLM's unpaired gate under
the same guarantees (``stats.planning``; docs/methodology.md §10, docs/gates.md).

The A/A noise comes from one of: a stated flip rate (``plan_from_flip_rate``), an A/A pilot of two result sets of
the same environment (``plan_from_pilot``; ``plan_from_pilot_records`` for two records tables), a stored baseline
bundle (``plan_from_baseline``, the bundle ``statrepro gate`` loads: its A/A control as the pilot where it holds one,
else its seeds), or per-benchmark score matrices of a baseline (``plan_from_baseline_scores``: items x runs per
benchmark).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator

from .api import _at_least, _closed_interval, _open_interval
from .errors import InputError
from .stats.rules import DEFAULT_RULES

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from .stats.planning import AANoise, BenchmarkPlan

STATED = "(stated flip rate)"  # the benchmark name of a plan from a flip rate alone


class PlanOptions(BaseModel):
    """The margin and guarantees to plan for (the verdict's own flags), and a stated flip rate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tolerance: float = DEFAULT_RULES.tolerance
    """Relative tolerance (margin = tolerance x score_A); absolute, in score points, with margin 'absolute'."""
    margin: Literal["relative", "absolute"] = DEFAULT_RULES.margin_kind
    """How the tolerance becomes a margin."""
    mode: Literal["equivalence", "non-inferiority"] = DEFAULT_RULES.mode
    """Two-sided equivalence, or one-sided non-inferiority."""
    alpha: float = DEFAULT_RULES.alpha
    """The false pass at the margin is held to alpha."""
    flip_rate: Optional[float] = None
    """Share of items two runs of A answer differently (a greedy engine's A/A flips, half each way)."""
    accuracy: float = 0.6
    """With a flip rate and no data: the base accuracy."""
    items: Optional[int] = None
    """With a flip rate and no data: the items at hand (for the certifiable margin)."""

    @field_validator("tolerance")
    @classmethod
    def _positive_margin(cls, value: float) -> float:
        if not 0 < value < 1:
            raise ValueError(f"the margin must be in (0, 1), got {value}")
        return value

    _alpha = field_validator("alpha")(_open_interval(0, 0.5))
    _flip_rate = field_validator("flip_rate")(_closed_interval(0, 1))
    _accuracy = field_validator("accuracy")(_open_interval(0, 1))
    _items = field_validator("items")(_at_least(2))


def plan_noises(noises: dict[str, AANoise], n_items: dict[str, int | None], options: PlanOptions) -> dict[str, BenchmarkPlan]:
    """The plan of each benchmark from its A/A noise and its items at hand."""
    from .stats.planning import plan_benchmark

    plans = {}
    for name, noise in sorted(noises.items()):
        try:
            plans[name] = plan_benchmark(noise, n_items=n_items.get(name), tolerance=options.tolerance,
                                         margin_kind=options.margin, mode=options.mode, alpha=options.alpha)
        except ValueError as error:
            raise InputError(f"benchmark {name!r}: {error}", key="--margin") from None
    return plans


def plan_from_flip_rate(options: PlanOptions) -> dict[str, BenchmarkPlan]:
    """The plan of a greedy engine with the stated flip rate at ``options.accuracy``, ``options.items`` at hand."""
    from .stats.planning import noise_from_flip_rate

    if options.flip_rate is None:
        raise InputError("needs --flip-rate, --pilot or a baseline", key="--flip-rate")
    try:
        noise = noise_from_flip_rate(options.accuracy, options.flip_rate)
    except ValueError as error:
        raise InputError(str(error), key="--flip-rate") from None
    return plan_noises({STATED: noise}, {STATED: options.items}, options)


def plan_from_baseline_scores(scores: dict[str, np.ndarray], options: PlanOptions) -> dict[str, BenchmarkPlan]:
    """The plan from a baseline: per benchmark its score matrix (items x runs, NaN = a missing run). Its seeds give
    the A/A noise; a greedy baseline (runs that agree on every item) needs ``options.flip_rate``, which, when given,
    is used at every benchmark's own accuracy."""
    from .stats.planning import noise_from_baseline

    noises, n_items = {}, {}
    for name, matrix in scores.items():
        try:
            noises[name] = noise_from_baseline(matrix, options.flip_rate)
        except ValueError as error:
            raise InputError(f"benchmark {name!r}: {error}", key="--flip-rate") from None
        n_items[name] = int(np.sum(np.any(~np.isnan(np.asarray(matrix, float).reshape(len(matrix), -1)), axis=1)))
    return plan_noises(noises, n_items, options)


def plan_from_baseline(
    baseline: str | Path, options: PlanOptions | None = None, *, baselines_dir: str | Path | None = None,
    console: Console | None = None,
) -> dict[str, BenchmarkPlan]:
    """The plan from a stored baseline (a bundle's path, label, id prefix or name in ``baselines_dir``, found and
    verified as ``gate`` finds it), its items at hand. The A/A noise: a stated ``options.flip_rate`` first; else its
    A/A control where it holds one (``baseline save --control``), as an A/A pilot of its records against the
    control's (``plan_from_pilot_records``); else its seeds (``plan_from_baseline_scores``). The control is preferred
    to the seeds: it measures A against a fresh run of itself directly, whatever differs between two runs (not only
    the seed), where the seeds model that rerun from their spread and say nothing when greedy. One stderr line names
    the baseline and the noise used."""
    from rich.console import Console

    from .analysis import score_matrix
    from .run.baseline import find_bundle, load_bundle

    options = options or PlanOptions()
    bundle = load_bundle(find_bundle(baseline, baselines_dir))
    scores = {str(name): score_matrix(part) for name, part in bundle.records.groupby("benchmark", sort=True)}
    runs = ", ".join(f"{name} {matrix.shape[0]} items x {matrix.shape[1]} runs" for name, matrix in scores.items())
    from_control = bundle.control is not None and options.flip_rate is None
    if options.flip_rate is not None:
        noise = "the stated flip rate" + (" (not its A/A control)" if bundle.control is not None else "")
    else:
        noise = "its A/A control, as an A/A pilot" if from_control else "its seeds (it holds no A/A control)"
    (console or Console(stderr=True)).print(f"plan: baseline {bundle.label} (sha256 {bundle.id}): {runs}; noise from {noise}",
                                            markup=False, highlight=False, soft_wrap=True)
    if from_control:
        return plan_from_pilot_records(bundle.records, bundle.control, options, path=bundle.path)
    return plan_from_baseline_scores(scores, options)


def plan_from_pilot(a: str | Path, a_again: str | Path, options: PlanOptions) -> dict[str, BenchmarkPlan]:
    """The plan from an A/A pilot: two result sets of the same environment, loaded as ``analyze`` loads A and B
    (``plan_from_pilot_records``)."""
    from .harness import load_side

    return plan_from_pilot_records(load_side(Path(a)), load_side(Path(a_again)), options, path=a)


def plan_from_pilot_records(
    records_a: pd.DataFrame, records_a_again: pd.DataFrame, options: PlanOptions, *, path: str | Path | None = None,
) -> dict[str, BenchmarkPlan]:
    """The plan from an A/A pilot's two records tables (A's and A's again: a pilot's result sets, or a baseline's
    records and its stored control), paired item by item as ``analyze`` pairs A and B (the same checks); the items
    at hand are the pilot's. ``path`` names A in an error."""
    from .analysis import pair
    from .stats.paired import complete_items
    from .stats.planning import noise_from_pair

    pairing = pair(records_a, records_a_again)
    noises, n_items = {}, {}
    for name, bench in pairing.benchmarks.items():
        try:
            *_, mean_a, mean_b = complete_items(bench.scores_a, bench.scores_b)
        except ValueError as error:
            raise InputError(f"benchmark {name!r}: {error}", path=path) from None
        noises[name], n_items[name] = noise_from_pair(mean_a, mean_b), int(mean_a.size)
    return plan_noises(noises, n_items, options)
