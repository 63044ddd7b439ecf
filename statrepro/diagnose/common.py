"""Helpers shared by the model-level diagnostics: prompts, model loading and JSON output."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..models import load_tokenizer  # noqa: F401  (the diagnostics' import point; engines use it too)

# Short, benchmark-like prompts (arithmetic, knowledge, multiple choice, code) of different lengths, so that
# padded batches really contain padding.
DEFAULT_PROMPTS = [
    "Question: Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?\nAnswer:",
    "The capital of France is",
    "Which planet is known as the Red Planet?\nA. Venus\nB. Mars\nC. Jupiter\nD. Saturn\nAnswer:",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "Translate to French: The weather is nice today.",
    "2 + 2 =",
    "Write one sentence about the ocean.",
    "Q: What is 12 times 7?\nA:",
]

DTYPES = ("float32", "bfloat16", "float16")
ATTENTION_IMPLEMENTATIONS = ("eager", "sdpa")
QUANTIZATIONS = ("none", "dynamic-int8")


def read_prompts(path: str | Path | None) -> list[str]:
    """The built-in prompts, or one prompt per non-empty line of ``path`` (``\\n`` escapes allowed)."""
    if path is None:
        return list(DEFAULT_PROMPTS)
    path = Path(path)
    if not path.is_file():
        raise InputError("prompts file does not exist", path=path)
    prompts = [line.replace("\\n", "\n") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not prompts:
        raise InputError("prompts file has no non-empty line", path=path)
    return prompts


def _item_text(item: dict) -> str:
    """A benchmark item as the user turn a model sees: the question, with lettered choices when it has them."""
    question = item.get("question") or item.get("prompt") or ""
    choices = item.get("choices") or [item[letter] for letter in "ABCD" if letter in item]
    lines = [question] + [f"{letter}. {choice}" for letter, choice in zip("ABCD", choices)]
    return "\n".join(lines)


def _gold_answer(item: dict) -> str | None:
    """An item's reference answer as text: the lettered gold choice, else its answer or target string."""
    choices = item.get("choices") or [item[letter] for letter in "ABCD" if letter in item]
    index = item.get("target_index")
    if isinstance(index, int) and 0 <= index < len(choices):
        return f"{'ABCD'[index]}. {choices[index]}"
    answer = item.get("answer") if isinstance(item.get("answer"), str) else item.get("target")
    return answer if isinstance(answer, str) and answer else None


def benchmark_prompts(benchmark: str, *, data_dir: str | Path | None, limit: int, subsets: list[str] | None = None,
                      answers: bool = False) -> list[str]:
    """The first ``limit`` items of a local benchmark (spread over its ``subsets``, default all) as prompts;
    with ``answers`` each followed by "Answer: " and its reference answer (where it has one)."""
    from ..benchmarks import get_benchmark

    if limit < 1:
        raise InputError(f"must be at least 1, got {limit}", key="--limit")
    per_subset = [items for items in get_benchmark(benchmark).load_items(data_dir, subsets).values() if items]
    prompts: list[str] = []
    for index in range(max((len(items) for items in per_subset), default=0)):
        for items in per_subset:
            if index < len(items) and len(prompts) < limit:
                text, gold = _item_text(items[index]), _gold_answer(items[index]) if answers else None
                prompts.append(f"{text}\nAnswer: {gold}" if gold is not None else text)
    return prompts


def explained_prompts(path: str | Path, *, limit: int) -> list[str]:
    """The prompts of the first ``limit`` items of an ``explain --json`` file, as side A's engine ran them."""
    path = Path(path)
    try:
        items = json.loads(path.read_text(encoding="utf-8"))["items"]
        prompts = [item["tokens"]["prompt_a"] for item in items][:limit]
    except FileNotFoundError:
        raise InputError("explain JSON does not exist", path=path) from None
    except (ValueError, KeyError, TypeError):
        raise InputError("not an explain --json file (items[].tokens.prompt_a)", path=path) from None
    if not prompts:
        raise InputError("the explanation has no items (nothing moved)", path=path, key="items")
    return prompts


