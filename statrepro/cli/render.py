"""How the commands print their results: rich tables and summary lines (the API computes, this only shows)."""

from __future__ import annotations


def print_decision(analysis) -> None:
    """A rich table of the per-benchmark verdicts and the overall line."""
    from rich.console import Console
    from rich.table import Table

    from ..stats import DIFFERENT, EQUIVALENT, INCONCLUSIVE, VERDICTS, WITHIN_TOLERANCE
    from ..stats.advice import advice_text

    decision = analysis.decision
    colours = {EQUIVALENT: "green", WITHIN_TOLERANCE: "green", DIFFERENT: "red", INCONCLUSIVE: "yellow"}
    assert colours.keys() == set(VERDICTS), "every verdict label needs a colour"
    table = Table(
        title=f"statrepro verdict (alpha={decision.rules.alpha}, tolerance={decision.rules.tolerance}, {decision.rules.mode})",
        box=None,
        padding=(0, 0, 0, 2),  # no borders, two spaces between columns: the table fits 80 columns
        pad_edge=False,
        header_style="bold underline",
    )
    for column in ("benchmark", "n x runs", "A", "B", "rel diff", "p adj", "TOST p", "flips", "verdict"):
        table.add_column(column, justify="left" if column in ("benchmark", "verdict") else "right", no_wrap=True)
    for item in decision.benchmarks:
        c = item.comparison
        table.add_row(
            item.name,
            f"{c.n_items}x{c.n_runs_a}/{c.n_runs_b}" + (f" (-{c.n_missing})" if c.n_missing else "")
            + (f"\n{c.missing.describe()}" if c.missing.any else ""),
            f"{c.score_a:.3f}",
            f"{c.score_b:.3f}",
            f"{c.rel_diff:+.1%}",
            f"{item.p_adjusted:.2g}",
            f"{c.tost.p_value:.2g}",
            f"{c.flips.rate:.0%}",
            f"[{colours[item.verdict]}]{item.verdict}[/]",
        )
    console = Console()
    console.print(table)
    for item in decision.benchmarks:
        c = item.comparison
        lo, hi = c.bootstrap.diff_ci
        tost_lo, tost_hi = c.tost.ci
        console.print(
            f"  [bold]{item.name}[/]: diff {c.diff:+.4f}, {c.bootstrap.confidence:.0%} CI [{lo:+.4f}, {hi:+.4f}], "
            f"{c.tost.ci_level:.0%} CI (the TOST's) [{tost_lo:+.4f}, {tost_hi:+.4f}], margin ±{c.tost.margin:.4f}"
        )
        if c.flips.expected_rate is not None:
            console.print(f"    flips {c.flips.rate:.1%} ({c.flips.down} down, {c.flips.up} up); seed noise alone: ~{c.flips.expected_rate:.1%}")
        console.print(f"    {item.reason}")
        if analysis.control is not None:
            print_control(console, analysis.control[item.name])
        if item.name in analysis.choices:
            print_choices(console, analysis.choices[item.name])
        for gate in item.gates:
            console.print(f"    gate {gate.outcome}: {gate.describe()}", markup=False, highlight=False)
        if item.verdict == INCONCLUSIVE:
            console.print(f"    to conclude: {advice_text(c.power, c.tost.margin)}")
    for difference in analysis.pairing.config_differences:
        console.print(f"  [yellow]config difference[/] {difference.benchmark}: {difference.factor}: {difference.detail}")
    for name, count in analysis.pairing.dropped.items():
        console.print(f"  [yellow]dropped[/] {count} unpaired items of {name}")
    console.print(f"[bold]overall: [{colours[decision.verdict]}]{decision.verdict}[/][/]")
    if analysis.explain is not None:
        print_explanation(analysis.explain)
    if analysis.token_kld is not None:
        print_token_kld(analysis.token_kld)


