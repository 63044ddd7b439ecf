"""From two records tables (environment A and B) to a verdict: pairing, checks, statistics, JSON."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from . import __version__
from .benchmarks import BENCHMARKS, Benchmark
from .errors import InputError
from .stats import Decision, compare_many, decide
from .stats.rules import DEFAULT_RULES, VerdictRules
from .verdict_schema import (
    BenchmarkJson,
    ConfigDifferenceJson,
    ControlJson,
    MissingRunsJson,
    MissingSideJson,
    PowerJson,
    VarianceJson,
    VerdictJson,
)


@dataclass(frozen=True)
class AnalysisOptions:
    """Knobs of one analysis: the verdict rules, and how the data are paired and resampled."""

    rules: VerdictRules = DEFAULT_RULES
    unpaired: Literal["error", "intersect", "missing"] = "error"
    """Items on one side only, and runs that lack items their side's other runs have: an error (analyze's default),
    or counted as missing runs (--intersect, and compare: a failed run of the candidate must not vanish from the
    verdict, so the tipping-point check scores them worst case for B). With --intersect, benchmarks on one side
    only are dropped."""
    ci_method: Literal["BCa", "percentile"] = "BCa"
    seed_level_bootstrap: bool = False
    rng_seed: int | None = 0


def declared_score_range(metric: str) -> tuple[float, float] | None:
    """The declared range of a metric ("name" or "name,filter"), or None when statrepro does not know it. The
    exact tests and the tipping-point check take their bound from here, never from the observed scores; the
    harness adapters declare their [0, 1] metrics (HarnessAdapter.unit_range_metrics)."""
    from .harness import unit_range_metrics

    return (0.0, 1.0) if metric.split(",", 1)[0] in unit_range_metrics() else None


def declared_score_ranges(pairing: Pairing) -> dict[str, tuple[float, float] | None]:
    """Each paired benchmark's declared metric range (None: unknown), for the statistics' exact tests and
    tipping-point checks."""
    return {name: declared_score_range(bench.metric) for name, bench in pairing.benchmarks.items()}


@dataclass(frozen=True)
class PairedBenchmark:
    """Aligned score matrices of one benchmark: rows are items, columns are runs (NaN = missing)."""

    name: str
    metric: str
    item_keys: list[str]
    scores_a: np.ndarray
    scores_b: np.ndarray
    runs_a: tuple[str, ...] = ()  # the run id of each column
    runs_b: tuple[str, ...] = ()


@dataclass
class Pairing:
    """The result of pairing A with B, with what was dropped and what differs in configuration."""

    benchmarks: dict[str, PairedBenchmark] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    config_differences: list[ConfigDifferenceJson] = field(default_factory=list)


@dataclass(frozen=True)
class Analysis:
    """Everything `analyze` computed: the decision plus the pairing it came from."""

    decision: Decision
    pairing: Pairing
    options: AnalysisOptions
    inputs: dict[str, str]
    sequential: dict | None = None  # compare --sequential: rounds, calls spent, the fixed design's calls
    control: dict[str, Any] | None = None  # --control: per benchmark, the stats.control.ControlComparison
    flips: dict[str, Any] = field(default_factory=dict)  # per benchmark, A vs B's stats.control.FlipDecomposition
    choices: dict[str, Any] = field(default_factory=dict)  # per benchmark with choice log-likelihoods, stats.choices.ChoiceComparison
    explain: Any = None  # compare --explain: the statrepro.diagnose.explain.ExplainResult of the moved items
    token_kld: dict[str, Any] | None = None  # compare --kld: the statrepro.diagnose.kld.TokenKLDReport's to_dict()

    def to_json(self) -> VerdictJson:
        return verdict_json(self)


def _side_label(records: pd.DataFrame, fallback: str) -> str:
    sources = records["source"].dropna()
    return str(sources.iloc[0]) if len(sources) else fallback


def check_single_model(records: pd.DataFrame, side: str) -> None:
    """One side is one environment: several model names mean the inputs were mixed up."""
    models = sorted({m for m in records["model"].dropna().unique() if m})
    if len(models) > 1:
        first = records[records["model"] == models[1]].iloc[0]
        raise InputError(
            f"side {side} mixes models {models[0]!r} and {models[1]!r}; one side must be one environment",
            path=first["source"],
        )


def _run_order(run_id: str) -> tuple:
    """Runs in natural order (seed-2 before seed-10), so columns follow the seeds as they were added."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(run_id)))


