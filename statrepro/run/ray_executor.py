"""The evaluation matrix on a Ray cluster: one Ray task per job, placed by the job's hardware label.

Result transport: the worker runs ``execute_job`` (the same harness subprocess, retries and manifest as a
local run) into a private staging store in its own temp dir, and ships the records, the manifest and the
harness's files back to the driver. Only the driver writes the real store, with the store's own atomic
writes (records first, manifest last). So worker nodes need no shared filesystem, a worker killed mid-job
cannot leave anything half-written, and a job retried on another node is written exactly once.

Ray is an optional extra (``statrepro[ray]``): it is imported only inside functions here.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

from ..config import EnvConfig
from ..errors import InputError
from ..atomic import atomic_write_bytes
from .executors import JobRunner, OnDone
from .jobs import JobCancelled, JobOutcome, execute_job, jobs_cancelled
from .plan import Job
from .store import MANIFEST, RECORDS, ResultStore

# Attempts, on different nodes when there are any, for a job whose harness fails (after execute_job's own
# retries of transient errors): a node with a broken driver or a full disk should not fail the job.
NODE_ATTEMPTS = 2
# Ray's own resubmissions when the worker process or its node dies mid-job.
SYSTEM_RETRIES = 3
# How long a job may wait for a live node with its hardware before it is failed (autoscalers add nodes).
WAIT_FOR_NODES_SECONDS = 60.0
POLL_SECONDS = 0.25
# A label-only demand, as Ray itself uses for accelerator types: it selects nodes without using up a slot.
LABEL_DEMAND = 0.001
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
# Environments run side by side call connect from two threads; ray.init must run once.
_CONNECT_LOCK = threading.Lock()


def hardware_resource(label: str) -> str | None:
    """The Ray custom resource of the nodes that carry a hardware label.

    ``accelerator_type:<LABEL upper-cased>``, which is the name Ray gives detected GPUs (a100 ->
    ``accelerator_type:A100``, h100 -> ``accelerator_type:H100``). For other hardware, start the nodes with
    ``--resources='{"accelerator_type:NPU": 1}'``. The label ``cpu`` means any node: no resource.
    """
    label = label.strip()
    return None if label.lower() == "cpu" else f"accelerator_type:{label.upper()}"


@dataclass(frozen=True)
class TaskResources:
    """What one job asks of the Ray scheduler."""

    num_cpus: float
    num_gpus: float
    resources: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus, "resources": dict(self.resources)}

    def summary(self) -> str:
        extra = "".join(f", {name}" for name in self.resources)
        return f"{self.num_cpus:g} CPU, {self.num_gpus:g} GPU{extra}"

    def offered_by(self, node: dict) -> bool:
        """Whether a node (an entry of ``ray.nodes()``) has these resources at all (busy or not)."""
        total = node.get("Resources", {})
        wanted = {"CPU": self.num_cpus, "GPU": self.num_gpus, **self.resources}
        return all(total.get(name, 0.0) >= amount for name, amount in wanted.items() if amount > 0)


def task_resources(env: EnvConfig) -> TaskResources:
    """One CPU for the harness; one GPU when the model runs in-process on accelerator hardware (labels
    ``cpu`` and ``cpu-*`` need none; API engines' GPUs are at the server); the hardware label resource."""
    from ..engines.kinds import engine_kind

    resource = hardware_resource(env.hardware)
    on_accelerator = resource is not None and not env.hardware.strip().lower().startswith("cpu-")
    gpus = 1.0 if on_accelerator and engine_kind(env.engine.kind).capabilities.in_process else 0.0
    return TaskResources(1.0, gpus, {resource: LABEL_DEMAND} if resource else {})


class _StagingStore(ResultStore):
    """A worker's private store: execute_job works in it as usual, but the finished records and manifest
    are kept for the driver instead of being written here."""

    finished: tuple[pd.DataFrame | None, dict] | None = None

    def write_done(self, job: Job, records: pd.DataFrame, manifest: dict) -> None:
        self.finished = (records, manifest)

    def write_failed(self, job: Job, manifest: dict) -> None:
        self.finished = (None, manifest)


@dataclass(frozen=True)
class Shipment:
    """What a worker sends back for one job: the outcome, what to store, and where it ran."""

    outcome: JobOutcome
    records: pd.DataFrame | None
    manifest: dict
    files: dict[str, bytes]  # harness output and log, by path relative to the job directory
    node: dict
    staging_dir: str  # the job directory on the worker, which record sources point into


def run_on_node(runner: JobRunner, job: Job, board) -> Shipment:
    """The Ray task body: run the job in a staging store on this node and ship the results."""
    import ray

    context = ray.get_runtime_context()
    node = {"node_id": context.get_node_id(), "node_ip": ray.util.get_node_ip_address(), "host": socket.gethostname()}
    board.started.remote(job.key, node["node_id"])
    with tempfile.TemporaryDirectory(prefix="statrepro-ray-") as staging:
        store = _StagingStore(staging)
        outcome = execute_job(job, store, data_dir=runner.data_dir, model_path=runner.model_path, endpoint=runner.endpoint)
        job_dir = store.job_dir(job)
        files = {
            str(path.relative_to(job_dir)): path.read_bytes()
            for path in sorted(job_dir.rglob("*"))
            if path.is_file() and path.name not in (RECORDS, MANIFEST)
        }
    records, manifest = store.finished or (None, {})
    return Shipment(outcome, records, manifest, files, node, str(job_dir))


class JobBoard:
    """A tiny actor that workers tell when a job starts, so the driver can show what is running where."""

    def __init__(self) -> None:
        self.running: dict[str, str] = {}

    def started(self, job_key: str, node_id: str) -> None:
        self.running[job_key] = node_id

    def snapshot(self) -> dict[str, str]:
        return dict(self.running)


def _remote_parts():
    """Fresh each run: Ray's remote definitions do not outlive a ray.shutdown() and re-init."""
    import ray

    return ray.remote(run_on_node), ray.remote(num_cpus=0)(JobBoard)


def _require_ray():
    try:
        import ray
    except ImportError:
        raise InputError("the ray executor needs the ray extra: pip install 'statrepro[ray]'", key="--executor") from None
    return ray


def connect(address: str | None):
    """Connect to the cluster at ``address`` ("auto", "host:port" or "ray://host:port"), or start a local
    one when None. An existing connection in this process is reused."""
    ray = _require_ray()
    with _CONNECT_LOCK:
        if not ray.is_initialized():
            _check_reachable(address)
            try:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            except (ConnectionError, ValueError, RuntimeError) as error:
                first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise InputError(f"cannot reach the Ray cluster at {address}: {first_line}", key="--ray-address") from None
    return ray


def _check_reachable(address: str | None) -> None:
    """Fail in seconds on a wrong host:port; Ray itself retries for minutes before giving up."""
    if not address or address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise InputError(f"Ray address {address!r} is not host:port, auto or ray://host:port", key="--ray-address")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except OSError as error:
        raise InputError(f"cannot reach the Ray cluster at {address}: {error.strerror or error}", key="--ray-address") from None


@dataclass
class _JobState:
    job: Job
    resources: TaskResources
    submitted: float
    nodes_tried: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    missing_since: float | None = None


@dataclass(frozen=True)
class ClusterStatus:
    """Live counts of one ``run`` call's jobs (one environment's), and the cluster's live nodes."""

    envs: str
    queued: int
    running: int
    done: int
    failed: int
    nodes: int

    def summary(self) -> str:
        return (
            f"{self.envs} · ray · {self.nodes} nodes · {self.queued} queued · {self.running} running · "
            f"{self.done} done · {self.failed} failed"
        )


class RayExecutor:
    """Runs every job as a Ray task on the cluster at ``address`` (or a local one); writes the store here.
    ``run`` keeps its state per call, so environments run side by side can call it from two threads."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        node_attempts: int = NODE_ATTEMPTS,
        system_retries: int = SYSTEM_RETRIES,
        wait_for_nodes_seconds: float = WAIT_FOR_NODES_SECONDS,
    ) -> None:
        self.address = address
        self.node_attempts = node_attempts
        self.system_retries = system_retries
        self.wait_for_nodes_seconds = wait_for_nodes_seconds

    def runs_side_by_side(self, envs: list[EnvConfig]) -> bool:
        """True when every environment demands different hardware, so each has nodes of its own, and at most
        one starts a managed server (those all listen on this machine, where two would compete)."""
        from ..engines.kinds import engine_kind

        demands = [task_resources(env) for env in envs]
        managed = sum(engine_kind(env.engine.kind).managed for env in envs)
        return len(envs) > 1 and all(demands.count(demand) == 1 for demand in demands) and managed <= 1

    def run(self, jobs: list[Job], run_one: JobRunner, on_done: OnDone) -> list[JobOutcome]:
        if not isinstance(run_one, JobRunner):
            raise TypeError("the ray executor ships a JobRunner to its workers; got a plain callable")
        if not jobs:
            return []
        ray = connect(self.address)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        run_remote, board_actor = _remote_parts()
        store = ResultStore(run_one.store_root)
        driver_node = ray.get_runtime_context().get_node_id()
        board = board_actor.options(scheduling_strategy=NodeAffinitySchedulingStrategy(driver_node, soft=True)).remote()
        shipped_runner = replace(run_one, describe=None, on_progress=None)  # small: travels inline with each task
        # A managed server listens on this machine's loopback: only this node's workers can reach it.
        pinned = run_one.endpoint is not None and urlparse(run_one.endpoint.base_url).hostname in LOOPBACK_HOSTS

        def submit(state: _JobState):
            strategy = "DEFAULT"
            if pinned:
                strategy = NodeAffinitySchedulingStrategy(driver_node, soft=False)
            elif state.nodes_tried:
                others = [
                    node["NodeID"]
                    for node in ray.nodes()
                    if node["Alive"] and node["NodeID"] not in state.nodes_tried and state.resources.offered_by(node)
                ]
                if others:
                    strategy = NodeAffinitySchedulingStrategy(others[0], soft=True)
            state.submitted = time.time()
            return run_remote.options(
                num_cpus=state.resources.num_cpus,
                num_gpus=state.resources.num_gpus,
                resources=state.resources.resources,
                max_retries=self.system_retries,
                retry_exceptions=False,
                scheduling_strategy=strategy,
                name=f"statrepro {state.job.label}",
            ).remote(shipped_runner, state.job, board)

        pending = {}
        for job in jobs:
            state = _JobState(job, task_resources(job.env), time.time())
            pending[submit(state)] = state
        outcomes: list[JobOutcome] = []
        counts = {"done": 0, "failed": 0}

        def finish(state: _JobState, outcome: JobOutcome) -> None:
            counts["done" if outcome.status == "done" else "failed"] += 1
            outcomes.append(outcome)
            on_done(outcome)

        envs = ", ".join(dict.fromkeys(job.env.name for job in jobs))
        last_check = 0.0
        try:
            while pending:
                if jobs_cancelled():  # Ctrl-C or a failed environment beside this one (orchestrate)
                    raise JobCancelled()
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
                for ref in ready:
                    state = pending.pop(ref)
                    try:
                        shipment = ray.get(ref)
                    except Exception as error:  # a crashed task, a dead node after Ray's retries, a lost result
                        state.errors.append(_first_line(error))
                        if len(state.errors) < self.node_attempts:
                            pending[submit(state)] = state
                        else:
                            finish(state, self._record_lost(store, state))
                        continue
                    state.nodes_tried.append(shipment.node["node_id"])
                    if shipment.outcome.status == "failed" and len(state.nodes_tried) < self.node_attempts and not pinned:
                        state.errors.append(shipment.outcome.error or "failed")
                        pending[submit(state)] = state
                        continue
                    finish(state, self._store_shipment(store, state, shipment))
                if time.time() - last_check > 1.0:
                    last_check = time.time()
                    nodes = [node for node in ray.nodes() if node["Alive"]]
                    for ref, state in list(pending.items()):
                        if self._unplaceable(state, nodes):
                            ray.cancel(ref, force=True)
                            pending.pop(ref)
                            finish(state, self._record_unplaceable(store, state))
                    try:
                        running = ray.get(board.snapshot.remote(), timeout=5)
                    except (ray.exceptions.RayError, TimeoutError):
                        running = {}  # progress only: a lost board must not stop the run
                    in_flight = sum(state.job.key in running for state in pending.values())
                    status = ClusterStatus(
                        envs, len(pending) - in_flight, in_flight, counts["done"], counts["failed"], len(nodes)
                    )
                    if run_one.describe:
                        run_one.describe(status.summary())
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            ray.kill(board)
        return outcomes

    def _unplaceable(self, state: _JobState, alive_nodes: list[dict]) -> bool:
        """True once no live node has offered the job's resources for ``wait_for_nodes_seconds``."""
        if any(state.resources.offered_by(node) for node in alive_nodes):
            state.missing_since = None
            return False
        state.missing_since = state.missing_since or time.time()
        return time.time() - state.missing_since >= self.wait_for_nodes_seconds

    def _store_shipment(self, store: ResultStore, state: _JobState, shipment: Shipment) -> JobOutcome:
        """Write a worker's results into the store exactly like a local run: harness files, then records,
        then the manifest last (plus where it ran); only then is the job reported."""
        job = state.job
        store.write_env(job)
        job_dir = store.job_dir(job)
        store.scratch_dir(job)  # clears harness output a killed earlier run may have left
        for relative, data in shipment.files.items():
            target = (job_dir / relative).resolve()
            if job_dir not in target.parents:
                raise InputError(f"worker sent a file outside the job directory: {relative!r}", path=job_dir)
            atomic_write_bytes(target, data)
        ray_info = {
            **shipment.node,
            "staging_dir": shipment.staging_dir,
            "resources": state.resources.to_dict(),
            "nodes_tried": state.nodes_tried,
            "earlier_errors": state.errors,
        }
        manifest = {**shipment.manifest, "executor": "ray", "ray": ray_info}
        if shipment.records is not None:
            store.write_done(job, _rebase_sources(shipment.records, shipment.staging_dir, job_dir), manifest)
        else:
            store.write_failed(job, manifest)
        return shipment.outcome

    def _record_lost(self, store: ResultStore, state: _JobState) -> JobOutcome:
        error = f"lost on the Ray cluster after {len(state.errors)} attempts: {state.errors[-1]}"
        return self._record_failure(store, state, error)

    def _record_unplaceable(self, store: ResultStore, state: _JobState) -> JobOutcome:
        error = (
            f"no live Ray node offers {state.resources.summary()} (hardware label {state.job.env.hardware!r}); "
            f"start nodes with --resources or change the label"
        )
        return self._record_failure(store, state, error)

    def _record_failure(self, store: ResultStore, state: _JobState, error: str) -> JobOutcome:
        job = state.job
        store.write_env(job)
        store.write_failed(
            job,
            {
                "job": job.key,
                "env": job.env.public_dict(),
                "error": error,
                "executor": "ray",
                "ray": {"resources": state.resources.to_dict(), "nodes_tried": state.nodes_tried, "earlier_errors": state.errors},
                "started": state.submitted,
                "seconds": time.time() - state.submitted,
                "attempts": len(state.errors),
            },
        )
        return JobOutcome(job, "failed", 0, time.time() - state.submitted, len(state.errors), error)


def _rebase_sources(records: pd.DataFrame, staging_dir: str, job_dir: Path) -> pd.DataFrame:
    """Point record sources at the harness files' copies in the store, as a local run's records do."""

    def rebase(source):
        if isinstance(source, str) and source.startswith(staging_dir + "/"):
            return str(job_dir) + source[len(staging_dir) :]
        return source

    return records.assign(source=records["source"].map(rebase))


def _first_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}".strip()
