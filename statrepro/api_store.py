"""The result store's own commands: `statrepro store verify` (and its repair)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .run.integrity import JobCheck, StoreCheck


def verify_store(
    store: str | Path, *, repair: bool = False, json_path: str | Path | None = None,
    on_job: Callable[[JobCheck], None] | None = None,
) -> StoreCheck:
    """Check every job of a result store against the checksums in its manifest: each job is ok, damaged (which
    file, why) or unfinished (``StoreCheck``; ``on_job`` hears of each as it is checked). With ``repair``, the
    damaged jobs move to ``<store>/quarantine/<time>/`` (nothing is deleted) so that the next `run` or `compare`
    redoes only those. A store written by a newer statrepro is refused (InputError). ``json_path``: every
    job's check written there as JSON."""
    import json

    from .atomic import atomic_write_text
    from .run.integrity import verify_store as verify

    result = verify(store, repair=repair, on_job=on_job)
    if json_path is not None:
        atomic_write_text(json_path, json.dumps(result.to_dict(), indent=2) + "\n")
    return result
