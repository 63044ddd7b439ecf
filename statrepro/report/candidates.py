"""The summary of one reference against many candidates: a recovery table (Markdown and a self-contained HTML
page) beside each candidate's own report in ``<report>/<candidate>/``."""

from __future__ import annotations

import math
from pathlib import Path

from ..atomic import atomic_write_text
from .html import _badge, _table, esc, page


def _ratio(value: float | None, ci: list[float | None]) -> str:
    if value is None:
        return "n/a"
    low, high = (f"{bound:.1%}" if bound is not None and math.isfinite(bound) else "?" for bound in ci)
    return f"{value:.1%} [{low}, {high}]"


def _weights(candidate) -> str:
    size = f"{candidate.size_bytes / 1e6:.0f} MB" if candidate.size_bytes else ""
    return " ".join(part for part in (candidate.file_type or "", size) if part) or "?"


def _flips(recovery) -> str:
    expected = f" (A/A {recovery.flip_rate_expected:.1%})" if recovery.flip_rate_expected is not None else ""
    return f"{recovery.flip_rate:.1%}{expected}"


def recovery_rows(verdict) -> list[dict[str, str]]:
    """One row per candidate and benchmark: recovery with its interval, flips, the verdict and whether cleared."""
    rows = []
    for candidate in verdict.candidates:
        for name, recovery in candidate.recovery.items():
            rows.append({
                "candidate": candidate.name,
                "weights": _weights(candidate),
                "benchmark": name,
                "recovery": _ratio(recovery.ratio, recovery.ratio_ci),
                "flips": _flips(recovery),
                "verdict": candidate.comparison.benchmarks[name].verdict,
                "cleared": "yes" if candidate.cleared else "no",
            })
    return rows


def _selection_text(verdict) -> str:
    selection = verdict.selection
    if selection.shipped is None:
        return f"No candidate is cleared: the first, {selection.order[0]}, does not pass."
    text = f"Ship **{selection.shipped}**: the fixed sequence cleared {', '.join(selection.cleared)}"
    if selection.stopped_at:
        text += f" and stopped at {selection.stopped_at}, so no candidate after it is cleared"
    return text + "."


def render_candidates_markdown(verdict) -> str:
    lines = [
        f"# statrepro: {len(verdict.candidates)} candidates against one reference",
        "",
        f"Worst verdict: **{verdict.verdict.replace('_', ' ')}** (exit code {verdict.exit_code}). " + _selection_text(verdict),
        "",
        "Recovery is the candidate's score as a share of the reference's, with its paired 95% bootstrap interval; "
        "flips are items whose majority outcome changed (beside what seed noise alone gives, where known). Candidates "
        "are cleared in the order given, from the safest: the chance of shipping one truly beyond the margin is at "
        "most alpha.",
        "",
        "| candidate | weights | benchmark | recovery [95% CI] | flips | verdict | cleared |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {row['candidate']} | {row['weights']} | {row['benchmark']} | {row['recovery']} | {row['flips']} | {row['verdict'].replace('_', ' ')} | {row['cleared']} |"
        for row in recovery_rows(verdict)
    ]
    lines += ["", "Each candidate's full report: " + ", ".join(f"[{c.name}]({c.name}/report.md)" for c in verdict.candidates), ""]
    return "\n".join(lines)


def render_candidates_html(verdict) -> str:
    rows = [
        [esc(row["candidate"]), esc(row["weights"]), esc(row["benchmark"]), esc(row["recovery"]), esc(row["flips"]), _badge(row["verdict"]),
         esc(row["cleared"])]
        for row in recovery_rows(verdict)
    ]
    table = _table(["candidate", "weights", "benchmark", "recovery [95% CI]", "flips", "verdict", "cleared"], rows, numeric={3, 4})
    links = " · ".join(f'<a href="{esc(c.name)}/report.html">{esc(c.name)}</a>' for c in verdict.candidates)
    selection = esc(_selection_text(verdict).replace("**", ""))
    return page("statrepro: candidates against one reference", f"""<header class="banner v-{esc(verdict.verdict)}" id="verdict">
  <p class="kicker">Worst verdict of {len(verdict.candidates)} candidates</p>
  <h1 data-verdict="{esc(verdict.verdict)}">{esc(verdict.verdict.replace("_", " "))}</h1>
  <p>{selection}</p>
</header>
<section id="recovery"><h2>Recovery per candidate</h2>{table}
<p class="note">Recovery: the candidate's score as a share of the reference's, with its paired 95% bootstrap interval.
Candidates are cleared as a fixed sequence in the order given (the safest first): the chance of shipping one truly
beyond the margin is at most alpha. Full reports: {links}</p></section>
""")


def write_candidates_report(report_dir: Path, verdict) -> dict[str, Path]:
    """report.html, report.md and verdict.json of the candidates' summary (each candidate's report is in its
    own sub-directory, written by its comparison)."""
    paths = {"html": report_dir / "report.html", "markdown": report_dir / "report.md", "verdict": report_dir / "verdict.json"}
    atomic_write_text(paths["html"], render_candidates_html(verdict))
    atomic_write_text(paths["markdown"], render_candidates_markdown(verdict))
    atomic_write_text(paths["verdict"], verdict.model_dump_json(indent=2))
    return paths
