"""Local benchmark data -> offline lm-eval tasks and evalscope dataset args, plus LiveBench scoring.

Entry points for the run path::

    spec = get_benchmark("ceval")                       # InputError for unknown names
    data_dir = resolve_data_dir(config.data_dir, spec.name)
    tasks = spec.write_lm_eval_tasks(work_dir, data_dir=data_dir, limit=20, num_fewshot=None,
                                     subsets=None, mode='clp', options=BenchmarkOptions(...))
    # lm_eval --tasks ",".join(tasks.task_names) --include_path tasks.include_path ...
    es = spec.evalscope_dataset_args(work_dir, data_dir=data_dir, limit=20, num_fewshot=None, subsets=None)
    # TaskConfig(datasets=es.datasets, dataset_args=es.dataset_args, ...)
"""

from __future__ import annotations

from ..registry import Registry
from .base import BenchmarkOptions, EvalscopeDatasets, GeneratedTasks
from .spec import DATA_DIR_ENV, Benchmark, resolve_data_dir

# The one list of benchmarks (plugins: entry-point group statrepro.benchmarks): configs, harness adapters, docs
# and the CLI take the names from here.
BENCHMARKS: Registry[Benchmark] = Registry(
    "benchmark",
    group="statrepro.benchmarks",
    key="benchmarks",
    builtins=(
        "statrepro.benchmarks.gsm8k:Gsm8k",
        "statrepro.benchmarks.ceval:Ceval",
        "statrepro.benchmarks.mmlu_redux:MmluRedux",
        "statrepro.benchmarks.livebench:LiveBench",
    ),
)


def get_benchmark(name: str) -> Benchmark:
    """The spec of a benchmark by name; unknown names raise InputError with the nearest known name."""
    return BENCHMARKS.get_or_fail(name)


__all__ = [
    "BENCHMARKS",
    "DATA_DIR_ENV",
    "BenchmarkOptions",
    "Benchmark",
    "EvalscopeDatasets",
    "GeneratedTasks",
    "get_benchmark",
    "resolve_data_dir",
]