def choose_prompts(path: str | Path | None, benchmark: str | None, *, data_dir: str | Path | None, limit: int,
                   explain: str | Path | None = None) -> list[str]:
    """Prompts from a file, a benchmark, an explanation's top items, or the built-in set."""
    given = [option for option, source in (("--prompts", path), ("--benchmark", benchmark), ("--explain", explain)) if source is not None]
    if len(given) > 1:
        raise InputError(f"give {' or '.join(given)}, not both", key=given[-1])
    if benchmark is not None:
        return benchmark_prompts(benchmark, data_dir=data_dir, limit=limit)
    if explain is not None:
        return explained_prompts(explain, limit=limit)
    return read_prompts(path)


def resolve_model(model: str | Path | None) -> Path:
    """A local HF model directory: the embedded SmolLM2 by default."""
    from ..models import materialize_embedded_model, resolve_model_path

    if model is None:
        return materialize_embedded_model()
    path = resolve_model_path(str(model))
    if path.is_dir() and not (path / "config.json").is_file():
        raise InputError("not a Hugging Face model directory (no config.json)", path=path)
    return path


def resolve_device(device: str) -> str:
    """The torch device that ``device`` names (auto: cuda when torch sees one, else cpu); an InputError when it
    is not one of engine.device's choices or this machine does not have it."""
    import torch

    from ..config import check_device

    try:
        check_device(device)
    except ValueError as error:
        raise InputError(str(error), key="--device") from None
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    kind, _, index = device.partition(":")
    if kind == "cpu":
        return device
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    elif kind == "npu":
        count = _npu_count()
    else:
        count = int(torch.backends.mps.is_available())
    if int(index or 0) >= count:
        raise InputError(f"device {device!r} is not available on this machine (torch {torch.__version__} sees {count} {kind} device(s))", key="--device")
    return device


def _npu_count() -> int:
    """Ascend NPUs that torch sees; torch knows of them only once the torch_npu plugin is imported."""
    try:
        import torch_npu  # noqa: F401
    except ImportError:
        return 0
    import torch

    return torch.npu.device_count() if torch.npu.is_available() else 0


def token_piece(tokenizer, token_id: int) -> str:
    """The text of one token as servers report it (e.g. ' Paris', not 'ĠParis')."""
    return tokenizer.convert_tokens_to_string([tokenizer.convert_ids_to_tokens(token_id)])


def load_model(path: Path, *, dtype: str = "float32", attention: str = "eager", quantization: str = "none", device: str = "cpu"):
    """A causal LM in eval mode with the requested numeric settings, on ``device`` (a resolve_device result)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM

    if dtype not in DTYPES:
        raise InputError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}", key="dtype")
    if attention not in ATTENTION_IMPLEMENTATIONS:
        raise InputError(f"attention must be one of {', '.join(ATTENTION_IMPLEMENTATIONS)}, got {attention!r}", key="attn")
    if quantization not in QUANTIZATIONS:
        raise InputError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}", key="quant")
    if quantization == "dynamic-int8" and dtype != "float32":
        raise InputError("dynamic-int8 quantization needs dtype float32 (it quantizes float32 Linear layers)", key="quant")
    if quantization == "dynamic-int8" and device != "cpu":
        raise InputError(f"dynamic-int8 quantization runs on the CPU only (torch has no {device} kernels for it); use --device cpu", key="quant")
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=getattr(torch, dtype), attn_implementation=attention)
    except (OSError, ValueError) as error:
        raise InputError(f"cannot load the model: {str(error).splitlines()[0]}", path=path) from None
    model.to(device).eval()
    if quantization == "dynamic-int8":
        import warnings

        from torch.ao.quantization import quantize_dynamic

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch marks eager dynamic quantization deprecated; it still works
            model = quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return model


def decoder_layers(model) -> list:
    """The list of transformer blocks of a decoder-only HF model."""
    for owner in (getattr(model, "model", None), getattr(model, "transformer", None)):
        for name in ("layers", "h", "blocks"):
            layers = getattr(owner, name, None) if owner is not None else None
            if layers is not None:
                return list(layers)
    raise InputError(f"cannot find the decoder layers of {type(model).__name__}")


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON atomically."""
    from ..atomic import atomic_write_text

    atomic_write_text(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")


def progress_bar():
    """A transient rich progress display on stderr (stdout stays clean for tables and JSON); off where stderr is
    no terminal, where rich would leave a stray blank line before any error (a one-line error must stay one line)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True, disable=not console.is_terminal)
