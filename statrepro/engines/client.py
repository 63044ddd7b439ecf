"""A small OpenAI-compatible client that retries transient failures and reports permanent ones as values.

Transient (retried with exponential backoff and jitter, up to ``RetryPolicy.max_tries``): connection
errors, timeouts, dropped connections, HTTP 429 and 5xx, and 200 answers that are not the expected JSON.
Permanent (returned at once): any other 4xx. Neither kind raises: callers get a Completion or a
RequestFailure, and may call ``.unwrap()`` to turn a failure into a one-line EngineError.
The API key travels only in the Authorization header and is redacted from every message and log line.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import time
from datetime import timezone
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import httpx

from ..redaction import redact_secrets
from .errors import EngineError

logger = logging.getLogger("statrepro.engines")

MAX_REASON_CHARS = 300


@dataclass(frozen=True)
class RetryPolicy:
    """How long one request may take and how hard to retry it.

    ``budget_seconds`` (None: unbounded) is the most one request may take in all, its tries and the waits
    between them included; a wait that would end past it ends the retries at once.
    """

    timeout_seconds: float = 120.0
    max_tries: int = 5
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 20.0
    jitter_fraction: float = 0.5
    budget_seconds: float | None = None

    @classmethod
    def for_engine(cls, max_retries: int, timeout: float) -> RetryPolicy:
        """The policy of ``engine.max_retries`` and ``engine.timeout``: each try may take ``timeout`` seconds
        and the request (max_retries + 1) x timeout in all."""
        return cls(timeout_seconds=timeout, max_tries=max_retries + 1, budget_seconds=(max_retries + 1) * timeout)

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Backoff before try ``attempt + 1``: base * 2^(attempt-1), capped, +- jitter; Retry-After wins if longer
        (capped at max_delay_seconds only when the policy has no budget to bound it)."""
        backoff = min(self.base_delay_seconds * 2 ** (attempt - 1), self.max_delay_seconds)
        backoff *= 1 + self.jitter_fraction * (2 * rng.random() - 1)
        if retry_after is not None:
            backoff = max(backoff, retry_after if self.budget_seconds is not None else min(retry_after, self.max_delay_seconds))
        return max(backoff, 0.0)

    def next_wait(self, attempt: int, elapsed: float, rng: random.Random, retry_after: float | None = None) -> tuple[float | None, str]:
        """After failed try ``attempt``, ``elapsed`` seconds into the request: (seconds to wait, "") before the
        next try, or (None, why not) when the tries or the budget are spent."""
        if attempt >= self.max_tries:
            return None, f"gave up after {attempt} tr{'y' if attempt == 1 else 'ies'}"
        wait = self.delay(attempt, rng, retry_after)
        if self.budget_seconds is not None:
            left = self.budget_seconds - elapsed
            if wait > left:
                what = f"Retry-After {retry_after:g} s" if retry_after is not None and retry_after >= wait else f"the next wait ({wait:.1f} s)"
                return None, f"gave up after {attempt} tr{'y' if attempt == 1 else 'ies'}: {what} exceeds the remaining budget ({max(left, 0.0):.1f} s)"
        return wait, ""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header, either delay-seconds ("120") or an HTTP-date
    ("Wed, 21 Oct 2026 07:28:00 GMT", RFC 9110); a date in the past is 0. None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(seconds, 0.0) if math.isfinite(seconds) else None


@dataclass(frozen=True)
class Completion:
    """A successful generation."""

    text: str
    finish_reason: str | None
    tries: int
    response: dict[str, Any] = field(repr=False)
    ok = True

    def unwrap(self) -> Completion:
        return self

    def summary(self) -> str:
        return f"ok after {self.tries} tr{'y' if self.tries == 1 else 'ies'} ({self.finish_reason}): {self.text[:60]!r}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RequestFailure:
    """A request that will not succeed: ``permanent`` (4xx, not retried) or retries exhausted."""

    reason: str
    status: int | None
    permanent: bool
    tries: int
    cause: Literal["connection", "timeout", "http", "malformed"] = "http"
    ok = False

    def unwrap(self) -> Completion:
        raise EngineError(self.summary())

    def summary(self) -> str:
        kind = "rejected" if self.permanent else f"gave up after {self.tries} tries"
        return f"request {kind}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Outcome = Completion | RequestFailure


class _Transient(Exception):
    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None, cause: str = "http") -> None:
        super().__init__(reason)
        self.reason, self.status, self.retry_after, self.cause = reason, status, retry_after, cause


class _Permanent(Exception):
    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


def _retry_after_seconds(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("retry-after"))


