"""The pure statistics core: arrays in, frozen result objects out, no I/O.

The names below load on first use, so that importing a light module of the core (``stats.rules``, whose
defaults the CLI shows in ``--help``) does not load numpy and scipy.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ChoiceComparison": "choices",
    "compare_choices": "choices",
    "evidence_gates": "choices",
    "TokenKLD": "token_kld",
    "summarize_token_kld": "token_kld",
    "token_figures": "token_kld",
    "topk_token_figures": "token_kld",
    "EvidenceGate": "verdict",
    "apply_gates": "verdict",
    "BenchmarkComparison": "paired",
    "bootstrap_ci": "bootstrap",
    "compare_many": "paired",
    "compare_paired": "paired",
    "flip_counts": "summaries",
    "item_means": "summaries",
    "mcnemar_exact": "tests",
    "permutation_test": "tests",
    "tost": "tests",
    "variance_split": "summaries",
    "ConfidenceInterval": "results",
    "power_analysis": "power",
    "BenchmarkVerdict": "verdict",
    "Decision": "verdict",
    "Evidence": "verdict",
    "EXIT_CODES": "verdict",
    "PASSING": "verdict",
    "VERDICTS": "verdict",
    "classify": "verdict",
    "combine": "verdict",
    "decide": "verdict",
    "DIFFERENT": "verdict",
    "EQUIVALENT": "verdict",
    "INCONCLUSIVE": "verdict",
    "WITHIN_TOLERANCE": "verdict",
    "DEFAULT_RULES": "rules",
    "VerdictRules": "rules",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'statrepro.stats' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
