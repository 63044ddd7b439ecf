"""The item browser's part of report.html: its section, its script and style (package files, inlined) and the
embedded item data (report/items.py). The page stays self-contained: the Content-Security-Policy admits this
one script by its hash and nothing else, so a script tag in an item's text could not run even if it escaped."""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from importlib.resources import files

from .items import encode_item_data, item_data


@cache
def asset(name: str) -> str:
    """A file of report/assets/ (the browser's script and style)."""
    return files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def script_hash(script: str) -> str:
    """The CSP source that admits exactly this inline script."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"


def browser_section() -> str:
    """Where the browser draws itself; until it does (or when it cannot) its status line says why."""
    return """
<section id="items"><h2>Items: A beside B</h2>
<p class="note">Every paired item, filtered by outcome, explain class, subset or text: each run of A beside the same run
of B with its score, extracted answer and, where the records hold them, output and prompt; where explain ran, the
greedy replays with the first divergent token marked and both sides' top logprobs there.</p>
<div id="ib" data-state="loading"><p id="ib-status" class="note">Loading the items… The item browser needs
JavaScript; without it the Flips section above lists the top flipped items.</p></div>
</section>"""


def data_block(analysis, records_a=None, records_b=None, explain: dict | None = None) -> str:
    """The compressed item data, at the very end of the page: a report cut short loses this block first, and the
    browser names the loss (its declared length against what arrived) instead of leaving a blank page."""
    encoded = encode_item_data(item_data(analysis, records_a, records_b, explain))
    return f'<script type="application/gzip+base64" id="ib-data" data-length="{len(encoded)}">{encoded}</script>'
