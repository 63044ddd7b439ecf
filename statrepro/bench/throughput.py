"""``statrepro bench run``: what ``engine.concurrency`` buys, and what statrepro costs over the raw harness.

A fake OpenAI-compatible endpoint on 127.0.0.1 answers every request after a fixed latency, with no limit on
requests in flight, so the only thing that changes between rows is the concurrency. For each concurrency the
same gsm8k job runs twice: through statrepro's run path (plan, task files, the ``lm_eval`` subprocess, loading
and storing the records) and as the bare ``lm_eval`` command statrepro built for it. It prints figures; no
test asserts them.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SERVED_MODEL = "bench-model"
# A plausible gsm8k answer: reasoning, then the final line lm-eval's filters extract.
ANSWER = "Let us work it out step by step. 6 times 7 is 42, so the total is 42.\n#### 42"
MAX_BODY_BYTES = 4_000_000


class LatencyEndpoint:
    """An OpenAI-compatible server on 127.0.0.1 that answers each completion after ``latency`` seconds.

    One thread per connection, so any number of requests can be in flight. It records when the first request
    of a measurement arrived and the last answer left (the serving window), and the most requests in flight.
    """

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.reset()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def reset(self) -> None:
        with self._lock:
            self.requests, self.in_flight, self.max_in_flight = 0, 0, 0
            self.first_arrival: float | None = None
            self.last_answer: float | None = None

    @property
    def window_seconds(self) -> float:
        """From the first request's arrival to the last answer since ``reset``."""
        return 0.0 if self.first_arrival is None else self.last_answer - self.first_arrival

    def __enter__(self) -> LatencyEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _arrive(self) -> None:
        with self._lock:
            now = time.monotonic()
            self.first_arrival = now if self.first_arrival is None else self.first_arrival
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1
            self.last_answer = time.monotonic()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": SERVED_MODEL, "object": "model"}]})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY_BYTES)
                self.rfile.read(length)
                path = self.path.rstrip("/")
                if path not in ("/v1/completions", "/v1/chat/completions"):
                    self._send(404, {"error": "not found"})
                    return
                endpoint._arrive()
                try:
                    time.sleep(endpoint.latency)
                    if path.endswith("chat/completions"):
                        choice = {"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}
                    else:
                        choice = {"index": 0, "text": ANSWER, "finish_reason": "stop"}
                    self._send(200, {"object": "completion", "model": SERVED_MODEL, "choices": [choice]})
                finally:
                    endpoint._leave()

        return Handler


@dataclass(frozen=True)
class ThroughputRow:
    """One concurrency: statrepro's and the raw harness's wall times, and the serving windows."""

    concurrency: int
    statrepro_seconds: float
    raw_seconds: float
    window_seconds: float
    requests: int
    max_in_flight: int

    @property
    def overhead(self) -> float:
        return self.statrepro_seconds / self.raw_seconds - 1


def _bench_env(endpoint: LatencyEndpoint, concurrency: int, items: int, data_dir: Path):
    from ..envfile import validate_env

    return validate_env(
        {
            "name": f"concurrency-{concurrency}",
            "engine": {"kind": "openai", "base_url": endpoint.base_url, "served_model": SERVED_MODEL, "concurrency": concurrency},
            "benchmarks": {"gsm8k": {"limit": items}},
            "seeds": [0],
            "data_dir": str(data_dir),
        }
    )


def _time_statrepro(env, work: Path) -> float:
    """Wall seconds of statrepro's run path for the env's one job, into a fresh store."""
    from rich.console import Console

    from ..errors import InputError
    from ..run.executors import LocalExecutor
    from ..run.orchestrate import run_environments
    from ..run.store import ResultStore

    with open(os.devnull, "w") as quiet:
        start = time.perf_counter()
        summary = run_environments([env], ResultStore(work / "store"), LocalExecutor(1), console=Console(file=quiet))
        seconds = time.perf_counter() - start
    if summary.failed:
        raise InputError(f"the statrepro run failed: {summary.failed[0].error}")
    return seconds


def _time_raw_harness(env, work: Path, data_dir: Path, model_path: Path, endpoint_info) -> float:
    """Wall seconds of the bare harness command statrepro builds for the env's job (tasks written beforehand)."""
    from ..errors import InputError
    from ..harness import get_harness
    from ..harness.contract import JobContext
    from ..run.plan import plan_jobs

    work.mkdir(parents=True)
    job = plan_jobs([env])[0]
    invocation = get_harness(env.harness.name).build_invocation(JobContext(job, data_dir, work, model_path, endpoint_info))
    with open(work / "harness.log", "wb") as log:
        start = time.perf_counter()
        completed = subprocess.run(
            invocation.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, **invocation.env}, cwd=work,
        )
        seconds = time.perf_counter() - start
    if completed.returncode != 0:
        raise InputError(f"the raw harness command failed (exit {completed.returncode})", path=work / "harness.log")
    return seconds


