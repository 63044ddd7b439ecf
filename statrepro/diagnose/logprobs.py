"""Token-level comparison of two engines at temperature 0 (``statrepro logprobs A B``).

Each side is an OpenAI-compatible base URL (``http://127.0.0.1:PORT/v1``) or an environment YAML with
engine kind ``openai`` (its base_url) or ``hf`` (the model run in-process with transformers greedy
generation, reading the raw logits). Both sides generate for the same prompts with top-k logprobs.

Per prompt: exact match of the texts, the first divergent token index, |delta logprob| of the chosen
tokens and the top-k KL over the common prefix, and at the divergence whether it is a near tie (either
side's top-2 logprob gap below epsilon) and whether vLLM's ``check_logprobs_close`` rule would accept it
(each side's token is in the other side's top-k). ``not_greedy`` counts the steps where the returned
token is not the most likely one in its own top-k: a sampler setting such as llama.cpp's default
repeat_penalty 1.1 acting on top of temperature 0.
"""

from __future__ import annotations

from contextlib import ExitStack

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import InputError

GREEDY_SLACK = 1e-6  # logprob rounding tolerance when checking that the chosen token is the top one
# A diagnostic reports a failing endpoint at once instead of retrying it: the user is watching.
REQUEST_TRIES = 1


@dataclass(frozen=True)
class Step:
    """One generated token with its logprob and the top-k alternatives (token text -> logprob)."""

    token: str
    logprob: float
    top: dict[str, float]


@dataclass(frozen=True)
class Generation:
    """The greedy continuation of one prompt."""

    text: str
    steps: tuple[Step, ...]


class Side(Protocol):
    label: str

    def generate(self, prompts: list[str], *, max_tokens: int, top_k: int, progress=None) -> list[Generation]: ...

    def replay(self, sent: list, rendered: list, *, max_tokens: int, top_k: int, progress=None) -> list[Generation]:
        """Greedy continuations of what a harness sent (``SentPrompt``s, with their ``RenderedPrompt`` ids)."""
        ...


# ---------------------------------------------------------------------------------------------
# Sides