def _run_table(records: pd.DataFrame, item_keys: list[str]) -> pd.DataFrame:
    """Items x runs (in seed order) of scores, NaN where a run has no result for an item."""
    table = records.pivot_table(index="item_key", columns="run_id", values="score", aggfunc="first", dropna=False)
    return table[sorted(table.columns, key=_run_order)].reindex(item_keys)


def _matrix(records: pd.DataFrame, item_keys: list[str]) -> np.ndarray:
    return _run_table(records, item_keys).to_numpy(dtype=float)


def score_matrix(records: pd.DataFrame) -> np.ndarray:
    """One side's items x runs of scores on its own (runs in seed order, NaN = no result), unpaired."""
    return _matrix(records, sorted(set(records["item_key"].astype(str))))


def _check_complete_runs(name: str, side: str, records: pd.DataFrame, table: pd.DataFrame) -> None:
    """Without --intersect every run of a side must hold every item its other runs hold: a run that lost items
    would otherwise have them averaged away (the missing runs of a hard item bias its mean upward)."""
    present = table.notna()
    known = present.any(axis=1)
    for run_id in table.columns:
        lost = known & ~present[run_id]
        if lost.any():
            example = lost[lost].index[0]
            source = records.loc[records["run_id"] == run_id, "source"].dropna()
            raise InputError(
                f"benchmark {name!r}: run {run_id!r} of side {side} lacks {int(lost.sum())} items that its other runs "
                f"have (e.g. {example!r}); pass --intersect to count them as missing runs",
                path=str(source.iloc[0]) if len(source) else side,
            )


def pair(
    records_a: pd.DataFrame, records_b: pd.DataFrame, *, unpaired: Literal["error", "intersect", "missing"] = "error"
) -> Pairing:
    """Align A and B per benchmark and item; reject what cannot be compared honestly."""
    intersect = unpaired != "error"
    check_single_model(records_a, "A")
    check_single_model(records_b, "B")
    pairing = Pairing()
    harnesses = (_harness_of(records_a), _harness_of(records_b))
    cross_harness = None not in harnesses and harnesses[0] != harnesses[1]
    names_a, names_b = set(records_a["benchmark"]), set(records_b["benchmark"])
    only = sorted(names_a ^ names_b)
    if only and unpaired != "intersect":
        name = only[0]
        side, records = ("A", records_a) if name in names_a else ("B", records_b)
        raise InputError(
            f"benchmark {name!r} is present on side {side} only; pass --intersect to compare the common benchmarks",
            path=_side_label(records[records["benchmark"] == name], side),
        )
    for name in only:
        pairing.dropped[name] = int(
            records_a[records_a["benchmark"] == name]["item_key"].nunique()
            + records_b[records_b["benchmark"] == name]["item_key"].nunique()
        )
    for name in sorted(names_a & names_b):
        part_a = records_a[records_a["benchmark"] == name]
        part_b = records_b[records_b["benchmark"] == name]
        if cross_harness:
            part_a, part_b = _pair_across_harnesses(name, part_a, part_b, harnesses, pairing)
        keys_a, keys_b = set(part_a["item_key"]), set(part_b["item_key"])
        if keys_a != keys_b:
            only_a, only_b = sorted(keys_a - keys_b), sorted(keys_b - keys_a)
            if not intersect:
                example = (only_a or only_b)[0]
                # Across harnesses the likely cause is keys with nothing in common, not a few missing items.
                across = f" ({harnesses[0]} output against {harnesses[1]} output)" if cross_harness else ""
                raise InputError(
                    f"item sets differ in benchmark {name!r}{across}: {len(only_a)} items only in A, {len(only_b)} only in B "
                    f"(e.g. {example!r}); pass --intersect to analyse the common items",
                    path=_side_label(part_a if only_a else part_b, name),
                )
        keys = sorted(keys_a | keys_b)
        if len(keys_a & keys_b) < 2:
            raise InputError(
                f"benchmark {name!r} has {len(keys_a & keys_b)} common items; need at least 2", path=_side_label(part_a, "A")
            )
        part_a = part_a[part_a["item_key"].isin(keys)]
        part_b = part_b[part_b["item_key"].isin(keys)]
        _check_hashes(name, part_a, part_b, pairing)
        metric = _one_metric(name, part_a, part_b, cross_harness, pairing)
        table_a, table_b = _run_table(part_a, keys), _run_table(part_b, keys)
        if not intersect:
            _check_complete_runs(name, "A", part_a, table_a)
            _check_complete_runs(name, "B", part_b, table_b)
        pairing.benchmarks[name] = PairedBenchmark(
            name, metric, keys, table_a.to_numpy(dtype=float), table_b.to_numpy(dtype=float),
            tuple(map(str, table_a.columns)), tuple(map(str, table_b.columns)),
        )
    if not pairing.benchmarks:
        raise InputError("A and B have no benchmark in common")
    return pairing


