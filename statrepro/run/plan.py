"""Planning: the matrix of (environment, benchmark, seed) jobs, computed once and handed to an executor."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from pydantic import ValidationError

from ..config import BenchmarkSpec, EnvConfig
from ..envfile import validate_env
from ..errors import InputError, validation_error


@dataclass(frozen=True)
class Job:
    """One harness run: one environment, one benchmark (with its options), one seed."""

    env: EnvConfig
    benchmark: str
    spec: BenchmarkSpec
    seed: int

    @property
    def spec_fingerprint(self) -> str:
        """Hash of the benchmark options that change which items run or how (limit, shots, subsets...)."""
        # Options added later leave the fingerprint (and so the store keys) of specs that keep their default.
        options = self.spec.model_dump(mode="json", exclude={"item_rows"} if self.spec.item_rows is None else set())
        blob = json.dumps({"benchmark": self.benchmark, **options}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    @property
    def key(self) -> str:
        return f"{self.env.name}-{self.env.fingerprint()}/{self.benchmark}-{self.spec_fingerprint}/seed-{self.seed}"

    @property
    def label(self) -> str:
        return f"{self.env.name} {self.benchmark} seed {self.seed}"


def effective_env(
    env: EnvConfig,
    *,
    benchmarks: list[str] | None = None,
    seeds: int | list[int] | None = None,
    limit: int | None = None,
) -> EnvConfig:
    """Apply command-line overrides (benchmark selection, seeds, limit) to an environment."""
    chosen = dict(env.benchmarks)
    if benchmarks:
        missing = [name for name in benchmarks if name not in chosen]
        for name in missing:
            chosen[name] = BenchmarkSpec()
        chosen = {name: chosen[name] for name in benchmarks}
    if limit is not None:
        if limit < 1:
            raise InputError(f"must be at least 1, got {limit}", key="--limit")
        chosen = {name: spec.model_copy(update={"limit": limit}) for name, spec in chosen.items()}
    update: dict = {"benchmarks": chosen}
    if seeds is not None:
        update["seeds"] = seeds
    # Re-validate so overrides get the same checks as the file.
    try:
        return validate_env({**env.model_dump(), **update})
    except ValidationError as error:
        raise validation_error(error, EnvConfig) from None


CONTROL_SUFFIX = ".control"


def control_env(env: EnvConfig) -> EnvConfig:
    """The A/A control of ``env``: the same configuration under the name ``<name>.control``, so its jobs are
    stored apart (a second, independent run with its own run-to-run nondeterminism) while its fingerprint and
    seeds are A's."""
    try:
        return validate_env({**env.model_dump(), "name": env.name + CONTROL_SUFFIX})
    except ValidationError as error:
        raise validation_error(error, EnvConfig) from None


def block_env(env: EnvConfig, rows: dict[str, dict[str, list[int]]], *, seeds: list[int] | None = None) -> EnvConfig:
    """``env`` running one block of items of each benchmark in ``rows`` (benchmark -> subset -> row indices
    after its limit), with ``seeds`` (default: its own): same name and fingerprint, so the blocks' jobs sit
    beside the environment's other runs, keyed apart by their benchmark options."""
    benchmarks = {}
    for benchmark, item_rows in rows.items():
        benchmarks[benchmark] = {**env.benchmarks[benchmark].model_dump(), "item_rows": item_rows, "subsets": list(item_rows)}
    update = {"benchmarks": benchmarks} | ({"seeds": seeds} if seeds is not None else {})
    try:
        return validate_env({**env.model_dump(), **update})
    except ValidationError as error:
        raise validation_error(error, EnvConfig) from None


def plan_jobs(envs: list[EnvConfig]) -> list[Job]:
    """Every (env, benchmark, seed) job, seeds innermost so that each seed round completes across benchmarks."""
    jobs = []
    for seed_index in range(max(len(env.seed_list) for env in envs)):
        for env in envs:
            if seed_index >= len(env.seed_list):
                continue
            for benchmark, spec in env.benchmarks.items():
                jobs.append(Job(env, benchmark, spec, env.seed_list[seed_index]))
    return jobs
