"""Environment files: the multiple-choice ``mode`` and the ``generative`` key it replaced."""

from statrepro.benchmarks import BENCHMARKS
from statrepro.engines.kinds import engine_kind
from statrepro.envfile import validate_env


def _mode(env, benchmark: str) -> str:
    """The mode ``benchmark`` runs in under ``env``, as the harness asks the engine kind for it."""
    return engine_kind(env.engine.kind).evaluation_mode(BENCHMARKS[benchmark].modes, env.benchmarks[benchmark].mode)


def test_generative_key_keeps_working_as_mode():
    old = validate_env(dict(name="x", benchmarks={"mmlu_redux": {"generative": True}, "ceval": {"generative": False}}))
    assert old.benchmarks["mmlu_redux"].mode == "gen" and old.benchmarks["ceval"].mode == "clp"


def test_default_mode_follows_the_engine_kind():
    benchmarks = {"mmlu_redux": {}, "gsm8k": {}}
    assert _mode(validate_env(dict(name="x", benchmarks=benchmarks)), "mmlu_redux") == "clp"  # in-process hf
    assert _mode(validate_env(dict(name="x", benchmarks=benchmarks)), "gsm8k") == "gen"
    served = validate_env(dict(name="x", engine={"kind": "transformers-serve"}, benchmarks=benchmarks))
    assert _mode(served, "mmlu_redux") == "gen"
    external = validate_env(dict(name="x", engine={"kind": "openai", "base_url": "http://127.0.0.1:1/v1", "served_model": "m"},
                                 benchmarks={"mmlu_redux": {"mode": "ppl"}}))
    assert _mode(external, "mmlu_redux") == "ppl"  # allowed: the probe decides at job start
