"""Engine kind ``vllm``: ``vllm serve MODEL``, started by statrepro on 127.0.0.1 and always stopped.

Flags (vLLM's own CLI): ``--host --port --dtype --quantization --seed --served-model-name``; determinism adds
``--no-enable-prefix-caching`` and the environment variable ``VLLM_BATCH_INVARIANT=1`` (batch invariance has no
CLI flag). Health: ``GET /health``; version: ``GET /version``; ``GET /v1/models`` lists the served name with
``owned_by: "vllm"``, the model path (``root``) and ``max_model_len``. Not run here (vLLM needs CUDA): the tests
drive a faithful fake, tests/support/bin/vllm.
"""

from __future__ import annotations

from .contract import determinism_report
from .gpu_server import SERVER_SEED, GpuServerKind
from .live import served_model_defaults
from .process import LOOPBACK


class Vllm(GpuServerKind):
    """vLLM's OpenAI-compatible server (`vllm serve`), started on 127.0.0.1 and stopped by statrepro."""

    name = "vllm"
    display_name = "vLLM"
    owned_by = "vllm"
    executable = "vllm"
    install_hint = "`pip install vllm` (needs a CUDA GPU)"

    def base_command(self, executable, model, served, port, env) -> list[str]:
        args = [executable, "serve", model, "--host", LOOPBACK, "--port", str(port), "--dtype", env.model.dtype]
        if env.model.quantization != "none":
            args += ["--quantization", env.model.quantization]
        return args + ["--seed", str(SERVER_SEED), "--served-model-name", served]

    def deterministic_switches(self):
        return ["--no-enable-prefix-caching"], {"VLLM_BATCH_INVARIANT": "1"}

    def read_version(self, get_json) -> str | None:
        answer = get_json("/version")
        return str(answer["version"]) if isinstance(answer, dict) and "version" in answer else None

    def served_defaults(self, server, card):
        # A request that omits a setting gets the served model's generation_config.json (vLLM's default
        # --generation-config auto); no route reports the values, so they are read from the model directory
        # (`root`) when the server runs on this machine. The served context is the card's max_model_len.
        defaults = served_model_defaults(server, card.get("root"))
        return {"model": card.get("root") or card.get("id"), "repeat_penalty": defaults.get("repeat_penalty")}

    def determinism(self, hardware: str, deterministic: bool = False):
        # Prefix caching is on by default in vLLM V1; kernels are batch-dependent unless batch invariance is on.
        return determinism_report(
            prefix_cache_off=True if deterministic else False,
            deterministic=True if deterministic else None,
            requested=deterministic,
            applied=("prefix caching off (--no-enable-prefix-caching)", "batch-invariant kernels (VLLM_BATCH_INVARIANT=1)"),
            not_guaranteed=(
                "batch invariance is beta and needs a supported GPU (NVIDIA compute capability >= 8.0 per vLLM's docs; not verified here)",
                "identical results only on the same hardware and vLLM version",
                "tensor-parallel all-reduces whose size is not a multiple of 16 bytes are not covered",
            ) if deterministic else (),
        )
