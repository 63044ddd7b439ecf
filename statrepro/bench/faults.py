"""`statrepro bench faults`: the fault matrix against the real llama.cpp server, one run per fault.

A fault-free run of gsm8k through the fault proxy (bench/fault_proxy.py) comes first. Then each proxy fault
spoils every try of one request (its retries are spent: that item must be a missing run with its reason) and
the first try of the next (retried: it must recover). Last, a managed llama.cpp server is killed with SIGKILL
during the second of two jobs (it must be restarted once, the first job kept, the second run again). Each row
says what was injected, retried, recovered and counted missing, what was scored wrong against the fault-free
run (must be 0), finished jobs lost (must be 0) and whether the verdict against the fault-free run changed
(must be "no" unless missing runs force inconclusive).
"""

from __future__ import annotations

import json
import signal
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console

from ..envfile import validate_env
from ..stats.verdict import INCONCLUSIVE
from .fault_proxy import FAULTS

KILL = "kill-server"
LOGPROB_FAULTS = ("no-logprobs", "short-logprobs")  # only log-likelihood requests ask for logprobs


@dataclass(frozen=True)
class FaultRow:
    """What one fault did to one run."""

    fault: str
    injected: int
    retried: int
    recovered: int
    missing: int
    scored_wrong: int
    jobs_lost: int
    verdict: str
    verdict_changed: str
    reference: str  # the fault-free run's verdict against itself
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)


def fault_env(name: str, engine: dict, *, items: int, max_tokens: int, seeds: list[int], ppl: bool = False):
    """gsm8k by generation; ``ppl``: mmlu_redux (marketing) by log-likelihood, the requests that ask for logprobs."""
    benchmarks = {"mmlu_redux": {"mode": "ppl", "subsets": ["marketing"], "limit": items}} if ppl else {"gsm8k": {"limit": items, "num_fewshot": 0}}
    return validate_env({
        "name": name, "model": {"path": "embedded", "quantization": "gguf"}, "engine": engine,
        "generation": {"temperature": 0.0, "max_tokens": max_tokens, "repeat_penalty": 1.0},
        "harness": {"name": "lm-eval", "apply_chat_template": not ppl}, "benchmarks": benchmarks, "seeds": seeds,
    })


def run_env(env, store, data_dir: Path, console: Console):
    from ..run.orchestrate import get_executor, load_env_records, run_environments
    from ..run.plan import plan_jobs

    with store.locked(wait=True):
        run_environments([env], store, get_executor("local", max_workers=1), data_dir=data_dir, console=console)
    manifests = [store.manifest(job) or {} for job in plan_jobs([env]) if store.is_done(job)]
    return load_env_records(env, store), manifests


def scored_wrong(clean, faulted) -> int:
    """Items of the faulted run whose score or answer differs from the fault-free run's (per seed: greedy
    decoding answers every seed alike)."""
    reference = {row.item_key: (str(row.score), str(row.prediction)) for row in clean.itertuples()}
    answers = [(row.item_key, (str(row.score), str(row.prediction))) for row in faulted.itertuples()]
    return sum(reference.get(key, answer) != answer for key, answer in answers)


# The small model scores about 0 on gsm8k, where a relative margin is 0: the verdicts use 10 absolute points.
VERDICT_MARGIN = 0.10


def verdict_against(clean, faulted, reference: str | None) -> tuple[str, str]:
    from ..analysis import AnalysisOptions, analyze
    from ..stats.rules import VerdictRules

    rules = VerdictRules(tolerance=VERDICT_MARGIN, margin_kind="absolute")
    verdict = analyze(clean, faulted, AnalysisOptions(rules=rules, unpaired="missing")).decision.verdict
    if reference is None or verdict == reference:
        return verdict, "no"
    return verdict, "no (missing runs: inconclusive)" if verdict == INCONCLUSIVE else "YES"


