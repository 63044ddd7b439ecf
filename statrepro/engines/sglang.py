"""Engine kind ``sglang``: ``sglang serve --model-path MODEL``, started by statrepro on 127.0.0.1 and always
stopped.

Flags (SGLang's server arguments): ``--host --port --dtype --quantization --random-seed --served-model-name``;
determinism adds ``--enable-deterministic-inference`` and ``--disable-radix-cache``. SGLang's deterministic mode
needs an attention backend of flashinfer, fa3 or triton: pass ``--attention-backend`` in ``engine.extra_args``.
Health: ``GET /health``; version: ``GET /get_server_info`` (its ``version``). The ``sglang`` console script
(``sglang serve``) is the entry point recent releases recommend over ``python -m sglang.launch_server``; both
take the same server arguments. Not run here (SGLang needs CUDA): the tests drive a faithful fake,
tests/support/fake_servers/sglang.
"""

from __future__ import annotations

from .contract import Capabilities, determinism_report
from .gpu_server import SERVER_SEED, GpuServerKind, get_json
from .process import LOOPBACK


class Sglang(GpuServerKind):
    """SGLang's OpenAI-compatible server (`sglang serve`), started on 127.0.0.1 and stopped by statrepro."""

    name = "sglang"
    display_name = "SGLang"
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

    def read_version(self, root_url: str) -> str | None:
        answer = get_json(f"{root_url}/get_server_info")
        return str(answer["version"]) if answer and "version" in answer else None

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
