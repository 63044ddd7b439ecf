"""A toy benchmark (statrepro/benchmarks/toy_arith.py + one registry line) is known everywhere a benchmark
name matters: env files, task generation, harness task names, and a compare through the run path."""

from __future__ import annotations

import json

import yaml

import statrepro
from statrepro.benchmarks import get_benchmark
from statrepro.config import EnvConfig
from statrepro.harness.files import benchmark_for_task


def test_a_new_benchmark_is_one_module_and_one_registry_line(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "toy_arith").mkdir(parents=True)
    (data / "toy_arith" / "test.jsonl").write_text("".join(json.dumps({"question": f"{i} + {i}", "answer": 2 * i}) + "\n" for i in range(5)))
    assert EnvConfig(name="a", benchmarks={"toy_arith": {"limit": 3}}).benchmarks["toy_arith"].limit == 3
    tasks = get_benchmark("toy_arith").write_lm_eval_tasks(tmp_path / "tasks", data_dir=data, limit=3)
    assert tasks.item_counts == {"statrepro_toy_arith": 3}
    assert benchmark_for_task("statrepro_toy_arith") == "toy_arith"

    monkeypatch.setenv("STATREPRO_PLUGINS", "stub_harness")
    (tmp_path / "model").mkdir()
    paths = []
    for name in ("toy-a", "toy-b"):
        env = {"name": name, "model": {"path": str(tmp_path / "model")}, "harness": {"name": "stub"},
               "benchmarks": {"toy_arith": {"limit": 5}}, "seeds": 2, "data_dir": str(data)}
        paths.append(tmp_path / f"{name}.yaml")
        paths[-1].write_text(yaml.safe_dump(env), encoding="utf-8")
    analysis = statrepro.compare_environments(*paths, statrepro.CompareOptions(store=tmp_path / "store"))
    assert [item.name for item in analysis.decision.benchmarks] == ["toy_arith"]
