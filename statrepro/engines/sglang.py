"""Engine kind ``sglang``: ``sglang serve --model-path MODEL``, started by statrepro on 127.0.0.1 and always
stopped.

Flags (SGLang's server arguments): ``--host --port --dtype --quantization --random-seed --served-model-name``;
determinism adds ``--enable-deterministic-inference`` and ``--disable-radix-cache``. SGLang's deterministic mode
needs an attention backend of flashinfer, fa3 or triton: pass ``--attention-backend`` in ``engine.extra_args``.
Health: ``GET /health``; version: ``GET /get_server_info`` (its ``version``, beside the server arguments);
``GET /v1/models`` lists the served name with ``owned_by: "sglang"`` and ``max_model_len``. The ``sglang`` console
script (``sglang serve``) is the entry point recent releases recommend over ``python -m sglang.launch_server``;
both take the same server arguments. Not run here (SGLang needs CUDA): the tests drive a faithful fake,
tests/support/bin/sglang.
"""

from __future__ import annotations

import json

from .contract import Capabilities, determinism_report
from .gpu_server import SERVER_SEED, GpuServerKind
from .live import served_model_defaults
from .process import LOOPBACK


class Sglang(GpuServerKind):
    """SGLang's OpenAI-compatible server (`sglang serve`), started on 127.0.0.1 and stopped by statrepro."""

    name = "sglang"
    display_name = "SGLang"
    owned_by = "sglang"
    executable = "sglang"
    install_hint = "`pip install sglang` (needs a CUDA GPU)"
    # The per-request seed reaches the sampler, but whether concurrent sampled requests reproduce it is not verified.
    capabilities = Capabilities(
        in_process=False, prompt_logprobs=None, token_logprobs=True, request_seed=True, concurrent_sampling=False
    )

    def base_command(self, executable, model, served, port, env) -> list[str]:
        args = [executable, "serve", "--model-path", model, "--host", LOOPBACK, "--port", str(port), "--dtype", env.model.dtype]
        if env.model.quantization != "none":
            args += ["--quantization", env.model.quantization]
        return args + ["--random-seed", str(SERVER_SEED), "--served-model-name", served]

    def deterministic_switches(self):
        return ["--enable-deterministic-inference", "--disable-radix-cache"], {}

    def read_version(self, get_json) -> str | None:
        answer = get_json("/get_server_info")
        return str(answer["version"]) if isinstance(answer, dict) and "version" in answer else None

    def served_defaults(self, server, card):
        # /get_server_info holds the server arguments: with sampling_defaults "model" (the default) a request
        # that omits a setting gets the model's generation_config.json (read from the model directory when the
        # server runs on this machine), with "openai" the neutral OpenAI values; preferred_sampling_params
        # (JSON) set by the operator come first.
        info = server.get("/get_server_info")
        info = info if isinstance(info, dict) else {}
        if info.get("sampling_defaults", "model") == "model":
            penalty = served_model_defaults(server, info.get("model_path")).get("repeat_penalty")
        else:
            penalty = 1.0
        preferred = _json_object(info.get("preferred_sampling_params"))
        return {
            "model": info.get("model_path") or card.get("id"),
            "repeat_penalty": preferred.get("repetition_penalty", penalty),
            "temperature": preferred.get("temperature"),
            "top_p": preferred.get("top_p"),
        }

    def determinism(self, hardware: str, deterministic: bool = False):
        # The radix (prefix) cache is on by default.
        return determinism_report(
            prefix_cache_off=True if deterministic else False,
            deterministic=True if deterministic else None,
            requested=deterministic,
            applied=("deterministic inference (--enable-deterministic-inference)", "radix cache off (--disable-radix-cache)"),
            not_guaranteed=(
                "deterministic inference needs --attention-backend flashinfer, fa3 or triton (set it in engine.extra_args)",
                "identical results only on the same hardware and SGLang version",
            ) if deterministic else (),
        )


def _json_object(text) -> dict:
    """A JSON object given as text (SGLang's preferred_sampling_params), {} when unset or not an object."""
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
