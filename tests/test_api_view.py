"""`statrepro view` (statrepro.api_view): the read-only store browser, served for real by uvicorn on a free port.

The stores are written with the store's own writer (ResultStore.write_done) from records made here, which takes
milliseconds where running even the stub harness takes seconds. Traversal requests go through http.client, which
sends a path as written; httpx removes dot segments before sending, so it could not send them.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from io import StringIO
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from statrepro.analysis import AnalysisOptions, analyze as analyze_records
from statrepro.api import AnalyzeOptions
from statrepro.api_view import bind_view_server, compare_stored
from statrepro.envfile import validate_env
from statrepro.errors import InputError
from statrepro.harness.records import make_records
from statrepro.run.orchestrate import load_env_records
from statrepro.run.plan import Job, control_env
from statrepro.run.store import RECORDS, ResultStore

SUPPORT_DIR = Path(__file__).resolve().parent / "support"
ITEMS = 40
SECRET = "outside-the-store-secret"
FAST = AnalyzeOptions(resamples=200)


def _env(tmp_path: Path, name: str, seeds: int = 2):
    (tmp_path / "model").mkdir(exist_ok=True)
    (tmp_path / "data" / "gsm8k").mkdir(parents=True, exist_ok=True)
    return validate_env({
        "name": name, "model": {"path": str(tmp_path / "model")}, "harness": {"name": "stub"},
        "benchmarks": {"gsm8k": {"limit": ITEMS}}, "seeds": seeds, "data_dir": str(tmp_path / "data"),
    })


def write_runs(store: ResultStore, env, *, flips: int = 0) -> list[Job]:
    """Finished runs of ``env``: item i is right when i % 3 != 0, and the first ``flips`` right items are wrong."""
    jobs = []
    for seed in env.seed_list:
        job = Job(env, "gsm8k", env.benchmarks["gsm8k"], seed)
        rows = []
        for item in range(ITEMS):
            right = item % 3 != 0 and not (item % 3 and item < flips * 3 // 2)
            rows.append({
                "benchmark": "gsm8k", "subset": "gsm8k", "item_key": f"gsm8k/{item}", "run_id": f"seed-{seed}", "seed": seed,
                "metric": "exact_match", "score": float(right), "prediction": "42" if right else "7", "target": "42",
                "prompt_hash": f"p{item}", "doc_hash": f"d{item}", "model": "stub", "harness": "stub", "source": "stub",
            })
        store.write_env(job)
        store.write_done(job, make_records(rows), {"items": ITEMS, "harness": "stub"})
        jobs.append(job)
    return jobs


@pytest.fixture
def store(tmp_path: Path) -> ResultStore:
    """A store with A, B (a few flips), A's A/A control and a saved verdict JSON; a secret file beside it."""
    result = ResultStore(tmp_path / "store")
    env_a = _env(tmp_path, "fp32")
    write_runs(result, env_a)
    env_b = _env(tmp_path, "q4")
    write_runs(result, env_b, flips=4)
    result.write_failed(Job(env_b, "gsm8k", env_b.benchmarks["gsm8k"], 5), {"error": "harness exited with code 1"})
    write_runs(result, control_env(env_a))
    (result.root / "verdicts").mkdir()
    (result.root / "verdicts" / "fp32-vs-q4.json").write_text(json.dumps(
        {"schema_version": "5", "verdict": "different", "benchmarks": {}, "inputs": {"a": "fp32.yaml", "b": "q4.yaml"}}))
    (result.root / "verdicts" / "report.html").write_text("<p>saved report</p>")
    (tmp_path / "secret.txt").write_text(SECRET)
    return result


def env_dir(store: ResultStore, name: str) -> str:
    return next(path.name for path in store.root.iterdir() if (path / "env.json").is_file()
                and json.loads((path / "env.json").read_text())["name"] == name)


@contextmanager
def served(root: Path, *, host: str = "127.0.0.1"):
    """The view server of ``root`` on a free port in a thread: (base URL, what it printed)."""
    printed = StringIO()
    server, sock, url = bind_view_server(root, FAST, host=host, port=0, console=Console(file=printed, width=400))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            threading.Event().wait(0.02)
        yield url.rstrip("/"), printed
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def raw_get(url: str, path: str, host: str | None = None) -> tuple[int, str]:
    """GET ``path`` exactly as written (no dot-segment removal, no re-encoding)."""
    address = httpx.URL(url)
    connection = http.client.HTTPConnection(address.host, address.port, timeout=30)
    try:
        connection.putrequest("GET", path, skip_host=host is not None)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def test_index_lists_environments_runs_controls_and_saved_verdicts(store):
    with served(store.root) as (url, _):
        page = httpx.get(url + "/").text
    assert "fp32" in page and "q4" in page and "A/A control of fp32" in page
    assert "verdicts/fp32-vs-q4.json" in page and "fp32.yaml" in page and 'href="/files/verdicts/report.html"' in page
    assert re.search(r"<td>0, 1</td><td>5</td>", page)  # q4's failed seed
    assert 'id="pick-a"' in page and 'id="pick-control"' in page
    assert re.search(r"<td>gsm8k</td><td><span class=\"mono\">gsm8k-\w{10}</span></td><td>0, 1</td><td>none</td><td>40</td>", page)