def _row(fault, injected, clean, faulted, manifests, jobs_lost, reference) -> FaultRow:
    requests = [m.get("requests") or {} for m in manifests]
    missing = [entry for m in manifests for entry in m.get("missing_runs") or ()]
    verdict, changed = verdict_against(clean, faulted, reference) if not faulted.empty else (INCONCLUSIVE, "no (every run missing)")
    return FaultRow(
        fault=fault, injected=injected, retried=sum(r.get("retries", 0) for r in requests),
        recovered=sum(r.get("recovered", 0) for r in requests), missing=len(missing),
        scored_wrong=scored_wrong(clean, faulted), jobs_lost=jobs_lost, verdict=verdict, verdict_changed=changed, reference=reference,
        reasons=tuple(sorted({entry["reason"] for entry in missing})),
    )


def _kill_during_second_job(server_dir: Path, store_root: Path, killed: list[float], stop: threading.Event) -> None:
    """SIGKILL the managed server once the second job's harness is sending requests."""
    while not stop.wait(0.2):
        done = list(store_root.glob("kill-*/gsm8k-*/seed-*/manifest.json"))
        logs = [log for log in store_root.glob("kill-*/gsm8k-*/seed-*/harness.log") if not (log.parent / "manifest.json").exists()]
        if done and any("Requesting API" in log.read_text(errors="replace") for log in logs):
            for pid_file in server_dir.rglob("*.pid"):
                pid = json.loads(pid_file.read_text())["pid"]
                os.kill(pid, signal.SIGKILL)
                killed.append(time.time())
            return


def _kill_row(clean, store, data_dir, items, max_tokens, max_retries, timeout, reference, console) -> FaultRow:
    env = fault_env(KILL, {"kind": "llama-cpp", "max_retries": max_retries, "timeout": timeout}, items=items,
               max_tokens=max_tokens, seeds=[0, 1])
    killed: list[float] = []  # when each kill was sent
    stop = threading.Event()
    watcher = threading.Thread(target=_kill_during_second_job, args=(store.root / "servers", store.root, killed, stop), daemon=True)
    watcher.start()
    try:
        records, manifests = run_env(env, store, data_dir, console)
    finally:
        stop.set()
        watcher.join()
    # The first job finished before the kill: it must still be in the store, not run again after the restart.
    first = [m for m in manifests if m.get("seed") == 0]
    lost = 0 if first and killed and first[0]["started"] + first[0]["seconds"] < killed[0] else 1
    row = _row(KILL, len(killed), clean, records, manifests, lost, reference)
    restarted = int(bool(killed))
    return FaultRow(**{**row.to_dict(), "retried": restarted, "recovered": restarted if len(manifests) == 2 else 0,
                       "missing": 2 * items - len(records)})


