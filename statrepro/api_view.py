"""Browsing a result store: ``compare_stored`` builds the report of any two stored environments (the report
builder of ``analyze``, on the store's records), and ``serve_store`` serves the store read-only on a local web
server (``statrepro view``): the index of environments, runs and saved verdicts, a pair picker, the reports,
and the store's files.

The server is starlette served by uvicorn (the ``view`` extra). It answers GET and HEAD only (405 otherwise),
binds 127.0.0.1 unless told otherwise, and serves nothing outside the store: environments are looked up by the
names the store wrote, files are resolved and checked against the root.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .api import AnalyzeOptions, _analysis_options
from .errors import InputError

if TYPE_CHECKING:
    from rich.console import Console

    from .analysis import Analysis

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 8765
READ_METHODS = ("GET", "HEAD")
# Every response: nothing loads from elsewhere and no script runs (the report's own policy), nothing is cached.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


class StoreInUse(InputError):
    """A running `run` or `compare` holds the store's lock: its runs are incomplete until it finishes."""


@dataclass(frozen=True)
class StoredComparison:
    """A report built from the store: the analysis, the report page, and which runs it paired."""

    analysis: Analysis
    html: str
    runs: tuple[str, ...]
    """The ``<benchmark>-<spec>`` runs paired (those both sides ran with the same benchmark options)."""
    skipped: tuple[str, ...]
    """Benchmarks left out, each with why (no shared options, nothing finished on one side)."""


def store_notices(listing) -> list[str]:
    """What the index and the command line say before anything else: a store being written, nothing to compare."""
    notices = []
    if listing.lock_holder:
        notices.append(
            f"The store is being written by a running statrepro run ({listing.lock_holder}): reports wait until it "
            "finishes, since its runs are incomplete. Reload then."
        )
    finished = listing.finished
    if not finished:
        notices.append(
            "The store holds no finished run yet: run `statrepro compare A.yaml B.yaml --store STORE` "
            "(or `statrepro run`) first."
        )
    elif len(finished) < 2:
        notices.append(f"Only one environment ({finished[0].name}) has finished runs: a comparison needs two.")
    return notices


def _paired_runs(env_a, env_b, control) -> tuple[list[str], list[str]]:
    """Per benchmark, the run both sides (and the control) finished with the same options; of several, the one
    with the most seeds on both sides, then items."""
    sides = [env for env in (env_a, env_b, control) if env is not None]
    finished = [{run.directory: run for run in env.runs if run.done} for env in sides]
    chosen, skipped = [], []
    for benchmark in sorted({run.benchmark for env in sides for run in env.runs}):
        shared = [name for name, run in finished[0].items() if run.benchmark == benchmark and all(name in runs for runs in finished)]
        if not shared:
            skipped.append(f"{benchmark}: no run with the same benchmark options finished on every side")
            continue
        chosen.append(max(shared, key=lambda name: (min(len(runs[name].done) for runs in finished), finished[0][name].items)))
    return chosen, skipped


