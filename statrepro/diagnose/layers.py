"""Layer-by-layer divergence of one model under two numeric settings (``statrepro layers``).

Forward hooks record the output of the embeddings, every decoder layer (optionally its attention and MLP
sub-modules), the final norm and the logits: a dump (dumps.py), in memory or in a file, so that the two
settings may run in one process (``layers --a --b``) or on two machines (``layers dump`` on each, then
``layers diff``); either way the same ``diff_dumps`` compares them. Both see the same prompts; only real
(non-padding) token positions are compared, in float64:

- ``rel_l2`` = ||A - B||_F / ||A||_F over all compared positions,
- ``cosine_mean`` / ``cosine_min`` = the per-token cosine similarity, averaged / at its worst.

Jump layer rule: among the decoder layers, the one whose log10(rel_l2) rises most over the previous point
(the embeddings for layer 0), i.e. the layer that multiplies the divergence the most. Zero divergences are
floored at 1e-12 so that the first non-zero layer counts as a jump; if nothing diverges there is no jump layer.
``first_cosine_below`` separately names the first decoder layer whose worst-token cosine drops below the
threshold (default 0.99).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from .common import (
    ATTENTION_IMPLEMENTATIONS, DTYPES, QUANTIZATIONS, decoder_layers, load_model, load_tokenizer, resolve_device, token_piece,
)
from .dumps import DumpInfo, LayersDump, check_comparable, run_provenance, weights_sha256

BATCH_MODES = ("alone", "padded")
LOG_FLOOR = 1e-12
SETTING_KEYS = {"dtype": "dtype", "attn": "attention", "attention": "attention", "batch": "batch", "quant": "quantization", "quantization": "quantization"}


@dataclass(frozen=True)
class Setting:
    """One numeric configuration of the model."""

    dtype: str = "float32"
    attention: str = "eager"
    batch: str = "alone"
    quantization: str = "none"

    @classmethod
    def parse(cls, spec: str, *, option: str = "setting") -> "Setting":
        """Parse ``"dtype=bfloat16,attn=sdpa,batch=padded,quant=dynamic-int8"`` (every key optional)."""
        values: dict[str, str] = {}
        for part in filter(None, (piece.strip() for piece in spec.split(","))):
            key, sep, value = part.partition("=")
            if not sep or key.strip() not in SETTING_KEYS:
                raise InputError(f"expected KEY=VALUE with KEY in dtype, attn, batch, quant; got {part!r}", key=option)
            values[SETTING_KEYS[key.strip()]] = value.strip()
        return cls(**values).checked(option)

    def checked(self, option: str) -> "Setting":
        """This setting, or an InputError keyed by ``option`` naming the first value statrepro does not know."""
        allowed = {"dtype": DTYPES, "attention": ATTENTION_IMPLEMENTATIONS, "batch": BATCH_MODES, "quantization": QUANTIZATIONS}
        for name, choices in allowed.items():
            if getattr(self, name) not in choices:
                raise InputError(f"{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}", key=option)
        return self

    def label(self) -> str:
        return f"dtype={self.dtype},attn={self.attention},batch={self.batch},quant={self.quantization}"

    def model_key(self) -> tuple[str, str, str]:
        return (self.dtype, self.attention, self.quantization)


@dataclass(frozen=True)
class PointDivergence:
    """How far the two settings are apart at one hooked point."""

    name: str
    layer: int | None
    rel_l2: float
    cosine_mean: float
    cosine_min: float
    max_abs: float


@dataclass(frozen=True)
class LayersResult:
    """Per-point divergence curve and the named jump layer."""

    model: str
    setting_a: str
    setting_b: str
    n_prompts: int
    n_tokens: int
    points: tuple[PointDivergence, ...]
    jump_layer: int | None
    first_cosine_below: int | None
    cosine_threshold: float
    jump_rule: str = field(default="largest increase of log10(rel_l2) over the previous point among decoder layers")

    @property
    def identical(self) -> bool:
        return all(point.rel_l2 == 0.0 and point.max_abs == 0.0 for point in self.points)

    def summary(self) -> str:
        if self.identical:
            return f"A and B are bitwise identical at all {len(self.points)} hooked points."
        logits = self.points[-1]
        text = f"jump layer: {self.jump_layer}; logits rel L2 {logits.rel_l2:.3g}, worst cosine {logits.cosine_min:.6f}"
        if self.first_cosine_below is not None:
            text += f"; first layer with cosine < {self.cosine_threshold}: {self.first_cosine_below}"
        return text

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["points"] = [asdict(point) for point in self.points]
        payload["identical"] = self.identical
        payload["summary"] = self.summary()
        return payload


def _output_tensor(output):
    return output[0] if isinstance(output, (tuple, list)) else output


def _hook_points(model, submodules: bool) -> list[tuple[str, int | None, Any]]:
    """(name, layer index, module) of every hooked point in forward order (logits are added separately)."""
    layers = decoder_layers(model)
    base = getattr(model, "model", None) or getattr(model, "transformer", None)
    points: list[tuple[str, int | None, Any]] = []
    embeddings = getattr(base, "embed_tokens", None) or getattr(base, "wte", None)
    if embeddings is not None:
        points.append(("embeddings", None, embeddings))
    for index, layer in enumerate(layers):
        if submodules:
            for short, attr in (("attn", "self_attn"), ("mlp", "mlp")):
                child = getattr(layer, attr, None)
                if child is not None:
                    points.append((f"layer.{index}.{short}", index, child))
        points.append((f"layer.{index}", index, layer))
    norm = getattr(base, "norm", None) or getattr(base, "ln_f", None)
    if norm is not None:
        points.append(("final_norm", None, norm))
    return points


def capture(model, sequences: list[list[int]], batch: str, *, pad_id: int, submodules: bool = False, progress=None):
    """The point order [(name, layer)] and the hidden states per point: name -> list (per sequence) of
    [tokens, ...] tensors of the real tokens, on the CPU, at the precision the model computed them in."""
    import torch

    points = _hook_points(model, submodules)
    captured: dict[str, list] = {name: [] for name, _, _ in points}
    captured["logits"] = []
    current_mask: list = [None]

    def keep(name):
        def hook(_module, _inputs, output):
            hidden = _output_tensor(output).detach()
            mask = current_mask[0]
            for row in range(hidden.shape[0]):
                captured[name].append(hidden[row][mask[row]].cpu())

        return hook

    handles = [module.register_forward_hook(keep(name)) for name, _, module in points]
    try:
        batches = [[ids] for ids in sequences] if batch == "alone" else [sequences]
        task = progress.add_task(f"forward ({batch})", total=len(batches)) if progress else None
        for group in batches:
            input_ids, attention_mask = (tensor.to(model.device) for tensor in left_pad(group, pad_id=pad_id))
            position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
            current_mask[0] = attention_mask.bool()
            with torch.no_grad():
                logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).logits
            keep("logits")(None, None, logits)
            if progress:
                progress.advance(task)
    finally:
        for handle in handles:
            handle.remove()
    return [(name, layer) for name, layer, _ in points] + [("logits", None)], captured


def left_pad(sequences: list[list[int]], *, pad_id: int):
    """Left-padded input ids and attention mask tensors."""
    import torch

    width = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        input_ids[row, width - len(ids):] = torch.tensor(ids)
        attention_mask[row, width - len(ids):] = 1
    return input_ids, attention_mask


def _pad_id(tokenizer) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if candidate is not None:
            return int(candidate)
    return 0


def divergence(name: str, layer: int | None, states_a, states_b) -> PointDivergence:
    """rel L2, cosine and max |diff| between two captures of one point (per prompt [tokens, ...]), in float64."""
    import torch

    a = torch.cat([state.reshape(state.shape[0], -1).to(torch.float64) for state in states_a])
    b = torch.cat([state.reshape(state.shape[0], -1).to(torch.float64) for state in states_b])
    if a.shape != b.shape:
        raise InputError(f"{name}: the two settings produced different shapes {tuple(a.shape)} vs {tuple(b.shape)}")
    difference = a - b
    norm_a = torch.linalg.vector_norm(a).item()
    rel_l2 = torch.linalg.vector_norm(difference).item() / norm_a if norm_a > 0 else 0.0
    cosine = torch.nn.functional.cosine_similarity(a, b, dim=-1, eps=1e-300)
    cosine = torch.where(difference.abs().amax(dim=-1) == 0, torch.ones_like(cosine), cosine)
    return PointDivergence(
        name=name,
        layer=layer,
        rel_l2=float(rel_l2),
        cosine_mean=float(cosine.mean().item()),
        cosine_min=float(cosine.min().item()),
        max_abs=float(difference.abs().max().item()),
    )


def jump_layer(points: list[PointDivergence]) -> int | None:
    """The decoder layer whose divergence grows most (see the module docstring); None if nothing diverges."""
    best, best_rise = None, 0.0
    previous = None
    for point in points:
        is_layer_output = point.layer is not None and point.name == f"layer.{point.layer}"
        if point.name == "embeddings" or is_layer_output:
            if is_layer_output and point.rel_l2 > 0:
                rise = math.log10(max(point.rel_l2, LOG_FLOOR)) - math.log10(max(previous if previous is not None else 0.0, LOG_FLOOR))
                if best is None or rise > best_rise:
                    best, best_rise = point.layer, rise
            previous = point.rel_l2
    return best


def dump_layers(model, tokenizer, prompts: list[str], *, model_path: Path, setting: Setting, device: str,
                weights: tuple[str, dict[str, str]], submodules: bool = False, progress=None) -> LayersDump:
    """The in-memory dump of ``model`` (loaded with ``setting`` on ``device``) over ``prompts``; ``weights`` is
    weights_sha256(model_path)."""
    sequences = [tokenizer(prompt, add_special_tokens=True)["input_ids"] for prompt in prompts]
    order, captured = capture(model, sequences, setting.batch, pad_id=_pad_id(tokenizer), submodules=submodules, progress=progress)
    info = DumpInfo(
        prompts=tuple(prompts),
        token_ids=tuple(tuple(ids) for ids in sequences),
        token_pieces=tuple(tuple(token_piece(tokenizer, token_id) for token_id in ids) for ids in sequences),
        points=tuple(order),
        model=str(model_path),
        weights_sha256=weights[0],
        weight_files=weights[1],
        dtype=setting.dtype,
        attention=setting.attention,
        quantization=setting.quantization,
        batch=setting.batch,
        **run_provenance(device),
    )
    return LayersDump(info=info, states={name: tuple(states) for name, states in captured.items()}, source=f"setting {setting.label()}")


def dump_model(model_path: Path, setting: Setting, prompts: list[str], *, device: str = "auto", submodules: bool = False,
               progress=None) -> LayersDump:
    """Load the model with ``setting`` on ``device`` and dump its hidden states over ``prompts``."""
    device = resolve_device(device)
    model = load_model(model_path, dtype=setting.dtype, attention=setting.attention, quantization=setting.quantization, device=device)
    return dump_layers(model, load_tokenizer(model_path), prompts, model_path=model_path, setting=setting, device=device,
                       weights=weights_sha256(model_path), submodules=submodules, progress=progress)


def dump_settings(env: Path | None, *, model: str | None, dtype: str | None, attention: str | None, quantization: str | None,
                  batch: str | None, device: str | None) -> tuple[Path, Setting, str]:
    """The model directory, setting and device of ``layers dump``: the values given, else the env's model.path,
    model.dtype, model.quantization and engine.device, else the defaults (embedded model, float32, eager,
    alone, none, auto). The device is checked to be on this machine."""
    from .common import resolve_model

    env_values: dict[str, Any] = {}
    if env is not None:
        from ..envfile import load_env
        from ..engines import engine_kind

        config = load_env(env)
        if not engine_kind(config.engine.kind).capabilities.in_process:
            raise InputError(
                f"layers dump runs the model in-process with transformers; engine kind {config.engine.kind!r} runs it elsewhere "
                "(dump its weights with --model)", path=env, key="engine.kind",
            )
        if quantization is None and config.model.quantization not in QUANTIZATIONS:
            raise InputError(f"layers dump applies quantization {' or '.join(QUANTIZATIONS)}, not {config.model.quantization!r}",
                             path=env, key="model.quantization")
        env_values = {"model": config.model.path, "dtype": None if config.model.dtype == "auto" else config.model.dtype,
                      "quantization": config.model.quantization, "device": config.engine.device}
    given = {"dtype": dtype, "attention": attention, "batch": batch, "quantization": quantization}
    values = {**env_values, **{key: value for key, value in given.items() if value is not None}}
    setting = Setting(**{key: values[key] for key in given if values.get(key) is not None}).checked("layers dump")
    try:
        resolved = resolve_device(device or env_values.get("device", "auto"))
    except InputError as error:
        if device is None and env is not None:  # the env chose the device: say so
            raise InputError(error.message, path=env, key="engine.device") from None
        raise
    return resolve_model(model or env_values.get("model")), setting, resolved


def diff_dumps(a: LayersDump, b: LayersDump, *, cosine_threshold: float = 0.99, allow_different_weights: bool = False) -> LayersResult:
    """The per-point divergence curve from dump A to dump B, after check_comparable's refusals."""
    check_comparable(a, b, allow_different_weights=allow_different_weights)
    points = [divergence(name, layer, a.states[name], b.states[name]) for name, layer in a.info.points]
    first_below = next(
        (p.layer for p in points if p.layer is not None and p.name == f"layer.{p.layer}" and p.cosine_min < cosine_threshold),
        None,
    )
    label_a, label_b = _labels(a.info, b.info)
    return LayersResult(
        model=a.info.model if a.info.model == b.info.model else f"{a.info.model} | {b.info.model}",
        setting_a=label_a,
        setting_b=label_b,
        n_prompts=len(a.info.prompts),
        n_tokens=a.info.n_tokens,
        points=tuple(points),
        jump_layer=jump_layer(points),
        first_cosine_below=first_below,
        cosine_threshold=cosine_threshold,
    )