def _one_metric(name: str, part_a: pd.DataFrame, part_b: pd.DataFrame, cross_harness: bool, pairing: Pairing) -> str:
    """The benchmark's one metric (A's). Harnesses name theirs their own way (lm-eval's acc,none, evalscope's acc),
    so across harnesses one metric per side with the same declared range compares, reported as a difference."""
    metrics_a, metrics_b = sorted(set(part_a["metric"])), sorted(set(part_b["metric"]))
    metrics = sorted(set(metrics_a) | set(metrics_b))
    if len(metrics) == 1:
        return metrics[0]
    score_range = declared_score_range(metrics_a[0])
    if cross_harness and len(metrics_a) == len(metrics_b) == 1 and score_range and score_range == declared_score_range(metrics_b[0]):
        detail = f"A is scored with {metrics_a[0]}, B with {metrics_b[0]}"
        pairing.config_differences.append(ConfigDifferenceJson(benchmark=name, factor="metric", detail=detail))
        return metrics_a[0]
    raise InputError(
        f"benchmark {name!r} is scored with different metrics {metrics}; choose one with --metric", path=_side_label(part_a, "A")
    )


def _harness_of(records: pd.DataFrame) -> str | None:
    """The harness(es) a side was read from, None when unrecorded (a plugin's table, an older store)."""
    if "harness" not in records.columns:
        return None
    return ",".join(sorted(records["harness"].dropna().unique())) or None


def _has_unique_doc_hashes(part: pd.DataFrame) -> bool:
    items = part.drop_duplicates("item_key")
    return bool(items["doc_hash"].notna().all()) and items["doc_hash"].is_unique


