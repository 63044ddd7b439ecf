"""A fault soak (docs/hardening.md): gsm8k ITEMS x SEEDS against the real llama.cpp server through the fault
proxy, once fault-free and once with 10% of completion requests faulted at random (every fault but the stall),
then the two compared. Prints one JSON object: requests, faults injected, retries, recovered, missing, scored
wrong, the verdicts. Usage: PYTHONPATH=. python scripts/soak_faults.py ROOT ITEMS SEEDS (e.g. /tmp/soak 200 0,1,2)"""
import json, sys, time
from collections import Counter
from pathlib import Path
from rich.console import Console
from statrepro.bench.fault_proxy import FAULTS, FaultProxy
from statrepro.bench.faults import fault_env, run_env, scored_wrong, verdict_against
from statrepro.engines.llama_cpp import llama_cpp_server
from statrepro.run.store import ResultStore

root, items, seeds = Path(sys.argv[1]), int(sys.argv[2]), [int(s) for s in sys.argv[3].split(",")]
data = Path("/work/shared/data")
store = ResultStore(root / "store")
console = Console(stderr=True)
t0 = time.time()
with llama_cpp_server(work_dir=root, repeat_penalty=1.0) as server:
    with FaultProxy(server.base_url, stall_seconds=25, retry_after=1.0, rate=0.10, kinds=tuple(f for f in FAULTS if f != "stall"), seed=7) as proxy:
        base = {"kind": "openai", "base_url": proxy.base_url, "served_model": server.served_model, "max_retries": 2, "timeout": 20.0, "concurrency": 1}
        proxy.rate = 0.0
        clean, _ = run_env(fault_env("soak-clean", base, items=items, max_tokens=16, seeds=seeds), store, data, console)
        sent_clean = proxy.requests
        proxy.rate = 0.10
        faulted, manifests = run_env(fault_env("soak-faulted", base, items=items, max_tokens=16, seeds=seeds), store, data, console)
        requests = [m.get("requests") or {} for m in manifests]
        missing = [e for m in manifests for e in m.get("missing_runs") or ()]
        reference, _ = verdict_against(clean, clean, None)
        verdict, changed = verdict_against(clean, faulted, reference)
        print(json.dumps({
            "items": items, "seeds": seeds, "fault_rate": 0.10, "faults": [f for f in FAULTS if f != "stall"],
            "requests_sent_faulted_run": proxy.requests - sent_clean, "faults_injected": dict(proxy.injected),
            "guard_requests": sum(r.get("requests", 0) for r in requests), "retries": sum(r.get("retries", 0) for r in requests),
            "recovered": sum(r.get("recovered", 0) for r in requests), "counted_missing": len(missing),
            "missing_reasons": sorted({m["reason"] for m in missing}),
            "scored_wrong": scored_wrong(clean, faulted), "jobs_done": len(manifests),
            "verdict_clean_vs_clean": reference, "verdict_clean_vs_faulted": verdict, "verdict_changed": changed,
            "seconds": round(time.time() - t0),
        }, indent=1))
