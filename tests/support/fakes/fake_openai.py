"""A fault-injecting OpenAI-compatible server for tests, on 127.0.0.1 in a background thread.

It answers GET /v1/models (and any ``get_routes``), POST /v1/completions and POST /v1/chat/completions from a
rule table (prompt or last chat message -> answer text, else ``default_answer``). Each generation request takes
the next action from ``schedule`` (then "ok" once the schedule is empty):

    ok         answer normally
    slow       wait ``slow_seconds``, then answer normally
    429 / 500  error status; the body echoes the request's Authorization header (a realistic leak)
    400        permanent error, same echo
    drop       send headers and half a body, then cut the connection
    malformed  200 with a truncated JSON body
    bad_shape  200 with valid JSON that has no choices
    die        stop listening for good and cut this connection without an answer

Every request is recorded in ``requests`` (path, headers, JSON body) so tests can count tries.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ACTIONS = ("ok", "slow", "429", "500", "400", "drop", "malformed", "bad_shape", "die")


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None


@dataclass
class FakeOpenAI:
    answers: dict[str, str] = field(default_factory=dict)
    default_answer: str = "42"
    model: str = "fake-model"
    slow_seconds: float = 1.0
    schedule: list[str] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    get_routes: dict[str, tuple[int, Any]] = field(default_factory=dict)
    """Extra GET paths -> (status, JSON body), e.g. a server's /health and /version."""
    model_card: dict[str, Any] = field(default_factory=dict)
    """Extra fields of the one GET /v1/models entry, as a real server adds them (owned_by, root, max_model_len)."""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.dead = False

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, *actions: str) -> FakeOpenAI:
        """Append actions for the next generation requests, in order."""
        unknown = set(actions) - set(ACTIONS)
        assert not unknown, f"unknown fake actions {unknown}"
        with self._lock:
            self.schedule.extend(actions)
        return self

    def generation_requests(self) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path.endswith("completions")]

    def start(self, port: int = 0) -> FakeOpenAI:
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        if not self.dead:
            self._server.shutdown()
        self._server.server_close()
        self.dead = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _die(self) -> None:
        self.dead = True
        # shutdown() waits for serve_forever, which runs in another thread than this handler.
        self._server.shutdown()
        self._server.server_close()

    def _next_action(self) -> str:
        with self._lock:
            return self.schedule.pop(0) if self.schedule else "ok"

    def _answer_for(self, body: dict[str, Any]) -> str:
        if "messages" in body:
            key = body["messages"][-1]["content"] if body["messages"] else ""
        else:
            key = body.get("prompt", "")
        return self.answers.get(key, self.default_answer)


def _handler_for(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def _record(self, body: dict[str, Any] | None) -> None:
            with fake._lock:
                fake.requests.append(RecordedRequest(self.path, dict(self.headers.items()), body))

        def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def _error(self, status: int) -> None:
            echoed = self.headers.get("Authorization", "")
            message = {"error": {"message": f"fake error {status}; you sent Authorization: {echoed}"}}
            extra = {"Retry-After": "0"} if status == 429 else None
            self._send(status, json.dumps(message).encode(), extra)

        def do_GET(self) -> None:
            self._record(None)
            if self.path.rstrip("/") == "/v1/models":
                card = {"id": fake.model, "object": "model", **fake.model_card}
                self._send(200, json.dumps({"object": "list", "data": [card]}).encode())
            elif self.path in fake.get_routes:
                status, payload = fake.get_routes[self.path]
                self._send(status, json.dumps(payload).encode())
            else:
                self._send(404, b'{"error": "not found"}')

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                self._record(None)
                self._send(400, b'{"error": "request body is not JSON"}')
                return
            self._record(body)
            path = self.path.rstrip("/")
            if path not in ("/v1/completions", "/v1/chat/completions"):
                self._send(404, b'{"error": "not found"}')
                return
            action = fake._next_action()
            if action == "slow":
                threading.Event().wait(fake.slow_seconds)
            if action in ("ok", "slow"):
                self._send(200, json.dumps(_answer(path, fake._answer_for(body), fake.model)).encode())
            elif action in ("429", "500", "400"):
                self._error(int(action))
            elif action == "malformed":
                self._send(200, b'{"choices": [{"text": "4')
            elif action == "bad_shape":
                self._send(200, b'{"unexpected": true}')
            elif action == "drop":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b'{"choices": [')
                self.wfile.flush()
                self._cut()
            elif action == "die":
                self._cut()
                fake._die()

        def _cut(self) -> None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    return Handler


def _answer(path: str, text: str, model: str) -> dict[str, Any]:
    if path.endswith("chat/completions"):
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        return {"object": "chat.completion", "model": model, "choices": [choice]}
    return {"object": "text_completion", "model": model, "choices": [{"index": 0, "text": text, "finish_reason": "stop"}]}