def _pair_across_harnesses(
    name: str, part_a: pd.DataFrame, part_b: pd.DataFrame, harnesses: tuple[str, str], pairing: Pairing
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Harnesses key items their own way: keep the item keys when they are the same items on both sides (the
    benchmarks' prepared tasks key e.g. LiveBench as `statrepro_livebench_<task>/<row>` on every harness), else
    pair on the document hash when both sides record one per item, else on the benchmark's key map when every
    item of both sides comes from its prepared files (then the reference answers must agree); report the harness,
    the identity matched on, how many matched and how many are left unmatched."""
    keys_a, keys_b = set(part_a["item_key"]), set(part_b["item_key"])
    identity, target_check = "item key", ""
    if keys_a != keys_b and _has_unique_doc_hashes(part_a) and _has_unique_doc_hashes(part_b):
        identity = "document hash"
        key_of_document = part_a.drop_duplicates("item_key").set_index("doc_hash")["item_key"]
        # B's items take A's key for the same document, so the verdict names items as A does.
        part_b = part_b.assign(item_key=part_b["doc_hash"].map(key_of_document).fillna("doc_hash:" + part_b["doc_hash"]))
        keys_b = set(part_b["item_key"])
    elif keys_a != keys_b and (mapped := _keys_by_benchmark_map(name, part_a, part_b)) is not None:
        identity = "benchmark key map"
        part_b = part_b.assign(item_key=mapped)
        keys_b = set(part_b["item_key"])
        target_check = _check_targets(name, part_a, part_b)
    detail = (
        f"A is {harnesses[0]} output, B is {harnesses[1]} output; {len(keys_a & keys_b)} items matched on the {identity}, "
        f"{len(keys_a - keys_b)} of A and {len(keys_b - keys_a)} of B unmatched{target_check}"
    )
    pairing.config_differences.append(ConfigDifferenceJson(benchmark=name, factor="harness", detail=detail))
    return part_a, part_b


def _item_identities(spec: Benchmark, part: pd.DataFrame) -> pd.Series | None:
    """Item key -> the item's identity under the benchmark's key map; None unless every item maps, one key to one item."""
    items = part.drop_duplicates("item_key")
    identities = pd.Series(
        [spec.item_identity(h, s, k) for h, s, k in zip(items["harness"], items["subset"], items["item_key"])],
        index=items["item_key"].to_numpy(),
        dtype=object,
    )
    return None if identities.isna().any() or not identities.is_unique else identities


def _keys_by_benchmark_map(name: str, part_a: pd.DataFrame, part_b: pd.DataFrame) -> pd.Series | None:
    """B's item keys renamed to A's key of the same item under the benchmark's key map (B's own key where A lacks
    the item); None when the benchmark has no map or some item of either side does not map."""
    spec = BENCHMARKS.get(name)
    if spec is None:
        return None
    identities_a, identities_b = _item_identities(spec, part_a), _item_identities(spec, part_b)
    if identities_a is None or identities_b is None:
        return None
    key_of_identity = pd.Series(identities_a.index, index=identities_a.to_numpy())
    return part_b["item_key"].map(identities_b).map(key_of_identity).fillna(part_b["item_key"])


def _check_targets(name: str, part_a: pd.DataFrame, part_b: pd.DataFrame) -> str:
    """A key map pairs wrong items when one side was not run on statrepro's prepared files (e.g. a native evalscope
    run that keeps the items statrepro drops): refuse when paired items' reference answers differ. Returns how
    many could be checked, for the harness detail."""
    comparable = BENCHMARKS[name].comparable_target
    targets = pd.concat([_first_per_item(part_a, "target"), _first_per_item(part_b, "target")], axis=1, join="inner")
    targets = targets.map(lambda target: comparable(str(target))).dropna()
    differing = targets[targets.iloc[:, 0] != targets.iloc[:, 1]]
    if len(differing):
        raise InputError(
            f"benchmark {name!r}: {len(differing)} items paired by the benchmark key map have different reference answers "
            f"on A and B (e.g. {differing.index[0]!r}), so the two sides do not hold the same items (or grade them against different answers)",
            path=part_b.loc[part_b["item_key"] == differing.index[0], "source"].iloc[0],
        )
    if targets.empty:
        return "; reference answers could not be checked"
    return f"; reference answers agree on {len(targets)} of the matched items"


def _first_per_item(records: pd.DataFrame, column: str) -> pd.Series:
    values = records.dropna(subset=[column]).drop_duplicates("item_key")
    return values.set_index("item_key")[column]


def _check_hashes(name: str, part_a: pd.DataFrame, part_b: pd.DataFrame, pairing: Pairing) -> None:
    """doc_hash must agree (else the 'same' item is not the same); prompt_hash differences are reported."""
    docs = pd.concat([_first_per_item(part_a, "doc_hash"), _first_per_item(part_b, "doc_hash")], axis=1, join="inner")
    bad = docs[docs.iloc[:, 0] != docs.iloc[:, 1]]
    if len(bad):
        raise InputError(
            f"benchmark {name!r}: {len(bad)} items have different doc_hash on A and B (e.g. {bad.index[0]!r}), "
            "so they are not the same documents",
            path=_side_label(part_a, "A"),
        )
    prompts = pd.concat(
        [_first_per_item(part_a, "prompt_hash"), _first_per_item(part_b, "prompt_hash")], axis=1, join="inner"
    )
    differing = prompts[prompts.iloc[:, 0] != prompts.iloc[:, 1]]
    if len(differing):
        pairing.config_differences.append(
            ConfigDifferenceJson(
                benchmark=name,
                factor="prompt_hash",
                detail=f"{len(differing)} of {len(prompts)} items were prompted differently (e.g. {differing.index[0]})",
            )
        )


def modal_answers(records: pd.DataFrame, item_keys: list[str]) -> pd.Series:
    """Each item's most common extracted answer over its runs (the smallest on a tie; NaN where none is logged)."""
    answers = records.dropna(subset=["prediction"])
    answers = answers.assign(prediction=answers["prediction"].astype(str))
    answers = answers[answers["prediction"] != ""]
    # Counted in one pass (a per-item mode over thousands of items took seconds): most runs first, then the smallest.
    counts = answers.groupby(["item_key", "prediction"]).size().reset_index(name="runs")
    counts = counts.sort_values(["item_key", "runs", "prediction"], ascending=[True, False, True], kind="stable")
    return counts.drop_duplicates("item_key").set_index("item_key")["prediction"].reindex(item_keys)


def answer_changed(records_a: pd.DataFrame, records_other: pd.DataFrame, item_keys: list[str]) -> np.ndarray | None:
    """Per item 1.0 where the modal extracted answer differs between the sides, 0.0 where it agrees, NaN where a
    side logged none; None when neither side logs answers."""
    if "prediction" not in records_a or "prediction" not in records_other:
        return None
    answers_a, answers_other = modal_answers(records_a, item_keys), modal_answers(records_other, item_keys)
    known = answers_a.notna() & answers_other.notna()
    if not known.any():
        return None
    return np.where(known, (answers_a != answers_other).astype(float), np.nan)


def _compare_all(score_pairs: dict, pairing: Pairing, options: AnalysisOptions) -> dict:
    """Compare every benchmark's (A, other) score matrices with the analysis options."""
    try:
        return compare_many(
            score_pairs,
            options.rules,
            rng_seed=options.rng_seed,
            score_bounds=declared_score_ranges(pairing),
            ci_method=options.ci_method,
            seed_level_bootstrap=options.seed_level_bootstrap,
        )
    except ValueError as error:  # scores outside the metric's declared range
        raise InputError(str(error), key="score") from None


