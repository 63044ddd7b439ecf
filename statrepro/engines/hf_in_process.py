"""Engine kind ``hf``: the model runs in-process in the harness, with transformers. Nothing to serve.

The kind owns what running the model in the harness process takes: where it runs (``device``), the launcher that
switches torch to deterministic algorithms (``harness_launcher``, engines/torch_deterministic.py) with the
environment cuBLAS needs for it (``job_environment``), and what quantization dynamic-int8 applies after loading
(``quantize_dynamic_int8``, which the lm-eval model type ``hf-dynamic-int8`` calls).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import InputError
from .contract import Capabilities, EngineKind, RenderedPrompt, determinism_report, hf_rendering

# cuBLAS needs a fixed workspace for deterministic results (torch's reproducibility notes).
CUBLAS_WORKSPACE = ":4096:8"


class HFInProcess(EngineKind):
    """In-process transformers, inside the harness; nothing to serve."""

    name = "hf"
    managed = False
    capabilities = Capabilities(
        in_process=True, prompt_logprobs=True, token_logprobs=True, request_seed=None, concurrent_sampling=False,
        full_logits=True,
    )
    default_repeat_penalty = 1.0  # transformers applies none unless asked
    device_choice = True

    def check(self, engine) -> None:
        if engine.concurrency != 1:
            raise ValueError(
                f"engine.concurrency {engine.concurrency}: an in-process model answers one request at a time; "
                "set batch_size to evaluate several prompts per forward pass"
            )

    @contextmanager
    def serve(self, env, work_dir) -> Iterator[None]:
        if env.model.quantization in ("fp8", "awq", "gptq"):
            raise InputError(
                f"in-process hf applies quantization none, dynamic-int8 or gguf, not {env.model.quantization!r} (use kind vllm or sglang)",
                key="model.quantization",
            )
        yield None

    def render_prompts(self, env, prompts) -> list[RenderedPrompt]:
        """lm-eval's in-process model tokenizes the text it logged (any chat template already rendered into
        it) without adding special tokens, unless the model asks for a BOS (its add_bos_token)."""
        from ..models import load_tokenizer, resolve_model_path

        if any(prompt.text is None for prompt in prompts):
            raise InputError("an in-process model is sent text, not chat messages", key="engine.kind")
        tokenizer = load_tokenizer(resolve_model_path(env.engine.tokenizer or env.model.path))
        add_bos = bool(getattr(tokenizer, "add_bos_token", False))
        how = "lm-eval's in-process tokenization: the logged text, " + ("plus the BOS the model asks for" if add_bos else "no special tokens added")
        return [hf_rendering(tokenizer, in_process_ids(tokenizer, prompt.text), how) for prompt in prompts]

    def next_token_scorer(self, env, *, max_tokens: int) -> TransformersScorer:
        """The model as the harness loads it in-process: model.dtype (auto: float32), dynamic-int8 applied after
        loading, on engine.device."""
        if env.model.quantization not in ("none", "dynamic-int8"):
            raise InputError(f"statrepro kld runs kind hf with quantization none or dynamic-int8, not {env.model.quantization!r}",
                             key="model.quantization")
        return TransformersScorer(env, device=self.device(env) or "cpu")

    def harness_launcher(self, env, module: str) -> list[str]:
        if env.engine.deterministic:
            return [sys.executable, "-m", "statrepro.engines.torch_deterministic", module]
        return super().harness_launcher(env, module)

    def device(self, env) -> str | None:
        """``engine.device``, with auto settled to cpu on a machine without GPUs (None: the harness's auto)."""
        from ..machine import detect_hardware

        device = env.engine.device
        if device == "auto" and not detect_hardware()["gpus"]:
            device = "cpu"
        return None if device == "auto" else device

    def job_environment(self, env) -> dict[str, str]:
        if not env.engine.deterministic:
            return {}
        return {"CUBLAS_WORKSPACE_CONFIG": CUBLAS_WORKSPACE}

    def determinism(self, hardware: str, deterministic: bool = False):
        # No server, so no prefix cache; on CPU, torch's kernels are deterministic.
        return determinism_report(
            prefix_cache_off=True,
            deterministic=True if deterministic or hardware == "cpu" else None,
            requested=deterministic,
            applied=("torch.use_deterministic_algorithms(True) in the harness process", f"CUBLAS_WORKSPACE_CONFIG={CUBLAS_WORKSPACE}"),
            not_guaranteed=(
                "an operation without a deterministic implementation stops the job with torch's error",
                "identical results only on the same device, torch and driver versions",
            ) if deterministic else (),
        )


def in_process_ids(tokenizer, text: str) -> list[int]:
    """lm-eval's in-process tokenization of raw text: no special tokens, except the BOS a model asks for."""
    return tokenizer(text, add_special_tokens=bool(getattr(tokenizer, "add_bos_token", False)))["input_ids"]


class TransformersScorer:
    """The in-process transformers model, teacher-forced (engines.contract.NextTokenScorer)."""

    def __init__(self, env, *, device: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        from ..models import load_tokenizer, resolve_model_path

        path = resolve_model_path(env.model.path)
        dtype = "float32" if env.model.dtype == "auto" else env.model.dtype
        self.tokenizer = load_tokenizer(resolve_model_path(env.engine.tokenizer or env.model.path))
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=getattr(torch, dtype)).to(device).eval()
        self.model = quantize_dynamic_int8(model) if env.model.quantization == "dynamic-int8" else model
        self.device = device
        self.vocab_size = int(self.model.get_output_embeddings().out_features)
        self.label = env.name

    def tokenize(self, text: str) -> list[int]:
        return in_process_ids(self.tokenizer, text)

    def logits(self, ids):
        import torch

        with torch.no_grad():
            return self.model(torch.tensor([list(ids)], device=self.device)).logits[0].float().cpu().numpy()

    def close(self) -> None:
        self.model = None


def quantize_dynamic_int8(model):
    """``model`` with quantization dynamic-int8 applied, after loading: torch dynamic quantization of every Linear
    layer (weights int8, activations quantized on the fly), the quantization a CPU deployment would use."""
    import torch

    return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