def compare_stored(
    store: str | Path, a: str, b: str, options: AnalyzeOptions | None = None, *, control: str | None = None,
    argv: list[str] | None = None,
) -> StoredComparison:
    """The report of stored environment ``a`` against ``b`` (their store directories, ``<env>-<fingerprint>``),
    with ``control`` (a stored A/A control of ``a``) beside them: the records of the runs both sides ran with the
    same benchmark options, analysed as ``analyze`` does (failed items count as missing, as in ``compare``), and
    report.html from the report builder. Refused while a run holds the store's lock: its runs are incomplete."""
    from .analysis import analyze as analyze_records
    from .report import report_html
    from .run.browse import list_store, load_runs, run_manifest

    options = options or AnalyzeOptions()
    if options.flip_margin is not None and control is None:
        raise InputError("needs the A/A control: pick one", key="--flip-margin")
    listing = list_store(store)
    if listing.lock_holder:
        raise StoreInUse(store_notices(listing)[0], path=listing.root)
    if a == b:
        raise InputError("A and B are the same environment: pick two", path=listing.root)
    env_a, env_b = listing.environment(a), listing.environment(b)
    env_control = listing.environment(control) if control else None
    if env_control is not None and env_control.control_of != env_a.name:
        raise InputError(f"{env_control.name} is not the A/A control of {env_a.name} (that is {env_a.name}.control)", path=listing.root)
    runs, skipped = _paired_runs(env_a, env_b, env_control)
    if not runs:
        raise InputError(
            f"{env_a.name} and {env_b.name} share no finished run with the same benchmark options ({'; '.join(skipped)})",
            path=listing.root,
        )
    records = {side: load_runs(listing.root, env, runs) for side, env in (("a", env_a), ("b", env_b), ("control", env_control)) if env}
    analysis = analyze_records(
        records["a"], records["b"],
        _analysis_options(options, unpaired="intersect" if options.intersect else "missing", seed_level_bootstrap=options.seed_level),
        inputs={"a": env_a.name, "b": env_b.name} | ({"control": env_control.name} if env_control else {}),
        records_control=records.get("control"),
    )
    manifests = {side: run_manifest(listing.root, env, runs) for side, env in (("A", env_a), ("B", env_b))}
    html = report_html(
        analysis, records_a=records["a"], records_b=records["b"], argv=argv or sys.argv,
        manifests={side: manifest for side, manifest in manifests.items() if manifest},
    )
    return StoredComparison(analysis, html, tuple(runs), tuple(skipped))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _ReadOnly:
    """ASGI middleware: GET and HEAD only (405 for every other method, on every path), and the security headers
    on every response."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *((k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items())]
            await send(message)

        if scope["method"] not in READ_METHODS:
            from starlette.responses import PlainTextResponse

            response = PlainTextResponse(
                "statrepro view is read-only: only GET and HEAD\n", status_code=405, headers={"allow": ", ".join(READ_METHODS)}
            )
            return await response(scope, receive, send_with_headers)
        await self.app(scope, receive, send_with_headers)


def _routes(root: Path, options: AnalyzeOptions, say):
    """The pages: index, compare, files. Each bad request is a page saying why, and the same line on the console."""
    from starlette.responses import FileResponse, HTMLResponse
    from starlette.routing import Route

    from .report.store_page import message_html, store_index_html
    from .run.browse import list_store, store_file

    def failure(title: str, error: Exception, status: int) -> HTMLResponse:
        say(f"view: {title}: {error}")
        return HTMLResponse(message_html(title, str(error)), status_code=status)

    def index(request):
        try:
            listing = list_store(root)
        except (InputError, OSError) as error:  # removed or unreadable since the server started
            return failure("cannot read the store", error, 500)
        return HTMLResponse(store_index_html(listing, store_notices(listing)))

    def compare(request):
        a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
        control = request.query_params.get("control") or None
        if not a or not b:
            return failure("cannot compare", InputError("pick two environments, A and B"), 400)
        started = time.monotonic()
        say(f"view: building the report of {a} vs {b}{f' with control {control}' if control else ''} ...")
        try:
            comparison = compare_stored(root, a, b, options, control=control, argv=["statrepro", "view", str(root)])
        except StoreInUse as error:
            return failure("cannot compare yet", error, 409)
        except InputError as error:
            return failure("cannot compare", error, 400)
        except Exception as error:  # a page and a console line, never a blank page or a dead server
            return failure("cannot compare", RuntimeError(f"{type(error).__name__}: {error}"), 500)
        say(f"view: paired runs {', '.join(comparison.runs)}")
        for reason in comparison.skipped:
            say(f"view: left out {reason}")
        say(f"view: {a} vs {b}: {comparison.analysis.decision.verdict} ({time.monotonic() - started:.1f} s)")
        return HTMLResponse(comparison.html)

    def files(request):
        relative = request.path_params["path"]
        try:
            return FileResponse(store_file(root, relative))
        except InputError as error:
            return failure("refused", error, 403)
        except FileNotFoundError:
            return failure("not found", InputError(f"no file {relative!r} in the store"), 404)

    return [Route("/", index), Route("/compare", compare), Route("/files/{path:path}", files)]


def _check_server_libraries() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise InputError(f"statrepro view needs starlette and uvicorn ({error}): pip install 'statrepro[view]'") from None


def view_app(store: str | Path, options: AnalyzeOptions | None = None, *, host: str = LOOPBACK, console: Console | None = None):
    """The read-only ASGI app of ``store`` (starlette). Bound to a loopback ``host``, it answers only requests
    addressed to a loopback name, so a web page elsewhere cannot read the store through DNS rebinding."""
    _check_server_libraries()
    from rich.console import Console
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    from .run.browse import list_store

    root = list_store(store).root
    console = console or Console(stderr=True)

    def say(line: str) -> None:
        console.print(line, markup=False, highlight=False, soft_wrap=True)

    hosts = ["127.0.0.1", "localhost", "::1"] if is_loopback(host) else ["*"]
    return Starlette(
        routes=_routes(root, options or AnalyzeOptions(), say),
        middleware=[Middleware(_ReadOnly), Middleware(TrustedHostMiddleware, allowed_hosts=hosts)],
    )


def bind_view_server(store: str | Path, options: AnalyzeOptions | None = None, *, host: str = LOOPBACK,
                     port: int = DEFAULT_PORT, console: Console | None = None):
    """The uvicorn server of ``view_app`` and its listening socket (``port`` 0 picks a free one), with what the
    user must know printed to ``console``: a warning when ``host`` is not a loopback address, the store's notices
    and the URL. Run it with ``server.run(sockets=[sock])``; ``server.should_exit = True`` (or Ctrl-C) stops it."""
    import uvicorn
    from rich.console import Console

    from .run.browse import list_store

    console = console or Console(stderr=True)
    app = view_app(store, options, host=host, console=console)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise InputError(f"cannot listen on {host} port {port}: {error.strerror or error}", key="--port") from None
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    if not is_loopback(host):
        console.print(
            f"[bold red]warning:[/] listening on {host}, not 127.0.0.1: anyone who can reach this machine can read "
            "the store (environments, records, predictions, harness logs); stop with Ctrl-C unless that is intended",
            highlight=False, soft_wrap=True,
        )
    listing = list_store(store)
    for notice in store_notices(listing):
        console.print(f"[yellow]note:[/] {notice}", highlight=False, soft_wrap=True)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}/"
    console.print(f"statrepro view: {listing.root} ({len(listing.environments)} environments) at {url} (read-only; Ctrl-C stops)",
                  markup=False, highlight=False, soft_wrap=True)
    return server, sock, url


def serve_store(store: str | Path, options: AnalyzeOptions | None = None, *, host: str = LOOPBACK,
                port: int = DEFAULT_PORT, console: Console | None = None) -> None:
    """Serve ``store`` read-only until Ctrl-C (``bind_view_server`` says where, on ``console``: stderr by default)."""
    from rich.console import Console

    console = console or Console(stderr=True)
    server, sock, _ = bind_view_server(store, options, host=host, port=port, console=console)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it shut down on; stopping is what it asked for
        pass
    finally:
        sock.close()
    console.print("statrepro view: stopped", markup=False, highlight=False)