def _decide_all(score_pairs: dict, pairing: Pairing, options: AnalysisOptions) -> Decision:
    """Compare every benchmark's (A, other) score matrices with the analysis options, and decide."""
    comparisons = _compare_all(score_pairs, pairing, options)
    return decide(comparisons, options.rules, item_keys={name: bench.item_keys for name, bench in pairing.benchmarks.items()})


def _control_comparisons(
    comparisons: dict,
    pairing: Pairing,
    records: dict[str, pd.DataFrame],
    options: AnalysisOptions,
) -> dict[str, Any]:
    """A vs A' decided under the one rule set (its verdicts never touch A vs B's), set beside A vs B per benchmark."""
    from .stats.control import compare_control

    records_a, records_b, records_control = records["a"], records["b"], records["control"]
    check_single_model(records_control, "control")
    models_a, models_control = ({m for m in records["model"].dropna().unique() if m} for records in (records_a, records_control))
    if models_a and models_control and models_a != models_control:
        raise InputError(
            f"the control ran model {sorted(models_control)[0]!r} and A {sorted(models_a)[0]!r}; the control must be a "
            "second run of A's environment",
            path=_side_label(records_control, "control"),
        )
    parts, matrices = {}, {}
    for name, bench in pairing.benchmarks.items():
        parts[name] = records_control[records_control["benchmark"] == name]
        if parts[name].empty:
            raise InputError(f"the control has no results of benchmark {name!r}", path=_side_label(records_control, "control"))
        matrices[name] = _matrix(parts[name], bench.item_keys)
    baseline = _decide_all({name: (bench.scores_a, matrices[name]) for name, bench in pairing.benchmarks.items()}, pairing, options)
    candidates = comparisons
    streams = np.random.SeedSequence(options.rng_seed).spawn(len(baseline.benchmarks))
    controls = {}
    for stream, item in zip(streams, baseline.benchmarks):
        bench = pairing.benchmarks[item.name]
        part_a = records_a[records_a["benchmark"] == item.name]
        part_b = records_b[records_b["benchmark"] == item.name]
        controls[item.name] = compare_control(
            bench.scores_a,
            matrices[item.name],
            bench.scores_b,
            baseline=item,
            candidate=candidates[item.name],
            answer_changed_control=answer_changed(part_a, parts[item.name], bench.item_keys),
            answer_changed_b=answer_changed(part_a, part_b, bench.item_keys),
            confidence=1 - options.rules.alpha,
            rng=np.random.default_rng(stream),
        )
    return controls


def _choice_logprobs(part: pd.DataFrame, item_keys: list[str], run_ids: tuple[str, ...]) -> dict[tuple[int, int], list[float]]:
    """(item row, run column) -> the run's per-choice log-likelihoods, where the side's records hold them."""
    if "choice_logprobs" not in part.columns:
        return {}
    rows, columns = {key: index for index, key in enumerate(item_keys)}, {run: index for index, run in enumerate(run_ids)}
    found = {}
    for key, run, values in zip(part["item_key"], part["run_id"].astype(str), part["choice_logprobs"]):
        if isinstance(values, (list, tuple, np.ndarray)) and len(values) and key in rows and run in columns:
            found[(rows[key], columns[run])] = [float(value) for value in values]
    return found


def _choice_kinds(part: pd.DataFrame) -> set[str]:
    """What the side's choice scores are (records.RECORD_COLUMNS); rows from before the column are lm-eval sums."""
    if "choice_logprobs" not in part.columns:
        return set()
    kinds = part["choice_logprob_kind"] if "choice_logprob_kind" in part.columns else pd.Series(None, index=part.index)
    return {kind if isinstance(kind, str) else "continuation_sum"
            for kind, values in zip(kinds, part["choice_logprobs"]) if isinstance(values, (list, tuple, np.ndarray)) and len(values)}


def _gold_choices(part: pd.DataFrame, item_keys: list[str]) -> np.ndarray:
    """Each item's gold choice index from its target (lm-eval logs the index of a multiple-choice target), -1 where unknown."""
    targets = _first_per_item(part, "target").reindex(item_keys)
    # The store's JSON lines may read a logged "2" back as the number 2 (or 2.0 beside missing targets).
    return np.array([int(float(t)) if str(t).strip().removesuffix(".0").isdigit() else -1 for t in targets], dtype=int)


