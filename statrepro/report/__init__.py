"""Sign-off reports: a self-contained HTML page, a Markdown summary for pull requests, and the JSON verdict."""

from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_write_bytes, atomic_write_text

FOREST_PLOT_NAME = "forest_plot.png"


def write_report(
    report_dir: str | Path,
    analysis,
    *,
    records_a=None,
    records_b=None,
    argv: list[str] | None = None,
    manifests: dict | None = None,
    doctor: dict | None = None,
    explain: dict | None = None,
) -> dict[str, Path]:
    """Write report.html, report.md, verdict.json and the forest plot into ``report_dir``; return their paths.

    ``records_a``/``records_b`` (records tables) add predictions to the flip view; ``manifests`` (side label ->
    run manifest dict) adds versions, hashes and hardware to the provenance; ``doctor`` (a dict with "factors")
    replaces the configuration diff; ``explain`` (``ExplainResult.to_dict()``) adds the Explain section, linked
    from Flips, and explain.json. Every file is written atomically.
    """
    from .html import render_html
    from .markdown import render_markdown
    from .plots import forest_plot, seed_plot

    report_dir = Path(report_dir)
    forest_png = forest_plot(analysis.decision)
    seed_png = seed_plot(analysis.decision, analysis.pairing)
    paths = {
        "html": report_dir / "report.html",
        "markdown": report_dir / "report.md",
        "verdict": report_dir / "verdict.json",
        "forest_plot": report_dir / FOREST_PLOT_NAME,
    }
    atomic_write_bytes(paths["forest_plot"], forest_png)
    atomic_write_text(paths["verdict"], analysis.to_json().model_dump_json(indent=2))
    if explain is not None:
        import json

        paths["explain"] = report_dir / "explain.json"
        atomic_write_text(paths["explain"], json.dumps(explain, indent=2, allow_nan=False) + "\n")
    atomic_write_text(paths["markdown"], render_markdown(analysis, FOREST_PLOT_NAME, explain))
    page = render_html(
        analysis,
        forest_png=forest_png,
        seed_png=seed_png,
        records_a=records_a,
        records_b=records_b,
        argv=argv,
        manifests=manifests,
        doctor=doctor,
        explain=explain,
    )
    atomic_write_text(paths["html"], page)
    return paths


__all__ = ["FOREST_PLOT_NAME", "write_report"]
