"""Batch-size, padding-side and packing invariance of one model (``statrepro probe``).

Every sequence is first run alone (the reference). The same sequences then go through:

- ``alone-rerun``: alone again; must be exactly 0 (a control for run-to-run determinism),
- ``batched-right``: one batch, right padding, attention mask, positions 0..n-1,
- ``batched-left``: one batch, left padding, attention mask, positions counted from the first real token,
- ``packed-reversed``: all sequences concatenated in reverse order into one row, positions restarting at 0
  per sequence and a block-diagonal causal attention mask, so no sequence can see another.

For each configuration and dtype the probe reports the largest |logit difference| against the reference over
all real token positions and the number of positions whose argmax token flips. In exact arithmetic every
number is 0; what remains is floating-point reduction order, which bf16 amplifies by orders of magnitude.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .common import decoder_layers, load_model, load_tokenizer, resolve_device
from .layers import _pad_id, left_pad

CONFIGURATIONS = ("alone-rerun", "batched-right", "batched-left", "packed-reversed")


@dataclass(frozen=True)
class ProbeRow:
    """One configuration under one dtype, compared with the alone run."""

    dtype: str
    configuration: str
    max_abs_logit_diff: float
    argmax_flips: int
    positions: int


@dataclass(frozen=True)
class ProbeResult:
    """All rows plus the headline ratio of bf16 to fp32 sensitivity."""

    model: str
    attention: str
    device: str
    n_sequences: int
    rows: tuple[ProbeRow, ...]

    def worst(self, dtype: str) -> float:
        """Largest max |logit diff| over the non-control configurations of one dtype."""
        values = [row.max_abs_logit_diff for row in self.rows if row.dtype == dtype and row.configuration != "alone-rerun"]
        return max(values) if values else float("nan")

    def summary(self) -> str:
        dtypes = sorted({row.dtype for row in self.rows})
        parts = [f"{dtype}: worst max|dlogit| {self.worst(dtype):.3g}" for dtype in dtypes]
        if {"float32", "bfloat16"} <= set(dtypes) and self.worst("float32") > 0:
            parts.append(f"bf16/fp32 ratio {self.worst('bfloat16') / self.worst('float32'):.0f}x")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "attention": self.attention,
            "device": self.device,
            "n_sequences": self.n_sequences,
            "rows": [asdict(row) for row in self.rows],
            "worst": {dtype: self.worst(dtype) for dtype in sorted({row.dtype for row in self.rows})},
            "summary": self.summary(),
        }


def _logits(model, input_ids, attention_mask, position_ids):
    import torch

    inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids}
    with torch.no_grad():
        return model(**{name: None if value is None else value.to(model.device) for name, value in inputs.items()}).logits.float()


def run_configuration(model, sequences: list[list[int]], configuration: str, pad_id: int) -> list:
    """Per-sequence float32 logits [len, vocab] of ``configuration``."""
    import torch

    if configuration in ("alone", "alone-rerun"):
        return [_logits(model, torch.tensor([ids]), None, torch.arange(len(ids))[None])[0] for ids in sequences]
    if configuration == "batched-left":
        input_ids, mask = left_pad(sequences, pad_id=pad_id)
        logits = _logits(model, input_ids, mask, (mask.cumsum(-1) - 1).clamp(min=0))
        return [logits[row, mask.shape[1] - len(ids):] for row, ids in enumerate(sequences)]
    if configuration == "batched-right":
        width = max(len(ids) for ids in sequences)
        input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(input_ids)
        for row, ids in enumerate(sequences):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            mask[row, : len(ids)] = 1
        logits = _logits(model, input_ids, mask, torch.arange(width).expand(len(sequences), width))
        return [logits[row, : len(ids)] for row, ids in enumerate(sequences)]
    if configuration == "packed-reversed":
        order = list(reversed(range(len(sequences))))
        flat = [token for index in order for token in sequences[index]]
        positions = [position for index in order for position in range(len(sequences[index]))]
        segment = torch.tensor([slot for slot, index in enumerate(order) for _ in sequences[index]])
        allowed = (segment[:, None] == segment[None, :]) & torch.ones(len(flat), len(flat), dtype=torch.bool).tril()
        dtype = next(model.parameters()).dtype
        # Additive float mask: works for eager and sdpa attention (transformers uses a 4D mask as given).
        block_mask = torch.zeros(len(flat), len(flat), dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)[None, None]
        logits = _logits(model, torch.tensor([flat]), block_mask, torch.tensor([positions]))[0]
        per_sequence: list = [None] * len(sequences)
        offset = 0
        for index in order:
            per_sequence[index] = logits[offset : offset + len(sequences[index])]
            offset += len(sequences[index])
        return per_sequence
    raise ValueError(configuration)


def compare_logits(reference: list, other: list) -> tuple[float, int, int]:
    """(max |diff|, argmax flips, positions) over all sequences."""
    max_diff, flips, positions = 0.0, 0, 0
    for ref, out in zip(reference, other):
        max_diff = max(max_diff, float((ref - out).abs().max().item()))
        flips += int((ref.argmax(-1) != out.argmax(-1)).sum().item())
        positions += ref.shape[0]
    return max_diff, flips, positions


def probe(
    model_path: Path,
    prompts: list[str],
    *,
    dtypes: tuple[str, ...] = ("float32", "bfloat16"),
    attention: str = "eager",
    device: str = "auto",
    progress=None,
) -> ProbeResult:
    """Run every configuration under every dtype on ``device`` and compare it with the alone run."""
    device = resolve_device(device)
    tokenizer = load_tokenizer(model_path)
    sequences = [tokenizer(prompt)["input_ids"] for prompt in prompts]
    pad_id = _pad_id(tokenizer)
    rows = []
    task = progress.add_task("probe", total=len(dtypes) * (len(CONFIGURATIONS) + 1)) if progress else None
    for dtype in dtypes:
        model = load_model(model_path, dtype=dtype, attention=attention, device=device)
        decoder_layers(model)  # fail early on an unsupported architecture
        reference = run_configuration(model, sequences, "alone", pad_id)
        if progress:
            progress.advance(task)
        for configuration in CONFIGURATIONS:
            max_diff, flips, positions = compare_logits(reference, run_configuration(model, sequences, configuration, pad_id))
            rows.append(ProbeRow(dtype, configuration, max_diff, flips, positions))
            if progress:
                progress.advance(task)
        del model
    return ProbeResult(model=str(model_path), attention=attention, device=device, n_sequences=len(sequences), rows=tuple(rows))
