"""A local HTTP proxy on a thread of its own: the base of the request guard (relay.py) and of the fault proxy
(bench/fault_proxy.py), which both sit between a client and an engine and pass its requests on."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import TypeVar

from .process import LOOPBACK

# Hop-by-hop and length headers a proxy recomputes: never passed on.
_DROPPED_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "accept-encoding"}
START_SECONDS = 30.0
_Proxy = TypeVar("_Proxy", bound="LocalProxy")


def forwarded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The request's headers that go on to the engine."""
    return {name: value for name, value in headers.items() if name.lower() not in _DROPPED_HEADERS}


class LocalProxy:
    """``with proxy:`` serves every path on 127.0.0.1 at ``base_url`` (ending in /v1) until the block ends, each
    request handled by the subclass's ``_handle(session, request)`` with one aiohttp client session for the engine."""

    thread_name = "statrepro-proxy"
    # Cancel a handler when its client hangs up (the fault proxy's stalls and resets want it; the guard finishes its retries).
    handler_cancellation = False

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self.base_url = ""

    def _client_timeout(self) -> float | None:
        """The client session's total timeout per request to the engine (None: none)."""
        return None

    async def _handle(self, session, request):
        raise NotImplementedError

    def __enter__(self: _Proxy) -> _Proxy:
        ready = threading.Event()
        errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._serve, args=(ready, errors), name=self.thread_name, daemon=True)
        self._thread.start()
        ready.wait(START_SECONDS)
        if errors:
            raise errors[0]
        if not self.base_url:
            raise RuntimeError(f"{self.thread_name} did not start in {START_SECONDS:g} s")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stopping is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _serve(self, ready: threading.Event, errors: list[BaseException]) -> None:
        from aiohttp import web

        async def main() -> None:
            import aiohttp

            self._stopping = asyncio.Event()
            timeout = aiohttp.ClientTimeout(total=self._client_timeout())
            async with aiohttp.ClientSession(timeout=timeout) as session:
                app = web.Application(client_max_size=1 << 30)

                async def handle(request):
                    return await self._handle(session, request)

                app.router.add_route("*", "/{tail:.*}", handle)
                runner = web.AppRunner(app, access_log=None, handler_cancellation=self.handler_cancellation)
                await runner.setup()
                site = web.TCPSite(runner, LOOPBACK, 0)
                await site.start()
                port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - aiohttp names no public accessor
                self.base_url = f"http://{LOOPBACK}:{port}/v1"
                ready.set()
                await self._stopping.wait()
                await runner.cleanup()

        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(main())
        except BaseException as error:  # noqa: BLE001 - handed to the thread that waits on ``ready``
            errors.append(error)
        finally:
            ready.set()
            self._loop.close()
