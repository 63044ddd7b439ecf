"""`python -m statrepro.harness.lm_eval_int8 run ...`: lm-eval's own CLI with one extra model type.

``hf-dynamic-int8`` is lm-eval's HF model with quantization dynamic-int8 applied after loading, as engine kind hf
defines it (engines/hf_in_process.py: quantize_dynamic_int8), which lm-eval cannot express through --model_args.
Only the registration with lm-eval's model registry is lm-eval's, so it lives here, with the harness.
"""

from __future__ import annotations

from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from ..engines.hf_in_process import quantize_dynamic_int8


@register_model("hf-dynamic-int8")
class DynamicInt8HFLM(HFLM):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._model = quantize_dynamic_int8(self._model)


if __name__ == "__main__":
    from lm_eval.__main__ import cli_evaluate

    cli_evaluate()
