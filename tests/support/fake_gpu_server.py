"""Faithful fakes of ``vllm serve`` and ``sglang serve`` (tests/support/bin/vllm, tests/support/bin/sglang).

vLLM and SGLang need CUDA, so no test here can start the real servers. These fakes stand in for them on PATH
with what statrepro relies on: the same command-line spelling (vLLM: ``serve MODEL --host --port
--served-model-name ...``; SGLang: ``serve --model-path MODEL --host --port --served-model-name ...``), the same
health and version endpoints (vLLM ``GET /health`` and ``GET /version``; SGLang ``GET /health`` and
``GET /get_server_info`` with ``version``), the OpenAI endpoints (the fault-injecting fake of tests/support/fakes,
serving the name given by ``--served-model-name``), and SIGTERM ending the process. Stdlib only.

What ``statrepro doctor`` asks a running server is answered in the real servers' JSON shapes, read from their
source (not run here):

- vLLM ``GET /v1/models``: ``ModelCard`` (vllm/entrypoints/openai/engine/protocol.py and
  models/serving.py ``show_available_models``): ``id`` the served name, ``owned_by: "vllm"``, ``root`` the model
  path, ``parent: null``, ``max_model_len`` (``--max-model-len``, else the model's ``max_position_embeddings``),
  ``permission``. ``GET /version``: ``{"version": ...}``.
- SGLang ``GET /v1/models`` (sglang/srt/entrypoints/http_server.py ``available_models``): ``ModelCard`` with
  ``id`` and ``root`` the served name, ``owned_by: "sglang"``, ``max_model_len`` (the model config's context
  length: ``--context-length``, else ``max_position_embeddings``). ``GET /get_server_info``: every server
  argument (``dataclasses.asdict(server_args)``; the fake lists those statrepro reads or sets, with SGLang's
  defaults), the scheduler info (``max_total_num_tokens``, ``max_req_input_len``), ``internal_states`` and
  ``version``. ``GET /get_model_info``: ``model_path``, ``tokenizer_path``, ``is_generation``,
  ``preferred_sampling_params``, ``weight_version``.

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


def _context_length(argv: list[str], option: str, model: str) -> int | None:
    """The served context: the option when given, else the model config's max_position_embeddings."""
    if option in argv:
        return int(_option(argv, option))
    try:
        return json.loads((Path(model) / "config.json").read_text(encoding="utf-8")).get("max_position_embeddings")
    except (OSError, ValueError):
        return None


def _vllm_routes(argv: list[str], model: str, served: str) -> tuple[dict, dict]:
    """(extra GET routes, /v1/models card fields) of `vllm serve`."""
    card = {"created": 0, "owned_by": "vllm", "root": model, "parent": None,
            "max_model_len": _context_length(argv, "--max-model-len", model), "permission": [{"object": "model_permission"}]}
    return {"/version": (200, {"version": VERSIONS["vllm"]})}, card


def _sglang_routes(argv: list[str], model: str, served: str) -> tuple[dict, dict]:
    """(extra GET routes, /v1/models card fields) of `sglang serve`."""
    context = _context_length(argv, "--context-length", model)
    random_seed = _option(argv, "--random-seed")
    server_args = {
        "model_path": model, "tokenizer_path": model, "served_model_name": served, "dtype": _option(argv, "--dtype", "auto"),
        "quantization": _option(argv, "--quantization"), "context_length": int(context) if "--context-length" in argv else None,
        "random_seed": int(random_seed) if random_seed is not None else None,
        "sampling_defaults": _option(argv, "--sampling-defaults", "model"),
        "preferred_sampling_params": _option(argv, "--preferred-sampling-params"),
        "disable_radix_cache": "--disable-radix-cache" in argv,
        "enable_deterministic_inference": "--enable-deterministic-inference" in argv,
        "weight_version": "default",
    }
    server_info = {**server_args, "max_total_num_tokens": 65536, "max_req_input_len": (context or 4096) - 1,
                   "internal_states": [{}], "version": VERSIONS["sglang"]}
    model_info = {"model_path": model, "tokenizer_path": model, "is_generation": True,
                  "preferred_sampling_params": server_args["preferred_sampling_params"], "weight_version": "default"}
    routes = {"/get_server_info": (200, server_info), "/get_model_info": (200, model_info)}
    return routes, {"created": 0, "owned_by": "sglang", "root": served, "max_model_len": context}


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
    routes, card = (_vllm_routes if flavour == "vllm" else _sglang_routes)(argv, model, served)
    fake = FakeOpenAI(model=served, get_routes={"/health": health, **routes}, model_card=card)
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
