"""statrepro: paired, calibrated verdicts on whether an LLM still scores the same.

    import statrepro
    analysis = statrepro.compare_environments("a100.yaml", "h100.yaml", statrepro.CompareOptions(seeds=5))
    print(analysis.decision.verdict)

The API lives in statrepro.api and is imported on first use, so that `import statrepro` (and the CLI's
--help) stays fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "AnalyzeOptions",
    "CompareOptions",
    "RunOptions",
    "VerdictOptions",
    "analyze",
    "compare_environments",
    "run_environment_files",
]


def __getattr__(name: str):
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