def test_compare_serves_the_report_builders_page_with_compares_verdict(store, tmp_path):
    a, b, control = env_dir(store, "fp32"), env_dir(store, "q4"), env_dir(store, "fp32.control")
    expected = compare_stored(store.root, a, b, FAST, control=control)
    # `compare`'s own path to a verdict from the same store: its loader, its pairing rule (failed items missing).
    env_a = _env(tmp_path, "fp32")
    records = [load_env_records(env, store) for env in (env_a, _env(tmp_path, "q4"), control_env(env_a))]
    compares = analyze_records(records[0], records[1], AnalysisOptions(rules=FAST.rules(), unpaired="missing"),
                               inputs=expected.analysis.inputs, records_control=records[2])
    assert expected.analysis.to_json() == compares.to_json()
    with served(store.root) as (url, printed):
        response = httpx.get(url + "/compare", params={"a": a, "b": b, "control": control}, timeout=120)
    assert response.status_code == 200
    assert "<title>statrepro report:" in response.text and 'id="flips"' in response.text
    assert f"statrepro report: {expected.analysis.decision.verdict.replace('_', ' ')}" in response.text
    assert expected.analysis.control is not None  # the control was paired beside A vs B
    assert f"{a} vs {b}: {expected.analysis.decision.verdict}" in printed.getvalue()
    with pytest.raises(InputError, match="fp32.control is not the A/A control of q4"):
        compare_stored(store.root, b, a, FAST, control=control)


def test_an_environment_name_is_escaped_in_the_index(store):
    hostile = store.root / "x-123"
    hostile.mkdir()
    (hostile / "env.json").write_text(json.dumps({"name": "<script>alert(1)</script>"}))
    with served(store.root) as (url, _):
        page = httpx.get(url + "/").text
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


TRAVERSALS = [
    "/files/../secret.txt",
    "/files/../../secret.txt",
    "/files/%2e%2e/secret.txt",
    "/files/%2E%2E/secret.txt",
    "/files/..%2fsecret.txt",
    "/files/..%2Fsecret.txt",
    "/files/%2e%2e%2fsecret.txt",
    "/files/verdicts/..%2f..%2fsecret.txt",
    "/files/verdicts/%2e%2e/%2e%2e/secret.txt",
    "/files/..%5csecret.txt",
    "/files//etc/passwd",
    "/files/%2fetc%2fpasswd",
    "/files/.lock",
    "/files/leak.txt",
    "/files/outside/secret.txt",
    "/../secret.txt",
]


def test_nothing_outside_the_store_is_served(store):
    (store.root / "leak.txt").symlink_to(store.root.parent / "secret.txt")
    (store.root / "outside").symlink_to(store.root.parent)
    (store.root / ".lock").write_text(SECRET)
    # A run whose records are a symlink out of the store is no finished run: its records are never read.
    seed_dir = store.root / "linked-1" / "gsm8k-0123456789" / "seed-0"
    seed_dir.mkdir(parents=True)
    (store.root / "linked-1" / "env.json").write_text(json.dumps({"name": "linked"}))
    (seed_dir / "manifest.json").write_text(json.dumps({"status": "done", "items": 1}))
    (seed_dir / RECORDS).symlink_to(store.root.parent / "secret.txt")
    with served(store.root) as (url, _):
        assert raw_get(url, "/files/verdicts/fp32-vs-q4.json")[0] == 200  # a file inside is served
        assert 'value="linked-1"' not in raw_get(url, "/")[1]  # not offered for comparison
        for path in TRAVERSALS:
            status, body = raw_get(url, path)
            assert status in (403, 404), path
            assert SECRET not in body and "root:" not in body, path


def test_only_get_and_head_are_answered(store):
    with served(store.root) as (url, _):
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            for path in ("/", "/compare?a=x&b=y", "/files/verdicts/fp32-vs-q4.json", "/nowhere"):
                response = httpx.request(method, url + path, content=b"x")
                assert response.status_code == 405, (method, path)
                assert response.headers["allow"] == "GET, HEAD"
        assert httpx.head(url + "/").status_code == 200


def test_a_foreign_host_name_is_refused_on_loopback(store):
    """A DNS-rebinding page reaches 127.0.0.1 under its own host name; the server answers loopback names only."""
    with served(store.root) as (url, _):
        assert raw_get(url, "/", host="attacker.example")[0] == 400
        assert raw_get(url, "/", host="localhost")[0] == 200


