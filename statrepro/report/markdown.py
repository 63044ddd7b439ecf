"""The short Markdown report, fit for pasting into a pull request: the verdict table and the forest plot."""

from __future__ import annotations

import math


CORRECTION_NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg"}


def _missing_note(comparison) -> str:
    """' (B lacks 3 of 60 runs)' after the runs when any is missing: a failed run is shown, never averaged away."""
    return f" ({_cell(comparison.missing.describe())})" if comparison.missing.any else ""


def _cell(value: object) -> str:
    """Table-safe text: pipes escaped, newlines flattened, HTML-significant characters neutralised."""
    text = str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


# GitHub's limit on a pull-request comment's body, in characters: report.md is kept within it.
PR_COMMENT_LIMIT = 65_536


def render_markdown(analysis, forest_plot_name: str, explain: dict | None = None, limit: int = PR_COMMENT_LIMIT, *,
                    figures: tuple[tuple[str, str], ...] = ()) -> str:
    """The verdict table and each benchmark's reason first; the plot and the other sections folded in <details>.
    Within ``limit`` characters: the folded part gives way first, then the tail of the summary. ``figures`` are
    (alt text, file name) of further plots shown under the forest plot."""
    closing = ["", "Full report with flips, noise and provenance: `report.html`.", ""]
    summary, details = _summary_lines(analysis), _detail_lines(analysis, forest_plot_name, explain, figures)
    folded = ["", "<details><summary>Details: forest plot, design, evidence and configuration</summary>", "", *details, "", "</details>"]
    text = "\n".join(summary + folded + closing)
    if len(text) <= limit:
        return text
    omitted = ["", f"Details omitted: they would take report.md past {limit:,} characters (a pull-request comment's limit)."]
    text = "\n".join(summary + omitted + closing)
    if len(text) <= limit:
        return text
    kept, size = [], len("\n".join(omitted + closing)) + 200  # room for the truncation note
    for line in summary:
        if size + len(line) + 1 > limit:
            break
        kept.append(line)
        size += len(line) + 1
    note = f"Truncated: {len(summary) - len(kept)} more summary lines are in report.html."
    return "\n".join(kept + ["", note] + omitted + closing)


