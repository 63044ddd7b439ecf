"""Asking a running OpenAI-compatible server what it is and which defaults it applies (``statrepro doctor``).

``LiveServer`` is the one view of a server that the engine kinds' ``live_factors`` read: GET requests only,
never a generation, one try each with a short timeout (a doctor must not wait out the retries of a run), and
every answer cached, so that several kinds can look at the same ``/v1/models`` while the server is being
identified. ``engines.kinds.ask_endpoint`` drives it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import EngineError

# Hosts whose model directories are this machine's own: a served model path is read from disk only there.
THIS_MACHINE = ("127.0.0.1", "localhost", "::1")
# The settings whose server-side default a request that omits them gets, as doctor factors.
SERVER_DEFAULTS = ("repeat_penalty", "temperature", "top_p")


def server_root(url: str) -> str:
    """``scheme://host:port[/prefix]`` of a URL as harnesses record it (``.../v1``, ``.../v1/chat/completions``)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EngineError(f"not an http(s) server URL: {url!r}")
    prefix = parts.path.split("/v1", 1)[0].rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{prefix}"


class LiveServer:
    """One running server, seen through GET requests answered with JSON (cached per path)."""

    def __init__(self, url: str, *, timeout: float, api_key: str | None = None) -> None:
        self.root = server_root(url)
        self.timeout = timeout
        self._api_key = api_key
        self._answers: dict[str, Any] = {}

    def __repr__(self) -> str:  # never shows the key
        return f"LiveServer({self.root!r})"

    def _fetch(self, path: str):
        from .client import OpenAIClient, RetryPolicy

        policy = RetryPolicy(timeout_seconds=self.timeout, max_tries=1)
        with OpenAIClient(self.root, api_key=self._api_key, policy=policy) as client:
            return client.request_json("GET", path)

    def _answer(self, path: str):
        if path not in self._answers:
            self._answers[path] = self._fetch(path)
        return self._answers[path]

    def get(self, path: str) -> Any:
        """The JSON answer to ``GET path`` (from the server root), or None: no such route, an error, not JSON."""
        from .client import RequestFailure

        answer = self._answer(path)
        return None if isinstance(answer, RequestFailure) else answer

    def check_answers(self) -> None:
        """EngineError (one line) unless the server answers at all; any HTTP status counts as an answer."""
        from .client import RequestFailure

        answer = self._answer("/v1/models")
        if isinstance(answer, RequestFailure) and answer.status is None and answer.cause in ("connection", "timeout"):
            raise EngineError(f"{self.root} does not answer: {answer.reason}")

    def served_model_card(self) -> dict[str, Any]:
        """The entry of ``GET /v1/models`` when the server lists exactly one model, else {}."""
        answer = self.get("/v1/models")
        cards = answer.get("data") if isinstance(answer, dict) else None
        return cards[0] if isinstance(cards, list) and len(cards) == 1 and isinstance(cards[0], dict) else {}

    @property
    def on_this_machine(self) -> bool:
        return urlsplit(self.root).hostname in THIS_MACHINE


def served_model_defaults(server: LiveServer, model_dir: Any) -> dict[str, Any]:
    """What a server that takes its defaults from the served model directory applies to a request that omits
    them: generation_config.json's repetition_penalty (transformers' 1.0 when unset) and config.json's
    max_position_embeddings. Read only for a server on this machine serving a local directory (no route
    reports them); elsewhere the same path may hold another model, so {}."""
    if not server.on_this_machine or not isinstance(model_dir, str) or not Path(model_dir).is_dir():
        return {}
    generation = _json_file(Path(model_dir) / "generation_config.json")
    config = _json_file(Path(model_dir) / "config.json")
    return {"repeat_penalty": generation.get("repetition_penalty", 1.0), "max_context": config.get("max_position_embeddings")}


def _json_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def generic_factors(server: LiveServer) -> dict[str, Any]:
    """What any OpenAI-compatible server says, whatever it is: its one model and, where it lists it, the served
    context (``max_model_len``). The engine stays unknown."""
    card = server.served_model_card()
    return {"engine": None, "model": card.get("id"), "max_context": card.get("max_model_len")}
