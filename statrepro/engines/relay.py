"""The request guard: an HTTP relay statrepro puts between a harness and a served engine for one job.

A harness such as lm-eval talks HTTP to the engine itself and handles faults its own way: it retries without
honouring Retry-After, crashes the whole job when its retries are spent, and scores whatever a 200 answer
holds (an answer for another model, a logprob list cut short). The guard owns every request instead:

- each request is sent on to the engine with ``RetryPolicy`` (``engine.max_retries``, ``engine.timeout``):
  exponential backoff with jitter, Retry-After honoured (seconds or HTTP-date), a Retry-After past the
  request's budget ends its retries at once;
- each answer to a completion request is validated before the harness sees it (``answer_fault``): valid
  JSON, choices with text, the model asked for, and for log-likelihood requests token logprobs present and
  as long as the token list; anything else is a transient fault and retried;
- a request whose retries are spent gets a placeholder answer (empty text, empty logprobs) so the harness
  carries on, and its prompt and reason go to ``failures``: the job drops the items those prompts belong to
  as missing runs with that reason (``run.jobs``), so a placeholder is never scored;
- an engine that stops answering (connection refused and, for a managed server, its process gone) is
  ``engine_down``: the guard answers 502 from then on so the harness stops, and the job reports it.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..redaction import redact_secrets
from .client import MAX_REASON_CHARS, RetryPolicy, parse_retry_after
from .local_proxy import LocalProxy, forwarded_headers

GENERATION_PATHS = ("/completions", "/chat/completions")


def answer_fault(path: str, request: dict[str, Any], answer: Any) -> str | None:
    """Why a 200 answer to a completion request cannot be used (None: it can)."""
    if not isinstance(answer, dict) or not isinstance(answer.get("choices"), list) or not answer["choices"]:
        return "answer has no choices"
    asked, got = request.get("model"), answer.get("model")
    if asked and got is not None and got != asked:
        return f"answer for the wrong model ({got!r}, asked {asked!r})"
    for choice in answer["choices"]:
        if not isinstance(choice, dict):
            return "a choice is not an object"
        text = (choice.get("message") or {}).get("content") if path.endswith("/chat/completions") else choice.get("text")
        if not isinstance(text, str) and not (path.endswith("/chat/completions") and text is None):
            return "a choice has no text"
        if request.get("logprobs") and not path.endswith("/chat/completions"):
            fault = _logprobs_fault(choice.get("logprobs"), echo=bool(request.get("echo")))
            if fault:
                return fault
    return None


def _logprobs_fault(logprobs: Any, *, echo: bool) -> str | None:
    if not isinstance(logprobs, dict) or not isinstance(logprobs.get("token_logprobs"), list):
        return "logprobs missing from the answer"
    lengths = {name: len(logprobs[name]) for name in ("tokens", "token_logprobs", "top_logprobs") if isinstance(logprobs.get(name), list)}
    if len(set(lengths.values())) > 1:
        return "logprobs of the wrong length (" + ", ".join(f"{n} {name}" for name, n in lengths.items()) + ")"
    if echo and lengths["token_logprobs"] < 2:  # an echo answer lists the prompt's tokens and the generated one
        return f"logprobs of the wrong length ({lengths['token_logprobs']} for an echoed prompt)"
    return None


def placeholder_answer(path: str, request: dict[str, Any]) -> dict[str, Any]:
    """What the harness gets for a request that failed for good: well-formed and empty, never scored."""
    if path.endswith("/chat/completions"):
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": "error"}
    else:
        choice = {"index": 0, "text": "", "finish_reason": "error",
                  "logprobs": {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}}
    return {"object": "text_completion", "model": request.get("model"), "choices": [choice], "statrepro_missing": True}


@dataclass
class RelayStats:
    """What the guard saw over one job."""

    requests: int = 0
    retries: int = 0
    recovered: int = 0  # requests answered after at least one failed try
    failed: int = 0  # requests given up: their items are missing runs
    faults: dict[str, int] = field(default_factory=dict)  # failed tries by first words of the reason

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "retries": self.retries, "recovered": self.recovered, "failed": self.failed,
                "faults": dict(self.faults)}


class _Retry(Exception):
    def __init__(self, reason: str, retry_after: float | None = None, refused: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.retry_after, self.refused = reason, retry_after, refused


class RequestRelay(LocalProxy):
    """The guard for one job: ``with RequestRelay(...) as relay:`` then point the harness at ``relay.base_url``."""

    thread_name = "statrepro-relay"

    def __init__(
        self,
        upstream: str,
        *,
        policy: RetryPolicy,
        secrets: list[str] | tuple[str, ...] = (),
        engine_alive: Callable[[], bool] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.policy = policy
        self.stats = RelayStats()
        self.failures: list[dict[str, Any]] = []
        self.engine_down: str | None = None
        self._secrets = tuple(secrets)
        self._engine_alive = engine_alive
        self._rng = rng or random.Random()

    def _client_timeout(self) -> float | None:
        return self.policy.timeout_seconds

    def write_failures(self, path: Path) -> None:
        path.write_text("".join(json.dumps(failure) + "\n" for failure in self.failures), encoding="utf-8")

    async def _handle(self, session, request):
        from aiohttp import web

        suffix = request.path.removeprefix("/v1")
        body = await request.read()
        headers = forwarded_headers(request.headers)
        if self.engine_down:
            return web.json_response({"error": {"message": f"statrepro: {self.engine_down}"}}, status=502)
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        # A streamed answer is passed on as it is (retried on HTTP and connection faults only): lm-eval never streams.
        guarded = request.method == "POST" and suffix in GENERATION_PATHS and isinstance(payload, dict) and not payload.get("stream")
        self.stats.requests += guarded
        started, attempt = time.monotonic(), 0
        while True:
            attempt += 1
            try:
                status, answer_headers, answer = await self._try_once(session, request.method, suffix, request.query_string, headers, body, payload if guarded else None)
                if attempt > 1 and guarded:
                    self.stats.recovered += 1
                return web.Response(status=status, body=answer, headers=answer_headers)
            except _Retry as fault:
                reason = redact_secrets(fault.reason, self._secrets)[:MAX_REASON_CHARS]
                if guarded:
                    kind = reason.split(":")[0].split(" (")[0]
                    self.stats.faults[kind] = self.stats.faults.get(kind, 0) + 1
                if fault.refused and self._engine_alive is not None and not self._engine_alive():
                    self.engine_down = f"the managed server is gone (its process died; {reason})"
                    return web.json_response({"error": {"message": f"statrepro: {self.engine_down}"}}, status=502)
                wait, why_not = self.policy.next_wait(attempt, time.monotonic() - started, self._rng, fault.retry_after)
                if wait is None:
                    if fault.refused:
                        self.engine_down = f"{self.upstream} stopped answering ({reason}; {why_not})"
                        return web.json_response({"error": {"message": f"statrepro: {self.engine_down}"}}, status=502)
                    if not guarded:
                        return web.json_response({"error": {"message": f"statrepro: {reason}; {why_not}"}}, status=502)
                    self.stats.failed += 1
                    self.failures.append({"path": suffix, "prompt": payload.get("prompt"), "messages": payload.get("messages"),
                                          "reason": f"{reason}; {why_not}", "tries": attempt})
                    return web.json_response(placeholder_answer(suffix, payload))
                self.stats.retries += guarded
                await asyncio.sleep(wait)

    async def _try_once(self, session, method, suffix, query, headers, body, payload):
        """(status, headers, body) of one good answer; _Retry for a transient fault. 4xx other than 429 pass through."""
        import aiohttp

        url = self.upstream + suffix + (f"?{query}" if query else "")
        try:
            async with session.request(method, url, data=body, headers=headers) as response:
                data = await response.read()
                status = response.status
                content_type = response.headers.get("content-type", "application/json")
                retry_after = parse_retry_after(response.headers.get("retry-after"))
        except asyncio.TimeoutError:
            raise _Retry(f"timed out after {self.policy.timeout_seconds:g} s") from None
        except aiohttp.ClientConnectorError as error:
            raise _Retry(f"connection refused ({error.os_error or error})", refused=True) from None
        except aiohttp.ClientError as error:  # reset or dropped mid-answer, a truncated body
            raise _Retry(f"connection failed ({type(error).__name__}: {error})") from None
        if status == 429 or status >= 500:
            raise _Retry(f"HTTP {status}: {data[:MAX_REASON_CHARS].decode('utf-8', 'replace')}", retry_after)
        if payload is not None and status == 200:
            try:
                answer = json.loads(data)
            except ValueError:
                raise _Retry(f"malformed answer (not JSON): {data[:80]!r}") from None
            fault = answer_fault(suffix, payload, answer)
            if fault:
                raise _Retry(fault)
        return status, {"Content-Type": content_type}, data


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            state = handle.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
