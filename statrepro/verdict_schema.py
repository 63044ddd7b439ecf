"""The versioned JSON verdict that `analyze`, `compare` and reports write. Other tools read it.

The pydantic models are the schema's single source: ``statrepro schema`` prints the JSON Schema, and
``docs/verdict-schema.md`` is generated from these docstrings. Bump SCHEMA_VERSION on any change
that removes or re-types a field; adding optional fields keeps the version.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from .stats.verdict import VERDICTS

# 2: `different` became a controlled claim (the whole interval beyond the margin, p_beyond), missing items get a
# tipping-point check, and the TOST's own interval, expected flip rate and ranges of needs were added.
# 3: per benchmark `flip_decomposition` (harmful / beneficial / churn rates with intervals), and the A/A control (`compare --control`, `analyze --control DIR`): per benchmark an optional `control` object with
# A vs A' beside A vs B, harmful / beneficial / churn flip rates with intervals, the excess over the control and
# the excess-flip test's p_value, and the baseline's stability.
# 4: one reference against many candidates (`candidates`, `selection`); runs are the unit of missingness: per benchmark `missing_runs` (each side's missing runs, per run, the items
# that lost some or all runs, the share of paired information lost that the missing-share rule reads) and
# `worst_case_p_beyond` (the reverse test with every missing run scored against `different`).
# Also in 4: `sequential.calls_saved_share` counts against the fixed design as it runs (a deterministic side's
# repeated seeds skipped), `calls_saved_share_nominal` against every seed; item designs add `order` and
# `design_changes`.
SCHEMA_VERSION = "5"

VerdictLabel = Literal[VERDICTS]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class VarianceJson(_Strict):
    item_var_a: float
    """Between-item variance of A's per-item mean scores."""
    item_var_b: float
    """Between-item variance of B's per-item mean scores."""
    seed_var_a: Optional[float]
    """Mean within-item variance of A across seeds (null with one seed)."""
    seed_var_b: Optional[float]
    """Mean within-item variance of B across seeds (null with one seed)."""
    seed_share: float
    """Share of the variance of the paired differences that comes from seed noise."""


class PowerJson(_Strict):
    mde: Optional[float]
    """Minimum detectable absolute difference at 80% power (two-sided, alpha)."""
    rel_mde: Optional[float]
    """mde / score_a."""
    items_needed: Optional[int]
    """For an inconclusive result: total items for 80% power to conclude at the current seeds, given only where the
    pilot places it (at least 10 changed items, and a need within 1.5x across the difference +/- one SE); else null
    and items_withheld says why. In the simulated grid of 200-item pilots (relative margin 5%) it is always
    withheld: sizes planned on such pilots delivered 0.37-1.00 power, not 0.80 (docs/methodology.md section 10)."""
    seeds_needed: Optional[int]
    """For an inconclusive result: total seeds per side for 80% power at the current items, under the same
    condition (null when withheld, see seeds_withheld, or when seeds alone cannot suffice)."""
    items_needed_range: Optional[list[Optional[int]]] = None
    """[fewest, most] items needed over the difference's plausible range (estimate +/- one SE); null when items_needed is."""
    seeds_needed_range: Optional[list[Optional[int]]] = None
    """[fewest, most] seeds per side needed, likewise."""
    items_withheld: Optional[str] = None
    """For an inconclusive result with no items_needed: why no reliable size can be given (then mde is what the
    data supports); null otherwise."""
    seeds_withheld: Optional[str] = None
    """Likewise for seeds_needed."""


class RateJson(_Strict):
    count: int
    """Items with the event."""
    n_items: int
    """Items it is counted over."""
    rate: Optional[float]
    """count / n_items (null with no items)."""
    ci: list[Optional[float]]
    """Wilson score interval [lo, hi] of rate at 1 - alpha."""


class FlipsJson(_Strict):
    flips: RateJson
    """Items whose majority outcome changed either way (mean > 0.5 right, < 0.5 wrong, a tie is neither)."""
    harmful: RateJson
    """Items right in A and wrong in the other run set."""
    beneficial: RateJson
    """Items wrong in A and right in the other run set."""
    churn: Optional[RateJson] = None
    """Items whose extracted answer (the records' prediction, most common over runs) changed while the majority
    outcome did not, over the items where both answers are logged; null when they are not."""


class ExcessJson(_Strict):
    excess: Optional[float]
    """Rate in A vs B minus the rate in A vs A' on the same items."""
    ci: list[Optional[float]]
    """Tango's paired score interval [lo, hi] of excess at 1 - alpha."""
    more_in_candidate: int
    """Items with the event in A vs B but not in A vs A'."""
    more_in_control: int
    """Items with the event in A vs A' but not in A vs B."""


