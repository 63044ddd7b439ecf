"""`python -m statrepro.harness.lm_eval_int8 run ...`: lm-eval's own CLI with one extra model type.

``hf-dynamic-int8`` is lm-eval's HF model with torch dynamic int8 quantization applied to every Linear
layer after loading (weights int8, activations quantized on the fly) - the quantization a CPU deployment
would use, which lm-eval cannot express through --model_args.
"""

from __future__ import annotations

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM


@register_model("hf-dynamic-int8")
class DynamicInt8HFLM(HFLM):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._model = torch.ao.quantization.quantize_dynamic(self._model, {torch.nn.Linear}, dtype=torch.qint8)


if __name__ == "__main__":
    from lm_eval.__main__ import cli_evaluate

    cli_evaluate()
