"""`statrepro store ...`: check a result store and repair it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import user_errors

store_app = typer.Typer(help="Check a result store's files and set damaged runs aside.", no_args_is_help=True)

EXIT_DAMAGED = 1


@store_app.command("verify")
@user_errors
def verify(
    store: Path = typer.Argument(..., help="Result store directory."),
    repair: bool = typer.Option(
        False, help="Move damaged jobs to <store>/quarantine/<time>/ (nothing is deleted); the next run or compare redoes only those."
    ),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write every job's check here."),
) -> None:
    """Check every job of a store against its manifest's checksums: ok, damaged (which file, why) or unfinished.
    Exit 0 when nothing is damaged (or --repair moved every damaged job aside), 1 when a damaged job is left,
    2 on bad input (no store, a store of a newer statrepro, a store in use by a run during --repair)."""
    from ..api_store import verify_store

    result = verify_store(store, repair=repair, json_path=json_path, on_job=lambda check: typer.echo(check.summary()))
    typer.echo(result.summary(), err=True)
    raise typer.Exit(EXIT_DAMAGED if result.damaged and result.quarantine is None else 0)
