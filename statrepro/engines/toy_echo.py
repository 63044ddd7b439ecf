"""Engine kind ``toy-echo``: a stdlib OpenAI-compatible server that answers every request with "42".

It exists to show that an engine kind is one module plus one registry line; it is removed again."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from .contract import Capabilities, EngineKind
from .process import managed_server
from .servers import ServerInfo, loopback_base_url

_SERVER = """
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Handler(BaseHTTPRequestHandler):
    def _send(self, payload):
        body = json.dumps(payload).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def do_GET(self):
        self._send({"data": [{"id": "echo"}]})
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._send({"choices": [{"text": "42", "message": {"role": "assistant", "content": "42"}, "finish_reason": "stop"}]})
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


class ToyEcho(EngineKind):
    """A toy server that answers every request with 42, started on 127.0.0.1 and stopped by statrepro."""

    name = "toy-echo"
    managed = True
    capabilities = Capabilities(
        in_process=False, prompt_logprobs=False, token_logprobs=False, request_seed=False, concurrent_sampling=True
    )
    default_repeat_penalty = 1.0

    @contextmanager
    def serve(self, env, work_dir) -> Iterator[ServerInfo]:
        def command(port: int) -> list[str]:
            return [sys.executable, "-c", _SERVER, str(port)]

        with managed_server(command, name="toy echo server", log_path=work_dir / "toy-echo.log", startup_timeout=30) as (port, process):
            yield ServerInfo(
                kind=self.name, base_url=loopback_base_url(port), served_model="echo", log_path=str(work_dir / "toy-echo.log"),
                pid=process.pid, command=tuple(command(port)), supports_request_seed=self.capabilities.request_seed,
            )