class OpenAISide:
    """An OpenAI-compatible server, queried through /completions (raw prompt) or /chat/completions."""

    def __init__(self, base_url: str, *, model: str | None = None, chat: bool = False, params: dict | None = None,
                 timeout: float = 60.0, api_key: str | None = None, label: str | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InputError(f"not an http(s) base URL: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.chat = chat
        self.params = dict(params or {})
        self.timeout = timeout
        self.api_key = api_key
        self.label = label or self.base_url
        self.model = model or self._only_model()

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        """One request through the shared client; its failures as one-line InputErrors naming the URL."""
        from ..engines.client import OpenAIClient, RequestFailure, RetryPolicy

        url = self.base_url + path
        policy = RetryPolicy(timeout_seconds=self.timeout, max_tries=REQUEST_TRIES)
        with OpenAIClient(self.base_url, api_key=self.api_key, policy=policy) as client:
            outcome = client.request_json(method, path, body)
        if not isinstance(outcome, RequestFailure):
            return outcome
        if outcome.cause == "timeout":
            raise InputError(f"{url}: no answer within {self.timeout:g} s (timeout)")
        if outcome.cause == "connection":
            raise InputError(f"{url}: cannot connect ({outcome.reason}); is the server running?")
        if outcome.cause == "malformed":
            raise InputError(f"{url}: the answer is not JSON")
        if outcome.status == 404:
            if "model" in outcome.reason.lower() and body is not None:
                raise InputError(f"{url}: model {body.get('model')!r} is not served there ({outcome.reason})")
            raise InputError(f"{url}: endpoint not found (HTTP 404); the base URL should end in /v1")
        raise InputError(f"{url}: {outcome.reason}")

    def _only_model(self) -> str:
        models = [entry.get("id") for entry in self._request("GET", "/models").get("data", [])]
        if not models:
            raise InputError(f"{self.base_url}/models lists no model")
        return models[0]

    def check_model(self) -> None:
        """Fail clearly when the requested model is not among the served ones."""
        models = [entry.get("id") for entry in self._request("GET", "/models").get("data", [])]
        if self.model not in models:
            raise InputError(f"{self.base_url}: model {self.model!r} is not served there (served: {', '.join(map(str, models))})")

    def prompt_logprobs(self, text: str, *, top_k: int) -> tuple[list[str], list[float], list[dict[str, float]]]:
        """The server's own tokens of raw ``text`` after the first, each with its logprob and the top-k logprobs of
        its position (an echo on /completions: the next-token distributions given the text so far)."""
        from ..engines.logprob_probe import echoed_prompt_length

        body = {"model": self.model, "prompt": text, "echo": True, "logprobs": top_k, "max_tokens": 1, "temperature": 0.0, **self.params}
        logprobs = _first_choice(self._request("POST", "/completions", body), self.base_url).get("logprobs") or {}
        tokens, values, tops = logprobs.get("tokens"), logprobs.get("token_logprobs"), logprobs.get("top_logprobs")
        n_prompt = echoed_prompt_length(tokens or [], text)
        if values is None or tops is None or n_prompt is None or any(v is None or not t for v, t in zip(values[1:n_prompt], tops[1:n_prompt])):
            raise InputError(f"{self.base_url}: the server returned no prompt logprobs for an echoed prompt (echo with logprobs on /completions)")
        return list(tokens[1:n_prompt]), [float(v) for v in values[1:n_prompt]], [dict(t) for t in tops[1:n_prompt]]

    def generate(self, prompts: list[str], *, max_tokens: int, top_k: int, progress=None) -> list[Generation]:
        """Each prompt as one user message (chat) or raw text."""
        sent = [{"messages": [{"role": "user", "content": p}]} if self.chat else {"prompt": p} for p in prompts]
        return self._complete(sent, max_tokens=max_tokens, top_k=top_k, progress=progress)

    def replay(self, sent: list, rendered: list, *, max_tokens: int, top_k: int, progress=None) -> list[Generation]:
        """Greedy replays of what a harness sent (``SentPrompt``s): messages to /chat/completions, text to
        /completions, exactly as logged; the server renders them itself (``rendered`` is not needed)."""
        bodies = [{"messages": list(p.messages)} if p.messages is not None else {"prompt": p.text} for p in sent]
        return self._complete(bodies, max_tokens=max_tokens, top_k=top_k, progress=progress)

    def _complete(self, bodies: list[dict], *, max_tokens: int, top_k: int, progress=None) -> list[Generation]:
        self.check_model()
        task = progress.add_task(f"{self.label}", total=len(bodies)) if progress else None
        generations = []
        for prompt in bodies:
            body = {"model": self.model, "max_tokens": max_tokens, "temperature": 0.0, **self.params, **prompt}
            if "messages" in prompt:
                body.update(logprobs=True, top_logprobs=top_k)
                generations.append(_parse_chat(self._request("POST", "/chat/completions", body), self.base_url))
            else:
                body.update(logprobs=top_k)
                generations.append(_parse_completion(self._request("POST", "/completions", body), self.base_url))
            if progress:
                progress.advance(task)
        return generations


def _first_choice(payload: dict, where: str) -> dict:
    choices = payload.get("choices") or []
    if not choices:
        raise InputError(f"{where}: the answer has no choices")
    return choices[0]


def _parse_completion(payload: dict, where: str) -> Generation:
    choice = _first_choice(payload, where)
    logprobs = choice.get("logprobs") or {}
    tokens, values, tops = logprobs.get("tokens"), logprobs.get("token_logprobs"), logprobs.get("top_logprobs")
    if tokens is None or values is None or tops is None:
        raise InputError(f"{where}: the server returned no logprobs (it must support 'logprobs' on /completions)")
    steps = tuple(Step(token, float(value), {k: float(v) for k, v in (top or {}).items()}) for token, value, top in zip(tokens, values, tops))
    return Generation(text=choice.get("text", ""), steps=steps)


def _parse_chat(payload: dict, where: str) -> Generation:
    choice = _first_choice(payload, where)
    content = (choice.get("logprobs") or {}).get("content")
    if content is None:
        raise InputError(f"{where}: the server returned no logprobs (it must support 'logprobs' on /chat/completions)")
    steps = tuple(
        Step(entry["token"], float(entry["logprob"]), {alt["token"]: float(alt["logprob"]) for alt in entry.get("top_logprobs", [])})
        for entry in content
    )
    return Generation(text=(choice.get("message") or {}).get("content") or "", steps=steps)


class HFSide:
    """The model in-process: greedy ``generate`` with the raw (unprocessed) logits of every step."""

    def __init__(self, model_path: Path, *, dtype: str = "float32", chat: bool = False, repeat_penalty: float | None = None,
                 label: str | None = None) -> None:
        self.model_path = model_path
        self.dtype = dtype
        self.chat = chat
        self.repeat_penalty = repeat_penalty
        self.label = label or f"hf:{model_path.name}:{dtype}"

    def generate(self, prompts: list[str], *, max_tokens: int, top_k: int, progress=None) -> list[Generation]:
        """Each prompt through the chat template (chat) or tokenized as raw text."""
        from .common import load_tokenizer

        tokenizer = load_tokenizer(self.model_path)
        if self.chat:
            ids = [tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, return_dict=True)["input_ids"]
                   for p in prompts]
        else:
            ids = [tokenizer(p)["input_ids"] for p in prompts]
        return self._greedy(tokenizer, ids, max_tokens=max_tokens, top_k=top_k, progress=progress)

    def replay(self, sent: list, rendered: list, *, max_tokens: int, top_k: int, progress=None) -> list[Generation]:
        """Greedy replays from the exact token ids the harness ran (``RenderedPrompt``s)."""
        from .common import load_tokenizer

        return self._greedy(load_tokenizer(self.model_path), [list(r.ids) for r in rendered], max_tokens=max_tokens, top_k=top_k,
                            progress=progress)

    def _greedy(self, tokenizer, prompt_ids: list[list[int]], *, max_tokens: int, top_k: int, progress=None) -> list[Generation]:
        import torch

        from .common import load_model, token_piece

        model = load_model(self.model_path, dtype=self.dtype)
        task = progress.add_task(self.label, total=len(prompt_ids)) if progress else None
        generations = []
        for ids in prompt_ids:
            input_ids = torch.tensor([list(ids)])
            extra = {"repetition_penalty": self.repeat_penalty} if self.repeat_penalty is not None else {}
            with torch.no_grad():
                output = model.generate(
                    input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=max_tokens, do_sample=False,
                    output_logits=True, return_dict_in_generate=True, pad_token_id=tokenizer.eos_token_id,
                    temperature=None, top_p=None, top_k=None, **extra,
                )
            new_ids = output.sequences[0, input_ids.shape[1]:].tolist()
            steps = []
            for token_id, logits in zip(new_ids, output.logits):
                logprobs = torch.log_softmax(logits[0].double(), dim=-1)
                values, indices = logprobs.topk(top_k)
                top = {token_piece(tokenizer, int(i)): float(v) for v, i in zip(values, indices)}
                steps.append(Step(token_piece(tokenizer, token_id), float(logprobs[token_id]), top))
            # Servers do not return the end-of-sequence token as text; drop it for a like-for-like comparison.
            if new_ids and new_ids[-1] == tokenizer.eos_token_id:
                steps = steps[:-1]
                new_ids = new_ids[:-1]
            generations.append(Generation(text=tokenizer.decode(new_ids), steps=tuple(steps)))
            if progress:
                progress.advance(task)
        return generations


def side_from_spec(
    spec: str, *, chat: bool, timeout: float, params: dict, model: str | None = None, servers: ExitStack | None = None
) -> Side:
    """A URL or an env YAML -> a Side. Envs with a managed engine (llama-cpp, transformers-serve, ...) get
    their server started on 127.0.0.1 inside ``servers``, which stops it when the caller's block ends."""
    if spec.startswith(("http://", "https://")):
        return OpenAISide(spec, model=model, chat=chat, params=params, timeout=timeout)
    path = Path(spec)
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise InputError("expected an http(s)://HOST:PORT/v1 base URL or an environment .yaml file", path=path)
    from ..envfile import load_env

    return side_from_env(load_env(path), chat=chat, timeout=timeout, params=params, model=model, servers=servers, source=path)


def side_from_env(
    env, *, chat: bool = False, timeout: float = 60.0, params: dict | None = None, model: str | None = None,
    servers: ExitStack | None = None, source: Path | None = None,
) -> Side:
    """The Side of an environment (``source``: its file, for error messages): in-process hf runs here, a
    managed server is started inside ``servers``, an external endpoint is used as it is."""
    from ..engines import engine_kind
    from ..models import resolve_model_path

    kind = engine_kind(env.engine.kind)
    repeat_penalty = env.generation.repeat_penalty
    if kind.capabilities.in_process:
        if env.model.quantization != "none":
            raise InputError(f"token-level replays run hf environments without quantization; got {env.model.quantization}",
                             path=source, key="model.quantization")
        dtype = "float32" if env.model.dtype == "auto" else env.model.dtype
        return HFSide(resolve_model_path(env.model.path), dtype=dtype, chat=chat, repeat_penalty=repeat_penalty, label=env.name)
    if not kind.capabilities.token_logprobs:
        raise InputError(f"engine kind {kind.name!r} returns no token logprobs", path=source, key="engine.kind")
    if kind.managed and servers is None:
        raise InputError(f"engine kind {kind.name!r} needs a managed server", path=source, key="engine.kind")
    work_dir = None
    if kind.managed:
        import tempfile

        work_dir = Path(servers.enter_context(tempfile.TemporaryDirectory(prefix="statrepro-logprobs-")))
    with ExitStack() as unmanaged:  # an external endpoint's context holds nothing to stop
        info = (servers or unmanaged).enter_context(kind.serve(env, work_dir))
    api_key = env.engine.api_key.get_secret_value() if env.engine.api_key else None
    return OpenAISide(info.base_url, model=model or info.served_model, chat=chat,
                      params=kind.request_defaults(env.generation) | (params or {}), timeout=timeout, api_key=api_key, label=env.name)


# ---------------------------------------------------------------------------------------------
# Comparison


@dataclass(frozen=True)
class PromptComparison:
    """How two generations of one prompt relate."""

    prompt: str
    text_a: str
    text_b: str
    exact_match: bool
    divergence: int | None
    token_a: str | None
    token_b: str | None
    near_tie: bool | None
    topk_accepted: bool | None
    gap_a: float | None
    gap_b: float | None
    not_greedy_a: int
    not_greedy_b: int
    abs_delta_logprobs: tuple[float, ...] = field(repr=False)
    topk_kl: tuple[float, ...] = field(repr=False)


def _gap(top: dict[str, float]) -> float | None:
    values = sorted(top.values(), reverse=True)
    return values[0] - values[1] if len(values) >= 2 else None


def _not_greedy(steps: tuple[Step, ...]) -> int:
    return sum(1 for step in steps if step.top and step.logprob < max(step.top.values()) - GREEDY_SLACK)


def topk_kl(top_a: dict[str, float], top_b: dict[str, float]) -> float:
    """KL(A || B) over the union of both top-k lists, each renormalised; a token absent from one list gets
    that list's smallest logprob (an upper bound of its true value)."""
    if not top_a or not top_b:
        return 0.0
    union = sorted(set(top_a) | set(top_b))
    floor_a, floor_b = min(top_a.values()), min(top_b.values())
    pa = [math.exp(top_a.get(token, floor_a)) for token in union]
    pb = [math.exp(top_b.get(token, floor_b)) for token in union]
    za, zb = sum(pa), sum(pb)
    return max(0.0, sum((p / za) * math.log((p / za) / (q / zb)) for p, q in zip(pa, pb) if p > 0))


def compare_generations(prompt: str, a: Generation, b: Generation, *, epsilon: float) -> PromptComparison:
    """Token-by-token comparison of two generations of one prompt."""
    common = 0
    while common < min(len(a.steps), len(b.steps)) and a.steps[common].token == b.steps[common].token:
        common += 1
    diverged = common < max(len(a.steps), len(b.steps))
    divergence = common if diverged else None
    token_a = a.steps[common].token if diverged and common < len(a.steps) else None
    token_b = b.steps[common].token if diverged and common < len(b.steps) else None
    near_tie = topk_accepted = gap_a = gap_b = None
    if token_a is not None and token_b is not None:
        step_a, step_b = a.steps[common], b.steps[common]
        gap_a, gap_b = _gap(step_a.top), _gap(step_b.top)
        near_tie = any(gap is not None and gap < epsilon for gap in (gap_a, gap_b))
        topk_accepted = token_a in step_b.top and token_b in step_a.top
    return PromptComparison(
        prompt=prompt,
        text_a=a.text,
        text_b=b.text,
        exact_match=a.text == b.text,
        divergence=divergence,
        token_a=token_a,
        token_b=token_b,
        near_tie=near_tie,
        topk_accepted=topk_accepted,
        gap_a=gap_a,
        gap_b=gap_b,
        not_greedy_a=_not_greedy(a.steps),
        not_greedy_b=_not_greedy(b.steps),
        abs_delta_logprobs=tuple(abs(a.steps[i].logprob - b.steps[i].logprob) for i in range(common)),
        topk_kl=tuple(topk_kl(a.steps[i].top, b.steps[i].top) for i in range(common)),
    )


def _quantiles(values: list[float]) -> dict[str, float | None]:
    import numpy as np

    if not values:
        return {"median": None, "p95": None, "max": None}
    array = np.asarray(values, dtype=float)
    return {"median": float(np.median(array)), "p95": float(np.quantile(array, 0.95)), "max": float(array.max())}


@dataclass(frozen=True)
class LogprobsResult:
    """Aggregate token-level comparison of two sides."""

    side_a: str
    side_b: str
    epsilon: float
    top_k: int
    prompts: tuple[PromptComparison, ...]

    @property
    def exact_match_rate(self) -> float:
        return sum(p.exact_match for p in self.prompts) / len(self.prompts)

    @property
    def behaviour_differs(self) -> bool:
        """True when the two sides do not decode the same way: texts differ, or only one side is not plainly greedy."""
        ng_a, ng_b = self.not_greedy()
        return self.exact_match_rate < 1.0 or (ng_a > 0) != (ng_b > 0)

    def not_greedy(self) -> tuple[int, int]:
        return sum(p.not_greedy_a for p in self.prompts), sum(p.not_greedy_b for p in self.prompts)

    def summary(self) -> str:
        divergent = [p for p in self.prompts if p.divergence is not None]
        ties = sum(1 for p in divergent if p.near_tie)
        accepted = sum(1 for p in divergent if p.topk_accepted)
        delta = _quantiles([v for p in self.prompts for v in p.abs_delta_logprobs])
        ng_a, ng_b = self.not_greedy()
        text = (
            f"exact match {self.exact_match_rate:.0%} of {len(self.prompts)} prompts; {len(divergent)} diverge "
            f"({ties} near ties < {self.epsilon:g}, {accepted} accepted by the top-{self.top_k} rule)"
        )
        if delta["max"] is not None:
            text += f"; |dlogprob| median {delta['median']:.3g} p95 {delta['p95']:.3g} max {delta['max']:.3g}"
        if ng_a or ng_b:
            text += f"; non-greedy steps A={ng_a} B={ng_b} (a sampler penalty such as repeat_penalty is active)"
        return text

    def to_dict(self) -> dict[str, Any]:
        kl = [v for p in self.prompts for v in p.topk_kl]
        ng_a, ng_b = self.not_greedy()
        divergent = [p for p in self.prompts if p.divergence is not None]
        return {
            "side_a": self.side_a,
            "side_b": self.side_b,
            "epsilon": self.epsilon,
            "top_k": self.top_k,
            "exact_match_rate": self.exact_match_rate,
            "behaviour_differs": self.behaviour_differs,
            "divergent_prompts": len(divergent),
            "near_tie_flips": sum(1 for p in divergent if p.near_tie),
            "topk_accepted": sum(1 for p in divergent if p.topk_accepted),
            "abs_delta_logprob": _quantiles([v for p in self.prompts for v in p.abs_delta_logprobs]),
            "topk_kl": {"mean": sum(kl) / len(kl) if kl else None, "max": max(kl) if kl else None},
            "not_greedy_steps": {"a": ng_a, "b": ng_b},
            "prompts": [
                {k: v for k, v in asdict(p).items() if k not in ("abs_delta_logprobs", "topk_kl")}
                | {"max_abs_delta_logprob": max(p.abs_delta_logprobs, default=None), "max_topk_kl": max(p.topk_kl, default=None)}
                for p in self.prompts
            ],
            "summary": self.summary(),
        }


def compare_sides(side_a: Side, side_b: Side, prompts: list[str], *, max_tokens: int = 32, top_k: int = 5,
                  epsilon: float = 0.1, progress=None) -> LogprobsResult:
    """Generate with both sides and compare them prompt by prompt."""
    if top_k < 2:
        raise InputError("--top-k must be at least 2 (near ties need the top-2 gap)", key="--top-k")
    generations_a = side_a.generate(prompts, max_tokens=max_tokens, top_k=top_k, progress=progress)
    generations_b = side_b.generate(prompts, max_tokens=max_tokens, top_k=top_k, progress=progress)
    comparisons = tuple(compare_generations(p, a, b, epsilon=epsilon) for p, a, b in zip(prompts, generations_a, generations_b))
    return LogprobsResult(side_a=side_a.label, side_b=side_b.label, epsilon=epsilon, top_k=top_k, prompts=comparisons)
