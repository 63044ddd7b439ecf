"""The pure statistics core: arrays in, frozen result objects out, no I/O."""

from .paired import (
    BenchmarkComparison,
    bootstrap_ci,
    compare_many,
    compare_paired,
    flip_counts,
    item_means,
    mcnemar_exact,
    permutation_test,
    tost,
    variance_split,
)
from .verdict import EXIT_CODES, PASSING, VERDICTS, BenchmarkVerdict, Decision, Evidence, classify, combine, decide

__all__ = [
    "BenchmarkComparison",
    "BenchmarkVerdict",
    "Decision",
    "Evidence",
    "EXIT_CODES",
    "PASSING",
    "VERDICTS",
    "bootstrap_ci",
    "classify",
    "combine",
    "compare_many",
    "compare_paired",
    "decide",
    "flip_counts",
    "item_means",
    "mcnemar_exact",
    "permutation_test",
    "tost",
    "variance_split",
]
