"""statrepro: paired, calibrated verdicts on whether an LLM still scores the same.

    import statrepro
    analysis = statrepro.compare_environments("a100.yaml", "h100.yaml", statrepro.CompareOptions(seeds=5))
    print(analysis.decision.verdict)

The API lives in statrepro.api (evaluation), statrepro.api_candidates (one reference against many candidates),
statrepro.api_view (browsing a result store: ``statrepro view``), statrepro.api_store (the result store),
statrepro.api_plan (planning), statrepro.api_ci (stored baselines and the CI gate), statrepro.api_diagnose (diagnostics) and statrepro.api_bench (benchmarks), and is
imported on first use, so that `import statrepro` (and the CLI's --help) stays fast.
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
    "write_ci_outputs",
)
_CANDIDATES = ("CandidatesAnalysis", "compare_candidates")
_VIEW = ("StoredComparison", "compare_stored", "serve_store")
_BASELINES = ("GateOptions", "SaveBaselineOptions", "gate", "list_baselines", "save_baseline", "show_baseline")
_DIAGNOSTICS = (
    "compare_chat_templates",
    "compare_layer_settings",
    "compare_logprobs",
    "compare_token_distributions",
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
    "GatesBenchOptions",
    "SelectionBenchOptions",
    "SequentialBenchOptions",
    "StatsBenchOptions",
    "ThroughputBenchOptions",
    "bench_advice",
    "bench_calibration",
    "bench_control",
    "bench_faults",
    "bench_gates",
    "bench_run",
    "bench_selection",
    "bench_sequential",
    "bench_stats",
)
_STORE = ("verify_store",)
_PLANNING = ("PlanOptions", "plan_from_baseline", "plan_from_baseline_scores", "plan_from_flip_rate", "plan_from_pilot",
             "plan_from_pilot_records", "plan_noises")
__all__ = [*_EVALUATION, *_CANDIDATES, *_VIEW, *_DIAGNOSTICS, *_BENCHMARKS, *_STORE, *_PLANNING, *_BASELINES]


def __getattr__(name: str):
    if name in _EVALUATION:
        from . import api as module
    elif name in _CANDIDATES:
        from . import api_candidates as module
    elif name in _VIEW:
        from . import api_view as module
    elif name in _BASELINES:
        from . import api_ci as module
    elif name in _DIAGNOSTICS:
        from . import api_diagnose as module
    elif name in _BENCHMARKS:
        from . import api_bench as module
    elif name in _STORE:
        from . import api_store as module
    elif name in _PLANNING:
        from . import api_plan as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)
