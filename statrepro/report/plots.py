"""The report's figures as PNG bytes. matplotlib's Agg canvas without pyplot: no global state, no display.

Readable in greyscale: verdicts differ by marker shape, A and B by marker and line style, the tolerance
band is hatched as well as shaded.
"""

from __future__ import annotations

import io
import math

import numpy as np

from ..stats import DIFFERENT, EQUIVALENT, INCONCLUSIVE, VERDICTS, WITHIN_TOLERANCE
from .content import run_scores

VERDICT_MARKERS = {EQUIVALENT: "o", WITHIN_TOLERANCE: "s", DIFFERENT: "X", INCONCLUSIVE: "D"}
VERDICT_FILLED = {EQUIVALENT: True, WITHIN_TOLERANCE: True, DIFFERENT: True, INCONCLUSIVE: False}
assert VERDICT_MARKERS.keys() == VERDICT_FILLED.keys() == set(VERDICTS), "every verdict label (statrepro.stats.VERDICTS) needs a marker"
INK = "#1f2933"
BAND = "#c9d6e3"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    # No "Software" text chunk: the bytes depend only on the data.
    figure.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def _style(axes) -> None:
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.tick_params(colors=INK, labelsize=9)


def forest_plot(decision) -> bytes:
    """Difference of B vs A per benchmark with its CI, the tolerance band and the zero line."""
    relative = decision.rules.margin_kind == "relative"
    scale = 100.0 if relative else 1.0
    items = list(decision.benchmarks)
    figure = _figure(7.5, 1.4 + 0.55 * len(items))
    axes = figure.add_subplot()
    tolerance = decision.rules.tolerance * scale
    non_inferiority = decision.rules.mode == "non-inferiority"
    extent = [tolerance * 1.5]
    for row, item in enumerate(items):
        c = item.comparison
        estimate = (c.rel_diff if relative else c.diff) * scale
        ci = c.bootstrap.rel_diff_ci if relative else c.bootstrap.diff_ci
        low, high = ci[0] * scale, ci[1] * scale
        y = len(items) - 1 - row
        if not all(math.isfinite(v) for v in (estimate, low, high)):
            axes.text(0, y, "not defined (score A is 0)", ha="center", va="center", fontsize=8, color=INK)
            continue
        extent += [abs(low), abs(high)]
        axes.errorbar(
            [estimate],
            [y],
            xerr=[[estimate - low], [high - estimate]],
            fmt=VERDICT_MARKERS[item.verdict],
            color=INK,
            markerfacecolor=INK if VERDICT_FILLED[item.verdict] else "white",
            markersize=8,
            capsize=4,
            linewidth=1.6,
        )
    limit = max(extent) * 1.15
    band_right = limit if non_inferiority else tolerance
    axes.axvspan(-tolerance, band_right, facecolor=BAND, edgecolor="#7b8794", hatch="//", linewidth=0, alpha=0.55, zorder=0)
    for edge in (-tolerance,) if non_inferiority else (-tolerance, tolerance):
        axes.axvline(edge, color="#52606d", linestyle="--", linewidth=1)
    axes.axvline(0, color=INK, linestyle="-", linewidth=1)
    axes.set_xlim(-limit, limit)
    axes.set_ylim(-0.7, len(items) - 0.3)
    axes.set_yticks(range(len(items)))
    axes.set_yticklabels([f"{item.name}\n{item.verdict.replace('_', ' ')}" for item in reversed(items)])
    unit = "%" if relative else "score points"
    axes.set_xlabel(f"{'Relative' if relative else 'Absolute'} difference B − A ({unit}), {1 - decision.rules.alpha:.0%} CI")
    band_label = f"tolerance {'≥ −' if non_inferiority else '±'}{tolerance:g}{'%' if relative else ''}"
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=BAND, edgecolor="#7b8794", hatch="//", label=band_label)]
    handles += [
        Line2D([], [], marker=VERDICT_MARKERS[v], color=INK, linestyle="none",
               markerfacecolor=INK if VERDICT_FILLED[v] else "white", label=v.replace("_", " "))
        for v in VERDICT_MARKERS
        if any(item.verdict == v for item in items)
    ]
    axes.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(handles), frameon=False, fontsize=8)
    _style(axes)
    axes.spines["left"].set_visible(False)
    axes.tick_params(axis="y", length=0)
    return _png(figure)


