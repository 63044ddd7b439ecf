"""Size on disk and making time of each rung of the quantization ladder (configs/quant/*.yaml), made from
scratch in a fresh cache exactly as a run makes them (the llama-cpp kind's served_gguf): the F32 GGUF
dequantized from the shipped Q4_1 file, then each llama.cpp quantization of it. Usage:

    python perf/quant_ladder.py [configs/quant/*.yaml]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from statrepro.envfile import load_env
from statrepro.engines.kinds import engine_kind
from statrepro.models import read_gguf_weights


def main() -> None:
    files = [Path(arg) for arg in sys.argv[1:]] or sorted((Path(__file__).resolve().parent.parent / "configs" / "quant").glob("*.yaml"))
    envs = sorted((load_env(path) for path in files), key=lambda env: env.model.quantization != "none")  # F32 first: the rest are made from it
    with tempfile.TemporaryDirectory() as cache:
        os.environ["STATREPRO_CACHE_DIR"] = cache
        print(f"{'env':<10} {'file type':<9} {'MB':>7} {'seconds':>8}  tensor types")
        for env in envs:
            start = time.perf_counter()
            path = engine_kind(env.engine.kind).served_gguf(env)
            seconds = time.perf_counter() - start
            weights = read_gguf_weights(path)
            types = ", ".join(f"{name} x{count}" for name, count in weights.tensor_types.items())
            print(f"{env.name:<10} {weights.file_type:<9} {path.stat().st_size / 1e6:>7.1f} {seconds:>8.1f}  {types}", flush=True)


if __name__ == "__main__":
    main()