class ControlJson(_Strict):
    n_items: int
    """Items with results in A, A' and B."""
    n_runs_control: int
    """Runs (seeds) of the control A'."""
    control_flips: FlipsJson
    """A vs A': a second run of A's environment, its own run-to-run nondeterminism."""
    candidate_flips: FlipsJson
    """A vs B on the same items."""
    excess_flips: ExcessJson
    """Flip rate of A vs B minus that of A vs A'."""
    excess_harmful: ExcessJson
    """Harmful (right to wrong) flip rate of A vs B minus that of A vs A'."""
    excess_beneficial: ExcessJson
    """Beneficial (wrong to right) flip rate of A vs B minus that of A vs A'."""
    excess_churn: Optional[ExcessJson] = None
    """Answer churn of A vs B minus that of A vs A' (items with all answers logged); null without answers."""
    p_value: float
    """Exact one-sided p-value that A vs B flips more items than A vs A' (sign-flip test of the paired per-item
    flip indicators; valid because A' and B are exchangeable under 'B is another run of A')."""
    test_exact: bool
    """Whether that null was enumerated exactly."""
    control_diff: float
    """score(A') - score(A)."""
    control_diff_ci: list[Optional[float]]
    """Interval [lo, hi] of control_diff at 1 - alpha."""
    candidate_diff: float
    """score(B) - score(A) (the benchmark's diff)."""
    candidate_diff_ci: list[Optional[float]]
    """Interval [lo, hi] of candidate_diff at 1 - alpha (the benchmark's diff_ci)."""
    baseline_verdict: VerdictLabel
    """A vs A' under the same verdict rules as A vs B; it never changes the A-vs-B verdict."""
    baseline_reason: str
    """Why, in one line."""
    baseline: Literal["stable", "unstable", "unestablished"]
    """stable: A' is equivalent to A; unstable: two runs of A detectably differ; unestablished: the control is inconclusive."""
    warning: Optional[str] = None
    """What an unstable or unestablished baseline means for the A-vs-B verdict; null when stable."""


class MeanIntervalJson(_Strict):
    mean: Optional[float]
    """Mean over the items."""
    ci: list[Optional[float]]
    """Two-sided interval [lo, hi] of mean at 1 - alpha (bootstrap over items, BCa; Clopper-Pearson for a share of 0/1 items)."""
    upper: Optional[float]
    """One-sided upper bound at 1 - alpha: an evidence gate passes when it lies within its margin."""
    lower: Optional[float]
    """One-sided lower bound at 1 - alpha / (benchmarks x gates): a gate is clearly failed when it lies beyond its margin."""
    n_items: int
    """Items the mean is over."""
    method: str
    """BCa, percentile, clopper-pearson, or none (no items)."""


class ChoicesJson(_Strict):
    n_items: int
    """Items with per-choice log-likelihoods on both sides (modes ppl and clp)."""
    kl: MeanIntervalJson
    """KL(A || B) of each item's choice distribution (softmax over its choices' log-likelihoods), in nats: per pair
    of runs (A's, B's), averaged over the item's pairs, then over items."""
    top_changed: MeanIntervalJson
    """Share of items whose top choice changed (the set of choices with the highest log-likelihood, so ties compare as ties)."""
    gold_delta: Optional[MeanIntervalJson] = None
    """Change of the gold choice's log-likelihood, B minus A (each averaged over its runs); null when no gold index is known."""
    control: Optional["ChoicesJson"] = None
    """With --control: A vs A' on the same items, the noise floor of the figures above."""
    excess_kl: Optional[MeanIntervalJson] = None
    """With --control: mean over items of KL(A || B) - KL(A || A')."""
    excess_top_changed: Optional[MeanIntervalJson] = None
    """With --control: share of items whose top choice changed in A vs B minus in A vs A'."""
    alpha: float
    """Level of every ci (two-sided) and upper bound (one-sided)."""
    beyond_alpha: float
    """Level of the lower bounds: alpha split over benchmarks and active gates (Bonferroni)."""


class GateJson(_Strict):
    evidence: str
    """What the gate bounds (mean choice KL, share of items whose top choice changed, excess harmful flips)."""
    estimate: Optional[float]
    """Its estimate."""
    upper: Optional[float]
    """One-sided upper bound at 1 - alpha."""
    lower: Optional[float]
    """One-sided lower bound at 1 - alpha / (benchmarks x gates)."""
    margin: float
    """The gate's margin (--kl-margin, --top1-margin, --flip-margin)."""
    outcome: Literal["passed", "unshown", "beyond"]
    """passed: upper <= margin; beyond: lower > margin (the benchmark is different); unshown: neither (a pass becomes inconclusive)."""