def seed_plot(decision, pairing) -> bytes:
    """Each run's score per environment and benchmark, so seed noise sits next to the A-to-B shift."""
    items = list(decision.benchmarks)
    columns = min(4, len(items))
    rows = math.ceil(len(items) / columns)
    figure = _figure(2.3 * columns + 0.6, 2.9 * rows)
    for index, item in enumerate(items):
        axes = figure.add_subplot(rows, columns, index + 1)
        bench = pairing.benchmarks[item.name]
        for position, (label, scores, marker, face) in enumerate(
            (("A", bench.scores_a, "o", INK), ("B", bench.scores_b, "^", "white"))
        ):
            per_run = run_scores(scores)
            offsets = np.linspace(-0.12, 0.12, per_run.size) if per_run.size > 1 else np.zeros(per_run.size)
            axes.scatter(position + offsets, per_run, marker=marker, s=36, facecolor=face, edgecolor=INK, zorder=3)
            mean = item.comparison.score_a if label == "A" else item.comparison.score_b
            axes.hlines(mean, position - 0.3, position + 0.3, color=INK, linestyle="-" if label == "A" else "--", linewidth=1.4)
        axes.set_xticks([0, 1])
        axes.set_xticklabels(["A", "B"])
        axes.set_xlim(-0.6, 1.6)
        axes.set_title(item.name, fontsize=10, color=INK)
        axes.margins(y=0.25)
        if index % columns == 0:
            axes.set_ylabel("score of one run (mean over items)", fontsize=9)
        _style(axes)
    figure.tight_layout()
    return _png(figure)


def candidates_plot(verdict) -> bytes | None:
    """Recovery and choice KL of each candidate against its weights' size on disk, one point per candidate and
    benchmark, marked by its verdict; None when no candidate's size is known."""
    points = [
        (candidate.size_bytes / 1e6, candidate.name, name, recovery, candidate.comparison.benchmarks[name].verdict)
        for candidate in verdict.candidates if candidate.size_bytes
        for name, recovery in candidate.recovery.items()
    ]
    if not points:
        return None
    with_kl = any(recovery.choice_kl is not None for *_, recovery, _ in points)
    figure = _figure(8.5 if with_kl else 4.5, 3.2)
    panels = figure.subplots(1, 2 if with_kl else 1, squeeze=False, gridspec_kw={"wspace": 0.4})[0]
    for size, candidate, _, recovery, label in points:
        marker, filled = VERDICT_MARKERS[label], VERDICT_FILLED[label]
        style = dict(marker=marker, color=INK, markerfacecolor=INK if filled else "white", linestyle="none", capsize=3)
        if recovery.ratio is not None:
            low, high = (bound if bound is not None else recovery.ratio for bound in recovery.ratio_ci)
            panels[0].errorbar([size], [100 * recovery.ratio], yerr=[[100 * (recovery.ratio - low)], [100 * (high - recovery.ratio)]], **style)
            panels[0].annotate(candidate, (size, 100 * recovery.ratio), textcoords="offset points", xytext=(5, 4), fontsize=8, color=INK)
        if with_kl and recovery.choice_kl is not None:
            low, high = (bound if bound is not None else recovery.choice_kl for bound in recovery.choice_kl_ci)
            panels[1].errorbar([size], [recovery.choice_kl], yerr=[[recovery.choice_kl - low], [high - recovery.choice_kl]], **style)
            panels[1].annotate(candidate, (size, recovery.choice_kl), textcoords="offset points", xytext=(5, 4), fontsize=8, color=INK)
    panels[0].axhline(100, color=INK, linewidth=0.8, linestyle=":")
    panels[0].set_ylabel("recovery (% of the reference's score)", fontsize=9, color=INK)
    if with_kl:
        panels[1].set_yscale("log")
        panels[1].set_ylabel("mean choice KL(reference ‖ candidate)", fontsize=9, color=INK)
    for axes in panels:
        axes.set_xlabel("weights on disk (MB)", fontsize=9, color=INK)
        _style(axes)
    return _png(figure)


def flip_matrix(bench) -> np.ndarray:
    """[[A right & B right, A right & B wrong], [A wrong & B right, A wrong & B wrong]] of one paired benchmark, by
    each item's majority outcome (item mean above or below 0.5; ties and items missing on a side are in no cell)."""
    from ..stats import item_means

    right_a, right_b = (item_means(scores) for scores in (bench.scores_a, bench.scores_b))
    return np.array([[np.sum((a_side) & (b_side)) for b_side in (right_b > 0.5, right_b < 0.5)] for a_side in (right_a > 0.5, right_a < 0.5)])


