"""Sign-off reports: a self-contained HTML page, a Markdown summary for pull requests, and the JSON verdict."""

from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_write_bytes, atomic_write_text

FOREST_PLOT_NAME = "forest_plot.png"
FLIP_MATRIX_NAME = "flip_matrix.png"
# The figures report.md shows under the forest plot, where they apply: figure -> (file name, alt text).
MARKDOWN_FIGURES = {
    "flip_matrix": (FLIP_MATRIX_NAME, "Flip matrix: A right/wrong against B right/wrong per benchmark"),
    "subsets": ("subset_differences.png", "Per-subset difference B - A with confidence intervals, sorted"),
    "loglik": ("loglik_changes.png", "Distribution of the per-item gold choice log-likelihood change B - A"),
}


def report_figures(analysis, records_a=None, records_b=None) -> dict[str, bytes | None]:
    """The report's figures as PNG bytes: forest, seeds, flip matrix; per-subset differences (where a benchmark has
    several subsets in the records) and the log-likelihood changes (modes ppl and clp); None where they do not apply."""
    from ..analysis import item_choice_changes
    from .items import item_subsets
    from .plots import flip_matrix_plot, forest_plot, loglik_plot, seed_plot, subset_differences, subset_plot

    rules, pairing = analysis.decision.rules, analysis.pairing
    changes = {}
    if records_a is not None and records_b is not None:
        changes = {name: item_choice_changes(bench, records_a, records_b) for name, bench in pairing.benchmarks.items()}
    subsets = {name: item_subsets(bench, records_a, records_b) for name, bench in pairing.benchmarks.items()}
    # Per-subset intervals are a pointer, not a verdict: 2000 resamples keep a report of 57 subjects quick.
    return {
        "forest": forest_plot(analysis.decision),
        "seeds": seed_plot(analysis.decision, pairing),
        "flip_matrix": flip_matrix_plot(pairing),
        "subsets": subset_plot(subset_differences(pairing, subsets, alpha=rules.alpha, n_resamples=min(rules.n_resamples, 2000),
                                                  rng_seed=analysis.options.rng_seed), rules.alpha),
        "loglik": loglik_plot({name: change for name, change in changes.items() if change is not None}),
    }


def report_html(analysis, *, figures: dict[str, bytes | None] | None = None, records_a=None, records_b=None,
                argv: list[str] | None = None, manifests: dict | None = None, doctor: dict | None = None,
                explain: dict | None = None) -> str:
    """report.html as a string (what ``write_report`` writes, and what ``statrepro view`` serves); ``figures``
    (``report_figures``) are computed when not given."""
    from .html import render_html

    return render_html(
        analysis, figures=figures or report_figures(analysis, records_a, records_b), records_a=records_a,
        records_b=records_b, argv=argv, manifests=manifests, doctor=doctor, explain=explain,
    )


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
    """Write report.html, report.md, verdict.json, the forest plot and the flip matrix (and where they apply the
    per-subset and log-likelihood plots, MARKDOWN_FIGURES) into ``report_dir``; return their paths.

    ``records_a``/``records_b`` (records tables) add predictions to the flip view and the item browser, and the
    per-subset and log-likelihood plots; ``manifests`` (side label -> run manifest dict) adds versions, hashes and
    hardware to the provenance; ``doctor`` (a dict with "factors") replaces the configuration diff; ``explain``
    (``ExplainResult.to_dict()``) adds the Explain section, linked from Flips, its classes and replays to the item
    browser, and explain.json. Every file is written atomically.
    """
    from .markdown import render_markdown

    report_dir = Path(report_dir)
    figures = report_figures(analysis, records_a, records_b)
    paths = {
        "html": report_dir / "report.html",
        "markdown": report_dir / "report.md",
        "verdict": report_dir / "verdict.json",
        "forest_plot": report_dir / FOREST_PLOT_NAME,
    }
    atomic_write_bytes(paths["forest_plot"], figures["forest"])
    shown = []
    for key, (name, alt) in MARKDOWN_FIGURES.items():
        if figures[key] is not None:
            paths[key] = report_dir / name
            atomic_write_bytes(paths[key], figures[key])
            shown.append((alt, name))
    atomic_write_text(paths["verdict"], analysis.to_json().model_dump_json(indent=2))
    if explain is not None:
        import json

        paths["explain"] = report_dir / "explain.json"
        atomic_write_text(paths["explain"], json.dumps(explain, indent=2, allow_nan=False) + "\n")
    atomic_write_text(paths["markdown"], render_markdown(analysis, FOREST_PLOT_NAME, explain, figures=tuple(shown)))
    page = report_html(
        analysis, figures=figures, records_a=records_a, records_b=records_b, argv=argv, manifests=manifests, doctor=doctor,
        explain=explain,
    )
    atomic_write_text(paths["html"], page)
    return paths


__all__ = ["FLIP_MATRIX_NAME", "FOREST_PLOT_NAME", "report_figures", "report_html", "write_report"]
