"""The diagnostics (statrepro/diagnose): why two environments differ."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..errors import InputError
from .common import (
    BENCHMARKS, COSINE_THRESHOLD, DATA_DIR, DEVICE, LAYERS_PLOT, MODEL, PROMPT_BENCHMARK, PROMPT_LIMIT, SEEDS, STORE,
    SUBMODULES, api_options, parse_benchmarks, parse_seeds, stop_on_sigterm, user_errors,
)
from .render import print_doctor, print_explanation, print_layers, print_logprobs, print_probe, print_template, print_token_kld


@user_errors
def explain(
    env_a: Path = typer.Argument(..., help="Environment A of the finished comparison."),
    env_b: Path = typer.Argument(..., help="Environment B of the finished comparison."),
    store: Path = STORE,
    benchmarks: Optional[str] = BENCHMARKS,
    seeds: Optional[str] = SEEDS,
    run_limit: Optional[int] = typer.Option(None, help="The --limit the comparison ran with (it selects the same runs in the store)."),
    limit: int = typer.Option(10, help="Items to explain: flipped first, then the largest score changes, then changed answers."),
    epsilon: float = typer.Option(0.1, help="A divergence is a near tie when either side's top-2 logprob gap is below this (nats)."),
    shift_threshold: float = typer.Option(1.0, help="Identical tokens whose logprobs moved more than this (nats) are a distribution shift."),
    top_k: int = typer.Option(5, help="Top logprobs per replayed step (>= 2)."),
    max_tokens: int = typer.Option(128, help="New tokens per greedy replay (capped by each environment's max_tokens)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the explanation as JSON here."),
) -> None:
    """Why items moved between A and B: exact prompts, a token check, greedy replays with logprobs, flip classes.

    Starts each side's engine (managed servers are stopped again). Exit code 0 (also when nothing moved), 2 on bad input.
    """
    from ..api import ExplainOptions, RunOptions, explain_environments

    run_options = api_options(RunOptions, store=store, benchmarks=parse_benchmarks(benchmarks), seeds=parse_seeds(seeds), limit=run_limit)
    options = api_options(ExplainOptions, limit=limit, epsilon=epsilon, shift_threshold=shift_threshold, top_k=top_k, max_tokens=max_tokens)
    stop_on_sigterm()
    print_explanation(explain_environments(env_a, env_b, run_options, options, json_path=json_path))


# `layers` compares two settings in one process; `layers dump` / `layers diff` do it across machines.
layers_app = typer.Typer()


@layers_app.callback(invoke_without_command=True)
@user_errors
def layers(
    context: typer.Context,
    a: str = typer.Option("dtype=float32", "--a", help="Setting A: comma-separated dtype=float32|bfloat16|float16, attn=eager|sdpa, batch=alone|padded, quant=none|dynamic-int8."),
    b: str = typer.Option("dtype=bfloat16", "--b", help="Setting B, same syntax."),
    model: Optional[str] = MODEL,
    prompts: Optional[Path] = typer.Option(None, help="Text file, one prompt per line (default: built-in short prompts)."),
    submodules: bool = SUBMODULES,
    device: str = DEVICE,
    cosine_threshold: float = COSINE_THRESHOLD,
    plot: Optional[Path] = LAYERS_PLOT,
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the per-layer numbers as JSON here."),
) -> None:
    """Hidden-state divergence layer by layer between two numeric settings of one model; names the jump layer.

    Without a command both settings run here, on one device; across machines, run `layers dump` on each, then `layers diff`.
    """
    if context.invoked_subcommand is not None:
        return
    from ..api_diagnose import compare_layer_settings

    print_layers(compare_layer_settings(a, b, model=model, prompts=prompts, submodules=submodules, device=device,
                                        cosine_threshold=cosine_threshold, plot=plot, json_path=json_path))


@layers_app.command("dump")
@user_errors
def layers_dump(
    env: Optional[Path] = typer.Argument(None, help="Environment YAML (engine kind hf): its model.path, model.dtype, model.quantization and engine.device, unless an option says otherwise."),
    out: Path = typer.Option(..., "--out", help="The dump file to write (.safetensors)."),
    model: Optional[str] = MODEL,
    dtype: Optional[str] = typer.Option(None, help="float32 (default), bfloat16 or float16."),
    attn: Optional[str] = typer.Option(None, help="Attention implementation: eager (default) or sdpa."),
    quant: Optional[str] = typer.Option(None, help="none (default) or dynamic-int8 (CPU only)."),
    batch: Optional[str] = typer.Option(None, help="alone (default: one prompt per forward pass) or padded (all prompts in one left-padded batch)."),
    device: Optional[str] = typer.Option(None, help="auto (cuda when present, else cpu), cpu, cuda, cuda:N, npu or mps (default: the env's engine.device, else auto)."),
    prompts: Optional[Path] = typer.Option(None, help="Text file, one prompt per line (default: built-in short prompts)."),
    benchmark: Optional[str] = PROMPT_BENCHMARK,
    limit: int = PROMPT_LIMIT,
    data_dir: Optional[Path] = DATA_DIR,
    explain: Optional[Path] = typer.Option(None, "--explain", help="Prompts of the top --limit items of an `explain --json` file, as side A's engine ran them."),
    submodules: bool = SUBMODULES,
) -> None:
    """Write this machine's hidden states (every hooked point, every prompt) and their provenance to a file for `layers diff`."""
    from ..api_diagnose import dump_layers

    dump = dump_layers(env, out, model=model, dtype=dtype, attention=attn, quantization=quant, batch=batch, device=device,
                       prompts=prompts, benchmark=benchmark, limit=limit, data_dir=data_dir, explain=explain, submodules=submodules)
    typer.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {dump.info.summary()}")