def print_candidates(result) -> None:
    """Each candidate's verdict with its recovery per benchmark, then which candidates the fixed sequence clears."""
    from rich.console import Console
    from rich.table import Table

    from ..stats import DIFFERENT, EQUIVALENT, INCONCLUSIVE, WITHIN_TOLERANCE

    colours = {EQUIVALENT: "green", WITHIN_TOLERANCE: "green", DIFFERENT: "red", INCONCLUSIVE: "yellow"}
    verdict = result.to_json()
    table = Table(title=f"statrepro: {len(verdict.candidates)} candidates against {result.reference}", box=None,
                  padding=(0, 0, 0, 2), pad_edge=False)
    for column in ("candidate", "weights", "benchmark", "recovery [95% CI]", "choice KL", "flips", "verdict", "cleared"):
        table.add_column(column, justify="right" if column in ("recovery [95% CI]", "choice KL", "flips") else "left")
    for candidate in verdict.candidates:
        for name, recovery in candidate.recovery.items():
            label = candidate.comparison.benchmarks[name].verdict
            ratio = "n/a" if recovery.ratio is None else f"{recovery.ratio:.1%}"
            low, high = (f"{bound:.1%}" if bound is not None else "?" for bound in recovery.ratio_ci)
            size = f" {candidate.size_bytes / 1e6:.0f} MB" if candidate.size_bytes else ""
            kl = "n/a" if recovery.choice_kl is None else f"{recovery.choice_kl:.3g}"
            table.add_row(candidate.name, f"{candidate.file_type or '?'}{size}", name, f"{ratio} [{low}, {high}]", kl,
                          f"{recovery.flip_rate:.1%}", f"[{colours[label]}]{label}[/]", "yes" if candidate.cleared else "no")
    console = Console(width=max(110, Console().width))  # one row per candidate and benchmark
    console.print(table)
    console.print(result.selection.summary(), markup=False, highlight=False)
    for name, analysis in result.analyses.items():
        for item in analysis.decision.benchmarks:
            console.print(f"  {name} {item.name}: {item.reason}", markup=False, highlight=False)


def _rate(rate) -> str:
    """'4.0% [2.1%, 7.5%]', or 'n/a' without items."""
    return "n/a" if not rate.n_items else f"{rate.rate:.1%} [{rate.ci[0]:.1%}, {rate.ci[1]:.1%}]"


def print_control(console, control) -> None:
    """The A/A control's line of one benchmark: flips of A vs A' and A vs B, the excess and its test, any warning."""
    excess = control.excess_flips
    console.print(
        f"    control: flips A/A' {_rate(control.control.flips)}, A/B {_rate(control.candidate.flips)}, excess "
        f"{excess.excess:+.1%} [{excess.ci[0]:+.1%}, {excess.ci[1]:+.1%}], p={control.excess_test.p_value:.3g} "
        f"(one-sided, that A/B flips more); harmful A/A' {_rate(control.control.harmful)} vs A/B {_rate(control.candidate.harmful)}",
        markup=False, highlight=False,
    )
    if control.warning:
        from rich.markup import escape

        console.print(f"    [yellow]baseline {control.baseline}:[/] {escape(control.warning)}", highlight=False)


def _mean(interval, spec: str) -> str:
    """'0.012 [0.008, 0.017]', or 'n/a' without items."""
    if not interval.n_items:
        return "n/a"
    return f"{format(interval.mean, spec)} [{format(interval.ci[0], spec)}, {format(interval.ci[1], spec)}]"


def print_choices(console, choices) -> None:
    """The choice-level evidence of one benchmark: KL, top-choice changes, gold log-likelihood, and A vs A' beside them."""
    text = f"    choices ({choices.n_items} items): KL(A||B) {_mean(choices.kl, '.4g')}, top choice changed {_mean(choices.top_changed, '.1%')}"
    if choices.gold_delta is not None:
        text += f", gold log-likelihood {_mean(choices.gold_delta, '+.4g')}"
    console.print(text, markup=False, highlight=False)
    if choices.control is not None:
        control = choices.control
        console.print(
            f"    choices A/A': KL {_mean(control.kl, '.4g')}, top choice changed {_mean(control.top_changed, '.1%')}; "
            f"excess KL {_mean(choices.excess_kl, '+.4g')}, excess top changed {_mean(choices.excess_top_changed, '+.1%')}",
            markup=False, highlight=False,
        )


