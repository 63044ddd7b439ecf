"""The single-file HTML report: no network, images inlined as data URIs, one script (the item browser).

Everything that comes from inputs (names, predictions, targets, configs) goes through ``esc``, or reaches the item
browser as compressed data that its script puts on the page as text only; a Content-Security-Policy forbids any
other script and non-inline resources as a second line of defence.
"""

from __future__ import annotations

import base64
import html
import math
import platform
import re
import shlex
from datetime import datetime, timezone
from typing import Any

from .. import __version__
from ..redaction import REDACTED, redact_argv, redact_secret_keys
from ..stats import DIFFERENT, EQUIVALENT, INCONCLUSIVE, VERDICTS, WITHIN_TOLERANCE
from ..stats.advice import advice_text
from ..stats.planning import PLANNING_COLUMNS
from .content import (
    CONTROL_COLUMNS,
    FLIP_COLUMNS,
    FlippedItem,
    CHOICE_COLUMNS,
    choice_rows,
    control_rows,
    control_warnings,
    gate_lines,
    sequential_lines,
    flatten,
    flip_decomposition_cells,
    flipped_items,
    has_prompt_text,
    planning_rows,
    printable,
)
from .browser import asset, browser_section, data_block, script_hash
from .markdown import CORRECTION_NAMES

CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
PREVIEW_CHARS = 100
# Manifest keys that always differ between runs, so they are provenance, not configuration differences.
_TIMESTAMP_KEY = re.compile(r"time|date|started|finished|created|duration|elapsed", re.IGNORECASE)

VERDICT_TEXT = {
    EQUIVALENT: ("✓", "B scores the same as A within the tolerance, and no difference is detectable."),
    WITHIN_TOLERANCE: ("✓", "B is within the tolerance of A, although a small difference is detectable."),
    DIFFERENT: ("✗", "B differs from A by more than the tolerance."),
    INCONCLUSIVE: ("?", "The data cannot tell either way: more items or seeds are needed (see Noise and power)."),
}
# The banner's and badges' colours (the --<tone> and --<tone>-edge variables of STYLE).
VERDICT_TONE = {EQUIVALENT: "pass", WITHIN_TOLERANCE: "pass", DIFFERENT: "fail", INCONCLUSIVE: "unsure"}
assert VERDICT_TEXT.keys() == VERDICT_TONE.keys() == set(VERDICTS), "every verdict label (statrepro.stats.VERDICTS) needs its text and tone"

STYLE = """
:root { --ink:#1f2933; --muted:#52606d; --line:#d9e2ec; --pass:#e3f9e5; --pass-edge:#1f7a3a;
  --fail:#ffe3e3; --fail-edge:#a61b1b; --unsure:#fff3c4; --unsure-edge:#8d6a00; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 2rem; margin: .1em 0; }
h2 { font-size: 1.3rem; margin: 2em 0 .5em; padding-bottom: .2em; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.4em 0 .4em; }
p.lead { color: var(--muted); margin: .2em 0 0; }
.banner { border: 2px solid; border-left-width: 10px; border-radius: 6px; padding: 14px 20px; }
.banner .kicker { text-transform: uppercase; letter-spacing: .08em; font-size: .8rem; margin: 0; }
""" + "".join(
    f".v-{label} {{ background: var(--{tone}); border-color: var(--{tone}-edge); }}\n" for label, tone in VERDICT_TONE.items()
) + """.badge { display: inline-block; padding: 0 .5em; border: 1px solid; border-radius: 4px; white-space: nowrap; font-weight: 600; }
table { border-collapse: collapse; width: 100%; margin: .6em 0; font-size: .9rem; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #f5f7fa; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.differs td { font-weight: 600; }
figure { margin: .6em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: .88rem; margin-top: .3em; }
details summary { cursor: pointer; }
pre { white-space: pre-wrap; word-break: break-word; margin: .3em 0; font-size: .85rem; background: #f5f7fa; padding: 6px; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .85rem; overflow-wrap: anywhere; }
.muted { color: var(--muted); }
.scroll { overflow-x: auto; }
.key { white-space: nowrap; }
details.flips { margin: .8em 0; }
details.flips > summary { font-weight: 600; font-size: 1.02rem; }
.note { color: var(--muted); font-size: .9rem; }
"""