def flip_matrix_plot(pairing) -> bytes:
    """Per benchmark, A right/wrong against B right/wrong (each item's majority outcome over its runs) with counts
    and shares of the items that have one on both sides; the off-diagonal cells are the flips."""
    from ..stats import item_means

    names = list(pairing.benchmarks)
    columns = min(4, len(names))
    rows = math.ceil(len(names) / columns)
    figure = _figure(2.9 * columns + 0.4, 2.6 * rows)
    for index, name in enumerate(names):
        bench = pairing.benchmarks[name]
        cells = flip_matrix(bench)
        total = max(int(cells.sum()), 1)
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(cells / total, cmap="Greys", vmin=0, vmax=1.6)
        for (row, column), count in np.ndenumerate(cells):
            flip = row != column
            axes.text(column, row, f"{count}\n{count / total:.1%}", ha="center", va="center", fontsize=9, color=INK,
                      fontweight="bold" if flip and count else "normal")
        axes.set_xticks([0, 1], ["B right", "B wrong"])
        axes.set_yticks([0, 1], ["A right", "A wrong"])
        undecided = len(bench.item_keys) - int(cells.sum())
        axes.set_title(name + (f"\n({undecided} tied or missing items left out)" if undecided else ""), fontsize=9, color=INK)
        axes.tick_params(colors=INK, labelsize=8, length=0)
    figure.tight_layout()
    return _png(figure)


def subset_differences(pairing, subsets: dict[str, list[str]], *, alpha: float, n_resamples: int, rng_seed: int | None) -> list:
    """Per benchmark with two subsets or more: (benchmark, [(subset, stats.choices.MeanInterval of the item
    differences B − A), ...] sorted by the mean difference, lowest first)."""
    from ..stats import item_means
    from ..stats.choices import mean_interval

    rng = np.random.default_rng(rng_seed)
    panels = []
    for name, bench in pairing.benchmarks.items():
        labels = np.asarray(subsets.get(name) or [name] * len(bench.item_keys))
        if len(set(labels)) < 2:
            continue
        diffs = item_means(bench.scores_b) - item_means(bench.scores_a)
        found = [(subset, mean_interval(diffs[labels == subset], alpha=alpha, beyond_alpha=alpha, n_resamples=n_resamples, rng=rng))
                 for subset in sorted(set(labels))]
        panels.append((name, sorted((entry for entry in found if entry[1].n_items), key=lambda entry: entry[1].mean)))
    return panels


def subset_plot(panels: list, alpha: float) -> bytes | None:
    """``subset_differences`` drawn: each subset's mean item difference with its interval, sorted, so a change
    concentrated in one subject stands out. None when no benchmark has two subsets or more."""
    if not panels:
        return None
    height = sum(0.22 * len(found) + 0.9 for _, found in panels)
    figure = _figure(7.5, min(height, 60))
    grid = figure.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": [len(f) + 3 for _, f in panels]})[:, 0]
    for axes, (name, found) in zip(grid, panels):
        means = np.array([interval.mean for _, interval in found])
        lows = np.array([interval.ci[0] for _, interval in found])
        highs = np.array([interval.ci[1] for _, interval in found])
        y = np.arange(len(found))
        axes.errorbar(means, y, xerr=[means - lows, highs - means], fmt="o", color=INK, markersize=4, capsize=2, linewidth=1)
        axes.axvline(0, color=INK, linewidth=0.8)
        axes.set_yticks(y, [f"{subset} ({interval.n_items})" for subset, interval in found], fontsize=7)
        axes.set_ylim(len(found) - 0.3, -0.7)  # the largest loss on top
        axes.set_title(f"{name}: per-subset difference B − A, {1 - alpha:.0%} CI (items in brackets)", fontsize=9, color=INK)
        _style(axes)
    figure.tight_layout()
    return _png(figure)


def loglik_plot(changes: dict) -> bytes | None:
    """Per benchmark with choice log-likelihoods (modes ppl, clp): the distribution of the per-item change of the
    gold choice's log-likelihood, B − A (``stats.choices.ItemChoices.gold_delta``). None without such a benchmark."""
    panels = [(name, values[np.isfinite(values)]) for name, values in ((n, c.gold_delta) for n, c in changes.items())]
    panels = [(name, values) for name, values in panels if values.size]
    if not panels:
        return None
    figure = _figure(3.6 * len(panels) + 0.4, 2.8)
    for index, (name, values) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        axes.hist(values, bins=min(60, max(10, values.size // 10)), color="#7b8794", edgecolor=INK, linewidth=0.4)
        axes.axvline(0, color=INK, linewidth=0.8)
        axes.axvline(float(np.mean(values)), color=INK, linestyle="--", linewidth=1)
        axes.set_title(f"{name} ({values.size} items; dashed: mean {np.mean(values):+.3g})", fontsize=9, color=INK)
        axes.set_xlabel("gold choice log-likelihood, B − A (nats)", fontsize=8, color=INK)
        _style(axes)
    figure.tight_layout()
    return _png(figure)