def test_an_empty_store_says_so_in_the_page(tmp_path):
    (tmp_path / "empty").mkdir()
    with served(tmp_path / "empty") as (url, printed):
        index = httpx.get(url + "/").text
        compare = httpx.get(url + "/compare", params={"a": "x-1", "b": "y-2"})
    assert "holds no finished run yet" in index
    assert "note: The store holds no finished run yet" in printed.getvalue()
    assert compare.status_code == 400 and "the store has no environment &#x27;x-1&#x27;" in compare.text
    assert "view: cannot compare:" in printed.getvalue() and "no environment 'x-1'" in printed.getvalue()


def test_a_store_being_written_is_reported_and_not_compared(store):
    a, b = env_dir(store, "fp32"), env_dir(store, "q4")
    with store.locked(), served(store.root) as (url, printed):
        index = httpx.get(url + "/").text
        compare = httpx.get(url + "/compare", params={"a": a, "b": b})
    assert f"being written by a running statrepro run (pid {os.getpid()})" in index
    assert compare.status_code == 409 and "being written by a running statrepro run" in compare.text
    assert f"note: The store is being written by a running statrepro run (pid {os.getpid()})" in printed.getvalue()
    assert "view: cannot compare yet:" in printed.getvalue()


def test_truncated_records_name_their_file_and_line(store):
    a, b = env_dir(store, "fp32"), env_dir(store, "q4")
    records = store.root / b / next(path.name for path in (store.root / b).iterdir() if path.is_dir()) / "seed-1" / RECORDS
    text = records.read_text()
    records.write_text(text[: len(text) // 2])  # cut mid-row, as a full disk or a copy cut short would
    with served(store.root) as (url, printed):
        response = httpx.get(url + "/compare", params={"a": a, "b": b})
    assert response.status_code == 400
    assert "records are truncated or corrupted" in response.text and "seed-1/records.jsonl" in response.text
    assert re.search(r"records\.jsonl:\d+", printed.getvalue())


def test_the_command_prints_its_url_warns_off_loopback_and_stops_on_ctrl_c(store):
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SUPPORT_DIR), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(
        [sys.executable, "-c", "from statrepro.cli import app; app()", "view", str(store.root), "--host", "0.0.0.0", "--port", "0"],
        stderr=subprocess.PIPE, text=True, env=environment,
    )
    try:
        lines = []
        for line in process.stderr:
            lines.append(line)
            if "http://" in line:
                break
        output = "".join(lines)
        assert "warning: listening on 0.0.0.0, not 127.0.0.1: anyone who can reach this machine can read the store" in output
        port = re.search(r"http://0\.0\.0\.0:(\d+)/", output).group(1)
        assert "fp32" in httpx.get(f"http://127.0.0.1:{port}/", timeout=30).text
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert "statrepro view: stopped" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()


def test_a_missing_store_is_one_line_and_exit_2(tmp_path):
    from typer.testing import CliRunner

    from statrepro.cli import app

    result = CliRunner().invoke(app, ["view", str(tmp_path / "nowhere"), "--port", "0"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error:") and "no such store directory" in result.output


def _chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.skip("chromium is not installed (apt-get install chromium); CI installs it")
    return path


def test_a_browser_picks_two_environments_and_sees_the_report(store):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the test extra)")
    chromium = _chromium()
    a, b = env_dir(store, "fp32"), env_dir(store, "q4")
    with served(store.root) as (url, _), sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(url + "/")
            page.select_option("#pick-a", a)
            page.select_option("#pick-b", b)
            page.click("#pick-compare")
            page.wait_for_selector(".banner", timeout=120_000)
            assert page.title().startswith("statrepro report:")
            assert f"b={b}" in page.url and page.locator("#flips").count() == 1
        finally:
            browser.close()


@pytest.mark.slow
def test_the_view_of_a_compare_store_is_compares_verdict(tmp_path):
    """End to end: `statrepro compare --control` with the stub harness fills a store; the view's report of the
    same pair is the verdict compare wrote, but for the inputs (environment names, not files)."""
    env_a, env_b = _env(tmp_path, "alpha"), _env(tmp_path, "beta")
    files = []
    for env in (env_a, env_b):
        path = tmp_path / f"{env.name}.yaml"
        path.write_text(json.dumps(env.model_dump(mode="json", exclude_none=True)))
        files.append(path)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SUPPORT_DIR), os.environ.get("PYTHONPATH")]))}
    subprocess.run(
        [sys.executable, "-c", "from statrepro.cli import app; app()", "compare", *map(str, files), "--control",
         "--store", str(tmp_path / "store"), "--json", str(tmp_path / "store" / "ab.json")],
        env=environment, capture_output=True, text=True, timeout=300,
    )
    written = json.loads((tmp_path / "store" / "ab.json").read_text())
    store = ResultStore(tmp_path / "store")
    viewed = compare_stored(store.root, env_dir(store, "alpha"), env_dir(store, "beta"), control=env_dir(store, "alpha.control"))
    assert viewed.analysis.to_json().model_dump(mode="json", exclude={"inputs"}) == {k: v for k, v in written.items() if k != "inputs"}