def print_explanation(result) -> None:
    """The explain table: one row per moved item with its flip class and the numbers behind it."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if result.items:
        table = Table(title=f"explain: A {result.env_a}  B {result.env_b}", box=None, padding=(0, 0, 0, 2), pad_edge=False,
                      header_style="bold underline")
        for column in ("item", "moved", "A -> B", "class", "detail"):
            table.add_column(column, overflow="fold", no_wrap=column != "detail")
        for item in result.items:
            table.add_row(item.item_key, item.reason, f"{item.mean_a:.2f} -> {item.mean_b:.2f}", item.flip_class, item.detail)
        console.print(table, markup=False)
    console.print(f"explain: {result.summary()}", markup=False, highlight=False, soft_wrap=True)


def print_layers(result) -> None:
    """The per-point table of a layers comparison and its summary line."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"A: {result.setting_a}   B: {result.setting_b}   ({result.n_prompts} prompts, {result.n_tokens} tokens)")
    for column in ("point", "rel L2", "cos mean", "cos min", "max |diff|"):
        table.add_column(column, justify="left" if column == "point" else "right")
    for point in result.points:
        mark = " [red]<- jump[/]" if point.layer == result.jump_layer and point.name == f"layer.{point.layer}" else ""
        table.add_row(point.name + mark, f"{point.rel_l2:.3g}", f"{point.cosine_mean:.8f}", f"{point.cosine_min:.8f}", f"{point.max_abs:.3g}")
    console = Console()
    console.print(table)
    console.print(result.summary())


def print_probe(result) -> None:
    """The probe table: max |logit diff| and argmax flips per dtype and batching configuration."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"probe: {result.n_sequences} sequences, attention {result.attention}, device {result.device}, reference = each sequence alone")
    for column in ("dtype", "configuration", "max |logit diff|", "argmax flips", "positions"):
        table.add_column(column, justify="left" if column in ("dtype", "configuration") else "right")
    for row in result.rows:
        table.add_row(row.dtype, row.configuration, f"{row.max_abs_logit_diff:.3g}", str(row.argmax_flips), str(row.positions))
    console = Console()
    console.print(table)
    console.print(result.summary())


def print_logprobs(result) -> None:
    """The logprobs table: per prompt, exact match, the first divergence and the logprob deltas."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"A: {result.side_a}   B: {result.side_b}")
    for column in ("prompt", "match", "diverge at", "A token", "B token", "near tie", "top-k ok", "max |dlogprob|"):
        table.add_column(column)
    for item in result.prompts:
        table.add_row(
            item.prompt[:30].replace("\n", " "), "yes" if item.exact_match else "no",
            "-" if item.divergence is None else str(item.divergence), repr(item.token_a or ""), repr(item.token_b or ""),
            "-" if item.near_tie is None else str(item.near_tie), "-" if item.topk_accepted is None else str(item.topk_accepted),
            f"{max(item.abs_delta_logprobs, default=0.0):.3g}",
        )
    console = Console()
    console.print(table)
    console.print(result.summary())


def print_template(result) -> None:
    """Each chat-template mismatch with the tokens around it, and the summary line."""
    from rich.console import Console

    console = Console()
    for mismatch in result.mismatches:
        console.print(f"[red]mismatch[/] at token {mismatch.index} (lengths {mismatch.length_a}/{mismatch.length_b}) for {mismatch.prompt[:40]!r}")
        console.print(f"  A: {mismatch.context_a!r}", markup=False)
        console.print(f"  B: {mismatch.context_b!r}", markup=False)
    console.print(result.summary(), markup=False)