class OpenAIClient:
    """Completions and chat completions against one OpenAI-compatible base_url (``http://host:port/v1``)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy or RetryPolicy()
        self._secrets = (api_key,) if api_key else ()
        self._sleep = sleep
        self._rng = rng or random.Random()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(headers=headers, timeout=self.policy.timeout_seconds)

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIClient({self.base_url!r}, api_key={'set' if self._secrets else 'none'})"

    def __enter__(self) -> OpenAIClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def complete(
        self,
        prompt: str,
        *,
        model: str,
        max_tokens: int,
        temperature: float = 0.0,
        top_p: float | None = None,
        seed: int | None = None,
        stop: Sequence[str] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> Outcome:
        """POST /completions; the answer text is ``choices[0].text``."""
        body = self._generation_body(model, max_tokens, temperature, top_p, seed, stop, extra)
        body["prompt"] = prompt
        return self._post_with_retries("/completions", body, lambda choice: choice["text"])

    def chat(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        model: str,
        max_tokens: int,
        temperature: float = 0.0,
        top_p: float | None = None,
        seed: int | None = None,
        stop: Sequence[str] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> Outcome:
        """POST /chat/completions; the answer text is ``choices[0].message.content``."""
        body = self._generation_body(model, max_tokens, temperature, top_p, seed, stop, extra)
        body["messages"] = [dict(message) for message in messages]
        return self._post_with_retries("/chat/completions", body, lambda choice: choice["message"]["content"])

    def request_json(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any] | RequestFailure:
        """Any JSON endpoint under base_url (same retry rules): the decoded answer, or a RequestFailure."""
        outcome = self._with_retries(lambda: self._send(method, path, body, lambda data: data))
        return outcome if isinstance(outcome, RequestFailure) else outcome[0]

    def list_models(self) -> list[str] | RequestFailure:
        """Model ids from GET /models (same retry rules)."""
        outcome = self._with_retries(lambda: self._send("GET", "/models", None, lambda data: data["data"]))
        if isinstance(outcome, RequestFailure):
            return outcome
        return [entry["id"] for entry in outcome[0]]

    @staticmethod
    def _generation_body(model, max_tokens, temperature, top_p, seed, stop, extra) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "temperature": temperature}
        if top_p is not None:
            body["top_p"] = top_p
        if seed is not None:
            body["seed"] = seed
        if stop:
            body["stop"] = list(stop)
        body.update(extra or {})
        return body

    def _post_with_retries(self, path: str, body: dict[str, Any], text_of: Callable[[dict], str]) -> Outcome:
        def parse(data: dict) -> tuple[str, str | None]:
            choice = data["choices"][0]
            text = text_of(choice)
            if not isinstance(text, str):
                raise TypeError("answer text is not a string")
            return text, choice.get("finish_reason")

        outcome = self._with_retries(lambda: self._send("POST", path, body, parse))
        if isinstance(outcome, RequestFailure):
            return outcome
        (text, finish_reason), data, tries = outcome
        return Completion(text=text, finish_reason=finish_reason, tries=tries, response=data)

    def _send(self, method: str, path: str, body: dict | None, parse: Callable[[dict], Any]) -> tuple[Any, dict]:
        """One HTTP exchange: the parsed value, or _Transient / RequestFailure raised as exceptions."""
        url = self.base_url + path
        try:
            response = self._http.request(method, url, json=body)
        except httpx.TimeoutException as error:
            raise _Transient(f"timed out after {self.policy.timeout_seconds:g} s ({type(error).__name__})", cause="timeout") from None
        except httpx.TransportError as error:  # refused, reset, dropped mid-response
            raise _Transient(f"connection failed ({type(error).__name__}: {error})", cause="connection") from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Transient(f"HTTP {status}: {response.text[:MAX_REASON_CHARS]}", status, _retry_after_seconds(response))
        if status >= 400:
            raise _Permanent(f"HTTP {status}: {response.text[:MAX_REASON_CHARS]}", status)
        try:
            data = response.json()
            return parse(data), data
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError, AttributeError) as error:
            raise _Transient(f"malformed response ({type(error).__name__}): {response.text[:100]!r}", status, cause="malformed") from None

    def _with_retries(self, attempt_once: Callable[[], tuple[Any, dict]]):
        """(value, data, tries) from the first successful try, else a RequestFailure."""
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                value, data = attempt_once()
                return value, data, attempt
            except _Permanent as error:
                return RequestFailure(redact_secrets(error.reason, self._secrets), error.status, True, attempt)
            except _Transient as error:
                reason = redact_secrets(error.reason, self._secrets)
                wait, why_not = self.policy.next_wait(attempt, time.monotonic() - started, self._rng, error.retry_after)
                if wait is None:
                    if attempt < self.policy.max_tries:  # the budget, not the tries, ended it: say so
                        reason = f"{reason}; {why_not.split(': ', 1)[1]}"
                    return RequestFailure(reason, error.status, False, attempt, error.cause)
                logger.warning("%s: try %d/%d failed (%s); retrying in %.1f s", self.base_url, attempt, self.policy.max_tries, reason, wait)
                self._sleep(wait)
