"""The diagnostics' Python API (statrepro.diagnose): why two environments differ, one call per CLI command.

Each call reads its inputs, runs the diagnostic (with a progress bar on stderr where it loads a model), writes
``json_path`` (and ``plot``) when asked and returns the result object (``.summary()``, ``.to_dict()``); the
CLI only prints it. Prompts are the built-in short ones, a text file (``prompts``, one per line), or ``limit``
items of a local ``benchmark``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from .diagnose.doctor import DoctorResult
    from .diagnose.dumps import LayersDump
    from .diagnose.kld import TokenKLDReport
    from .diagnose.layers import LayersResult
    from .diagnose.logprobs import LogprobsResult
    from .diagnose.probe import ProbeResult
    from .diagnose.template import TemplateResult


def doctor(
    a: str | Path, b: str | Path, *, probe_endpoints: Optional[bool] = None, probe_timeout: float = 10.0,
    json_path: str | Path | None = None,
) -> DoctorResult:
    """The score-moving factors that differ between two runs (env files, harness outputs or manifests), with
    severity and a fix, plus a determinism checklist. ``probe_endpoints`` asks the running servers what the
    files do not record (None: on for env files, off for outputs and manifests)."""
    from .diagnose.common import write_json
    from .diagnose.doctor import compare_sources

    result = compare_sources(a, b, probe_endpoints=probe_endpoints, probe_timeout=probe_timeout)
    if json_path is not None:
        write_json(json_path, result.to_dict())
    return result


def compare_logprobs(
    a: str, b: str, *, prompts: str | Path | None = None, benchmark: Optional[str] = None, limit: int = 8,
    data_dir: str | Path | None = None, chat: bool = False, max_tokens: int = 32, top_k: int = 5, epsilon: float = 0.1,
    timeout: float = 60.0, model: Optional[str] = None, params_a: dict | None = None, params_b: dict | None = None,
    json_path: str | Path | None = None,
) -> LogprobsResult:
    """Token-level comparison of two engines at temperature 0 (each side an OpenAI-compatible base URL or an env
    file; managed servers are started and stopped again): exact match, first divergence, logprob deltas, near ties."""
    from contextlib import ExitStack

    from .diagnose.common import choose_prompts, progress_bar, write_json
    from .diagnose.logprobs import compare_sides, side_from_spec

    prompt_list = choose_prompts(prompts, benchmark, data_dir=data_dir, limit=limit)
    with ExitStack() as servers:
        side_a = side_from_spec(a, chat=chat, timeout=timeout, params=params_a or {}, model=model, servers=servers)
        side_b = side_from_spec(b, chat=chat, timeout=timeout, params=params_b or {}, model=model, servers=servers)
        with progress_bar() as progress:
            result = compare_sides(side_a, side_b, prompt_list, max_tokens=max_tokens, top_k=top_k, epsilon=epsilon, progress=progress)
    if json_path is not None:
        write_json(json_path, result.to_dict())
    return result


def compare_token_distributions(
    reference: str | Path, candidate: str | Path, *, texts: str | Path | None = None, limit: Optional[int] = None,
    data_dir: str | Path | None = None, top_k: Optional[int] = None, json_path: str | Path | None = None,
) -> TokenKLDReport:
    """Token-level KL divergence of the candidate environment's next-token distributions from the reference's,
    teacher-forced on a fixed text set (default: ``limit`` prompts of the reference's first benchmark with their
    gold answers; ``texts``: a file, one text per line), over the whole vocabulary where both engine kinds give full
    logits, else over each served endpoint's ``top_k`` prompt logprobs (default 20; the KLD then a lower bound):
    llama-perplexity --kl-divergence's figures (docs/diagnose.md, "kld")."""
    from .diagnose.common import progress_bar, write_json
    from .diagnose.kld import DEFAULT_TOP_K, compare_token_distributions as compare, text_set
    from .envfile import load_env

    paths = (Path(reference), Path(candidate))
    env_ref, env_cand = (load_env(path) for path in paths)
    chosen = text_set(env_ref, texts=texts, limit=limit, data_dir=data_dir)
    with progress_bar() as progress:
        result = compare(env_ref, env_cand, chosen, sources=paths, top_k=DEFAULT_TOP_K if top_k is None else top_k, progress=progress)
    if json_path is not None:
        write_json(json_path, result.to_dict())
    return result


