"""A toy engine kind (statrepro/engines/toy_echo.py + one registry line) works end to end: config, run path,
executors, doctor and the verdict, with nothing else changed."""

from __future__ import annotations

import yaml

import statrepro
from statrepro.diagnose.doctor import compare_sources


def test_a_new_engine_kind_is_one_module_and_one_registry_line(tmp_path, monkeypatch):
    monkeypatch.setenv("STATREPRO_PLUGINS", "stub_harness")
    (tmp_path / "model").mkdir()
    (tmp_path / "data" / "gsm8k").mkdir(parents=True)
    paths = []
    for name in ("echo-a", "echo-b"):
        env = {
            "name": name, "model": {"path": str(tmp_path / "model")}, "engine": {"kind": "toy-echo"},
            "harness": {"name": "stub"}, "benchmarks": {"gsm8k": {"limit": 6}}, "seeds": 2, "data_dir": str(tmp_path / "data"),
        }
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(env), encoding="utf-8")
        paths.append(path)
    options = statrepro.CompareOptions(store=tmp_path / "store", margin="absolute", tolerance=0.5)
    analysis = statrepro.compare_environments(*paths, options)
    gsm8k = analysis.decision.benchmarks[0].comparison
    assert (gsm8k.score_a, gsm8k.score_b) == (1.0, 1.0)  # the echo server always answers the stub's "42"
    assert analysis.decision.verdict == "equivalent"
    assert not compare_sources(*paths).factors  # the doctor knows the kind's defaults