class MissingSideJson(_Strict):
    missing: int
    """Runs of this side without a result (an item in a seed that failed; never scored as wrong)."""
    expected: int
    """Runs this side should have: items x its runs per item."""
    by_run: dict[str, int]
    """Missing runs per run id (seed) of this side, only the runs that lack any."""


class MissingRunsJson(_Strict):
    a: MissingSideJson
    """Environment A's missing runs."""
    b: MissingSideJson
    """Environment B's missing runs."""
    share: float
    """Paired information lost, in items: per item the larger of the sides' missing fractions of its runs, averaged
    over items. The missing-share rule (`--max-missing`) compares this share."""
    partial_items: list[str] = Field(default_factory=list)
    """Keys of the items that lost some, not all, of their runs on a side (estimated from the runs they have)."""


class BenchmarkJson(_Strict):
    metric: str
    """Primary metric the per-item scores come from."""
    n_items: int
    """Paired items with results on both sides."""
    n_missing: int
    """Items without any successful result on one side (failed, never counted as wrong)."""
    missing_items: list[str] = Field(default_factory=list)
    """Keys of the missing items."""
    missing_runs: Optional[MissingRunsJson] = None
    """Runs without a result on each side; null when none is missing."""
    worst_case_tost_p_value: Optional[float] = None
    """TOST p-value with every missing run scored worst case for B (the tipping-point check); null if none is missing."""
    worst_case_p_beyond: Optional[float] = None
    """p_beyond with every missing run scored against `different` (B's at the end nearer A); `different` needs this
    too below alpha. Null if no run is missing."""
    score_range: Optional[list[float]] = None
    """The metric's declared range [low, high] the exact tests use; null when unknown."""
    n_runs_a: int
    """Runs (seeds) of environment A."""
    n_runs_b: int
    """Runs (seeds) of environment B."""
    score_a: float
    """Mean score of A over items (each item averaged over its seeds)."""
    score_b: float
    """Mean score of B, likewise."""
    diff: float
    """score_b - score_a."""
    rel_diff: Optional[float]
    """diff / score_a (null when score_a is 0)."""
    diff_ci: list[Optional[float]]
    """Bootstrap confidence interval [lo, hi] of diff at 1 - alpha."""
    rel_diff_ci: list[Optional[float]]
    """Bootstrap confidence interval [lo, hi] of rel_diff at 1 - alpha."""
    ci_method: str
    """BCa, percentile, or score (few changed items)."""
    p_value: float
    """Two-sided paired sign-flip permutation p-value."""
    p_adjusted: float
    """p_value adjusted across benchmarks (Holm by default, or BH)."""
    permutation_exact: bool
    """Whether the permutation null was enumerated exactly."""
    tost_p_value: float
    """Equivalence (TOST) p-value, or the non-inferiority p-value in that mode."""
    tost_method: str
    """skew-corrected-t; restricted-score for 0/1 item means (greedy engines, one run); or exact-changed-share
    when too few items changed for a standard error."""
    tost_ci: list[Optional[float]]
    """Interval [lo, hi] of diff at 1 - 2 alpha (90% at alpha 0.05): the one the TOST corresponds to."""
    p_beyond: float
    """p-value of 'B lies within the margin': small means B is clearly beyond it (the test behind 'different')."""
    p_beyond_adjusted: float
    """p_beyond adjusted across benchmarks like p_value."""
    margin: float
    """The absolute margin used (tolerance x score_a for a relative margin)."""
    mcnemar_p_value: Optional[float]
    """Exact McNemar p-value when each side has one 0/1 run, else null."""
    flip_rate: float
    """Share of items whose majority outcome changed between right (mean > 0.5) and wrong (< 0.5); a tie is neither."""
    flip_rate_expected: Optional[float] = None
    """Flip rate that seed noise alone would give two runs of one environment (A/A), for 0/1 scores."""
    flips_up: int
    """Items wrong in A and right in B."""
    flips_down: int
    """Items right in A and wrong in B."""
    mde: Optional[float]
    """Minimum detectable absolute difference at 80% power."""
    variance: VarianceJson
    """Item vs seed variance split."""
    power: PowerJson
    """Power and data needed."""
    verdict: VerdictLabel
    """This benchmark's verdict."""
    reason: str
    """One line on why."""
    flip_decomposition: Optional[FlipsJson] = None
    """A vs B's flips split into harmful (right to wrong) and beneficial (wrong to right), and the answer churn,
    each with its interval."""
    control: Optional[ControlJson] = None
    """With --control: A vs A' (a second run of A's environment) beside A vs B; null without a control."""
    choices: Optional[ChoicesJson] = None
    """Choice-level evidence from the per-choice log-likelihoods (modes ppl and clp); null when a side logged none."""
    gates: list[GateJson] = Field(default_factory=list)
    """The evidence gates this benchmark was held to (--kl-margin, --top1-margin, --flip-margin); empty when none is set."""