def run_throughput_bench(
    *, data_dir: Path, items: int, concurrencies: list[int], latency: float, repeats: int, keep: Path | None = None
) -> list[ThroughputRow]:
    """Measure every concurrency (the fastest of ``repeats`` for each figure) and print the table."""
    from rich.console import Console

    from ..benchmarks import resolve_data_dir
    from ..engines.servers import ServerInfo
    from ..models import resolve_model_path

    console = Console(width=None if Console().is_terminal else 110)
    data_dir = resolve_data_dir(data_dir, ["gsm8k"])
    model_path = resolve_model_path("embedded")  # the tokenizer lm-eval's API models load
    rows = []
    with LatencyEndpoint(latency) as endpoint, tempfile.TemporaryDirectory(prefix="statrepro-bench-") as scratch:
        root = Path(keep) if keep else Path(scratch)
        info = ServerInfo(kind="openai", base_url=endpoint.base_url, served_model=SERVED_MODEL)
        console.print(
            f"fake endpoint {endpoint.base_url}: {latency * 1000:.0f} ms per request, unlimited parallelism; "
            f"gsm8k, {items} items, lm-eval; best of {repeats}",
            soft_wrap=True,
        )
        for concurrency in concurrencies:
            env = _bench_env(endpoint, concurrency, items, data_dir)
            ours, raw, windows = [], [], []
            for attempt in range(repeats):
                endpoint.reset()
                ours.append(_time_statrepro(env, root / f"c{concurrency}-{attempt}"))
                windows.append((endpoint.window_seconds, endpoint.requests, endpoint.max_in_flight))
                endpoint.reset()
                raw.append(_time_raw_harness(env, root / f"c{concurrency}-{attempt}-raw", data_dir, model_path, info))
            window, requests, in_flight = min(windows)
            rows.append(ThroughputRow(concurrency, min(ours), min(raw), window, requests, in_flight))
            console.print(f"concurrency {concurrency}: statrepro {min(ours):.1f} s, raw lm_eval {min(raw):.1f} s", soft_wrap=True)
    console.print(throughput_table(rows, latency))
    return rows


def throughput_table(rows: list[ThroughputRow], latency: float):
    """The figures as a rich table, with the targets: speed-up >= 0.7 x concurrency up to 16, overhead <= 5%."""
    from rich.table import Table

    base = rows[0]
    table = Table(
        title=f"statrepro bench run: {latency * 1000:.0f} ms per request, speed-ups against concurrency {base.concurrency}",
        caption="targets: speed-up >= 0.7 x concurrency up to 16 (window); overhead <= 5%",
        box=None, padding=(0, 0, 0, 2), pad_edge=False, header_style="bold underline",
    )
    for column in ("conc", "statrepro s", "lm_eval s", "overhead", "window s", "speed-up", "wall x", "in flight", "targets"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        speed_up = base.window_seconds / row.window_seconds if row.window_seconds else float("nan")
        checks = []
        if row.concurrency <= 16:
            checks.append("speed ok" if speed_up >= 0.7 * row.concurrency / base.concurrency else "speed MISSED")
        checks.append("ovh ok" if row.overhead <= 0.05 else "ovh MISSED")
        table.add_row(
            str(row.concurrency), f"{row.statrepro_seconds:.1f}", f"{row.raw_seconds:.1f}", f"{row.overhead:+.1%}",
            f"{row.window_seconds:.1f}", f"{speed_up:.1f}x", f"{base.statrepro_seconds / row.statrepro_seconds:.1f}x",
            str(row.max_in_flight), " ".join(checks),
        )
    return table