def fault_matrix(
    data_dir: Path,
    store_root: Path,
    *,
    items: int = 20,
    max_tokens: int = 16,
    max_retries: int = 2,
    timeout: float = 20.0,
    faults: tuple[str, ...] = (*FAULTS, KILL),
    console: Console | None = None,
) -> list[FaultRow]:
    """Run the fault matrix (module docstring) into ``store_root``; one FaultRow per fault."""
    from ..engines.llama_cpp import llama_cpp_server
    from ..run.store import ResultStore
    from .fault_proxy import FaultProxy

    console = console or Console(stderr=True)
    store = ResultStore(store_root)
    rows: list[FaultRow] = []
    with llama_cpp_server(work_dir=store_root, repeat_penalty=1.0) as server:
        # stalls outlast the guard's timeout; Retry-After stays well inside a request's budget
        with FaultProxy(server.base_url, stall_seconds=timeout + 5, retry_after=1.0) as proxy:
            # one request at a time (llama.cpp's server has one slot anyway): the scripted faults hit requests in order
            engine = {"kind": "openai", "base_url": proxy.base_url, "served_model": server.served_model,
                      "max_retries": max_retries, "timeout": timeout, "concurrency": 1}
            clean_runs: dict[bool, tuple] = {}  # by ppl: the fault-free records and their verdict against themselves

            def clean_run(ppl: bool) -> tuple:
                if ppl not in clean_runs:
                    console.print(f"fault-free run: {items} {'mmlu_redux (ppl)' if ppl else 'gsm8k'} items", markup=False)
                    env = fault_env(f"clean{'-ppl' if ppl else ''}", engine, items=items, max_tokens=max_tokens, seeds=[0], ppl=ppl)
                    records, _ = run_env(env, store, data_dir, console)
                    clean_runs[ppl] = records, verdict_against(records, records, None)[0]
                return clean_runs[ppl]

            for fault in (f for f in faults if f != KILL):
                ppl = fault in LOGPROB_FAULTS
                clean, reference = clean_run(ppl)
                console.print(f"fault {fault}", markup=False)
                before = proxy.injected[fault]
                # one request's every try, then the next one's first (ppl: after the capability probe's request)
                proxy.script(*([None] if ppl else []), *[fault] * (max_retries + 1), fault)
                env = fault_env(f"fault-{fault}", engine, items=items, max_tokens=max_tokens, seeds=[0], ppl=ppl)
                records, manifests = run_env(env, store, data_dir, console)
                proxy.clear()  # nothing left over for the next fault
                rows.append(_row(fault, proxy.injected[fault] - before, clean, records, manifests, 0, reference))
            if KILL in faults:
                clean, reference = clean_run(False)
    if KILL in faults:
        console.print("fault kill-server: SIGKILL of the managed llama.cpp server during the second of two jobs", markup=False)
        rows.append(_kill_row(clean, store, data_dir, items, max_tokens, max_retries, timeout, reference, console))
    return rows


def fault_table(rows: list[FaultRow]):
    """The matrix as a rich table; scored wrong and jobs lost must be 0, the verdict unchanged."""
    from rich.table import Table

    def must_be_zero(count: int) -> str:
        return f"[red]{count}![/]" if count else "0"

    table = Table(title=f"faults during a run (real llama.cpp server); verdicts against the fault-free run, margin {VERDICT_MARGIN:g} absolute")
    for column in ("fault", "injected", "retried", "recovered", "counted missing", "scored wrong", "finished jobs lost", "verdict changed"):
        table.add_column(column, justify="left" if column in ("fault", "verdict changed") else "right")
    for row in rows:
        table.add_row(
            row.fault, str(row.injected), str(row.retried), str(row.recovered), str(row.missing),
            must_be_zero(row.scored_wrong), must_be_zero(row.jobs_lost),
            f"{row.verdict_changed}: {row.verdict} (fault-free: {row.reference})",
        )
    return table


def run_fault_bench(
    *, data_dir: Path | None, items: int, max_tokens: int, max_retries: int, timeout: float, faults: tuple[str, ...],
    keep: Path | None = None,
) -> list[FaultRow]:
    """Run the matrix in a temporary store (or ``keep``) and print the table and each missing run's reason."""
    import tempfile

    from ..benchmarks import resolve_data_dir

    console = Console(width=None if Console().is_terminal else 130)
    data_dir = resolve_data_dir(data_dir, ["gsm8k", *(["mmlu_redux"] if set(faults) & set(LOGPROB_FAULTS) else [])])
    with tempfile.TemporaryDirectory(prefix="statrepro-faults-") as scratch:
        root = Path(keep) if keep else Path(scratch)
        rows = fault_matrix(data_dir, root, items=items, max_tokens=max_tokens, max_retries=max_retries, timeout=timeout,
                            faults=faults, console=Console(stderr=True))
    console.print(fault_table(rows))
    for row in rows:
        for reason in row.reasons:
            console.print(f"{row.fault}: missing run, reason: {reason}", markup=False, highlight=False, soft_wrap=True)
    return rows
