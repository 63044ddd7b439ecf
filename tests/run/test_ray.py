"""The ray executor: placement by hardware label, same store as local runs, retries, a node killed mid-run.

The cluster tests start a real Ray cluster on loopback as separate `ray start` processes (a head and two
workers, each worker with its own hardware resource) and run a small matrix with the stub harness.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

import stub_harness
from statrepro.config import EngineSpec, EnvConfig
from statrepro.envfile import validate_env
from statrepro.harness.records import check_unique
from statrepro.run.executors import LocalExecutor
from statrepro.run.orchestrate import run_environments
from statrepro.run.plan import plan_jobs
from statrepro.run.ray_executor import RayExecutor, hardware_resource, task_resources
from statrepro.run.integrity import verify_store
from statrepro.run.store import MANIFEST, RECORDS, ResultStore

ray = pytest.importorskip("ray")

# Ray resolves 127.0.0.1 to the machine's outward address; keeping loopback keeps the cluster private.
_KEEP_LOOPBACK = "import ray._private.services as services; services.resolve_ip_for_localhost = lambda host: host"
_RAY_CLI = f"import sys; {_KEEP_LOOPBACK}; from ray.scripts.scripts import main; sys.exit(main())"
_CLUSTER_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",  # loopback-only test cluster
    # Notice a killed node within seconds instead of half a minute.
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


def _env(name: str, tmp_path: Path, *, hardware: str = "cpu", sleep: float = 0.1, extra: list[str] = (), seeds=2) -> EnvConfig:
    return validate_env(
        {
            "name": name,
            "model": {"path": str(tmp_path)},  # the stub needs no weights, only an existing path
            "hardware": hardware,
            "harness": {"extra_args": ["--sleep", str(sleep), *extra]},
            "benchmarks": {"gsm8k": {"limit": 4}, "ceval": {"limit": 3}},
            "seeds": seeds,
        }
    )


@pytest.fixture
def stub_in_this_process(monkeypatch):
    from statrepro import harness

    monkeypatch.setitem(harness.HARNESSES, "lm-eval", stub_harness.StubHarness())


def _connect(address: str | None = None, **init_options) -> None:
    """Connect this test process with the stub harness installed in every Ray worker."""
    ray.cloudpickle.register_pickle_by_value(stub_harness)
    ray.init(
        address=address,
        runtime_env={"worker_process_setup_hook": stub_harness.install},
        log_to_driver=False,
        configure_logging=False,
        **init_options,
    )


def _job_files(store: ResultStore, envs: list[EnvConfig]) -> dict[str, str]:
    """Each finished job's records file, with the store's own location (in record sources) factored out."""
    root = str(store.root).replace("/", "\\/")  # as pandas escapes it in JSON
    return {
        job.key: (store.job_dir(job) / RECORDS).read_text().replace(root, "<store>")
        for job in plan_jobs(envs)
        if store.is_done(job)
    }


def _manifests(store: ResultStore, envs: list[EnvConfig]) -> dict[str, dict]:
    return {job.key: json.loads((store.job_dir(job) / MANIFEST).read_text()) for job in plan_jobs(envs)}


# ---------------------------------------------------------------------------------------------------
# Fast: no cluster


def test_hardware_labels_map_to_ray_resources(tmp_path):
    assert hardware_resource("a100") == "accelerator_type:A100"
    assert hardware_resource(" H100 ") == "accelerator_type:H100"
    assert hardware_resource("cpu") is None
    on_cpu = task_resources(_env("c", tmp_path))
    assert (on_cpu.num_cpus, on_cpu.num_gpus, on_cpu.resources) == (1.0, 0.0, {})
    on_gpu = task_resources(_env("g", tmp_path, hardware="a100"))
    assert on_gpu.num_gpus == 1.0 and on_gpu.resources == {"accelerator_type:A100": 0.001}
    served = _env("s", tmp_path, hardware="a100").model_copy(
        update={"engine": EngineSpec(kind="openai", base_url="http://10.0.0.5:8000/v1")}
    )
    assert task_resources(served).num_gpus == 0.0  # the GPU is at the server, not at the harness
    labelled_cpu = task_resources(_env("l", tmp_path, hardware="cpu-a"))
    assert labelled_cpu.num_gpus == 0.0 and labelled_cpu.resources == {"accelerator_type:CPU-A": 0.001}
    node = {"Resources": {"CPU": 4.0, "accelerator_type:CPU-A": 1.0}}
    assert labelled_cpu.offered_by(node) and not on_gpu.offered_by(node)


def test_unreachable_cluster_is_a_one_line_input_error():
    from statrepro.errors import InputError
    from statrepro.run.ray_executor import connect

    with pytest.raises(InputError, match="cannot reach the Ray cluster at 127.0.0.1:1"):
        connect("127.0.0.1:1")
    assert not ray.is_initialized()


def test_core_install_does_not_import_ray():
    code = "import sys, statrepro.cli, statrepro.run.orchestrate, statrepro.run.ray_executor; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_local_ray_instance_writes_the_same_store_as_the_local_executor(tmp_path, stub_in_this_process, monkeypatch):
    import ray._private.services as services

    # Keep every Ray socket on loopback (Ray would otherwise resolve 127.0.0.1 to the outward address).
    monkeypatch.setattr(services, "resolve_ip_for_localhost", lambda host: host)
    for name, value in _CLUSTER_ENV.items():
        monkeypatch.setenv(name, value)
    envs = [_env("fp32", tmp_path, seeds=2)]
    local_store = ResultStore(tmp_path / "local")
    assert not run_environments(envs, local_store, LocalExecutor()).failed
    ray_store = ResultStore(tmp_path / "ray")
    _connect(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")  # as the cluster tests
    try:
        summary = run_environments(envs, ray_store, RayExecutor())
        # A second run (a restarted driver) finds everything in the store and submits nothing.
        again = run_environments(envs, ray_store, RayExecutor())
    finally:
        ray.shutdown()
    assert [o.status for o in summary.outcomes] == ["done"] * 4
    assert {o.status for o in again.outcomes} == {"skipped"}
    assert _job_files(ray_store, envs) == _job_files(local_store, envs)
    assert len(_job_files(ray_store, envs)) == 4
    manifests = _manifests(ray_store, envs)
    assert all(m["status"] == "done" and m["executor"] == "ray" and m["ray"]["node_id"] for m in manifests.values())
    assert (ray_store.root / "fp32-{}".format(envs[0].fingerprint()) / "env.json").is_file()
    # The driver checksums the shipped harness files as a local run does.
    assert [check.status for check in verify_store(ray_store.root).jobs] == ["ok"] * 4


# ---------------------------------------------------------------------------------------------------
# Slow: a real three-node cluster on loopback


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LoopbackCluster:
    """A head and worker nodes as separate `ray start --block` processes, each in its own process group,
    so one node can be killed (and everything stopped) by process id."""

    def __init__(self) -> None:
        self.temp_dir = tempfile.mkdtemp(prefix="srray", dir="/tmp")  # short: Ray's socket paths are limited
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *, head: bool = False, resources: dict | None = None, env: dict | None = None) -> None:
        argv = [
            sys.executable, "-c", _RAY_CLI, "start", "--block",
            "--node-ip-address=127.0.0.1", "--num-cpus=1", "--object-store-memory=80000000",
            "--disable-usage-stats", f"--temp-dir={self.temp_dir}",
            f"--dashboard-agent-listen-port={_free_port()}", f"--metrics-export-port={_free_port()}",
            f"--runtime-env-agent-port={_free_port()}",
        ]  # fmt: skip
        argv += ["--head", f"--port={self.port}", "--include-dashboard=false"] if head else [f"--address={self.address}"]
        if resources:
            argv.append(f"--resources={json.dumps(resources)}")
        log = open(Path(self.temp_dir) / f"{name}.log", "wb")
        self.nodes[name] = subprocess.Popen(
            argv, env={**os.environ, **_CLUSTER_ENV, **(env or {})}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_for_head(self, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.5)
        raise RuntimeError(f"Ray head did not come up; see {self.temp_dir}/head.log")

    def kill(self, name: str) -> None:
        process = self.nodes.pop(name)
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.nodes):
            self.kill(name)
        # Ray puts its worker processes in sessions of their own; they all name our temp dir.
        for pid in self.stray_processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def stray_processes(self) -> list[int]:
        pids = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and self.temp_dir.encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                continue
        return pids


def _node_with(resource: str) -> str:
    return next(node["NodeID"] for node in ray.nodes() if node["Alive"] and resource in node["Resources"])


def _wait_for_nodes(cluster: LoopbackCluster, count: int, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while sum(node["Alive"] for node in ray.nodes()) < count:
        if time.time() > deadline:
            raise RuntimeError(f"worker nodes did not join; see logs in {cluster.temp_dir}")
        time.sleep(0.5)


def _start_three_nodes(cluster: LoopbackCluster) -> None:
    cluster.start("head", head=True)
    cluster.wait_for_head()
    _connect(cluster.address)
    both = {"accelerator_type:CPU-SHARED": 1}
    # One node at a time: nodes starting together in one session directory race for socket names.
    # Worker a is "broken" for harnesses run with --fail-on-broken-node.
    cluster.start("a", resources={"accelerator_type:CPU-A": 1, **both}, env={"STATREPRO_STUB_BROKEN": "1"})
    _wait_for_nodes(cluster, 2)
    cluster.start("b", resources={"accelerator_type:CPU-B": 1, **both})
    _wait_for_nodes(cluster, 3)


@pytest.fixture(scope="module")
def cluster():
    cluster = LoopbackCluster()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in _CLUSTER_ENV.items():
            patch.setenv(name, value)
        import ray._private.services as services

        patch.setattr(services, "resolve_ip_for_localhost", lambda host: host)
        try:
            _start_three_nodes(cluster)
            yield cluster
        finally:
            ray.shutdown()
            cluster.stop()


@pytest.mark.slow
def test_jobs_land_on_their_hardware_and_the_store_matches_local(cluster, tmp_path, stub_in_this_process):
    on_a, on_b = _env("on-a", tmp_path, hardware="cpu-a"), _env("on-b", tmp_path, hardware="cpu-b")
    nowhere = _env("on-h100", tmp_path, hardware="h100", seeds=1)
    executor = RayExecutor(cluster.address, wait_for_nodes_seconds=2)
    ray_store = ResultStore(tmp_path / "ray")
    summary = run_environments([on_a, on_b, nowhere], ray_store, executor)

    statuses = {o.job.key: o.status for o in summary.outcomes}
    assert [statuses[job.key] for job in plan_jobs([on_a, on_b])] == ["done"] * 8
    failed = [o for o in summary.outcomes if o.status == "failed"]
    assert len(failed) == 2 and all("no live Ray node offers" in o.error and "accelerator_type:H100" in o.error for o in failed)

    node_a, node_b = _node_with("accelerator_type:CPU-A"), _node_with("accelerator_type:CPU-B")
    assert {m["ray"]["node_id"] for m in _manifests(ray_store, [on_a]).values()} == {node_a}
    assert {m["ray"]["node_id"] for m in _manifests(ray_store, [on_b]).values()} == {node_b}
    assert {m["status"] for m in _manifests(ray_store, [nowhere]).values()} == {"failed"}

    local_store = ResultStore(tmp_path / "local")
    run_environments([on_a, on_b], local_store, LocalExecutor())
    assert _job_files(ray_store, [on_a, on_b]) == _job_files(local_store, [on_a, on_b])
    jobs = plan_jobs([on_a, on_b])
    ray_records, local_records = ray_store.load_records(jobs), local_store.load_records(jobs)
    assert len(ray_records) == 2 * 2 * (4 + 3)
    assert ray_records.drop(columns="source").equals(local_records.drop(columns="source"))
    assert all(Path(source).is_file() for source in ray_records["source"])  # harness files copied into the store


@pytest.mark.slow
def test_environments_on_different_hardware_run_side_by_side_on_their_own_nodes(cluster, tmp_path, stub_in_this_process):
    # The first job of each side waits at the meeting point for the other side's first job, so with the two
    # sides side by side their jobs overlap however late either node starts its Ray worker.
    meet = ["--meet", str(tmp_path / "meet")]
    on_a = _env("side-a", tmp_path, hardware="cpu-a", extra=meet)
    on_b = _env("side-b", tmp_path, hardware="cpu-b", extra=meet)
    executor = RayExecutor(cluster.address)
    assert executor.runs_side_by_side([on_a, on_b])
    assert not executor.runs_side_by_side([on_a, _env("also-a", tmp_path, hardware="cpu-a")])
    store = ResultStore(tmp_path / "store")
    summary = run_environments([on_a, on_b], store, executor)
    assert [o.status for o in summary.outcomes] == ["done"] * 8

    manifests_a, manifests_b = _manifests(store, [on_a]).values(), _manifests(store, [on_b]).values()
    assert {m["ray"]["node_id"] for m in manifests_a} == {_node_with("accelerator_type:CPU-A")}
    assert {m["ray"]["node_id"] for m in manifests_b} == {_node_with("accelerator_type:CPU-B")}
    # Each job's interval [started, started + seconds] on the one clock of this machine. One after the other,
    # every job of b would start after the last job of a ended (the first one having waited in vain); side by
    # side, each side starts before the other's last job ends.
    starts_a, ends_a = [m["started"] for m in manifests_a], [m["started"] + m["seconds"] for m in manifests_a]
    starts_b, ends_b = [m["started"] for m in manifests_b], [m["started"] + m["seconds"] for m in manifests_b]
    assert min(starts_b) < max(ends_a) and min(starts_a) < max(ends_b)


@pytest.mark.slow
def test_a_job_failing_on_a_broken_node_is_retried_on_another(cluster, tmp_path):
    env = _env("flaky", tmp_path, hardware="cpu-shared", sleep=0.5, extra=["--fail-on-broken-node"], seeds=3)
    store = ResultStore(tmp_path / "store")
    summary = run_environments([env], store, RayExecutor(cluster.address))
    assert [o.status for o in summary.outcomes] == ["done"] * 6
    node_a, node_b = _node_with("accelerator_type:CPU-A"), _node_with("accelerator_type:CPU-B")
    manifests = _manifests(store, [env]).values()
    assert {m["ray"]["node_id"] for m in manifests} == {node_b}  # a is broken: nothing can finish there
    retried = [m["ray"] for m in manifests if len(m["ray"]["nodes_tried"]) == 2]
    assert retried, "no job was scheduled on the broken node first; the retry path was not exercised"
    assert all(r["nodes_tried"] == [node_a, node_b] and "broken" in r["earlier_errors"][0] for r in retried)


@pytest.mark.slow
def test_killing_a_worker_mid_run_finishes_every_job_once(cluster, tmp_path):
    starts = tmp_path / "starts"  # the stub notes each harness start here
    env = _env("survivor", tmp_path, hardware="cpu-shared", sleep=3.0, extra=["--counter-dir", str(starts)], seeds=3)
    store = ResultStore(tmp_path / "store")
    executor = RayExecutor(cluster.address)
    killed = threading.Event()

    def kill_b_once_both_run() -> None:
        # Two harnesses running at once means one on each worker (one CPU each; the head lacks the label).
        deadline = time.time() + 60
        while time.time() < deadline:
            if len(list(starts.glob("*.count"))) >= 2:
                cluster.kill("b")
                killed.set()
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_b_once_both_run, daemon=True)
    killer.start()
    summary = run_environments([env], store, executor)
    killer.join()
    assert killed.is_set(), "the kill never happened while two jobs ran"
    jobs = plan_jobs([env])
    assert sorted(o.status for o in summary.outcomes) == ["done"] * 6
    assert sorted(o.job.key for o in summary.outcomes) == sorted(job.key for job in jobs)  # each reported once
    records = store.load_records(jobs)
    check_unique(records, "ray")
    assert len(records) == 3 * (4 + 3)
    assert not any(node["Alive"] and "accelerator_type:CPU-B" in node["Resources"] for node in ray.nodes())
    harness_runs = sum(len(path.read_text().splitlines()) for path in starts.glob("*.count"))
    assert harness_runs > 6  # the job killed with b ran again elsewhere, yet was stored once
