"""`python -m statrepro.engines.torch_deterministic MODULE ARGS...`: run MODULE as ``__main__`` (e.g. ``lm_eval``)
after ``torch.use_deterministic_algorithms(True)``: the launcher of kind hf's in-process jobs of an environment with
``engine.deterministic: true`` (HFInProcess.harness_launcher). The job's environment also sets
CUBLAS_WORKSPACE_CONFIG (HFInProcess.job_environment), which cuBLAS reads when it first initialises, so it must be
set before the process starts, as it is.
"""

from __future__ import annotations

import runpy
import sys


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: python -m statrepro.engines.torch_deterministic MODULE [ARGS...]")
    import torch

    torch.use_deterministic_algorithms(True)
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
