"""Environment files: the multiple-choice ``mode`` and the ``generative`` key it replaced."""

from statrepro.config import EnvConfig


def test_generative_key_keeps_working_as_mode():
    old = EnvConfig(name="x", benchmarks={"mmlu_redux": {"generative": True}, "ceval": {"generative": False}})
    assert old.benchmarks["mmlu_redux"].mode == "gen" and old.benchmarks["ceval"].mode == "clp"


def test_default_mode_follows_the_engine_kind():
    benchmarks = {"mmlu_redux": {}, "gsm8k": {}}
    assert EnvConfig(name="x", benchmarks=benchmarks).mode("mmlu_redux") == "clp"  # in-process hf
    assert EnvConfig(name="x", benchmarks=benchmarks).mode("gsm8k") == "gen"
    served = EnvConfig(name="x", engine={"kind": "transformers-serve"}, benchmarks=benchmarks)
    assert served.mode("mmlu_redux") == "gen"
    external = EnvConfig(name="x", engine={"kind": "openai", "base_url": "http://127.0.0.1:1/v1", "served_model": "m"},
                         benchmarks={"mmlu_redux": {"mode": "ppl"}})
    assert external.mode("mmlu_redux") == "ppl"  # allowed: the probe decides at job start
