"""The pages of `statrepro view` around the report: the store's index with the pair picker, and the message page.

They render a store listing (``statrepro.run.browse.StoreListing``, taken as a plain object: reports read
nothing themselves) in the report's house style; every name from the store goes through ``esc``.
"""

from __future__ import annotations

from urllib.parse import quote

from ..stats import INCONCLUSIVE, VERDICTS
from .html import _badge, _table, esc, page

WARNING = f"v-{INCONCLUSIVE}"  # the report's amber banner


def _verdict_cell(verdict: str) -> str:
    return _badge(verdict) if verdict in VERDICTS else esc(verdict)


def _file_link(path: str) -> str:
    return f'<a href="/files/{esc(quote(path))}">{esc(path)}</a>'


def _seeds(seeds: tuple[int, ...]) -> str:
    return ", ".join(map(str, seeds)) if seeds else "none"


def _environment_rows(listing) -> list[list[str]]:
    rows = []
    for env in listing.environments:
        engine = env.config.get("engine") or {}
        harness = env.config.get("harness") or {}
        role = f"A/A control of {env.control_of}" if env.control_of else ""
        for index, run in enumerate(env.runs or [None]):
            first = [esc(env.name), f'<span class="mono">{esc(env.directory)}</span>', esc(role),
                     esc(f"{harness.get('name', '?')} / {engine.get('kind', '?')}")] if index == 0 else ["", "", "", ""]
            if run is None:
                rows.append(first + ["no runs", "", "", "", ""])
                continue
            rows.append(first + [esc(run.benchmark), f'<span class="mono">{esc(run.directory)}</span>', esc(_seeds(run.done)),
                                 esc(_seeds(run.failed)), esc(run.items)])
    return rows


def _options(environments, selected: str | None, *, blank: str | None = None) -> str:
    options = [f'<option value="">{esc(blank)}</option>'] if blank is not None else []
    for env in environments:
        chosen = " selected" if env.directory == selected else ""
        options.append(f'<option value="{esc(env.directory)}"{chosen}>{esc(env.name)} ({esc(env.directory)})</option>')
    return "".join(options)


def _picker(listing) -> str:
    finished = listing.finished
    if len(finished) < 2:
        return ""
    plain = [env for env in finished if not env.control_of]
    controls = [env for env in finished if env.control_of]
    pick_a = plain[0].directory if plain else finished[0].directory
    pick_b = next((env.directory for env in plain[1:]), finished[1].directory)
    control = (
        f'<label>A/A control <select name="control" id="pick-control">{_options(controls, None, blank="none")}</select></label> '
        if controls else ""
    )
    return (
        '<section id="pick"><h2>Compare two environments</h2>'
        '<form method="get" action="/compare">'
        f'<label>A <select name="a" id="pick-a">{_options(finished, pick_a)}</select></label> '
        f'<label>B <select name="b" id="pick-b">{_options(finished, pick_b)}</select></label> '
        f'{control}<button type="submit" id="pick-compare">Compare</button></form>'
        '<p class="note">The report pairs the runs both sides ran with the same benchmark options, under the verdict '
        "options this server was started with (those of <code>statrepro analyze</code>).</p></section>"
    )


def _verdicts(listing) -> str:
    if not listing.verdicts:
        return '<p class="note">No saved verdict JSON in the store.</p>'
    rows = [
        [_file_link(verdict.path), _verdict_cell(verdict.verdict), esc(verdict.inputs.get("a")), esc(verdict.inputs.get("b")),
         esc(verdict.inputs.get("control")), _file_link(verdict.report) if verdict.report else ""]
        for verdict in listing.verdicts
    ]
    return _table(["file", "verdict", "A", "B", "control", "its report"], rows)


def store_index_html(listing, notices: list[str]) -> str:
    """The index: notices (a lock held, nothing finished), the environments and their runs, saved verdicts, the picker."""
    notice_html = "".join(f'<div class="banner {WARNING}" role="alert"><p>{esc(text)}</p></div>' for text in notices)
    environments = (
        _table(["environment", "directory", "role", "harness / engine", "benchmark", "run (its options' fingerprint)",
                "finished seeds", "failed seeds", "items"],
               _environment_rows(listing))
        if listing.environments else '<p class="note">No environment in the store.</p>'
    )
    body = (
        f'<h1>statrepro store</h1><p class="lead mono">{esc(listing.root)}</p>{notice_html}'
        f'{_picker(listing)}<section id="environments"><h2>Environments and runs</h2>{environments}</section>'
        f'<section id="verdicts"><h2>Saved verdicts</h2>{_verdicts(listing)}</section>'
    )
    return page("statrepro store", body)


def message_html(title: str, message: str) -> str:
    """A page that says what went wrong (never a blank page), with the way back to the index."""
    body = (
        f'<h1>{esc(title)}</h1><div class="banner {WARNING}" role="alert"><p id="message">{esc(message)}</p></div>'
        '<p><a href="/">Back to the store</a></p>'
    )
    return page(f"statrepro: {title}", body)
