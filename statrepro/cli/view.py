"""`statrepro view STORE`: browse a result store in the web browser, read-only, on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import (
    ALPHA, CORRECTION, KL_MARGIN, MARGIN, MAX_MISSING, MODE, RESAMPLES, RNG_SEED, SCORE_RANGE, TOLERANCE, TOP1_MARGIN,
    Correction, MarginKind, Mode, api_options, parse_score_range, user_errors,
)
from ..errors import InputError


@user_errors
def view(
    store: Path = typer.Argument(..., help="Result store directory (the --store of run and compare)."),
    host: str = typer.Option(
        "127.0.0.1", help="Address to listen on. Anything but a loopback address makes the store readable by the network."
    ),
    port: int = typer.Option(8765, help="Port to listen on; 0 picks a free one (the URL is printed)."),
    tolerance: float = TOLERANCE,
    alpha: float = ALPHA,
    mode: Mode = MODE,
    margin: MarginKind = MARGIN,
    correction: Correction = CORRECTION,
    intersect: bool = typer.Option(
        False, help="Analyse what both sides have: benchmarks on one side only are dropped (failed items always count as missing)."
    ),
    rng_seed: int = RNG_SEED,
    resamples: int = RESAMPLES,
    seed_level: bool = typer.Option(False, help="Two-level bootstrap: also resample seeds within items."),
    max_missing: float = MAX_MISSING,
    score_range: Optional[str] = SCORE_RANGE,
    kl_margin: Optional[float] = KL_MARGIN,
    top1_margin: Optional[float] = TOP1_MARGIN,
) -> None:
    """Serve a result store read-only on a local web server: its environments, runs, saved verdicts and A/A
    controls, and the report of any two environments you pick (built as `analyze` builds it). Ctrl-C stops."""
    from ..api import AnalyzeOptions
    from ..api_view import serve_store

    if not 0 <= port <= 65535:
        raise InputError(f"must be in 0..65535, got {port}", key="--port")
    options = api_options(
        AnalyzeOptions, tolerance=tolerance, alpha=alpha, mode=mode.value, margin=margin.value, correction=correction.value,
        max_missing=max_missing, rng_seed=rng_seed, resamples=resamples, seed_level=seed_level, intersect=intersect,
        score_range=parse_score_range(score_range), kl_margin=kl_margin, top1_margin=top1_margin,
    )
    serve_store(store, options, host=host, port=port)
