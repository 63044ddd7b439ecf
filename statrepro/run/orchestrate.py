"""The run workflow under `statrepro run` and `statrepro compare`: plan, run what is missing (with progress), load."""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..config import EnvConfig
from ..engines.kinds import engine_endpoint, engine_kind
from ..errors import InputError
from ..stats.rules import VerdictRules
from .executors import Executor, JobRunner, LocalExecutor
from .jobs import EngineDown, JobCancelled, JobOutcome, cancel_running_jobs, reset_cancellation, stop_running_jobs
from .plan import Job, plan_jobs
from .progress import HarnessProgress, ProgressLines
from .store import ResultStore


@dataclass(frozen=True)
class RunSummary:
    """What a run did: per-job outcomes and the totals."""

    outcomes: tuple[JobOutcome, ...]

    @property
    def failed(self) -> list[JobOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def summary(self) -> str:
        counts = {status: sum(o.status == status for o in self.outcomes) for status in ("done", "skipped", "failed", "unneeded")}
        text = f"{counts['done']} run, {counts['skipped']} already in the store, {counts['failed']} failed"
        if counts["unneeded"]:
            text += f", {counts['unneeded']} not needed (a deterministic side's seeds)"
        return text

    def to_dict(self) -> dict:
        return {
            "outcomes": [
                {"job": o.job.key, "status": o.status, "items": o.items, "seconds": o.seconds, "error": o.error}
                for o in self.outcomes
            ]
        }


def _resolve_data_dir(env: EnvConfig, explicit: str | Path | None) -> Path:
    from ..benchmarks import resolve_data_dir

    return resolve_data_dir(explicit or env.data_dir, list(env.benchmarks))


def _model_path(env: EnvConfig) -> Path:
    from ..models import resolve_model_path

    return resolve_model_path(env.model.path)


def run_environments(
    envs: list[EnvConfig],
    store: ResultStore,
    executor: Executor,
    *,
    data_dir: str | Path | None = None,
    console: Console | None = None,
) -> RunSummary:
    """Run every missing (env, benchmark, seed) job; finished jobs in the store are never redone."""
    console = console or Console(stderr=True)
    from ..engines.process import stop_orphans

    for orphan in stop_orphans(store.root / "servers"):
        console.print(f"stopped a managed server a killed run left behind: {orphan}")
    jobs = plan_jobs(envs)
    pending = [job for job in jobs if not store.is_done(job)]
    skipped = [JobOutcome(job, "skipped") for job in jobs if job not in pending]
    if skipped:
        console.print(f"{len(skipped)} of {len(jobs)} runs already in {store.root}; not redone", soft_wrap=True)
    outcomes: list[JobOutcome] = list(skipped)
    if not pending:
        return RunSummary(tuple(outcomes))
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs · {task.fields[items]} items · {task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    # Bad inputs (data dir, model path) fail here, before any progress output or work.
    from ..models import EMBEDDED_SPEC

    data_dirs = {}
    for env in {id(job.env): job.env for job in pending}.values():
        data_dirs[id(env)] = _resolve_data_dir(env, data_dir)
        if env.model.path not in ("embedded", EMBEDDED_SPEC):  # the embedded model is materialised with progress
            _model_path(env)
        engine_kind(env.engine.kind).preflight(env)
    reset_cancellation()
    done_before = sum(store.is_done(job) for job in jobs)
    try:
        # A side's first two seeds run first: when they are bitwise identical, its later seeds are not run.
        first = [job for job in pending if job.env.seed_list.index(job.seed) < 2]
        if first:
            _run_pending(envs, first, outcomes, store, executor, data_dirs, columns, console)
        later = [job for job in pending if job not in first]
        unneeded = unneeded_seeds(jobs, later, store)
        for reason in dict.fromkeys(unneeded.values()):
            console.print(f"note: {reason}", markup=False, highlight=False)
        outcomes.extend(JobOutcome(job, "unneeded", error=unneeded[job.key]) for job in later if job.key in unneeded)
        later = [job for job in later if job.key not in unneeded]
        if later:
            _run_pending(envs, later, outcomes, store, executor, data_dirs, columns, console)
        return RunSummary(tuple(outcomes))
    except (KeyboardInterrupt, JobCancelled):
        cancel_running_jobs()  # idempotent; also makes a second Ctrl-C exit at once
        kept = sum(store.is_done(job) for job in jobs)
        raise RunInterrupted(
            f"interrupted: kept {kept} finished runs in {store.root} ({kept - done_before} from this run); "
            "the unfinished runs' partial output was discarded and their servers stopped; run the same command to resume"
        ) from None


def unneeded_seeds(jobs: list[Job], candidates: list[Job], store: ResultStore) -> dict[str, str]:
    """The ``candidates`` past their side's first two seeds when those two finished runs are bitwise identical
    on every item (score and answer): a deterministic engine's further seeds carry no information. Job key -> why."""
    unneeded: dict[str, str] = {}
    for job in candidates:
        side = [other for other in jobs if other.env is job.env and other.benchmark == job.benchmark]
        pair = sorted(side, key=lambda other: job.env.seed_list.index(other.seed))[:2]
        if len(pair) == 2 and all(store.is_done(other) for other in pair) and _identical_runs(store, pair):
            unneeded[job.key] = (
                f"{job.env.name} {job.benchmark}: seeds {pair[0].seed} and {pair[1].seed} scored and answered every item "
                "identically, so its other seeds are not run (a deterministic engine repeats itself)"
            )
    return unneeded


def _identical_runs(store: ResultStore, pair: list[Job]) -> bool:
    runs = [store.load_records([job]).sort_values("item_key", kind="stable").reset_index(drop=True) for job in pair]
    if len(runs[0]) != len(runs[1]) or runs[0].empty:
        return False
    if any(run["prediction"].isna().any() for run in runs):
        return False  # equal scores without the answers behind them are no proof of a repeated output
    columns = ["item_key", "score", "prediction"]
    return runs[0][columns].astype(str).equals(runs[1][columns].astype(str))


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run; the message says what the store kept."""


def _run_pending(envs, pending, outcomes, store, executor, data_dirs, columns, console) -> RunSummary:
    # Without a terminal (a CI log, a pipe) a live bar shows nothing until the end: one plain line per finished job
    # instead, and while a job runs a line from its harness's request bar at most every 30 s (run.progress).
    plain = not console.is_terminal
    # Environments run side by side report from their own threads.
    lock = threading.Lock()
    with Progress(*columns, console=console, disable=plain) as progress:
        task = progress.add_task("evaluating", total=len(pending), items=0, failed=0)
        totals = {"items": 0, "failed": 0, "finished": 0}
        descriptions: dict[int, str] = {}
        started = time.monotonic()

        def on_done(outcome: JobOutcome) -> None:
            with lock:
                totals["items"] += outcome.items
                totals["failed"] += outcome.status == "failed"
                totals["finished"] += 1
                progress.update(task, advance=1, items=totals["items"], failed=totals["failed"])
                if plain:
                    line = finished_job_line(outcome, totals["finished"], len(pending), time.monotonic() - started)
                    console.print(line, markup=False, highlight=False, soft_wrap=True)
                elif outcome.status == "failed":
                    progress.console.print(f"[red]failed[/] {outcome.job.label}: {outcome.error}")
                elif outcome.missing:
                    progress.console.print(f"{outcome.job.label}: {outcome.missing} missing runs (requests that failed for good; reasons in its manifest)")

        lines = ProgressLines()

        def on_progress(job: Job, harness: HarnessProgress) -> None:
            """A running job's request bar: a plain line now and then without a terminal, else on the live bar."""
            if not plain:
                describe(job.env, f"{job.label}: {harness.done}/{harness.total} requests")
                return
            with lock:
                line = lines.line(job.key, job.label, harness)
                if line is not None:
                    console.print(line, markup=False, highlight=False, soft_wrap=True)

        def describe(env: EnvConfig, text: str | None) -> None:
            """What ``env`` is doing now (None: finished); side by side, the bar shows every running env."""
            with lock:
                if text is None:
                    descriptions.pop(id(env), None)
                else:
                    descriptions[id(env)] = text
                progress.update(task, description=" | ".join(descriptions.values()) or "evaluating")

        def run_env(env: EnvConfig, env_jobs: list[Job]) -> list[JobOutcome]:
            describe(env, f"{env.name}: preparing {env.model.path}")
            model_path = _model_path(env)
            server_dir = store.root / "servers" / f"{env.name}-{env.fingerprint()}"
            try:
                return _serve_and_run(env, env_jobs, lambda endpoint: executor.run(
                    [job for job in env_jobs if not store.is_done(job)],
                    JobRunner(store.root, data_dirs[id(env)], model_path, endpoint, describe=lambda text: describe(env, text),
                               on_progress=on_progress),
                    on_done,
                ), store, server_dir, lambda text: describe(env, text), console)
            finally:
                describe(env, None)

        # One server per environment: the item-sequential design's block environments share their environment's.
        groups: dict[tuple[str, str], list[Job]] = {}
        for job in pending:
            groups.setdefault((job.env.name, job.env.fingerprint()), []).append(job)
        blocks = [(env_jobs[0].env, env_jobs) for env_jobs in groups.values()]
        if executor.runs_side_by_side([env for env, _ in blocks]):
            outcomes.extend(_run_side_by_side(run_env, blocks))
        else:
            for env, env_jobs in blocks:
                outcomes.extend(run_env(env, env_jobs))
    return RunSummary(tuple(outcomes))


def _serve_and_run(env: EnvConfig, env_jobs: list[Job], run_jobs, store: ResultStore, server_dir: Path, describe, console) -> list[JobOutcome]:
    """Start ``env``'s engine and run its unfinished jobs (``run_jobs(endpoint)``). A managed server that dies
    mid-job is restarted once and the jobs not finished yet run again, the interrupted one from its start
    (lm-eval keeps no finished requests to resume from); a second death, or an external endpoint that stops
    answering, ends the run with one line (EngineDown). Finished jobs stay in the store either way."""
    restarted, finished_before = False, []  # finished by the first server, whose outcomes its death swallowed
    while True:
        describe(f"{env.name}: {'restarting' if restarted else 'starting'} {env.engine.kind}")
        try:
            with engine_endpoint(env, server_dir) as endpoint:
                describe(env.name)
                return [*finished_before, *run_jobs(endpoint)]
        except EngineDown as down:
            if restarted or not engine_kind(env.engine.kind).managed:
                raise EngineDown(f"{down}; the run stopped, its finished jobs are kept in {store.root}") from None
            console.print(f"{down}; restarting the server once and running the unfinished jobs again", markup=False, highlight=False, soft_wrap=True)
            reset_cancellation()  # the executor stopped the dead server's other jobs; the restarted server runs them
            restarted = True
            finished_before = [JobOutcome(job, "done", store.manifest(job).get("items", 0)) for job in env_jobs if store.is_done(job)]


def _run_side_by_side(run_env, blocks: list[tuple[EnvConfig, list[Job]]]) -> list[JobOutcome]:
    """Each environment's block (its server and its jobs) in a thread of its own; outcomes in ``blocks`` order.
    The first block to fail stops the others' jobs (finished ones stay in the store) and its error is raised
    once every block has stopped its server. A managed server lives and dies inside its block's thread, as
    its parent-death signal follows the thread that started it."""
    pool = ThreadPoolExecutor(max_workers=len(blocks), thread_name_prefix="statrepro-env")
    futures = []
    try:
        for env, env_jobs in blocks:
            futures.append(pool.submit(run_env, env, env_jobs))
        wait(futures, return_when=FIRST_EXCEPTION)
    except BaseException:  # Ctrl-C, SIGTERM's SystemExit: only the main thread sees them
        cancel_running_jobs()
        pool.shutdown(wait=True)  # each block stops its jobs and its server
        raise
    errors = [future.exception() for future in futures if future.done() and future.exception()]
    if errors:
        stop_running_jobs()
        pool.shutdown(wait=True)
        raise errors[0]
    pool.shutdown()
    return [outcome for future in futures for outcome in future.result()]


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def finished_job_line(outcome: JobOutcome, finished: int, total: int, elapsed: float) -> str:
    """The plain progress line of one finished job: environment, benchmark, seed, items, seconds, jobs left
    and the ETA (the wall time per finished job so far, times the jobs left)."""
    job, left = outcome.job, total - finished
    what = f"{outcome.items} items" if outcome.status == "done" else f"FAILED ({outcome.error})"
    if outcome.missing:  # never silently: the manifest's missing_runs hold each one's reason
        what += f" and {outcome.missing} missing run{'' if outcome.missing == 1 else 's'} (requests that failed for good; reasons in its manifest)"
    eta = _duration(elapsed / finished * left) if left else "0m00s"
    return (
        f"[{finished}/{total}] {job.env.name} {job.benchmark} seed {job.seed}: {what} in {outcome.seconds:.1f} s; "
        f"{left} job{'' if left == 1 else 's'} left, ETA {eta}"
    )


def get_executor(name: str, **options) -> Executor:
    """The executor called ``name``: local, or ray (the optional extra). It lives here, not in executors.py,
    because the ray executor builds on executors.py."""
    if name == "local":
        return LocalExecutor(options.get("max_workers"))
    if name == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(address=options.get("ray_address"))
    raise InputError(f"unknown executor {name!r}; known: local, ray", key="--executor")


def load_env_records(env: EnvConfig, store: ResultStore):
    """All finished records of one environment's planned jobs."""
    return store.load_records(plan_jobs([env]))


def env_manifest(env: EnvConfig, store: ResultStore) -> dict | None:
    """The manifest of one finished job of ``env`` (versions, hardware, dataset hashes) for reports."""
    for job in plan_jobs([env]):
        if store.is_done(job):
            return store.manifest(job)
    return None


def check_comparable(env_a: EnvConfig, env_b: EnvConfig) -> None:
    """Both sides must run the same benchmarks with the same item selection, or pairing is meaningless."""
    if set(env_a.benchmarks) != set(env_b.benchmarks):
        raise InputError(
            f"environments run different benchmarks: {sorted(env_a.benchmarks)} vs {sorted(env_b.benchmarks)}",
            key="benchmarks",
        )
    for name in env_a.benchmarks:
        a, b = env_a.benchmarks[name], env_b.benchmarks[name]
        if (a.limit, a.subsets, a.drop_flagged, a.item_rows) != (b.limit, b.subsets, b.drop_flagged, b.item_rows):
            raise InputError(f"benchmark {name!r} selects different items on the two sides", key=f"benchmarks.{name}")




def comparison_key(env_a: EnvConfig, env_b: EnvConfig) -> str:
    """The store's name of the comparison of A with B (its pre-registered sequential design's file)."""
    return f"{env_a.name}-{env_a.fingerprint()}--{env_b.name}-{env_b.fingerprint()}"


def item_block_records(env_a: EnvConfig, env_b: EnvConfig, store: ResultStore, data_dir: str | Path | None = None):
    """Both sides' records of every block an item-sequential comparison of A with B ran, rebuilt from its
    pre-registered design; None when the comparison never ran in item blocks."""
    from ..stats.item_sequential import ItemSequentialDesign
    from ..stats.rules import VerdictRules

    registered = store.registered_design(comparison_key(env_a, env_b))
    if registered is None or registered.get("over") != "items":
        return None
    data_root = _resolve_data_dir(env_a, data_dir)
    blocks = {}
    for name, fields in registered["benchmarks"].items():
        design = ItemSequentialDesign(**{**fields, "rules": VerdictRules.from_dict(fields["rules"])})
        positions = item_positions(env_a, name, data_root)
        blocks[name] = [_block_rows(positions, design.block(number)) for number in range(1, design.blocks + 1)]
    return _load_blocks(env_a, blocks, store)[0], _load_blocks(env_b, blocks, store)[0]


def sequential_seeds(env: EnvConfig, max_rounds: int) -> list[int]:
    """The env's seeds, extended with unused ones up to ``max_rounds``; round r runs the first r."""
    seeds = list(env.seed_list)
    candidate = 0
    while len(seeds) < max_rounds:
        if candidate not in seeds:
            seeds.append(candidate)
        candidate += 1
    return seeds[:max_rounds]


def run_sequential(
    env_a: EnvConfig,
    env_b: EnvConfig,
    store: ResultStore,
    executor: Executor,
    design,
    *,
    data_dir: str | Path | None = None,
    console: Console | None = None,
):
    """Rounds of one more seed per side, re-tested after each with the group-sequential design, until a
    verdict or the budget. Benchmarks that have stopped are not run again. Returns the sequential result
    and the records of both sides."""
    from ..analysis import declared_score_ranges, pair
    from ..stats.sequential import sequential_step_many
    from .plan import effective_env

    console = console or Console(stderr=True)
    store.register_design(comparison_key(env_a, env_b), {**design.to_dict(), "benchmarks": sorted(env_a.benchmarks)})
    seeds_a, seeds_b = sequential_seeds(env_a, design.max_rounds), sequential_seeds(env_b, design.max_rounds)
    seeds_by_benchmark = {name: 0 for name in env_a.benchmarks}
    pending = list(env_a.benchmarks)
    result = None
    for round_index in range(1, design.max_rounds + 1):
        for name in pending:
            seeds_by_benchmark[name] = round_index
        round_a = effective_env(env_a, benchmarks=pending, seeds=seeds_a[:round_index])
        round_b = effective_env(env_b, benchmarks=pending, seeds=seeds_b[:round_index])
        run_environments([round_a, round_b], store, executor, data_dir=data_dir, console=console)
        records_a = _records_by_rounds(env_a, seeds_a, seeds_by_benchmark, store)
        records_b = _records_by_rounds(env_b, seeds_b, seeds_by_benchmark, store)
        pairing = pair(records_a, records_b, unpaired="missing")
        result = sequential_step_many(
            design, {name: (bench.scores_a, bench.scores_b) for name, bench in pairing.benchmarks.items()},
            score_bounds=declared_score_ranges(pairing),
        )
        console.print(f"round {round_index}: {result.summary().splitlines()[0]}")
        if result.verdict is not None:
            break
        pending = list(result.pending)
        if not pending:
            break
    return result, records_a, records_b


def _records_by_rounds(env: EnvConfig, seeds: list[int], rounds: dict[str, int], store: ResultStore):
    """Records of each benchmark's first ``rounds[benchmark]`` seeds."""
    import pandas as pd

    from .plan import effective_env

    frames = [
        load_env_records(effective_env(env, benchmarks=[name], seeds=seeds[:count]), store)
        for name, count in rounds.items()
        if count
    ]
    return pd.concat(frames, ignore_index=True)


def item_positions(env: EnvConfig, benchmark: str, data_dir: Path) -> list[tuple[str, int]]:
    """Every item ``env`` runs of ``benchmark`` as (subset, row index after the limit), in the benchmark's order."""
    from ..benchmarks import BenchmarkOptions, get_benchmark
    from ..benchmarks.base import apply_limit

    spec = env.benchmarks[benchmark]
    items = get_benchmark(benchmark).load_items(data_dir, spec.subsets, BenchmarkOptions(drop_flagged=spec.drop_flagged))
    return [(subset, row) for subset, rows in items.items() for row in range(len(apply_limit(rows, spec.limit)))]


def _block_rows(positions: list[tuple[str, int]], block) -> dict[str, list[int]]:
    """subset -> sorted row indices of one block (``block``: indices into ``positions``)."""
    rows: dict[str, list[int]] = {}
    for index in sorted(block):
        subset, row = positions[index]
        rows.setdefault(subset, []).append(row)
    return rows


def run_item_sequential(
    env_a: EnvConfig,
    env_b: EnvConfig,
    store: ResultStore,
    executor: Executor,
    rules: VerdictRules,
    *,
    block_size: int,
    max_items: int | None,
    order_seed: int | None,
    registry: Path,
    new_design: bool = False,
    first_seeds: int | None = None,
    data_dir: str | Path | None = None,
    console: Console | None = None,
):
    """Blocks of items in a pre-registered random order, each block with every seed of each side (or with its
    ``first_seeds``, the others added in rounds over every block once all blocks have run), re-tested after
    each block or seed round with the group-sequential design, until a verdict or the budget. A deterministic
    side's repeated seeds are skipped as in the fixed design. Each block is its own job per seed, so a finished
    block is never run again (a resumed comparison picks up where it stopped) and a stopped benchmark runs
    nothing more. ``rules`` are the verdict rules every look applies. The order seed is the pair's pre-registered one in
    ``registry`` (``run.preregistration``): ``order_seed`` (None: derived from both environments and the item sets)
    the first time, and a new one only with ``new_design``. Returns the item-sequential result, the records of
    both sides (everything run) and the order's registration."""
    from ..analysis import declared_score_ranges, pair
    from ..stats.item_sequential import ItemSequentialDesign, item_sequential_step_many
    from .plan import block_env
    from .preregistration import derived_order_seed, order_registration

    console = console or Console(stderr=True)
    data_root = _resolve_data_dir(env_a, data_dir)
    positions = {name: item_positions(env_a, name, data_root) for name in env_a.benchmarks}
    derived = derived_order_seed(env_a, env_b, {name: [list(item) for item in items] for name, items in positions.items()})
    registration = order_registration(registry, derived_seed=derived, requested=order_seed, new_design=new_design, store=store.root)
    order_seed = registration.seed
    # Seeds run in ascending order, the order the score matrices' columns take, so a replayed look sees its seeds.
    seed_orders = [sorted(env_a.seed_list), sorted(env_b.seed_list)]
    seeds = max(map(len, seed_orders))
    designs = {}
    for name, items in positions.items():
        budget = len(items) if max_items is None else min(max_items, len(items))
        try:
            designs[name] = ItemSequentialDesign(
                n_items=len(items), block_size=min(block_size, budget), order_seed=order_seed,
                max_items=budget, seeds=seeds, first_seeds=first_seeds, rules=rules,
            )
        except ValueError as error:
            key = "--first-seeds" if "first_seeds" in str(error) else "--max-items"
            raise InputError(f"benchmark {name!r} ({len(items)} items, {seeds} seeds): {error}", key=key) from None
    store.register_design(
        comparison_key(env_a, env_b),
        {"over": "items", "order_seed": order_seed, "block_size": block_size, "max_items": max_items,
         "first_seeds": first_seeds, "benchmarks": {name: design.to_dict() for name, design in designs.items()}},
    )
    registration.record()
    source = "given with --order-seed" if registration.user_given else "derived from both environments and the item sets"
    console.print(f"item order: seed {order_seed}, {source}; pre-registered in {registry}", markup=False, highlight=False, soft_wrap=True)
    if registration.design_changes:
        console.print(
            f"warning: item order seed {order_seed} replaces the order seed {registration.design_changes[-1]['order_seed']} "
            f"pre-registered for this pair ({registry}); the verdict records the design change",
            markup=False, highlight=False, soft_wrap=True,
        )
    blocks: dict[str, list[dict[str, list[int]]]] = {name: [] for name in designs}  # the rows of each block run
    looks_run = {name: 0 for name in designs}
    seeds_run = {name: 0 for name in designs}
    pending = list(designs)
    result = None
    while pending:
        step = []
        for name in pending:
            design = designs[name]
            items, seeds_run[name] = design.schedule[looks_run[name]]
            looks_run[name] += 1
            if math.ceil(items / design.block_size) > len(blocks[name]):
                blocks[name].append(_block_rows(positions[name], design.block(len(blocks[name]) + 1)))
                new = blocks[name][-1:]
            else:
                new = blocks[name]  # a seed round over every block
            step += [block_env(env, {name: rows}, seeds=order[: seeds_run[name]])
                     for rows in new for env, order in zip((env_a, env_b), seed_orders)]
        run_environments(step, store, executor, data_dir=data_dir, console=console)
        records_a, keys_a = _load_blocks(env_a, blocks, store)
        records_b, keys_b = _load_blocks(env_b, blocks, store)
        if records_a.empty or records_b.empty:
            raise InputError("no finished runs on one side; see the failures above", path=store.root)
        pairing = pair(records_a, records_b, unpaired="missing")
        missing = sorted(set(designs) - set(pairing.benchmarks))
        if missing:
            raise InputError(f"no results of benchmark {missing[0]!r} on one side; see the failures above", path=store.root)
        score_pairs = {
            name: _rows_in_order(
                pairing.benchmarks[name],
                _block_order(keys_a[name], keys_b[name], pairing.benchmarks[name].item_keys, designs[name]),
            )
            for name in designs
        }
        result = item_sequential_step_many(
            designs, score_pairs, seeds_run=seeds_run, score_bounds=declared_score_ranges(pairing)
        )
        for name in pending:
            console.print(f"{name}: {result.benchmarks[name].summary()}", markup=False, highlight=False, soft_wrap=True)
        if result.verdict is not None:
            break
        pending = list(result.pending)
    return result, records_a, records_b, registration


def _load_blocks(env: EnvConfig, blocks: dict[str, list[dict[str, list[int]]]], store: ResultStore):
    """The finished records of every block run so far (all benchmarks), and each block's item keys."""
    import pandas as pd

    from .plan import block_env

    frames, keys = [], {name: [] for name in blocks}
    for name, runs in blocks.items():
        for rows in runs:
            frame = load_env_records(block_env(env, {name: rows}), store)
            frames.append(frame)
            keys[name].append(set(frame["item_key"]))
    return pd.concat(frames, ignore_index=True), keys


def _block_order(keys_a: list[set[str]], keys_b: list[set[str]], paired_keys: list[str], design) -> list[str]:
    """Item keys of one benchmark's blocks in design order, one per planned item: an item with no result on
    either side keeps its place as a missing item, so every look analyses exactly the items it planned. Paired
    items carry A's key (across harnesses, B's items are renamed to A's keys), so B adds only its unpaired keys."""
    keys: list[str] = []
    paired = set(paired_keys)
    for number, (found_a, found_b) in enumerate(zip(keys_a, keys_b), start=1):
        planned = len(design.block(number))
        found = sorted(found_a | (found_b & paired))
        if len(found) > planned:
            raise InputError(f"block {number} holds {len(found)} items on the two sides, {planned} planned: "
                             "the sides key the same items differently (their harnesses' keys do not pair)")
        keys += found + [f"missing:{number}:{index}" for index in range(planned - len(found))]
    return keys


def _rows_in_order(paired, keys: list[str]):
    """The paired score matrices' rows in the order of ``keys`` (a key with no row: a missing item, all NaN)."""
    import numpy as np

    index = {key: row for row, key in enumerate(paired.item_keys)}
    return tuple(
        np.array([matrix[index[key]] if key in index else np.full(matrix.shape[1], np.nan) for key in keys])
        for matrix in (paired.scores_a, paired.scores_b)
    )