def compare_chat_templates(
    a: str | Path, b: str | Path, *, prompts: str | Path | None = None, benchmark: Optional[str] = None, limit: int = 8,
    data_dir: str | Path | None = None, system: Optional[str] = None, json_path: str | Path | None = None,
) -> TemplateResult:
    """Render both sides' chat templates (add_generation_prompt=True; each side a tokenizer directory, a .gguf
    file, an env file or 'embedded') and compare the token ids prompt by prompt."""
    from .diagnose.common import choose_prompts, write_json
    from .diagnose.template import compare_templates

    result = compare_templates(a, b, choose_prompts(prompts, benchmark, data_dir=data_dir, limit=limit), system=system)
    if json_path is not None:
        write_json(json_path, result.to_dict())
    return result


def probe_batch_invariance(
    model: str | Path | None = None, *, prompts: str | Path | None = None, dtypes: tuple[str, ...] = ("float32", "bfloat16"),
    attention: str = "eager", device: str = "auto", json_path: str | Path | None = None,
) -> ProbeResult:
    """Batch-size, padding-side and packing invariance of one HF model (default: the embedded one): max |logit
    diff| and argmax flips against running each sequence alone."""
    from .diagnose.common import progress_bar, read_prompts, resolve_model, write_json
    from .diagnose.probe import probe

    prompt_list = read_prompts(prompts)
    with progress_bar() as progress:
        result = probe(resolve_model(model), prompt_list, dtypes=tuple(dtypes), attention=attention, device=device, progress=progress)
    if json_path is not None:
        write_json(json_path, result.to_dict())
    return result


def compare_layer_settings(
    a: str = "dtype=float32", b: str = "dtype=bfloat16", *, model: str | Path | None = None, prompts: str | Path | None = None,
    submodules: bool = False, device: str = "auto", cosine_threshold: float = 0.99, plot: str | Path | None = None,
    json_path: str | Path | None = None,
) -> LayersResult:
    """Hidden-state divergence layer by layer between two numeric settings of one model, both run here
    ("dtype=bfloat16,attn=sdpa,batch=padded,quant=dynamic-int8" syntax); names the jump layer."""
    from .diagnose.common import progress_bar, read_prompts, resolve_model, write_json
    from .diagnose.layers import Setting, compare_layers, plot_layers

    setting_a, setting_b = Setting.parse(a, option="--a"), Setting.parse(b, option="--b")
    prompt_list = read_prompts(prompts)
    with progress_bar() as progress:
        result = compare_layers(resolve_model(model), setting_a, setting_b, prompt_list, submodules=submodules,
                                cosine_threshold=cosine_threshold, device=device, progress=progress)
    if plot is not None:
        plot_layers(result, plot)
    if json_path is not None:
        write_json(json_path, result.to_dict())
    return result


def dump_layers(
    env: str | Path | None, out: str | Path, *, model: Optional[str] = None, dtype: Optional[str] = None,
    attention: Optional[str] = None, quantization: Optional[str] = None, batch: Optional[str] = None,
    device: Optional[str] = None, prompts: str | Path | None = None, benchmark: Optional[str] = None, limit: int = 8,
    data_dir: str | Path | None = None, explain: str | Path | None = None, submodules: bool = False,
) -> LayersDump:
    """Write this machine's hidden states (every hooked point, every prompt) and their provenance to ``out`` for
    ``diff_layer_dumps``; the options override the env file's model and engine settings. ``explain`` takes the
    prompts of the top ``limit`` items of an explain JSON file, as side A's engine ran them."""
    from .diagnose.common import choose_prompts, progress_bar
    from .diagnose.dumps import write_dump
    from .diagnose.layers import dump_model, dump_settings

    env = Path(env) if env is not None else None
    model_path, setting, resolved = dump_settings(env, model=model, dtype=dtype, attention=attention, quantization=quantization,
                                                  batch=batch, device=device)
    prompt_list = choose_prompts(prompts, benchmark, data_dir=data_dir, limit=limit, explain=explain)
    with progress_bar() as progress:
        dump = dump_model(model_path, setting, prompt_list, device=resolved, submodules=submodules, progress=progress)
    write_dump(dump, out)
    return dump


def diff_layer_dumps(
    dump_a: str | Path, dump_b: str | Path, *, allow_different_weights: bool = False, cosine_threshold: float = 0.99,
    plot: str | Path | None = None, json_path: str | Path | None = None,
) -> tuple[LayersDump, LayersDump, LayersResult]:
    """Per-point divergence between two dump files (from one machine or two): both dumps and their LayersResult."""
    from .diagnose.common import write_json
    from .diagnose.dumps import read_dump
    from .diagnose.layers import diff_dumps, plot_layers

    side_a, side_b = read_dump(dump_a), read_dump(dump_b)
    result = diff_dumps(side_a, side_b, cosine_threshold=cosine_threshold, allow_different_weights=allow_different_weights)
    if plot is not None:
        plot_layers(result, plot)
    if json_path is not None:
        write_json(json_path, result.to_dict())
    return side_a, side_b, result
