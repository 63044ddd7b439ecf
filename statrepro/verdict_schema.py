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
SCHEMA_VERSION = "2"

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
    """For an inconclusive result: total items likely needed at the current seeds."""
    seeds_needed: Optional[int]
    """For an inconclusive result: total seeds per side likely needed at the current items (null if seeds alone cannot)."""
    items_needed_range: Optional[list[Optional[int]]] = None
    """[fewest, most] items needed over the difference's plausible range (estimate +/- one SE); null inside = no finite number."""
    seeds_needed_range: Optional[list[Optional[int]]] = None
    """[fewest, most] seeds per side needed, likewise."""


class BenchmarkJson(_Strict):
    metric: str
    """Primary metric the per-item scores come from."""
    n_items: int
    """Paired items with results on both sides."""
    n_missing: int
    """Items without any successful result on one side (failed, never counted as wrong)."""
    missing_items: list[str] = Field(default_factory=list)
    """Keys of the missing items."""
    worst_case_tost_p_value: Optional[float] = None
    """TOST p-value with every missing item scored worst case for B (the tipping-point check); null if none is missing."""
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
    """skew-corrected-t, or exact-changed-share when too few items changed for a t standard error."""
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


class ConfigDifferenceJson(_Strict):
    benchmark: str
    """Benchmark where the difference was seen."""
    factor: str
    """What differs, e.g. prompt_hash."""
    detail: str
    """How many items, with an example."""


class VerdictJson(_Strict):
    schema_version: Literal["2"] = SCHEMA_VERSION
    """Version of this schema."""
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
    sequential: Optional[dict] = None
    """For --sequential runs: rounds, calls spent and the fixed-design cost."""