@layers_app.command("diff")
@user_errors
def layers_diff(
    dump_a: Path = typer.Argument(..., help="Dump of side A (the reference), from `layers dump`."),
    dump_b: Path = typer.Argument(..., help="Dump of side B, on the same prompts and weights."),
    allow_different_weights: bool = typer.Option(False, "--allow-different-weights", help="Compare dumps whose weight files differ (a quantized or converted copy)."),
    cosine_threshold: float = COSINE_THRESHOLD,
    plot: Optional[Path] = LAYERS_PLOT,
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the per-layer numbers as JSON here (the shape of `layers --json`)."),
) -> None:
    """Per-point divergence between two dumps, made on one machine or two; names the jump layer."""
    from ..api_diagnose import diff_layer_dumps

    side_a, side_b, result = diff_layer_dumps(dump_a, dump_b, allow_different_weights=allow_different_weights,
                                              cosine_threshold=cosine_threshold, plot=plot, json_path=json_path)
    for side, dump in (("A", side_a), ("B", side_b)):
        typer.echo(f"{side}: {dump.summary()}")
    print_layers(result)


@user_errors
def probe(
    model: Optional[str] = MODEL,
    prompts: Optional[Path] = typer.Option(None, help="Text file, one sequence per line (default: built-in short prompts)."),
    dtype: list[str] = typer.Option(["float32", "bfloat16"], help="dtypes to probe (repeatable)."),
    attn: str = typer.Option("eager", help="Attention implementation: eager or sdpa."),
    device: str = DEVICE,
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the rows as JSON here."),
) -> None:
    """Batch-size, padding-side and packing invariance: max |logit diff| and argmax flips vs running each sequence alone."""
    from ..api_diagnose import probe_batch_invariance

    print_probe(probe_batch_invariance(model, prompts=prompts, dtypes=tuple(dtype), attention=attn, device=device, json_path=json_path))


def _parse_request_params(values: list[str], option: str) -> dict:
    """KEY=JSON_VALUE pairs (a value that is not JSON stays a string)."""
    params = {}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep or not key:
            raise InputError(f"expected KEY=VALUE, got {value!r}", key=option)
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


