"""`statrepro plan`: the items a comparison needs and the margin it can certify, before it is run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import ALPHA, BASELINES_DIR, MARGIN, MODE, TOLERANCE, MarginKind, Mode, api_options, user_errors


@user_errors
def plan(
    flip_rate: Optional[float] = typer.Option(
        None, help="Share of items two runs of A answer differently (greedy engines; with --baseline it wins over the bundle's "
             "control and seeds), in [0, 1]."),
    pilot: Optional[tuple[Path, Path]] = typer.Option(None, help="An A/A pilot: two result sets of the same environment (DIR DIR)."),
    baseline: Optional[str] = typer.Option(
        None, "--baseline", help="A stored baseline (as `gate` takes it: a bundle's path, label, id prefix or name): its items, and the noise "
             "of its A/A control (as --pilot) where it holds one, else of its seeds."),
    accuracy: float = typer.Option(0.6, help="With --flip-rate alone: the base accuracy."),
    items: Optional[int] = typer.Option(None, help="With --flip-rate alone: the items at hand, for the certifiable margin."),
    tolerance: float = TOLERANCE,
    margin: MarginKind = MARGIN,
    mode: Mode = MODE,
    alpha: float = ALPHA,
    baselines_dir: Optional[Path] = BASELINES_DIR,
) -> None:
    """Per benchmark: the items needed for 80% power to pass when B equals A (the false pass at the margin held to
    alpha), the smallest margin certifiable with the items at hand, and what TensorRT-LLM's unpaired gate
    certifies with the same guarantees. The A/A noise comes from --baseline (its stored A/A control, else its seeds:
    a greedy baseline without a control needs --flip-rate, which wins over both), --pilot or --flip-rate."""
    from ..api_plan import PlanOptions, plan_from_baseline, plan_from_flip_rate, plan_from_pilot
    from ..errors import InputError
    from .render import print_plan

    if pilot is not None and (flip_rate is not None or baseline is not None):
        raise InputError("give one of --pilot, --baseline or --flip-rate", key="--pilot")
    options = api_options(PlanOptions, tolerance=tolerance, margin=margin.value, mode=mode.value, alpha=alpha,
                          flip_rate=flip_rate, accuracy=accuracy, items=items)
    if baseline is not None:
        plans = plan_from_baseline(baseline, options, baselines_dir=baselines_dir)
    else:
        plans = plan_from_pilot(*pilot, options) if pilot is not None else plan_from_flip_rate(options)
    print_plan(plans, options)