def esc(value: Any) -> str:
    """HTML-escape anything that came from inputs."""
    return html.escape("" if value is None else str(value), quote=True)


def _fmt(value: float | None, spec: str = ".4f") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return format(value, spec)


def _ci(ci: tuple[float, float], spec: str) -> str:
    return f"[{_fmt(ci[0], spec)}, {_fmt(ci[1], spec)}]"


def _badge(verdict: str) -> str:
    symbol = VERDICT_TEXT[verdict][0]
    return f'<span class="badge v-{esc(verdict)}">{symbol} {esc(verdict.replace("_", " "))}</span>'


def _text_cell(text: str | None) -> str:
    """Short text inline; long text truncated, with the full text one click away."""
    if text is None:
        return '<span class="muted">not recorded</span>'
    if len(text) <= PREVIEW_CHARS and "\n" not in text:
        return f'<span class="mono">{esc(text)}</span>'
    preview = text[:PREVIEW_CHARS].replace("\n", " ⏎ ")
    return f'<details><summary class="mono">{esc(preview)}…</summary><pre>{esc(text)}</pre></details>'


def _table(headers: list[str], rows: list[list[str]], numeric: set[int] = frozenset(), row_classes: list[str] | None = None) -> str:
    """A table from already-escaped cell HTML."""
    head = "".join(f'<th{" class=num" if i in numeric else ""}>{h}</th>' for i, h in enumerate(headers))
    body = []
    for index, row in enumerate(rows):
        css = f' class="{row_classes[index]}"' if row_classes and row_classes[index] else ""
        cells = "".join(f'<td{" class=num" if i in numeric else ""}>{cell}</td>' for i, cell in enumerate(row))
        body.append(f"<tr{css}>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'


def _banner(analysis) -> str:
    decision, options = analysis.decision, analysis.options
    symbol, meaning = VERDICT_TEXT[decision.verdict]
    margin = f"{decision.rules.tolerance:.2%} relative" if decision.rules.margin_kind == "relative" else f"{decision.rules.tolerance:g} absolute"
    rows = []
    for item in decision.benchmarks:
        c = item.comparison
        rel_spec = "+.2%"
        rows.append([
            f'{esc(item.name)}<br><span class="muted">{esc(analysis.pairing.benchmarks[item.name].metric)}</span>',
            f"{c.n_items}" + (f" (−{c.n_missing} missing)" if c.n_missing else ""),
            f"{c.n_runs_a}/{c.n_runs_b}" + (f'<br><span class="muted">{esc(c.missing.describe())}</span>' if c.missing.any else ""),
            _fmt(c.score_a),
            _fmt(c.score_b),
            f"{_fmt(c.rel_diff, rel_spec)}<br><span class=muted>{_ci(c.bootstrap.rel_diff_ci, rel_spec)}</span>",
            f"{_fmt(c.diff, '+.4f')}<br><span class=muted>{_ci(c.bootstrap.diff_ci, '+.4f')} "
            f"{c.bootstrap.confidence:.0%}</span><br><span class=muted>{_ci(c.tost.ci, '+.4f')} {c.tost.ci_level:.0%}</span>",
            f"±{_fmt(c.tost.margin, '.4f')}",
            f"{_fmt(c.permutation.p_value, '.3g')}{'' if c.permutation.exact else ' (MC)'}",
            _fmt(item.p_adjusted, ".3g"),
            f"{_fmt(c.tost.p_value, '.3g')}<br><span class=muted>{esc(c.tost.method)}</span>",
            _badge(item.verdict),
        ])
    table = _table(
        ["benchmark<br>metric", "items", "runs A/B", "score A", "score B", "rel. diff [CI]", "diff [95% · 90% CI]", "margin",
         "p", "p adj.", "TOST p", "verdict"],
        rows,
        numeric={1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
    )
    reasons = "".join(f"<li><strong>{esc(item.name)}</strong>: {esc(item.reason)}</li>" for item in decision.benchmarks)
    return f"""
<header class="banner v-{esc(decision.verdict)}" id="verdict">
  <p class="kicker">Overall verdict</p>
  <h1 data-verdict="{esc(decision.verdict)}">{symbol} {esc(decision.verdict.replace("_", " "))}</h1>
  <p>{esc(meaning)}</p>
  <p class="lead">tolerance {esc(margin)} · alpha {decision.rules.alpha:g} · mode {esc(decision.rules.mode)} ·
  {esc(CORRECTION_NAMES[decision.rules.correction])} adjustment across
  {len(decision.benchmarks)} benchmark(s) · CI {esc(options.ci_method)}{' two-level' if options.seed_level_bootstrap else ''}</p>
</header>
<section id="benchmarks"><h2>Verdict per benchmark</h2>{table}<ul>{reasons}</ul>{_sequential_part(analysis)}
<p class="note">p: two-sided paired sign-flip permutation test (MC = Monte Carlo); p adj.: adjusted across benchmarks;
TOST p: equivalence test against the margin, which passes when the 90% interval (its level, 1 − 2α) lies inside the
margin; <em>different</em> needs the whole 95% interval beyond it. A pass needs every benchmark to pass.</p></section>"""


def _forest_section(forest_png: bytes, analysis) -> str:
    relative = analysis.decision.rules.margin_kind == "relative"
    return f"""
<section id="forest"><h2>Difference and confidence interval</h2>
<figure>{_image(forest_png, "Forest plot of the difference per benchmark with confidence intervals and the tolerance band")}
<figcaption>{'Relative' if relative else 'Absolute'} difference of B against A per benchmark with its
{1 - analysis.decision.rules.alpha:.0%} bootstrap CI. The hatched band is the tolerance; a benchmark is equivalent when its
equivalence test passes, which roughly means the CI lies inside the band.</figcaption></figure></section>"""


def _seed_section(seed_png: bytes) -> str:
    return f"""
<section id="seeds"><h2>Per-seed scores</h2>
<figure>{_image(seed_png, "Score of every run (seed) of A and B per benchmark")}
<figcaption>Each marker is one run (seed): its score averaged over items. Filled circles are A, open triangles B; the
solid and dashed lines are A's and B's means over seeds. If the runs of one environment spread as much as A and B
are apart, the change is within seed noise.</figcaption></figure></section>"""


def _flip_rows(items: list[FlippedItem], prompt_label: str) -> str:
    arrows = {"up": "wrong → right", "down": "right → wrong"}
    rows = [
        [
            f'<span class="mono key">{esc(item.item_key)}</span>',
            f'<span class="key">{esc(arrows[item.direction])}</span>',
            f"{item.mean_a:.2f} → {item.mean_b:.2f}",
            _text_cell(item.prompt),
            _text_cell(item.prediction_a),
            _text_cell(item.prediction_b),
            _text_cell(item.target),
        ]
        for item in items
    ]
    return _table(["item", "flip", "score A → B", prompt_label, "prediction A", "prediction B", "target"], rows, numeric={2})


def _explain_section(explain: dict | None) -> str:
    """Why the moved items moved: token check, greedy replays and flip classes (``statrepro explain``)."""
    if explain is None:
        return ""
    classes = _table(["class", "items", "meaning"], [
        [esc(name), str(count), esc(explain["class_meanings"][name])] for name, count in explain["classes"].items()
    ], numeric={1})
    rows = [
        [
            f'<span class="mono key">{esc(item["item_key"])}</span>',
            esc(item["reason"]),
            f'{item["mean_a"]:.2f} → {item["mean_b"]:.2f}',
            f'<span class="key">{esc(item["flip_class"])}</span>',
            esc(item["detail"]),
            _text_cell((item["replay"] or {}).get("text_a")),
            _text_cell((item["replay"] or {}).get("text_b")),
        ]
        for item in explain["items"]
    ]
    items = _table(["item", "moved", "score A → B", "class", "detail", "replay A", "replay B"], rows, numeric={2}) if rows else ""
    return f"""
<section id="explain"><h2>Explain</h2>
<p class="note">{esc(explain["summary"])}. Each item's prompt is the one its harness logged, checked token by token as
each engine renders it, then replayed greedily on both environments with top-{explain["top_k"]} logprobs (a near tie:
top-2 gap below {explain["epsilon"]:g} nats).</p>{classes if explain["classes"] else ""}{items}
</section>"""


def _flip_section(analysis, records_a, records_b, *, explained: bool = False) -> str:
    summary_rows, decomposition_rows, details = [], [], []
    prompt_label = "prompt" if has_prompt_text(records_a, records_b) else "prompt hash"
    records_given = records_a is not None or records_b is not None
    for item in analysis.decision.benchmarks:
        c = item.comparison
        flips = c.flips
        share = (lambda count: f"{count} ({count / flips.n_items:.1%})") if flips.n_items else str
        summary_rows.append([
            esc(item.name),
            str(flips.n_items),
            share(flips.up),
            share(flips.down),
            f"{flips.up - flips.down:+d}",
            _fmt(flips.rate, ".1%"),
            _fmt(flips.expected_rate, ".1%") if flips.expected_rate is not None else '<span class="muted">n/a</span>',
            _fmt(c.mcnemar.p_value, ".3g") if c.mcnemar else '<span class="muted">n/a</span>',
        ])
        if item.name in analysis.flips:
            decomposition_rows.append([esc(item.name), *(esc(cell) for cell in flip_decomposition_cells(analysis.flips[item.name]))])
        total = flips.up + flips.down
        if total == 0:
            details.append(f'<p class="note"><strong>{esc(item.name)}</strong>: no item flipped.</p>')
            continue
        shown = flipped_items(analysis.pairing.benchmarks[item.name], records_a, records_b)
        note = "" if records_given else "<p class=note>Predictions are not shown: the report was written without the item records.</p>"
        details.append(
            f'<details class="flips"><summary>{esc(item.name)}: top {len(shown)} of {total} flipped items</summary>'
            f"{note}{_flip_rows(shown, prompt_label)}</details>"
        )
    summary = _table(
        ["benchmark", "items", "wrong → right", "right → wrong", "net", "flip rate", "A/A expectation", "McNemar p"],
        summary_rows,
        numeric={1, 2, 3, 4, 5, 6, 7},
    )
    confidence = f"{1 - analysis.decision.rules.alpha:.0%}"
    decomposition = _table(["benchmark", *(f"{column} [{confidence} CI]" for column in FLIP_COLUMNS)], decomposition_rows, numeric={1, 2, 3, 4})
    return f"""
<section id="flips"><h2>Flips</h2>
<p class="note">An item flips when its majority outcome changes between right (item mean over seeds above 0.5) and
wrong (below 0.5); a tie at exactly 0.5 is neither. Equal accuracy can hide many flips in both directions; flips say
how much the individual answers moved. Identical environments flip items too, from seed noise alone: the A/A
expectation is that rate, computed from each item's pooled runs (0/1 scores, two or more runs per side). McNemar's
test applies to one 0/1 run per side.</p>{summary}
<p class="note">The same flips as shares of the items, with Wilson {confidence} intervals: right → wrong (harmful),
wrong → right (beneficial), and the answer churn: items whose extracted answer (most common over runs) changed while
their majority outcome did not, over the items where both sides logged an answer.</p>{decomposition}
{_control_part(analysis)}
{_choices_part(analysis)}
{_token_kld_part(analysis)}
<p class="note">Open a benchmark to see its flipped items, ranked by the size of their score change. Long texts are
truncated; click one to see it in full, or read <a href="#items">every item, A beside B</a>.{' <a href="#explain">Why they moved: Explain.</a>' if explained else ""}</p>{"".join(details)}
</section>"""


def _sequential_part(analysis) -> str:
    """Where a sequential design stopped and what it spent (nothing for the fixed design)."""
    lines = sequential_lines(analysis)
    if not lines:
        return ""
    return f'<p class="note" id="sequential">{esc(lines[0])}</p><ul>' + "".join(f"<li>{esc(line)}</li>" for line in lines[1:]) + "</ul>"


def _control_part(analysis) -> str:
    """The A/A control: A vs A' beside A vs B with intervals, the excess and its test, and any baseline warning."""
    if not analysis.control:
        return ""
    rows = control_rows(analysis)
    table = _table(CONTROL_COLUMNS, [[esc(cell) for cell in row] for row in rows], numeric={2, 3, 4, 5, 6, 7})
    warnings = "".join(
        f'<p class="note"><strong>{esc(name)}: baseline {esc(status)}.</strong> {esc(warning)}</p>'
        for name, status, warning in control_warnings(analysis)
    )
    return f"""<h3>A/A control</h3>
<p class="note">A′ is A's environment run again (same configuration and seeds, its own run-to-run nondeterminism).
Its flips against A are what B's flips must exceed before they mean anything. The excess is the A-vs-B rate minus
the A-vs-A′ rate on the same items, with Tango's paired interval; the excess-flip p is the exact one-sided test that
A vs B flips more items than A vs A′ (sign-flip test of the paired per-item flip indicators). The control changes
the verdict only through the optional harmful-flip gate (--flip-margin).</p>{table}{warnings}"""


def _choices_part(analysis) -> str:
    """The choice-level evidence (modes ppl and clp) with the control beside it, and the evidence gates."""
    rows, gates = choice_rows(analysis), gate_lines(analysis)
    if not rows and not gates:
        return ""
    confidence = f"{1 - analysis.decision.rules.alpha:.0%}"
    table = _table(CHOICE_COLUMNS, [[esc(cell) for cell in row] for row in rows], numeric={2, 3, 4, 5}) if rows else ""
    listed = "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in gates) + "</ul>" if gates else ""
    return f"""<h3 id="choices">Choice-level evidence</h3>
<p class="note">From the same calls: each choice's log-likelihood gives the item's choice distribution (softmax over
its choices). Per item, over every pair of runs: KL(A‖B) of that distribution in nats, whether the top choice changed
(ties compare as ties), and the gold choice's log-likelihood in B minus in A; means over items with bootstrap
{confidence} intervals (exact Clopper-Pearson for the share of changed tops). With a control, A vs A′ is the noise floor.
Evidence gates (--kl-margin, --top1-margin, --flip-margin) pass when the one-sided upper bound is within their margin.</p>{table}{listed}"""


def _token_kld_part(analysis) -> str:
    """compare --kld's token-level figures (nothing without them)."""
    from .content import TOKEN_KLD_COLUMNS, token_kld_note, token_kld_rows

    rows = token_kld_rows(analysis)
    if not rows:
        return ""
    table = _table(TOKEN_KLD_COLUMNS, [[esc(cell) for cell in row] for row in rows], numeric={1, 2, 3, 4, 5, 6})
    return f"""<h3 id="token-kld">Token-level KLD</h3>
<p class="note">{esc(token_kld_note(analysis))}</p>{table}"""


def _noise_section(analysis) -> str:
    rows, needs = [], []
    for item in analysis.decision.benchmarks:
        c = item.comparison
        v, power = c.variance, c.power
        rows.append([
            esc(item.name),
            _fmt(v.item_var_a, ".4f"),
            _fmt(v.item_var_b, ".4f"),
            _fmt(v.seed_var_a, ".4f") if v.seed_var_a is not None else "n/a (1 run)",
            _fmt(v.seed_var_b, ".4f") if v.seed_var_b is not None else "n/a (1 run)",
            _fmt(v.diff_item_var, ".5f"),
            _fmt(v.diff_seed_var, ".5f"),
            _fmt(v.seed_share, ".0%"),
            _fmt(power.mde, ".4f"),
            _fmt(power.rel_mde, ".2%"),
            _fmt(c.tost.margin, ".4f"),
        ])
        if item.verdict == INCONCLUSIVE:
            text = advice_text(power, c.tost.margin)
            needs.append(f"<li><strong>{esc(item.name)}</strong>: to reach a verdict: {esc(text)}.</li>")
    table = _table(
        ["benchmark", "item var A", "item var B", "seed var A", "seed var B", "var(d): items", "var(d): seeds",
         "seed share", "MDE", "MDE rel.", "margin"],
        rows,
        numeric=set(range(1, 11)),
    )
    needed = f"<h3>Seeds or items needed</h3><ul>{''.join(needs)}</ul>" if needs else ""
    return f"""
<section id="noise"><h2>Noise and power</h2>
<p class="note">Item variance is the spread of per-item mean scores; seed variance is the mean spread of one item across
seeds. The variance of the paired differences d<sub>i</sub> splits into a part from items (which more seeds cannot
remove) and a part from seeds (which more seeds average away). MDE is the smallest absolute difference this data
detects with 80% power at alpha (two-sided); compare it with the margin.</p>{table}{needed}{_planning_part(analysis)}</section>"""


def _planning_part(analysis) -> str:
    """The planning table: what this comparison's noise needs and certifies, beside TensorRT-LLM's unpaired gate."""
    table = _table(list(PLANNING_COLUMNS), [[esc(cell) for cell in row] for row in planning_rows(analysis)],
                   numeric=set(range(1, len(PLANNING_COLUMNS))))
    return f"""
<h3>Planning</h3>
<p class="note">With A vs B's item differences as the noise of a rerun: the items needed for 80% power to pass when B
equals A (the false pass at the margin held to alpha), and the smallest margin (score points) certifiable with these
items; beside them TensorRT-LLM's unpaired gate under the same guarantees. <code>statrepro plan</code> plans from an A/A
pilot or a flip rate (docs/gates.md).</p>{table}"""


def _generic_table(value: Any) -> str:
    """A list of records or a mapping as a table, every value escaped and secrets redacted."""
    value = redact_secret_keys(value)
    if isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
        columns: list[str] = []
        for row in value:
            columns += [key for key in row if key not in columns]
        rows = [[_text_cell(printable(row[col])) if col in row else "" for col in columns] for row in value]
        return _table([esc(col) for col in columns], rows)
    flat = flatten(value)
    return _table(["factor", "value"], [[esc(key), _text_cell(text)] for key, text in flat.items()])


def _manifest_rows(manifests: dict[str, Any]) -> tuple[list[str], list[list[str]], list[str]]:
    sides = list(manifests)
    flat = {side: flatten(redact_secret_keys(manifests[side])) for side in sides}
    keys: list[str] = []
    for side in sides:
        keys += [key for key in flat[side] if key not in keys]
    rows, classes = [], []
    for key in keys:
        values = [flat[side].get(key) for side in sides]
        differs = len(set(values)) > 1
        rows.append([esc(key) + (" ≠" if differs else "")] + [_text_cell(v) for v in values])
        classes.append("differs" if differs else "")
    return ["key"] + [esc(side) for side in sides], rows, classes


def _config_section(analysis, manifests, doctor) -> str:
    parts = []
    if doctor and doctor.get("factors"):
        parts.append(f"<h3>Factors found by doctor</h3>{_generic_table(doctor['factors'])}")
    differences = analysis.pairing.config_differences
    if differences:
        rows = [[esc(d.benchmark), esc(d.factor), esc(d.detail)] for d in differences]
        parts.append(f"<h3>Differences seen in the item records</h3>{_table(['benchmark', 'factor', 'detail'], rows)}")
    if manifests and len(manifests) > 1 and not doctor:
        headers, rows, classes = _manifest_rows(manifests)
        keep = [i for i, css in enumerate(classes) if css and not _TIMESTAMP_KEY.search(rows[i][0])]
        if keep:
            parts.append(
                "<h3>Manifest entries that differ</h3>"
                + _table(headers, [rows[i] for i in keep], row_classes=[classes[i] for i in keep])
            )
    if analysis.pairing.dropped:
        rows = [[esc(name), str(count)] for name, count in analysis.pairing.dropped.items()]
        parts.append(f"<h3>Dropped (unpaired) items</h3>{_table(['benchmark', 'items dropped'], rows, numeric={1})}")
    if not parts:
        scope = "" if (manifests or doctor) else " Only prompt hashes were compared: pass manifests or a doctor result for a full comparison."
        parts.append(f"<p>No configuration differences were found.{esc(scope)}</p>")
    return f'<section id="config"><h2>Configuration differences</h2>{"".join(parts)}</section>'


def _provenance_section(analysis, argv, manifests, generated_at: datetime) -> str:
    options = analysis.options
    # Quoted for copy-paste, except the redaction marks, which are meant to be read.
    command = " ".join(
        arg if arg.endswith(REDACTED) else shlex.quote(arg) for arg in redact_argv([str(a) for a in argv])
    ) if argv else None
    facts = [
        ("statrepro version", __version__),
        ("report written (UTC)", generated_at.strftime("%Y-%m-%d %H:%M:%S")),
        ("command line", command),
        ("input A", analysis.inputs.get("a")),
        ("input B", analysis.inputs.get("b")),
        ("resampling", f"{analysis.decision.rules.n_resamples} bootstrap resamples and permutations, RNG seed {options.rng_seed}"),
        ("missing runs allowed (share of paired information)", f"{analysis.decision.rules.max_missing_share:.0%}"),
        ("report machine", f"{platform.platform()}, Python {platform.python_version()}"),
    ]
    rows = [[esc(name), _text_cell(value)] for name, value in facts]
    table = _table(["", "value"], rows)
    if manifests:
        headers, rows, classes = _manifest_rows(manifests)
        manifest_html = (
            "<h3>Run manifests</h3><p class=note>Harness and engine versions, dataset hashes, hardware and timestamps as "
            "recorded by the runs; rows marked ≠ differ. Secrets are redacted.</p>"
            + _table(headers, rows, row_classes=classes)
        )
    else:
        manifest_html = (
            "<p class=note>No run manifests were given, so harness versions, dataset hashes, hardware and run "
            "timestamps are not recorded here.</p>"
        )
    return f'<section id="provenance"><h2>Provenance</h2>{table}{manifest_html}</section>'


def page(title: str, body: str, *, script: str | None = None, style: str = "", tail: str = "") -> str:
    """A self-contained report page: the house style inline, and a policy that lets it load nothing and run no
    script but ``script`` (admitted by its hash). ``tail`` goes after the main content (the item data)."""
    policy = CONTENT_SECURITY_POLICY + (f"; script-src {script_hash(script)}" if script else "")
    script_tag = f"<script>{script}</script>\n" if script else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{STYLE}{style}</style>
{script_tag}</head>
<body>
<main>
{body}
</main>
{tail}
</body>
</html>
"""


def _figures_section(figures: dict, alpha: float) -> str:
    """The flip matrix, and where they apply the per-subset differences and the log-likelihood changes."""
    parts = [f"""<figure>{_image(figures["flip_matrix"], "Flip matrix per benchmark: A right or wrong against B right or wrong")}
<figcaption>Flip matrix: each item's majority outcome in A against B, with counts and shares of the items that have
one on both sides. The off-diagonal cells (bold) are the flips: A right and B wrong is harmful, the reverse
beneficial.</figcaption></figure>"""]
    if figures.get("subsets"):
        parts.append(f"""<figure>{_image(figures["subsets"], "Per-subset score difference B minus A with confidence intervals, sorted")}
<figcaption>Per subset: the mean item difference B − A with its {1 - alpha:.0%} bootstrap interval (BCa), largest loss on top, so
a change concentrated in one subject stands out. Subsets are small: read single intervals as a pointer, not a
verdict (no multiplicity adjustment).</figcaption></figure>""")
    if figures.get("loglik"):
        parts.append(f"""<figure>{_image(figures["loglik"], "Distribution of per-item gold choice log-likelihood changes")}
<figcaption>Modes ppl and clp: the distribution of the per-item change of the gold choice's log-likelihood, B − A,
each averaged over its runs. A shift of the whole distribution is a systematic change; a few far items are
local.</figcaption></figure>""")
    return f'<section id="plots"><h2>Where the items moved</h2>{"".join(parts)}</section>'


def render_html(
    analysis,
    *,
    figures: dict[str, bytes | None],
    records_a=None,
    records_b=None,
    argv: list[str] | None = None,
    manifests: dict | None = None,
    doctor: dict | None = None,
    explain: dict | None = None,
    generated_at: datetime | None = None,
) -> str:
    """The complete report page; ``figures`` as ``report.report_figures`` makes them."""
    generated_at = generated_at or datetime.now(timezone.utc)
    verdict = analysis.decision.verdict.replace("_", " ")
    body = "".join([
        _banner(analysis),
        _forest_section(figures["forest"], analysis),
        _seed_section(figures["seeds"]),
        _flip_section(analysis, records_a, records_b, explained=explain is not None),
        _figures_section(figures, analysis.decision.rules.alpha),
        browser_section(),
        _explain_section(explain),
        _noise_section(analysis),
        _config_section(analysis, manifests, doctor),
        _provenance_section(analysis, argv, manifests, generated_at),
    ])
    return page(
        f"statrepro report: {verdict}", body, script=asset("browser.js"), style=asset("browser.css"),
        tail=data_block(analysis, records_a, records_b, explain),
    )
