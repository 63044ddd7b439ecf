"""Faithful fakes of ``vllm serve`` and ``sglang serve`` (tests/support/bin/vllm, tests/support/bin/sglang).

vLLM and SGLang need CUDA, so no test here can start the real servers. These fakes stand in for them on PATH
with what statrepro relies on: the same command-line spelling (vLLM: ``serve MODEL --host --port
--served-model-name ...``; SGLang: ``serve --model-path MODEL --host --port --served-model-name ...``), the same
health and version endpoints (vLLM ``GET /health`` and ``GET /version``; SGLang ``GET /health`` and
``GET /get_server_info`` with ``version``), the OpenAI endpoints (the fault-injecting fake of tests/support/fakes,
serving the name given by ``--served-model-name``), and SIGTERM ending the process. Stdlib only.

Each start appends one JSON line to ``$FAKE_SERVER_RECORD`` (when set): the flavour, the argv, the determinism
environment variables it saw, and its pid. ``$FAKE_SERVER_MODE`` picks a failure:

    ok             serve normally (default)
    crash          print an error and exit 1 before listening (a bad model, an out-of-memory GPU)
    never-healthy  listen, but answer /health with 503 forever (a model that never finishes loading)
    wrong-name     serve the model under another name than --served-model-name
    stubborn       serve normally but ignore SIGTERM (only SIGKILL ends it)
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

# fakes/__init__.py imports pytest; the server module itself is stdlib only, so import it directly.
sys.path.insert(0, str(Path(__file__).resolve().parent / "fakes"))

WATCHED_ENV = ("VLLM_BATCH_INVARIANT", "CUBLAS_WORKSPACE_CONFIG")
VERSIONS = {"vllm": "0.0.0-fake-vllm", "sglang": "0.0.0-fake-sglang"}


def _option(argv: list[str], name: str, default: str | None = None) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else default


def main(flavour: str) -> int:
    argv = sys.argv[1:]
    record = os.environ.get("FAKE_SERVER_RECORD")
    if record:
        entry = {"flavour": flavour, "argv": argv, "env": {k: os.environ[k] for k in WATCHED_ENV if k in os.environ}, "pid": os.getpid()}
        with open(record, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
    mode = os.environ.get("FAKE_SERVER_MODE", "ok")
    if not argv or argv[0] != "serve":
        print(f"usage: {flavour} serve ...", file=sys.stderr)
        return 2
    if mode == "crash":
        print(f"fake {flavour}: CUDA error: no CUDA-capable device is detected", file=sys.stderr, flush=True)
        return 1
    model = argv[1] if flavour == "vllm" else _option(argv, "--model-path")
    served = _option(argv, "--served-model-name", model)
    if mode == "wrong-name":
        served = "some-other-model"
    from fake_openai import FakeOpenAI

    health = (503, {"error": "loading"}) if mode == "never-healthy" else (200, {})
    routes = {"/health": health}
    if flavour == "vllm":
        routes["/version"] = (200, {"version": VERSIONS["vllm"]})
    else:
        routes["/get_server_info"] = (200, {"version": VERSIONS["sglang"], "model_path": model, "random_seed": _option(argv, "--random-seed")})
    fake = FakeOpenAI(model=served, get_routes=routes)
    fake.start(int(_option(argv, "--port", "8000")))
    print(f"fake {flavour}: serving {served!r} on {_option(argv, '--host')}:{_option(argv, '--port')}", flush=True)
    stopped = threading.Event()
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    while not stopped.wait(0.2):
        pass
    fake.stop()
    return 0
