"""Benchmark ``toy-bench``: three arithmetic items in one subset, shipped in the package (no data dir)."""

from statrepro.benchmarks import Benchmark
from statrepro.errors import InputError

ITEMS = [{"question": f"{n} + {n}", "answer": str(2 * n)} for n in (1, 2, 3)]


class ToyBench(Benchmark):
    name = "toy-bench"
    task_pattern = r"toy_bench"
    default_num_fewshot = 0
    fewshot_source = "none"

    def source_files(self, data_dir):
        return []

    def subsets(self, data_dir):
        return ["main"]

    def load_items(self, data_dir, subsets=None, options=None):
        return {"main": list(ITEMS)}

    def write_lm_eval_tasks(self, work_dir, **kwargs):
        raise InputError("toy-bench prepares no harness tasks", key="benchmarks.toy-bench")

    def evalscope_dataset_args(self, work_dir, **kwargs):
        raise InputError("toy-bench prepares no harness tasks", key="benchmarks.toy-bench")