class ConfigDifferenceJson(_Strict):
    benchmark: str
    """Benchmark where the difference was seen."""
    factor: str
    """What differs, e.g. prompt_hash."""
    detail: str
    """How many items, with an example."""


class RecoveryJson(_Strict):
    ratio: Optional[float]
    """score_candidate / score_reference (null when the reference scores 0)."""
    ratio_ci: list[Optional[float]]
    """The ratio's paired bootstrap interval (1 + the relative difference's interval)."""
    flip_rate: float
    """Share of items whose majority outcome changed between the reference and the candidate."""
    flip_rate_expected: Optional[float] = None
    """The flip rate seed noise alone gives (A/A), for 0/1 scores with 2+ seeds a side."""
    choice_kl: Optional[float] = None
    """Mean KL(reference || candidate) of the items' choice distributions (modes ppl and clp); null without them."""
    choice_kl_ci: Optional[list[Optional[float]]] = None
    """Its 95% bootstrap interval."""
    top_changed: Optional[float] = None
    """Share of items whose top choice changed (modes ppl and clp); null without choice log-likelihoods."""


class CandidateJson(_Strict):
    name: str
    """The candidate environment's name."""
    input: str
    """The candidate's environment file."""
    verdict: VerdictLabel
    """Its own verdict against the reference (at alpha)."""
    exit_code: int
    """Its own exit code."""
    cleared: bool
    """Cleared by the fixed sequence (see `selection`): only cleared candidates may ship."""
    recovery: dict[str, RecoveryJson]
    """Per benchmark: the candidate's score as a share of the reference's, with its paired interval, and its flips."""
    file_type: Optional[str] = None
    """The served weights' type as read from the file (a GGUF's general.file_type: Q8_0, Q4_K_M, ...); null where the
    engine does not read its weights."""
    size_bytes: Optional[int] = None
    """The served weights file's size on disk; null where unknown."""
    comparison: "VerdictJson"
    """The full verdict of reference vs this candidate."""


class SelectionJson(_Strict):
    procedure: Literal["fixed-sequence"]
    """How candidates are cleared: each tested at alpha in the pre-registered order, stopping at the first that
    does not pass; the chance of shipping one truly beyond the margin is at most alpha (docs/methodology.md)."""
    order: list[str]
    """The candidates in their pre-registered order (the command line's), from the safest to the most aggressive."""
    cleared: list[str]
    """The cleared candidates: a prefix of `order`."""
    shipped: Optional[str]
    """The most aggressive cleared candidate, the one to ship; null when the first does not pass."""
    stopped_at: Optional[str]
    """The first candidate that did not pass; null when all passed."""


class TokenKLDJson(_Strict):
    """compare --kld: B's next-token distributions against A's, token by token over the whole vocabulary, with the
    figures of llama-perplexity --kl-divergence (docs/diagnose.md, "kld"). Evidence beside the verdict, never part of it."""

    reference: str
    """A's environment name."""
    candidate: str
    """B's environment name."""
    text_source: str
    """Where the teacher-forced texts came from (by default A's first benchmark's prompts with gold answers)."""
    text_sha256: str
    """SHA-256 over the texts' own SHA-256s, in order: the fixed text set."""
    distributions: str
    """What the figures were computed over: the full vocabulary, or each endpoint's top-k (the KLD figures then lower bounds)."""
    n_tokens: int
    """Scored positions (every token of every text but its first)."""
    n_texts: int
    """Texts with at least one scored position."""
    mean_kld: float
    """Mean over tokens of KL(A || B) of the next-token distributions (nats)."""
    kld_se: float
    """llama.cpp's standard error of mean_kld (tokens as independent)."""
    kld_ci: tuple[Optional[float], Optional[float]]
    """The interval of mean_kld at `confidence` with texts as clusters (the one to read); nulls with one text."""
    kld_percentiles: dict[str, float]
    """The 90th, 95th, 99th and 99.9th percentiles of the per-token KLD, keyed "90", "95", "99", "99.9"."""
    median_kld: float
    """Median per-token KLD."""
    max_kld: float
    """Largest per-token KLD."""
    same_top: float
    """Share of tokens whose most likely next token is the same ("Same top p")."""
    same_top_se: float
    """Its standard error."""
    rms_dp: float
    """Root mean square of B's minus A's probability of the actual next token ("RMS Δp")."""
    rms_dp_se: float
    """Its standard error."""
    ln_ppl_ratio: float
    """ln(PPL(B) / PPL(A)) over the texts: mean NLL of the actual next tokens, B minus A."""
    ln_ppl_ratio_se: float
    """Its standard error."""
    ppl_ref: float
    """A's perplexity on the texts."""
    ppl_cand: float
    """B's perplexity on the texts."""
    confidence: float
    """Confidence level of kld_ci."""