def print_doctor(result) -> None:
    """The doctor's warnings (stderr), the sides' endpoint lines, the differing factors and the determinism checklist."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console, warnings = Console(), Console(stderr=True)
    for side in result.sides:
        for note in side.notes:
            warnings.print(f"[yellow]warning[/] {side.side}: {escape(note)}")
        if side.endpoint is not None or side.unseen:
            console.print(escape(side.summary()))
    colours = {"high": "red", "medium": "yellow", "low": "green"}
    table = Table(title="differing factors")
    for column in ("factor", "A", "B", "severity", "why", "fix"):
        table.add_column(column, overflow="fold")
    for factor in result.factors:
        table.add_row(factor.name, str(factor.a), str(factor.b), f"[{colours[factor.severity]}]{factor.severity}[/]", factor.why, factor.fix)
    if result.factors:
        console.print(table)
    checks = Table(title="determinism checklist")
    for column in ("requirement", "A", "B"):
        checks.add_column(column)
    marks = {"met": "[green]met[/]", "not met": "[red]not met[/]", "unknown": "[dim]unknown[/]"}
    for item in result.checklist:
        checks.add_row(item.item, marks[item.a], marks[item.b])
    console.print(checks)
    if result.not_comparable:
        console.print(f"unknown on one side: {', '.join(result.not_comparable)}")
    console.print(result.summary())


def print_plan(plans: dict, options) -> None:
    """The planning table of `statrepro plan` (margins in score points)."""
    from rich.console import Console
    from rich.table import Table

    from ..stats.planning import PLANNING_COLUMNS

    margin = f"{options.tolerance:.2%} relative" if options.margin == "relative" else f"{options.tolerance:g} absolute"
    table = Table(title=f"plan: margin {margin}, alpha {options.alpha:g}, {options.mode}; 80% power to pass when B equals A")
    for column in PLANNING_COLUMNS:
        table.add_column(column, justify="left" if column == "benchmark" else "right")
    for name, plan in plans.items():
        table.add_row(name, *plan.cells())
    Console(width=max(160, Console().width)).print(table)


def token_kld_lines(report: dict) -> list[str]:
    """A token KLD report (its to_dict) in llama-perplexity --kl-divergence's layout and wording, so the two read side by side."""
    low, high = report["kld_ci"]
    interval = "n/a with one text" if low is None else f"[{low:.6f}, {high:.6f}]"
    lines = [
        f"====== KL divergence statistics: {report['candidate']} (Q) against {report['reference']} (base) ======",
        f"texts: {report['text_source']} (sha256 {report['text_sha256'][:16]}); {report['n_tokens']} tokens of {report['n_texts']} texts, "
        f"{report['distributions']}",
        f"Mean    KLD: {report['mean_kld']:10.6f} ± {report['kld_se']:10.6f}   ({report['confidence']:.0%} CI, texts as clusters: "
        f"{interval})",
        f"Maximum KLD: {report['max_kld']:10.6f}",
    ]
    lines += [f"{float(key):4.1f}%   KLD: {report['kld_percentiles'][key]:10.6f}" for key in sorted(report["kld_percentiles"], key=float, reverse=True)]
    lines += [
        f"Median  KLD: {report['median_kld']:10.6f}",
        f"RMS Δp    : {100 * report['rms_dp']:6.3f} ± {100 * report['rms_dp_se']:5.3f} %",
        f"Same top p: {100 * report['same_top']:6.3f} ± {100 * report['same_top_se']:5.3f} %",
        f"Mean ln(PPL(Q)/PPL(base)): {report['ln_ppl_ratio']:10.6f} ± {report['ln_ppl_ratio_se']:10.6f}   "
        f"(PPL(Q) {report['ppl_cand']:.4f}, PPL(base) {report['ppl_ref']:.4f})",
    ]
    return lines


def print_token_kld(report: dict) -> None:
    """The token KLD figures on stdout, plain (no markup: the figures hold brackets)."""
    from rich.console import Console

    console = Console()
    for line in token_kld_lines(report):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
