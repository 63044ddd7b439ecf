"""What the report shows, as plain data: flipped items, per-run scores, redacted provenance.

Kept apart from the HTML and Markdown renderers so both read the same facts.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..stats import item_means

FLIPPED_ITEMS_SHOWN = 20


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts as dotted keys with printable values (lists kept as compact JSON)."""
    if isinstance(value, dict):
        flat: dict[str, str] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix or "value": printable(value)}


def printable(value: Any) -> str:
    """Strings as they are, anything else as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def run_scores(scores: np.ndarray) -> np.ndarray:
    """Score of each run (column): its mean over the items that have a result in that run."""
    with np.errstate(invalid="ignore"):
        counts = np.sum(~np.isnan(scores), axis=0)
        sums = np.nansum(scores, axis=0)
    return sums[counts > 0] / counts[counts > 0]


@dataclass(frozen=True)
class FlippedItem:
    """One item whose majority outcome changed between A and B, with what each side answered."""

    item_key: str
    direction: str  # "up": wrong in A, right in B; "down": right in A, wrong in B
    mean_a: float
    mean_b: float
    prediction_a: str | None
    prediction_b: str | None
    target: str | None
    prompt: str | None


def natural_key(text: str) -> list:
    """Sort key that orders 'gsm8k/9' before 'gsm8k/10'."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text)]


def _typical(values: pd.Series) -> str | None:
    """The most common non-empty value, with its share of runs when the runs disagree."""
    present = [str(v) for v in values if v is not None and not (isinstance(v, float) and np.isnan(v))]
    if not present:
        return None
    value, count = Counter(present).most_common(1)[0]
    return value if count == len(values) else f"{value}\n[{count} of {len(values)} runs]"


def _by_item(records: pd.DataFrame | None, benchmark: str) -> dict[str, pd.DataFrame]:
    if records is None or not len(records):
        return {}
    part = records[records["benchmark"] == benchmark]
    return {str(key): group for key, group in part.groupby("item_key", sort=False)}


def flipped_items(
    bench, records_a: pd.DataFrame | None, records_b: pd.DataFrame | None, limit: int = FLIPPED_ITEMS_SHOWN
) -> list[FlippedItem]:
    """The ``limit`` flipped items of one paired benchmark with the largest score change."""
    mean_a, mean_b = item_means(bench.scores_a), item_means(bench.scores_b)
    flipped = np.flatnonzero((mean_a > 0.5) != (mean_b > 0.5))
    order = sorted(flipped, key=lambda i: (-abs(mean_b[i] - mean_a[i]), natural_key(bench.item_keys[i])))[:limit]
    rows_a, rows_b = _by_item(records_a, bench.name), _by_item(records_b, bench.name)
    items = []
    for index in order:
        key = bench.item_keys[index]
        group_a, group_b = rows_a.get(key), rows_b.get(key)
        groups = [group for group in (group_a, group_b) if group is not None]
        both = pd.concat(groups) if groups else None
        prompt = None
        if both is not None:
            prompt_column = "prompt" if "prompt" in both.columns else "prompt_hash"
            prompt = _typical(both[prompt_column])
        items.append(
            FlippedItem(
                item_key=key,
                direction="up" if mean_b[index] > mean_a[index] else "down",
                mean_a=float(mean_a[index]),
                mean_b=float(mean_b[index]),
                prediction_a=_typical(group_a["prediction"]) if group_a is not None else None,
                prediction_b=_typical(group_b["prediction"]) if group_b is not None else None,
                target=_typical(both["target"]) if both is not None else None,
                prompt=prompt,
            )
        )
    return items


def has_prompt_text(records_a: pd.DataFrame | None, records_b: pd.DataFrame | None) -> bool:
    """Whether the records carry prompt text (else the report shows prompt hashes)."""
    return any(r is not None and "prompt" in r.columns for r in (records_a, records_b))


def _rate_text(rate) -> str:
    """'4.0% [2.1%, 7.5%]' for a stats.control.RateInterval; 'n/a' for none or no items."""
    if rate is None or not rate.n_items:
        return "n/a"
    return f"{rate.rate:.1%} [{rate.ci[0]:.1%}, {rate.ci[1]:.1%}]"


def _excess_text(excess) -> str:
    """'+3.0% [+0.9%, +5.2%]' for a stats.control.ExcessRate; 'n/a' for none."""
    if excess is None or not np.isfinite(excess.excess):
        return "n/a"
    return f"{excess.excess:+.1%} [{excess.ci[0]:+.1%}, {excess.ci[1]:+.1%}]"