def _choice_matrices(name: str, bench: PairedBenchmark, sides: dict[str, tuple[pd.DataFrame, tuple[str, ...]]]) -> dict[str, np.ndarray] | None:
    """Per side an (items, runs, choices) array of choice log-likelihoods (NaN: none for that run; -inf: a choice
    the item lacks), or None when some side logged none for this benchmark. An item must offer the same number of
    choices on every side."""
    found = {side: _choice_logprobs(part, bench.item_keys, runs) for side, (part, runs) in sides.items()}
    if not all(found.values()):
        return None
    kinds = {side: _choice_kinds(part) for side, (part, _) in sides.items()}
    if len(set().union(*kinds.values())) > 1:
        # Summed, mean-token and answer-letter scores give different choice distributions: no KL between kinds.
        described = "; ".join(f"{side}: {', '.join(sorted(found_kinds))}" for side, found_kinds in kinds.items())
        warnings.warn(f"benchmark {name!r}: choice scores of different kinds ({described}), so no choice-level evidence", stacklevel=2)
        return None
    widths: dict[int, tuple[int, str]] = {}
    for side, logprobs in found.items():
        for (row, _), values in logprobs.items():
            width, first = widths.setdefault(row, (len(values), side))
            if len(values) != width:
                raise InputError(
                    f"benchmark {name!r}: item {bench.item_keys[row]!r} has {width} choices on side {first} and {len(values)} on "
                    f"side {side}, so its choices are not the same",
                    path=_side_label(sides[side][0], side),
                )
    most = max(width for width, _ in widths.values())
    matrices = {}
    for side, logprobs in found.items():
        matrix = np.full((len(bench.item_keys), len(sides[side][1]), most), np.nan)
        for row, (width, _) in widths.items():
            matrix[row, :, width:] = -np.inf  # the item has no such choice; stays NaN on runs without log-likelihoods
        for (row, column), values in logprobs.items():
            matrix[row, column, : len(values)] = values
        matrix[np.isnan(matrix).any(axis=2)] = np.nan  # a run of an item is whole or missing
        matrices[side] = matrix
    return matrices


def item_choice_changes(bench: PairedBenchmark, records_a: pd.DataFrame, records_b: pd.DataFrame):
    """One paired benchmark's per-item choice changes A vs B (``stats.choices.ItemChoices``: KL, top choice changed,
    gold log-likelihood change), from the same matrices as its verdict; None when a side logged no choice
    log-likelihoods."""
    from .stats.choices import item_choices

    parts = {side: table[table["benchmark"] == bench.name] for side, table in (("a", records_a), ("b", records_b))}
    matrices = _choice_matrices(bench.name, bench, {"A": (parts["a"], bench.runs_a), "B": (parts["b"], bench.runs_b)})
    if matrices is None:
        return None
    return item_choices(matrices["A"], matrices["B"], _gold_choices(parts["a"], bench.item_keys))


def _choice_comparisons(pairing: Pairing, records: dict[str, pd.DataFrame], control_runs: dict[str, tuple[str, ...]], options: AnalysisOptions) -> dict[str, Any]:
    """Per benchmark whose sides logged choice log-likelihoods (modes ppl and clp), the stats.choices.ChoiceComparison
    of A vs B, with A vs A' beside it when the control logged them too."""
    from .stats.choices import compare_choices, gates_beyond_alpha

    beyond_alpha = gates_beyond_alpha(options.rules, len(pairing.benchmarks))
    streams = np.random.SeedSequence(options.rng_seed, spawn_key=(23,)).spawn(len(pairing.benchmarks))
    choices = {}
    for stream, (name, bench) in zip(streams, pairing.benchmarks.items()):
        parts = {side: table[table["benchmark"] == name] for side, table in records.items()}
        sides = {"A": (parts["a"], bench.runs_a), "B": (parts["b"], bench.runs_b)}
        matrices = _choice_matrices(name, bench, sides)
        if matrices is None:
            continue
        control = None
        if "control" in parts:
            control = (_choice_matrices(name, bench, {**sides, "control": (parts["control"], control_runs[name])}) or {}).get("control")
        choices[name] = compare_choices(
            matrices["A"], matrices["B"], _gold_choices(parts["a"], bench.item_keys), logprobs_control=control,
            alpha=options.rules.alpha, beyond_alpha=beyond_alpha, n_resamples=options.rules.n_resamples,
            rng=np.random.default_rng(stream),
        )
    return choices


