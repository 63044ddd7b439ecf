"""A fault-injecting HTTP proxy for `statrepro bench faults` and the fault tests: it sits in front of a real
engine (llama.cpp's server, or a fake in tests/support) and spoils chosen completion requests the ways
servers fail during a long run.

Faults (``FAULTS``), each applied to one POST /v1/completions or /v1/chat/completions request:

- ``429``: HTTP 429 with ``Retry-After`` in seconds; ``429-date``: the same as an HTTP-date
- ``500``, ``503``: an error answer (503 with ``Retry-After``)
- ``reset``: the engine's answer cut off halfway through its body by a TCP reset
- ``stall``: no answer for ``stall_seconds`` (past the client's timeout), then the engine's answer
- ``truncated``: a 200 whose JSON body is cut in half
- ``wrong-model``: the engine's answer, naming another model
- ``no-logprobs``: the engine's answer without its logprobs
- ``short-logprobs``: the engine's answer with two token logprobs fewer than tokens

Which requests get a fault: ``script(...)`` (the next requests, in order; None passes one), ``always(fault)``
(every request until ``always(None)``), or ``rate`` (each request with that chance, a fault drawn from
``kinds`` with the proxy's seeded generator: the soak). Toxiproxy was not used: it does not install from
PyPI, and it corrupts TCP streams, not HTTP answers (no 429 with Retry-After, no JSON cut in half).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import random
import socket
import struct
import threading
import time
from collections import Counter, deque

from ..engines.local_proxy import LocalProxy, forwarded_headers

FAULTS = ("429", "429-date", "500", "503", "reset", "stall", "truncated", "wrong-model", "no-logprobs", "short-logprobs")
GENERATION_PATHS = ("/v1/completions", "/v1/chat/completions")


class FaultProxy(LocalProxy):
    """``with FaultProxy(upstream_base_url) as proxy:`` then send requests to ``proxy.base_url``."""

    thread_name = "statrepro-fault-proxy"
    handler_cancellation = True

    def __init__(
        self,
        upstream: str,
        *,
        stall_seconds: float = 5.0,
        retry_after: float = 1.0,
        rate: float = 0.0,
        kinds: tuple[str, ...] = FAULTS,
        seed: int = 0,
    ) -> None:
        super().__init__()
        unknown = sorted(set(kinds) - set(FAULTS))
        if unknown:
            raise ValueError(f"unknown faults {unknown}; known: {', '.join(FAULTS)}")
        self.upstream = upstream.rstrip("/").removesuffix("/v1")
        self.stall_seconds, self.retry_after, self.rate, self.kinds = stall_seconds, retry_after, rate, kinds
        self.requests = 0  # completion requests seen
        self.injected: Counter[str] = Counter()
        self._script: deque[str | None] = deque()
        self._always: str | None = None
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def script(self, *faults: str | None) -> None:
        """The next completion requests get these faults, in order (None: that request passes)."""
        with self._lock:
            self._script.extend(faults)

    def clear(self) -> None:
        """Drop the faults scripted and not used yet."""
        with self._lock:
            self._script.clear()

    def always(self, fault: str | None) -> None:
        """Every completion request gets ``fault`` (None: stop)."""
        with self._lock:
            self._always = fault

    def _next_fault(self) -> str | None:
        with self._lock:
            self.requests += 1
            if self._script:
                fault = self._script.popleft()
            elif self._always:
                fault = self._always
            elif self.rate and self._rng.random() < self.rate:
                fault = self._rng.choice(self.kinds)
            else:
                fault = None
            if fault:
                self.injected[fault] += 1
            return fault

    async def _forward(self, session, request, body: bytes) -> tuple[int, str, bytes]:
        headers = forwarded_headers(request.headers)
        url = self.upstream + request.path + (f"?{request.query_string}" if request.query_string else "")
        async with session.request(request.method, url, data=body, headers=headers) as response:
            return response.status, response.headers.get("content-type", "application/json"), await response.read()

    async def _handle(self, session, request):
        from aiohttp import web

        body = await request.read()
        fault = self._next_fault() if request.method == "POST" and request.path in GENERATION_PATHS else None
        if fault in ("429", "429-date", "500", "503"):
            headers = {}
            if fault == "429":
                headers["Retry-After"] = f"{self.retry_after:g}"
            elif fault in ("429-date", "503"):
                # an HTTP-date has whole seconds: round up so the wait is never shorter than asked
                headers["Retry-After"] = email.utils.formatdate(math.ceil(time.time() + self.retry_after), usegmt=True)
            status = int(fault[:3])
            return web.json_response({"error": {"message": f"injected fault {fault}"}}, status=status, headers=headers)
        if fault == "stall":
            await asyncio.sleep(self.stall_seconds)
        status, content_type, answer = await self._forward(session, request, body)
        if fault == "reset":
            return await self._reset_midway(request, answer)
        if fault == "truncated":
            answer = answer[: len(answer) // 2]
        elif fault in ("wrong-model", "no-logprobs", "short-logprobs") and status == 200:
            answer = json.dumps(_spoil(json.loads(answer), fault)).encode()
        return web.Response(status=status, body=answer, headers={"Content-Type": content_type})

    @staticmethod
    async def _reset_midway(request, answer: bytes):
        from aiohttp import web

        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.content_length = len(answer)
        await response.prepare(request)
        await response.write(answer[: len(answer) // 2])
        transport = request.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:  # linger 0: close() sends a TCP RST, not a FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if transport is not None:
            transport.abort()
        raise asyncio.CancelledError  # the connection is gone: nothing more to send


def _spoil(answer: dict, fault: str) -> dict:
    if fault == "wrong-model":
        answer["model"] = f"not-{answer.get('model')}"
    for choice in answer.get("choices") or ():
        if fault == "no-logprobs":
            choice["logprobs"] = None
        elif fault == "short-logprobs" and isinstance(choice.get("logprobs"), dict):
            logprobs = choice["logprobs"]
            logprobs["token_logprobs"] = (logprobs.get("token_logprobs") or [])[:-2]
    return answer