FLIP_COLUMNS = ["flips", "right → wrong", "wrong → right", "answer churn"]


def flip_decomposition_cells(decomposition) -> list[str]:
    """A FlipDecomposition as text cells in FLIP_COLUMNS order, each rate with its interval."""
    return [_rate_text(decomposition.flips), _rate_text(decomposition.harmful), _rate_text(decomposition.beneficial),
            _rate_text(decomposition.churn)]


CONTROL_COLUMNS = ["benchmark", "pair", *FLIP_COLUMNS, "score diff [CI]", "excess-flip p"]


def control_rows(analysis) -> list[list[str]]:
    """The A/A control as text rows (CONTROL_COLUMNS): per benchmark A vs A', A vs B and their excess."""
    rows = []
    for name, control in sorted((analysis.control or {}).items()):
        low, high = control.control_diff_ci
        rows.append([name, "A vs A′ (control)", *flip_decomposition_cells(control.control),
                     f"{control.control_diff:+.4f} [{low:+.4f}, {high:+.4f}]", ""])
        low, high = control.candidate_diff_ci
        rows.append([name, "A vs B", *flip_decomposition_cells(control.candidate),
                     f"{control.candidate_diff:+.4f} [{low:+.4f}, {high:+.4f}]", ""])
        excess = [control.excess_flips, control.excess_harmful, control.excess_beneficial, control.excess_churn]
        rows.append([name, "excess (A vs B − A vs A′)", *(_excess_text(e) for e in excess), "",
                     f"{control.excess_test.p_value:.3g}"])
    return rows


CHOICE_COLUMNS = ["benchmark", "pair", "items", "choice KL [CI]", "top choice changed [CI]", "gold log-likelihood change [CI]"]


def _mean_text(interval, spec: str) -> str:
    """'0.012 [0.008, 0.017]' of a stats.choices.MeanInterval, or 'n/a' without one or without items."""
    if interval is None or not interval.n_items:
        return "n/a"
    return f"{format(interval.mean, spec)} [{format(interval.ci[0], spec)}, {format(interval.ci[1], spec)}]"


def choice_rows(analysis) -> list[list[str]]:
    """The choice-level evidence as text rows (CHOICE_COLUMNS): A vs B, and with a control A vs A' and the excess."""
    rows = []
    for name, choices in sorted(analysis.choices.items()):
        rows.append([name, "A vs B", str(choices.n_items), _mean_text(choices.kl, ".4g"), _mean_text(choices.top_changed, ".1%"),
                     _mean_text(choices.gold_delta, "+.4g")])
        if choices.control is not None:
            control = choices.control
            rows.append([name, "A vs A′ (control)", str(control.n_items), _mean_text(control.kl, ".4g"),
                         _mean_text(control.top_changed, ".1%"), _mean_text(control.gold_delta, "+.4g")])
            rows.append([name, "excess (A vs B − A vs A′)", str(control.n_items), _mean_text(choices.excess_kl, "+.4g"),
                         _mean_text(choices.excess_top_changed, "+.1%"), ""])
    return rows


TOKEN_KLD_COLUMNS = ["A → B", "tokens (texts)", "mean KLD [CI]", "99th pct KLD", "same top", "RMS Δp", "ln PPL(B)/PPL(A)", "text set sha256"]


def token_kld_rows(analysis) -> list[list[str]]:
    """compare --kld's figures (statrepro.diagnose.kld, its to_dict) as one text row of TOKEN_KLD_COLUMNS; none without
    them. Over each endpoint's top-k the KLD figures are marked as lower bounds."""
    report = analysis.token_kld
    if not report:
        return []
    low, high = report["kld_ci"]
    bound = "" if report["distributions"] == "full vocabulary" else " (lower bound)"
    interval = "n/a with one text" if low is None else f"[{low:.4g}, {high:.4g}]"
    return [[
        f"{report['reference']} → {report['candidate']}",
        f"{report['n_tokens']} ({report['n_texts']})",
        f"{report['mean_kld']:.4g} {interval}{bound}",
        f"{report['kld_percentiles']['99']:.4g}{bound}",
        f"{report['same_top']:.2%}",
        f"{report['rms_dp']:.3%}",
        f"{report['ln_ppl_ratio']:+.4g}",
        report["text_sha256"][:16],
    ]]