class VerdictJson(_Strict):
    schema_version: Literal["5"] = SCHEMA_VERSION
    """Version of this schema. 5 added `token_kld` (compare --kld); 4 counted missing runs (`missing_runs`) and
    added several candidates (`candidates`, `selection`) and choice-level evidence (`choices`, `gates`); 3 added per
    benchmark `flip_decomposition` and, with --control, `control` (the A/A control); 2 made `different` a controlled claim (p_beyond) and added the tipping-point check."""
    statrepro_version: str
    """Version of statrepro that wrote the file."""
    alpha: float
    """Significance level."""
    tolerance: float
    """Relative tolerance (or absolute margin when margin_kind is absolute)."""
    margin_kind: Literal["relative", "absolute"]
    """How tolerance is turned into a margin."""
    mode: Literal["equivalence", "non-inferiority"]
    """Two-sided equivalence, or one-sided non-inferiority of B."""
    correction: Literal["holm", "bh"]
    """Multiple-benchmark adjustment of the 'any benchmark differs' p-values."""
    kl_margin: Optional[float] = None
    """--kl-margin: the mean choice KL's upper bound must lie within it (null: gate off)."""
    top1_margin: Optional[float] = None
    """--top1-margin: the share of items whose top choice changed, likewise (null: gate off)."""
    flip_margin: Optional[float] = None
    """--flip-margin: the excess of harmful flips over the A/A control, likewise (null: gate off)."""
    verdict: VerdictLabel
    """Overall verdict."""
    exit_code: int
    """The CLI exit code for this verdict: 0 pass, 3 different, 4 inconclusive."""
    benchmarks: dict[str, BenchmarkJson]
    """Per-benchmark results, keyed by benchmark name."""
    config_differences: list[ConfigDifferenceJson] = Field(default_factory=list)
    """Configuration differences found in the inputs (e.g. differing prompt hashes)."""
    dropped: dict[str, int] = Field(default_factory=dict)
    """Items of benchmarks present on one side only, dropped by --intersect (unpaired items of common benchmarks
    are counted as missing instead)."""
    rng_seed: Optional[int] = None
    """Seed of the resampling RNG, for reproducing the CIs and p-values."""
    inputs: dict[str, str] = Field(default_factory=dict)
    """The A and B inputs (paths or environment names)."""
    candidates: Optional[list[CandidateJson]] = None
    """With several candidates (`compare REF CAND1 CAND2 ...`): each candidate's verdict, recovery and full
    comparison, in the pre-registered order. The top-level fields are then the worst candidate's comparison (the one
    that sets the exit code)."""
    selection: Optional[SelectionJson] = None
    """With several candidates: which ones the fixed sequence clears, and the one to ship."""
    sequential: Optional[dict] = None
    """For --sequential runs: the design, where each benchmark stopped (seed rounds, or with `over: items` the
    looks, items and seeds run), calls spent and the fixed design's cost twice: `fixed_design_calls_as_run` (a
    deterministic side runs only its two identical seeds, as the fixed design runs it; `calls_saved_share` is
    the saving against it) and `fixed_design_calls` (every seed of every item; `calls_saved_share_nominal`).
    An item design also records its item `order` (seed, derived seed, whether the user gave it, the registry
    file) and `design_changes`, the earlier designs of the same pair a `--new-design` run replaced
    (docs/methodology.md §12 and §13)."""
    token_kld: Optional[TokenKLDJson] = None
    """compare --kld: the token-level KL divergence of B's next-token distributions from A's (null without --kld)."""
CandidateJson.model_rebuild()