def _labels(a: DumpInfo, b: DumpInfo) -> tuple[str, str]:
    """Each dump's setting, and its device too where the two ran on different ones."""
    labels = [Setting(info.dtype, info.attention, info.batch, info.quantization).label() for info in (a, b)]
    if (a.device, a.device_name) != (b.device, b.device_name):
        labels = [f"{label},device={info.device} ({info.device_name})" for label, info in zip(labels, (a, b))]
    return labels[0], labels[1]


def compare_layers(
    model_path: Path,
    setting_a: Setting,
    setting_b: Setting,
    prompts: list[str],
    *,
    submodules: bool = False,
    cosine_threshold: float = 0.99,
    device: str = "auto",
    progress=None,
) -> LayersResult:
    """Dump both settings over ``prompts`` in this process, on one device, and diff the dumps."""
    device = resolve_device(device)
    tokenizer = load_tokenizer(model_path)
    weights = weights_sha256(model_path)
    models: dict[tuple[str, str, str], Any] = {}
    dumps = []
    for setting in (setting_a, setting_b):
        key = setting.model_key()
        if key not in models:
            models.clear()  # keep at most one model in memory
            models[key] = load_model(model_path, dtype=setting.dtype, attention=setting.attention,
                                     quantization=setting.quantization, device=device)
        dumps.append(dump_layers(models[key], tokenizer, prompts, model_path=model_path, setting=setting, device=device,
                                 weights=weights, submodules=submodules, progress=progress))
    return diff_dumps(dumps[0], dumps[1], cosine_threshold=cosine_threshold)


def plot_layers(result: LayersResult, path: str | Path) -> None:
    """PNG of rel L2 (log scale) and 1 - mean cosine per decoder layer, with the jump layer marked."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..atomic import atomic_write_bytes

    layer_points = [p for p in result.points if p.layer is not None and p.name == f"layer.{p.layer}"]
    xs = [p.layer for p in layer_points]
    figure, axis = plt.subplots(figsize=(8, 4.5))
    axis.plot(xs, [max(p.rel_l2, LOG_FLOOR) for p in layer_points], marker="o", label="relative L2 ||A-B||/||A||")
    axis.plot(xs, [max(1 - p.cosine_mean, LOG_FLOOR) for p in layer_points], marker="s", label="1 - mean cosine")
    axis.set_yscale("log")
    axis.set_xlabel("decoder layer")
    axis.set_ylabel("divergence (floored at 1e-12)")
    if result.jump_layer is not None:
        axis.axvline(result.jump_layer, color="red", linestyle="--", label=f"jump layer {result.jump_layer}")
    axis.set_title(f"A: {result.setting_a}\nB: {result.setting_b}", fontsize=8)
    axis.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())
