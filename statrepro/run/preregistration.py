"""An item design's order, pre-registered outside the store so that it cannot be shopped for.

The error control of the item-block design rests on a uniformly random item order fixed before any result.
The store refuses a changed design, but a new ``--store`` used to accept a new ``--order-seed``, so one data set
could be retried under many orders until one passed. Here the order seed is, by default, derived from both
environments' parsed configs and the benchmarks' item sets (``derived_order_seed``), and the seed in use is
recorded per pair of environment names in ``.statrepro-designs/<A>--<B>.json`` beside environment A's file,
where it travels with the configs (and their version control) rather than with a store. A later run of the
same pair keeps that seed whatever its store or settings; another ``--order-seed`` is refused unless the run
starts a new design (``--new-design``), which the file and the verdict record as a design change.
docs/methodology.md §13 explains the choice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..atomic import atomic_write_text
from ..config import EnvConfig
from ..errors import InputError

REGISTRY_DIR = ".statrepro-designs"


def registry_path(env_a_file: str | Path, env_a: EnvConfig, env_b: EnvConfig) -> Path:
    """Where the pair's item designs are registered: beside environment A's file, named by both environments."""
    return Path(env_a_file).resolve().parent / REGISTRY_DIR / f"{env_a.name}--{env_b.name}.json"


def derived_order_seed(env_a: EnvConfig, env_b: EnvConfig, items: dict[str, list]) -> int:
    """The default order seed: a hash of both environments' parsed configs (so whitespace, comments and key order
    of their files do not change it; where their data lives does not either) and of every benchmark's item set."""

    def canonical(env: EnvConfig) -> dict:
        data = env.public_dict()
        data.pop("data_dir", None)
        return data

    blob = json.dumps({"a": canonical(env_a), "b": canonical(env_b), "items": items}, sort_keys=True)
    return int.from_bytes(hashlib.sha256(blob.encode()).digest()[:8], "big") >> 1  # a non-negative int64


@dataclass(frozen=True)
class OrderRegistration:
    """The order seed a run uses and its record: where it is registered and the designs it replaced."""

    seed: int
    derived_seed: int
    user_given: bool
    registry: Path
    design_changes: tuple[dict, ...]  # earlier designs of this pair that a --new-design run replaced
    new_entry: dict | None = None  # the design to add to the registry (None: it is registered already)

    def record(self) -> None:
        """Write a new design to the registry (once the store has accepted the design too)."""
        if self.new_entry is None:
            return
        try:
            atomic_write_text(self.registry, json.dumps({"designs": [*self.design_changes, self.new_entry]}, indent=2) + "\n")
        except OSError as error:
            raise InputError(f"cannot pre-register the item order: {error.strerror}", path=self.registry) from None

    def to_json(self) -> dict:
        """The ``order`` and ``design_changes`` keys of the verdict JSON's ``sequential`` field."""
        order = {"seed": self.seed, "derived_seed": self.derived_seed, "user_given": self.user_given, "registry": str(self.registry)}
        return {"order": order, "design_changes": list(self.design_changes)}


def order_registration(
    path: Path, *, derived_seed: int, requested: int | None, new_design: bool, store: Path
) -> OrderRegistration:
    """The pair's order seed: the registered one, or (first run of the pair, or ``new_design``) ``requested`` or
    else ``derived_seed``, to be registered by ``record()``. A ``requested`` seed other than the registered one
    without ``new_design`` is refused: choosing the order after seeing results voids the design's error rates."""
    designs = _load(path)
    current = designs[-1] if designs else None
    if current is not None and not new_design:
        if requested is not None and requested != current["order_seed"]:
            raise InputError(
                f"this pair's item order was pre-registered with order seed {current['order_seed']}, not {requested}: "
                "retrying other orders after seeing results voids the error rates; drop --order-seed, or add "
                "--new-design to start a new design (recorded as a design change)",
                path=path,
                key="--order-seed",
            )
        return _registration(current, derived_seed, path, designs[:-1])
    seed = derived_seed if requested is None else requested
    if current is not None and seed == current["order_seed"]:
        return _registration(current, derived_seed, path, designs[:-1])  # the same order: nothing changes
    entry = {
        "order_seed": seed,
        "derived_seed": derived_seed,
        "user_given": requested is not None,
        "new_design": current is not None,
        "store": str(Path(store).resolve()),
        "registered": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return _registration(entry, derived_seed, path, designs, new_entry=entry)


def _registration(entry: dict, derived_seed: int, path: Path, replaced: list[dict], new_entry: dict | None = None) -> OrderRegistration:
    return OrderRegistration(
        seed=entry["order_seed"], derived_seed=derived_seed, user_given=entry["user_given"], registry=path,
        design_changes=tuple(replaced), new_entry=new_entry,
    )


def _load(path: Path) -> list[dict]:
    try:
        designs = json.loads(path.read_text(encoding="utf-8"))["designs"]
    except FileNotFoundError:
        return []
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise InputError("unreadable pre-registered item order", path=path) from None
    if not isinstance(designs, list) or not all(isinstance(d, dict) and "order_seed" in d for d in designs):
        raise InputError("unreadable pre-registered item order", path=path, key="designs")
    return designs