def token_kld_note(analysis) -> str:
    """What the token KLD row was computed on, in one sentence (empty without it)."""
    report = analysis.token_kld
    if not report:
        return ""
    return (f"Token by token (statrepro kld, llama-perplexity's figures): B's next-token distributions against A's on "
            f"{report['text_source']}, teacher-forced, over the {report['distributions']}; the KLD interval at "
            f"{report['confidence']:.0%} takes the texts as clusters. Evidence beside the verdict, never part of it.")


def gate_lines(analysis) -> list[str]:
    """One sentence per evidence gate of each benchmark (none when no gate is set)."""
    return [
        f"{item.name}: {gate.outcome}: {gate.describe()}" for item in analysis.decision.benchmarks for gate in item.gates
    ]


def control_warnings(analysis) -> list[tuple[str, str, str]]:
    """(benchmark, baseline status, warning) for each benchmark whose control did not show a stable baseline."""
    return [(name, control.baseline, control.warning) for name, control in sorted((analysis.control or {}).items()) if control.warning]


def sequential_lines(analysis) -> list[str]:
    """What a sequential design spent and where it stopped, one sentence per benchmark (none for a fixed design)."""
    sequential = analysis.sequential
    if not sequential:
        return []
    lines = [
        f"Sequential design over {'items (blocks in a pre-registered random order)' if sequential.get('over') == 'items' else 'seeds (one more per side each round)'}: "
        f"{_calls_sentence(sequential)}"
    ]
    order = sequential.get("order")
    if order:
        source = (
            f"given with --order-seed (the derived seed is {order['derived_seed']})" if order["user_given"]
            else "derived from both environments and the item set"
        )
        lines.append(f"Item order: seed {order['seed']}, {source}; pre-registered in {order['registry']}.")
    for change in sequential.get("design_changes") or []:
        lines.append(
            f"Design changed after data were seen: this pair was registered earlier with order seed {change['order_seed']} "
            f"(store {change['store']}); this run started a new design with --new-design, so its error rates are not the design's."
        )
    for name, bench in sorted(sequential["benchmarks"].items()):
        if sequential.get("over") == "items":
            design = bench["design"]
            where = f"after look {bench['looks_run']} ({bench['items_run']} of {design['max_items'] or design['n_items']} items)"
        else:
            where = f"after round {bench['rounds']} of {sequential['design']['max_rounds']}"
        lines.append(f"{name}: {bench['verdict'] or 'still running'} {where}; stop reason: {bench['stop_reason'] or 'none yet'}.")
    return lines


def _calls_sentence(sequential: dict) -> str:
    """Calls spent against the fixed design as it runs (a deterministic side's repeated seeds skipped) and against
    every seed of every item."""
    spent, as_run, nominal = (sequential.get(key) for key in ("calls_spent", "fixed_design_calls_as_run", "fixed_design_calls"))
    parts = [f"{spent} model calls"]
    if as_run is not None:
        parts.append(f"{as_run} for the fixed design as it runs ({sequential['calls_saved_share']:.0%} fewer than the fixed design as it runs)")
    if nominal:
        parts.append(f"{nominal} for every seed of every item ({1 - spent / nominal:.0%} fewer than every seed of every item)")
    return parts[0] + " against " + " and ".join(parts[1:]) + "." if len(parts) > 1 else parts[0] + "."


def planning_rows(analysis) -> list[list[str]]:
    """The planning table (stats.planning.PLANNING_COLUMNS) from the analysis at hand: per benchmark, A vs B's
    item differences taken as the noise of a rerun, its items and the verdict's margin and guarantees."""
    from ..stats.paired import complete_items
    from ..stats.planning import PLANNING_COLUMNS, noise_from_pair, plan_benchmark

    rules, rows = analysis.decision.rules, []
    for item in analysis.decision.benchmarks:
        bench, bounds = analysis.pairing.benchmarks[item.name], item.comparison.score_bounds
        try:
            if bounds is None:
                raise ValueError("the metric's range is unknown (--score-range)")
            *_, mean_a, mean_b = complete_items(bench.scores_a, bench.scores_b)
            plan = plan_benchmark(noise_from_pair(mean_a, mean_b, source="A vs B"), n_items=int(mean_a.size),
                                  tolerance=rules.tolerance, margin_kind=rules.margin_kind, mode=rules.mode, alpha=rules.alpha,
                                  score_range=bounds[1] - bounds[0])
        except ValueError as error:  # no range, fewer than 2 paired items, or a relative margin of a zero score
            rows.append([item.name, f"n/a: {error}", *[""] * (len(PLANNING_COLUMNS) - 2)])
            continue
        rows.append([item.name, *plan.cells()])
    return rows
