"""Environment files checked against the registries: the schema alone knows no engine kind, harness or benchmark;
``validate_env`` adds them, and reports each problem at its key as the schema would have."""

import pytest
from pydantic import ValidationError

from statrepro.config import EnvConfig
from statrepro.engines.kinds import ENGINE_KINDS
from statrepro.envfile import load_env, validate_env
from statrepro.errors import InputError


def test_the_schema_alone_leaves_the_engine_to_the_loader():
    bare = EnvConfig(name="x", engine={"kind": "vlm"}, benchmarks={"gsm9k": {}})
    assert bare.engine.concurrency is None  # the kind's default is the loader's to fill in
    with pytest.raises(ValidationError, match="Input should be 'hf', 'openai'"):
        validate_env({"name": "x", "engine": {"kind": "vlm"}})
    for name, kind in ENGINE_KINDS.items():
        engine = {"kind": name, "base_url": "http://127.0.0.1:9/v1"} if name == "openai" else {"kind": name}
        assert validate_env({"name": "x", "engine": engine}).engine.concurrency == kind.default_concurrency


@pytest.mark.parametrize("text, where", [
    ("engine:\n  kind: vlm\n", r"env\.yaml:2 \[engine\.kind\]: Input should be 'hf'"),
    ("engine:\n  concurrency: 2\n", r"env\.yaml:1 \[engine\]: engine\.concurrency 2: an in-process model"),
    ("harness:\n  name: lm-evl\n", r"env\.yaml:2 \[harness\.name\]: unknown harness 'lm-evl'; did you mean 'lm-eval'\?"),
    ("benchmarks:\n  gsm9k: {}\n", r"env\.yaml:1 \[benchmarks\]: unknown benchmark 'gsm9k'"),
    ("engine:\n  kind: transformers-serve\nbenchmarks:\n  mmlu_redux:\n    mode: ppl\n",
     r"env\.yaml: benchmarks\.mmlu_redux\.mode 'ppl' needs prompt log-likelihoods"),
])
def test_registry_problems_are_located_like_schema_problems(tmp_path, text, where):
    path = tmp_path / "env.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=where):
        load_env(path)


@pytest.mark.parametrize("text, where", [
    ("engine:\n  max_retries: -1\n", r"env\.yaml:2 \[engine\.max_retries\]: Input should be greater than or equal to 0"),
    ("engine:\n  timeout: 0\n", r"env\.yaml:2 \[engine\.timeout\]: Input should be greater than 0"),
    ("engine:\n  timeout: -2.5\n", r"env\.yaml:2 \[engine\.timeout\]: Input should be greater than 0"),
])
def test_retry_settings_out_of_range_are_one_line_naming_the_key(tmp_path, text, where):
    path = tmp_path / "env.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=where) as error:
        load_env(path)
    assert "\n" not in str(error.value)


def test_retry_settings_are_read_and_leave_the_store_key_alone():
    base = validate_env({"name": "x"})
    tuned = validate_env({"name": "x", "engine": {"max_retries": 0, "timeout": 7.5}})
    assert (tuned.engine.max_retries, tuned.engine.timeout) == (0, 7.5)
    assert (base.engine.max_retries, base.engine.timeout) == (5, 300.0)
    assert tuned.fingerprint() == base.fingerprint()  # how hard to retry cannot change a score