@user_errors
def logprobs(
    a: str = typer.Argument(..., help="Side A: an OpenAI-compatible base URL (http://127.0.0.1:PORT/v1) or an env YAML (engine kind openai or hf)."),
    b: str = typer.Argument(..., help="Side B, likewise."),
    prompts: Optional[Path] = typer.Option(None, help="Text file, one prompt per line (default: built-in short prompts)."),
    benchmark: Optional[str] = PROMPT_BENCHMARK,
    limit: int = PROMPT_LIMIT,
    data_dir: Optional[Path] = DATA_DIR,
    chat: bool = typer.Option(False, help="Use /chat/completions (and the chat template in-process) instead of raw /completions."),
    max_tokens: int = typer.Option(32, help="New tokens per prompt."),
    top_k: int = typer.Option(5, help="Top logprobs requested per step (>= 2)."),
    epsilon: float = typer.Option(0.1, help="A divergence is a near tie when a side's top-2 logprob gap is below this."),
    timeout: float = typer.Option(60.0, help="Seconds to wait for each server answer."),
    model: Optional[str] = typer.Option(None, help="Model name to request from URL sides (default: the server's first model)."),
    param_a: list[str] = typer.Option([], help="Extra request field for side A, KEY=JSON_VALUE (e.g. repeat_penalty=1.0)."),
    param_b: list[str] = typer.Option([], help="Extra request field for side B, KEY=JSON_VALUE."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the comparison as JSON here."),
) -> None:
    """Token-level comparison of two engines at temperature 0: exact match, first divergence, logprob deltas, near ties.

    Exit code 0 when both sides decode identically, 1 when their behaviour differs, 2 on bad input.
    """
    from ..api_diagnose import compare_logprobs

    result = compare_logprobs(
        a, b, prompts=prompts, benchmark=benchmark, limit=limit, data_dir=data_dir, chat=chat, max_tokens=max_tokens, top_k=top_k,
        epsilon=epsilon, timeout=timeout, model=model, params_a=_parse_request_params(param_a, "--param-a"),
        params_b=_parse_request_params(param_b, "--param-b"), json_path=json_path,
    )
    print_logprobs(result)
    raise typer.Exit(1 if result.behaviour_differs else 0)


@user_errors
def kld(
    reference: Path = typer.Argument(..., help="The reference's environment file."),
    candidate: Path = typer.Argument(..., help="The candidate's environment file, on the same vocabulary."),
    texts: Optional[Path] = typer.Option(None, "--texts", help="Text file, one text per line (\\n escapes allowed) (default: the reference's first benchmark's prompts with their gold answers)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="How many texts (default: 32 of the benchmark, spread over its subsets; every line of --texts)."),
    data_dir: Optional[Path] = DATA_DIR,
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Where a side is an endpoint: the top logprobs per position it is asked for (default 20); the KLD is then a lower bound."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the figures as JSON here."),
) -> None:
    """Token-level KL divergence of the candidate's next-token distributions from the reference's, teacher-forced on the same tokens.

    Over the whole vocabulary where both engine kinds give full logits (llama-cpp, hf: the models run here); where
    both sides are served, over each endpoint's top-k prompt logprobs, a lower bound. Prints llama-perplexity
    --kl-divergence's figures. Exit code 0, 2 on bad input.
    """
    from ..api_diagnose import compare_token_distributions

    result = compare_token_distributions(reference, candidate, texts=texts, limit=limit, data_dir=data_dir, top_k=top_k, json_path=json_path)
    print_token_kld(result.to_dict())


@user_errors
def template(
    a: str = typer.Argument(..., help="Side A tokenizer: a model/tokenizer directory, a .gguf file, an env YAML, or 'embedded'."),
    b: str = typer.Argument(..., help="Side B tokenizer, likewise."),
    prompts: Optional[Path] = typer.Option(None, help="Text file, one user prompt per line (default: built-in benchmark-like prompts)."),
    benchmark: Optional[str] = PROMPT_BENCHMARK,
    limit: int = PROMPT_LIMIT,
    data_dir: Optional[Path] = DATA_DIR,
    system: Optional[str] = typer.Option(None, help="Also render this system instruction."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the comparison as JSON here."),
) -> None:
    """Render both chat templates (add_generation_prompt=True) and compare token ids.

    Exit code 0 when every prompt renders to identical ids, 1 when some differ, 2 on bad input.
    """
    from ..api_diagnose import compare_chat_templates

    result = compare_chat_templates(a, b, prompts=prompts, benchmark=benchmark, limit=limit, data_dir=data_dir, system=system,
                                    json_path=json_path)
    print_template(result)
    raise typer.Exit(0 if result.all_match else 1)


@user_errors
def doctor(
    a: Path = typer.Argument(..., help="Side A: env YAML, lm-eval results JSON or output dir, evalscope task_config YAML, or statrepro manifest JSON."),
    b: Path = typer.Argument(..., help="Side B, likewise."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write {factors, checklist, not_comparable, sides} as JSON here."),
    probe_endpoints: Optional[bool] = typer.Option(
        None, "--probe-endpoints/--no-probe-endpoints",
        help="Ask the running servers what files do not record: which engine answers, its version, its served context and "
        "the sampling defaults (repeat_penalty, temperature, top_p) a request that omits them gets. Default: on for env "
        "files, off for outputs and manifests. An env's external endpoint is asked over HTTP; a managed engine "
        "(llama-cpp, transformers-serve, vllm, sglang) is STARTED for the question and stopped, which costs its start-up: "
        "seconds for llama-cpp, ~20 s for transformers-serve on CPU, minutes for vllm/sglang. --probe-endpoints also asks "
        "the server URL an lm-eval (base_url) or evalscope (api_url) output records, when it is running.",
    ),
    probe_timeout: float = typer.Option(10.0, min=0.1, help="Seconds to wait for each answer of a server being asked."),
) -> None:
    """Name the score-moving factors that differ between two runs, with severity and a fix, plus a determinism checklist.

    Exit code 0 when no known factor differs, 1 when some do, 2 on bad input.
    """
    from ..api_diagnose import doctor as diagnose_sources

    result = diagnose_sources(a, b, probe_endpoints=probe_endpoints, probe_timeout=probe_timeout, json_path=json_path)
    print_doctor(result)
    raise typer.Exit(1 if result.factors else 0)
