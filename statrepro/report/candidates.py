"""The summary of one reference against many candidates: a recovery table (Markdown and a self-contained HTML
page) beside each candidate's own report in ``<report>/<candidate>/``."""

from __future__ import annotations

import math
from pathlib import Path

from ..atomic import atomic_write_bytes, atomic_write_text
from .html import _badge, _image, _table, esc, page
from .plots import candidates_plot


SIZES_PLOT_NAME = "sizes.png"


def _ratio(value: float | None, ci: list[float | None]) -> str:
    if value is None:
        return "n/a"
    low, high = (f"{bound:.1%}" if bound is not None and math.isfinite(bound) else "?" for bound in ci)
    return f"{value:.1%} [{low}, {high}]"


def _weights(candidate) -> str:
    size = f"{candidate.size_bytes / 1e6:.0f} MB" if candidate.size_bytes else ""
    return " ".join(part for part in (candidate.file_type or "", size) if part) or "?"


def _kl(recovery) -> str:
    if recovery.choice_kl is None:
        return "n/a"
    low, high = (f"{bound:.3g}" if bound is not None else "?" for bound in recovery.choice_kl_ci)
    return f"{recovery.choice_kl:.3g} [{low}, {high}]"


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
                "choice_kl": _kl(recovery),
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
        "choice KL is the mean KL(reference || candidate) of the items' choice distributions (modes ppl and clp); "
        "flips are items whose majority outcome changed (beside what seed noise alone gives, where known). Candidates "
        "are cleared in the order given, from the safest: the chance of shipping one truly beyond the margin is at "
        "most alpha.",
        "",
        "| candidate | weights | benchmark | recovery [95% CI] | choice KL [95% CI] | flips | verdict | cleared |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {row['candidate']} | {row['weights']} | {row['benchmark']} | {row['recovery']} | {row['choice_kl']} | {row['flips']} | {row['verdict'].replace('_', ' ')} | {row['cleared']} |"
        for row in recovery_rows(verdict)
    ]
    lines += ["", "Each candidate's full report: " + ", ".join(f"[{c.name}]({c.name}/report.md)" for c in verdict.candidates), ""]
    return "\n".join(lines)


def render_candidates_html(verdict, plot_png: bytes | None = None) -> str:
    rows = [
        [esc(row["candidate"]), esc(row["weights"]), esc(row["benchmark"]), esc(row["recovery"]), esc(row["choice_kl"]), esc(row["flips"]), _badge(row["verdict"]),
         esc(row["cleared"])]
        for row in recovery_rows(verdict)
    ]
    table = _table(["candidate", "weights", "benchmark", "recovery [95% CI]", "choice KL [95% CI]", "flips", "verdict", "cleared"],
                   rows, numeric={3, 4, 5})
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
{_plot_section(plot_png)}""")


def _plot_section(plot_png: bytes | None) -> str:
    if plot_png is None:
        return ""
    image = _image(plot_png, "recovery and choice KL of each candidate against its size on disk")
    note = "Markers: each candidate's verdict (hollow: inconclusive). Bars: 95% intervals."
    return f'<section id="sizes"><h2>Recovery and choice KL against size on disk</h2>{image}<p class="note">{note}</p></section>'



def write_candidates_report(report_dir: Path, verdict) -> dict[str, Path]:
    """report.html, report.md and verdict.json of the candidates' summary (each candidate's report is in its
    own sub-directory, written by its comparison)."""
    paths = {"html": report_dir / "report.html", "markdown": report_dir / "report.md", "verdict": report_dir / "verdict.json"}
    plot_png = candidates_plot(verdict)
    markdown = render_candidates_markdown(verdict)
    if plot_png is not None:
        paths["plot"] = report_dir / SIZES_PLOT_NAME
        atomic_write_bytes(paths["plot"], plot_png)
        markdown += f"\n![Recovery and choice KL against size on disk]({SIZES_PLOT_NAME})\n"
    atomic_write_text(paths["html"], render_candidates_html(verdict, plot_png))
    atomic_write_text(paths["markdown"], markdown)
    atomic_write_text(paths["verdict"], verdict.model_dump_json(indent=2))
    return paths
