"""statrepro: paired, calibrated verdicts on whether an LLM still scores the same.

    import statrepro
    analysis = statrepro.compare_environments("a100.yaml", "h100.yaml", statrepro.CompareOptions(seeds=5))
    print(analysis.decision.verdict)

The API lives in statrepro.api (evaluation), statrepro.api_candidates (one reference against many candidates),
statrepro.api_diagnose (diagnostics) and statrepro.api_bench (benchmarks) and is imported on first use, so that `import statrepro` (and the CLI's --help) stays fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

_EVALUATION = (
    "AnalyzeOptions",
    "CompareOptions",
    "ExplainOptions",
    "RunOptions",
    "VerdictOptions",
    "analyze",
    "compare_environments",
    "explain_environments",
    "run_environment_files",
    "verdict_json_schema",
)
_CANDIDATES = ("CandidatesAnalysis", "compare_candidates")
_DIAGNOSTICS = (
    "compare_chat_templates",
    "compare_layer_settings",
    "compare_logprobs",
    "diff_layer_dumps",
    "doctor",
    "dump_layers",
    "probe_batch_invariance",
)
_BENCHMARKS = (
    "AdviceBenchOptions",
    "CalibrationBenchOptions",
    "ControlBenchOptions",
    "FaultsBenchOptions",
    "SelectionBenchOptions",
    "SequentialBenchOptions",
    "StatsBenchOptions",
    "ThroughputBenchOptions",
    "bench_advice",
    "bench_calibration",
    "bench_control",
    "bench_faults",
    "bench_run",
    "bench_selection",
    "bench_sequential",
    "bench_stats",
)
__all__ = [*_EVALUATION, *_CANDIDATES, *_DIAGNOSTICS, *_BENCHMARKS]


def __getattr__(name: str):
    if name in _EVALUATION:
        from . import api as module
    elif name in _CANDIDATES:
        from . import api_candidates as module
    elif name in _DIAGNOSTICS:
        from . import api_diagnose as module
    elif name in _BENCHMARKS:
        from . import api_bench as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)