def _summary_lines(analysis) -> list[str]:
    """The verdict, the rules, one table row per benchmark and each benchmark's reason (and what would conclude it)."""
    from ..stats import INCONCLUSIVE
    from ..stats.advice import advice_text

    decision = analysis.decision
    margin = f"{decision.rules.tolerance:.2%} relative" if decision.rules.margin_kind == "relative" else f"{decision.rules.tolerance:g} absolute"
    lines = [
        f"## statrepro verdict: **{decision.verdict.replace('_', ' ')}**",
        "",
        f"Tolerance {margin}, alpha {decision.rules.alpha:g}, {decision.rules.mode}, {CORRECTION_NAMES[decision.rules.correction]} adjustment across "
        f"{len(decision.benchmarks)} benchmark(s).",
        "",
        "| benchmark | items | runs A/B | score A | score B | rel. diff | 95% CI | diff | 90% CI (TOST) | margin | p adj. | TOST p | flips | verdict |",
        "|---|---:|---:|---:|---:|---:|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for item in decision.benchmarks:
        c = item.comparison
        lo, hi = c.bootstrap.rel_diff_ci
        lines.append(
            f"| {_cell(item.name)} | {c.n_items} | {c.n_runs_a}/{c.n_runs_b}{_missing_note(c)} | {c.score_a:.4f} | {c.score_b:.4f} "
            f"| {_fmt(c.rel_diff, '+.2%')} | [{_fmt(lo, '+.2%')}, {_fmt(hi, '+.2%')}] | {c.diff:+.4f} "
            f"| [{_fmt(c.tost.ci[0], '+.4f')}, {_fmt(c.tost.ci[1], '+.4f')}] | ±{c.tost.margin:.4f} | {item.p_adjusted:.3g} "
            f"| {c.tost.p_value:.3g} | {_fmt(c.flips.rate, '.1%')} | **{item.verdict.replace('_', ' ')}** |"
        )
    lines.append("")
    for item in decision.benchmarks:
        lines.append(f"- **{_cell(item.name)}**: {_cell(item.reason)}")
        if item.verdict == INCONCLUSIVE:
            lines.append(f"  - to conclude: {_cell(advice_text(item.comparison.power, item.comparison.tost.margin))}")
    return lines


def _detail_lines(analysis, forest_plot_name: str, explain: dict | None, figures: tuple[tuple[str, str], ...] = ()) -> list[str]:
    """The folded part: the forest plot, the sequential design, the A/A control, the choice-level evidence, the
    token-level KLD (compare --kld), the configuration differences and the explanation of moved items."""
    decision = analysis.decision
    lines = [f"![Difference per benchmark with {1 - decision.rules.alpha:.0%} CI and tolerance band]({forest_plot_name})"]
    lines += [line for alt, name in figures for line in ("", f"![{alt}]({name})")]
    if analysis.sequential:
        from .content import sequential_lines

        lines += ["", "### Sequential design", ""] + [f"- {_cell(line)}" for line in sequential_lines(analysis)]
    if analysis.control:
        from .content import CONTROL_COLUMNS, control_rows, control_warnings

        lines += ["", "### A/A control: A vs A′ beside A vs B", "",
                  f"Rates with {1 - decision.rules.alpha:.0%} intervals; excess-flip p: exact one-sided test that A vs B flips more "
                  "items than A vs A′ (a second run of A). The control changes the verdict only through --flip-margin.", "",
                  "| " + " | ".join(CONTROL_COLUMNS) + " |", "|---|---|" + "---:|" * (len(CONTROL_COLUMNS) - 2)]
        lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in control_rows(analysis)]
        lines += [""] + [f"- **{_cell(name)}: baseline {status}.** {_cell(warning)}" for name, status, warning in control_warnings(analysis)]
    if analysis.choices or any(item.gates for item in decision.benchmarks):
        from .content import CHOICE_COLUMNS, choice_rows, gate_lines

        lines += ["", "### Choice-level evidence", "",
                  f"Per item from the choices' log-likelihoods: KL(A‖B) of the choice distribution (nats), top choice changed, "
                  f"gold log-likelihood change; means with {1 - decision.rules.alpha:.0%} intervals. A vs A′ is the noise floor.", ""]
        rows = choice_rows(analysis)
        if rows:
            lines += ["| " + " | ".join(CHOICE_COLUMNS) + " |", "|---|---|" + "---:|" * (len(CHOICE_COLUMNS) - 2)]
            lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
        lines += [""] + [f"- evidence gate {_cell(line)}" for line in gate_lines(analysis)]
    if analysis.token_kld:
        from .content import TOKEN_KLD_COLUMNS, token_kld_note, token_kld_rows

        lines += ["", "### Token-level KLD", "", _cell(token_kld_note(analysis)), "",
                  "| " + " | ".join(TOKEN_KLD_COLUMNS) + " |", "|---|" + "---:|" * (len(TOKEN_KLD_COLUMNS) - 2) + "---|"]
        lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in token_kld_rows(analysis)]
    from ..stats.planning import PLANNING_COLUMNS
    from .content import planning_rows

    lines += ["", "### Planning", "",
              "A vs B's item differences as the noise of a rerun: items needed for 80% power to pass when B equals A, and the "
              "margin (points) certifiable at these items, beside TensorRT-LLM's unpaired gate under the same guarantees.", "",
              "| " + " | ".join(PLANNING_COLUMNS) + " |", "|---|" + "---:|" * (len(PLANNING_COLUMNS) - 1)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in planning_rows(analysis)]
    lines += [""] if analysis.pairing.config_differences else []
    for difference in analysis.pairing.config_differences:
        lines.append(f"- config difference in {_cell(difference.benchmark)}: {_cell(difference.factor)}: {_cell(difference.detail)}")
    if explain is not None:
        lines += ["", "### Explain: why items moved", "", _cell(explain["summary"]), ""]
        if explain["items"]:
            lines += ["| item | moved | class | detail |", "|---|---|---|---|"]
            lines += [
                f"| {_cell(item['item_key'])} | {_cell(item['reason'])} {item['mean_a']:.2f} → {item['mean_b']:.2f} "
                f"| {_cell(item['flip_class'])} | {_cell(item['detail'])} |"
                for item in explain["items"]
            ]
    return lines