def _evidence_gates(pairing: Pairing, choices: dict[str, Any], controls: dict[str, Any] | None, options: AnalysisOptions) -> dict:
    """Each benchmark's evidence gates; a gate whose evidence a benchmark lacks is bad input, not a silent pass."""
    from .stats.choices import evidence_gates, gates_beyond_alpha

    rules = options.rules
    margins = rules.evidence_margins()
    if not margins:
        return {}
    if "flip" in margins and controls is None:
        raise InputError("needs the A/A control: add --control", key="--flip-margin")
    for name in pairing.benchmarks:
        if name not in choices and ({"kl", "top1"} & set(margins)):
            flag = "--kl-margin" if "kl" in margins else "--top1-margin"
            raise InputError(
                f"benchmark {name!r} has no per-choice log-likelihoods of one kind on both sides (modes ppl and clp log them); "
                "drop the gate or the benchmark",
                key=flag,
            )
    beyond_alpha = gates_beyond_alpha(rules, len(pairing.benchmarks))
    return {
        name: evidence_gates(rules, choices.get(name), (controls or {}).get(name), beyond_alpha)
        for name in pairing.benchmarks
    }


def analyze(
    records_a: pd.DataFrame,
    records_b: pd.DataFrame,
    options: AnalysisOptions,
    inputs: dict[str, str] | None = None,
    *,
    records_control: pd.DataFrame | None = None,
) -> Analysis:
    """Pair, compare every benchmark, and decide; with ``records_control`` (a second run of A's environment, A')
    also set A vs A' beside A vs B (the A/A control), which never changes the A-vs-B verdicts unless an evidence
    gate over the control (``--flip-margin``) is asked for. Benchmarks whose sides logged per-choice
    log-likelihoods also get the choice-level evidence (``stats.choices``), and the evidence gates of the rules."""
    from .stats.control import flip_decomposition

    pairing = pair(records_a, records_b, unpaired=options.unpaired)
    comparisons = _compare_all({name: (bench.scores_a, bench.scores_b) for name, bench in pairing.benchmarks.items()}, pairing, options)
    flips = {
        name: flip_decomposition(
            bench.scores_a,
            bench.scores_b,
            answer_changed(records_a[records_a["benchmark"] == name], records_b[records_b["benchmark"] == name], bench.item_keys),
            confidence=1 - options.rules.alpha,
        )
        for name, bench in pairing.benchmarks.items()
    }
    controls, records, control_runs = None, {"a": records_a, "b": records_b}, {}
    if records_control is not None:
        records["control"] = records_control
        controls = _control_comparisons(comparisons, pairing, records, options)
        for name, bench in pairing.benchmarks.items():
            part = records_control[records_control["benchmark"] == name]
            control_runs[name] = tuple(map(str, _run_table(part, bench.item_keys).columns))
    choices = _choice_comparisons(pairing, records, control_runs, options)
    gates = _evidence_gates(pairing, choices, controls, options)
    decision = decide(
        comparisons, options.rules, item_keys={name: bench.item_keys for name, bench in pairing.benchmarks.items()}, gates=gates
    )
    return Analysis(decision, pairing, options, inputs or {}, control=controls, flips=flips, choices=choices)


def _none_if_nan(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def control_json(control) -> ControlJson:
    """The JSON form of a stats.control.ControlComparison."""
    plain = control.to_dict()
    return ControlJson(
        n_items=control.n_items,
        n_runs_control=control.n_runs_control,
        control_flips=plain["control"],
        candidate_flips=plain["candidate"],
        excess_flips=plain["excess_flips"],
        excess_harmful=plain["excess_harmful"],
        excess_beneficial=plain["excess_beneficial"],
        excess_churn=plain["excess_churn"],
        p_value=control.excess_test.p_value,
        test_exact=control.excess_test.exact,
        control_diff=control.control_diff,
        control_diff_ci=plain["control_diff_ci"],
        candidate_diff=control.candidate_diff,
        candidate_diff_ci=plain["candidate_diff_ci"],
        baseline_verdict=control.baseline_verdict,
        baseline_reason=control.baseline_reason,
        baseline=control.baseline,
        warning=control.warning,
    )


def missing_runs_json(bench: PairedBenchmark, missing) -> MissingRunsJson | None:
    """The JSON form of a benchmark's stats.missing.MissingRuns, with run ids and item keys; None when complete."""
    if not missing.any:
        return None

    def side(lost: int, expected: int, per_run: tuple[int, ...], run_ids: tuple[str, ...]) -> MissingSideJson:
        names = run_ids if len(run_ids) == len(per_run) else tuple(f"run-{index}" for index in range(len(per_run)))
        return MissingSideJson(missing=lost, expected=expected, by_run={n: c for n, c in zip(names, per_run) if c})

    return MissingRunsJson(
        a=side(missing.runs_a, missing.expected_a, missing.per_run_a, bench.runs_a),
        b=side(missing.runs_b, missing.expected_b, missing.per_run_b, bench.runs_b),
        share=missing.share,
        partial_items=[bench.item_keys[i] for i in missing.partial_items],
    )


def benchmark_json(analysis: Analysis, item) -> BenchmarkJson:
    """One benchmark's part of the verdict JSON (``item``: a stats.verdict.BenchmarkVerdict of the decision)."""
    c = item.comparison
    return BenchmarkJson(
        metric=analysis.pairing.benchmarks[item.name].metric,
        n_items=c.n_items,
        n_missing=c.n_missing,
        missing_items=[analysis.pairing.benchmarks[item.name].item_keys[i] for i in c.missing_items],
        missing_runs=missing_runs_json(analysis.pairing.benchmarks[item.name], c.missing),
        worst_case_tost_p_value=_none_if_nan(c.worst_case_tost_p),
        worst_case_p_beyond=_none_if_nan(c.tipping_beyond_p),
        score_range=list(c.score_bounds) if c.score_bounds else None,
        n_runs_a=c.n_runs_a,
        n_runs_b=c.n_runs_b,
        score_a=c.score_a,
        score_b=c.score_b,
        diff=c.diff,
        rel_diff=_none_if_nan(c.rel_diff),
        diff_ci=[_none_if_nan(v) for v in c.bootstrap.diff_ci],
        rel_diff_ci=[_none_if_nan(v) for v in c.bootstrap.rel_diff_ci],
        ci_method=c.bootstrap.method,
        p_value=c.permutation.p_value,
        p_adjusted=item.p_adjusted,
        permutation_exact=c.permutation.exact,
        tost_p_value=c.tost.p_value,
        tost_method=c.tost.method,
        tost_ci=[_none_if_nan(v) for v in c.tost.ci],
        p_beyond=c.tost.p_beyond,
        p_beyond_adjusted=item.p_beyond_adjusted,
        margin=c.tost.margin,
        mcnemar_p_value=c.mcnemar.p_value if c.mcnemar else None,
        flip_rate=c.flips.rate,
        flip_rate_expected=c.flips.expected_rate,
        flips_up=c.flips.up,
        flips_down=c.flips.down,
        mde=_none_if_nan(c.power.mde),
        variance=VarianceJson(
            item_var_a=c.variance.item_var_a,
            item_var_b=c.variance.item_var_b,
            seed_var_a=c.variance.seed_var_a,
            seed_var_b=c.variance.seed_var_b,
            seed_share=c.variance.seed_share,
        ),
        power=PowerJson(
            mde=_none_if_nan(c.power.mde),
            rel_mde=_none_if_nan(c.power.rel_mde),
            items_needed=c.power.items_needed,
            seeds_needed=c.power.seeds_needed,
            items_needed_range=list(c.power.items_needed_range) if c.power.items_needed_range else None,
            seeds_needed_range=list(c.power.seeds_needed_range) if c.power.seeds_needed_range else None,
            items_withheld=c.power.items_withheld,
            seeds_withheld=c.power.seeds_withheld,
        ),
        verdict=item.verdict,
        reason=item.reason,
        flip_decomposition=analysis.flips[item.name].to_dict() if item.name in analysis.flips else None,
        control=control_json(analysis.control[item.name]) if analysis.control else None,
        choices=analysis.choices[item.name].to_dict() if item.name in analysis.choices else None,
        gates=[{**gate.to_dict(), "outcome": gate.outcome} for gate in item.gates],
    )


def verdict_json(analysis: Analysis) -> VerdictJson:
    """The versioned JSON verdict (see statrepro.verdict_schema)."""
    decision, options = analysis.decision, analysis.options
    rules = decision.rules
    benchmarks = {item.name: benchmark_json(analysis, item) for item in decision.benchmarks}
    return VerdictJson(
        statrepro_version=__version__,
        alpha=rules.alpha,
        tolerance=rules.tolerance,
        margin_kind=rules.margin_kind,
        mode=rules.mode,
        correction=rules.correction,
        kl_margin=rules.kl_margin,
        top1_margin=rules.top1_margin,
        flip_margin=rules.flip_margin,
        verdict=decision.verdict,
        exit_code=decision.exit_code,
        benchmarks=benchmarks,
        config_differences=analysis.pairing.config_differences,
        dropped=analysis.pairing.dropped,
        rng_seed=options.rng_seed,
        inputs=analysis.inputs,
        sequential=analysis.sequential,
        token_kld=analysis.token_kld,
    )
