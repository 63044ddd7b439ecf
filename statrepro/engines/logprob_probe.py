"""The capability probe for log-likelihood scoring over an endpoint: one ``/completions`` request with
``echo: true, logprobs: 1, max_tokens: 1`` on a short known prompt, whose answer is checked by value.

A server can return the right shape with the wrong values (llama-cpp-python pairs each prompt token with
the logits row that predicts the *next* token when the prompt has no BOS), so the probe checks:

* the echoed ``tokens`` reproduce the prompt text, and the first token's logprob is null;
* on a prompt any language model continues with near certainty (counting), most echoed tokens from the
  middle on are the model's own top-1 prediction and their mean logprob is high. A misaligned server
  scores token k with the distribution over token k+1, which makes "the next token repeats this one",
  so both figures collapse. No reference model is needed.

``max_tokens`` is 1, never 0: llama-cpp-python reads 0 as "generate until the context is full".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import EngineError

PROBE_PROMPT = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20"
MIN_TOP1_FRACTION = 0.6
MIN_MEAN_LOGPROB = -1.0


@dataclass(frozen=True)
class ProbeResult:
    usable: bool
    reason: str
    top1_fraction: float | None = None
    mean_logprob: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "usable": self.usable,
            "reason": self.reason,
            "top1_fraction": self.top1_fraction,
            "mean_logprob": self.mean_logprob,
        }


def echoed_prompt_length(tokens: list, prompt: str) -> int | None:
    """How many of an echo's ``tokens`` make up ``prompt`` (the rest was generated); None when they do not spell it."""
    text = ""
    for index, token in enumerate(tokens):
        text += str(token)
        if text == prompt:
            return index + 1
        if not prompt.startswith(text):
            return None
    return None


def judge_echo(answer: Any, prompt: str = PROBE_PROMPT) -> ProbeResult:
    """Judge one ``/completions`` answer to the probe request (pure: no I/O)."""
    try:
        logprobs = answer["choices"][0]["logprobs"]
        tokens, values, tops = logprobs["tokens"], logprobs["token_logprobs"], logprobs["top_logprobs"]
    except (KeyError, IndexError, TypeError):
        return ProbeResult(False, "the answer has no choices[0].logprobs with tokens, token_logprobs and top_logprobs")
    if not isinstance(tokens, list) or not isinstance(values, list) or not isinstance(tops, list):
        return ProbeResult(False, "logprobs.tokens/token_logprobs/top_logprobs are not lists")
    if len(values) != len(tokens) or len(tops) != len(tokens):
        return ProbeResult(False, "logprobs lists differ in length")
    n_prompt = echoed_prompt_length(tokens, prompt)
    if n_prompt is None:
        return ProbeResult(False, "the echoed tokens do not reproduce the prompt (no prompt echo)")
    if n_prompt < 8:
        return ProbeResult(False, f"the prompt echoed as only {n_prompt} tokens")
    if values[0] is not None:
        return ProbeResult(False, "the first prompt token has a logprob (it has nothing to be predicted from)")
    start = n_prompt // 2
    scored = [(values[k], tops[k]) for k in range(start, n_prompt)]
    if any(not isinstance(value, (int, float)) or not isinstance(top, dict) or not top for value, top in scored):
        return ProbeResult(False, "prompt tokens come back without logprobs")
    top1 = sum(value >= max(top.values()) - 1e-6 for value, top in scored) / len(scored)
    mean = sum(value for value, _ in scored) / len(scored)
    if top1 < MIN_TOP1_FRACTION or mean < MIN_MEAN_LOGPROB:
        return ProbeResult(
            False,
            f"prompt logprobs fail the value check (top-1 fraction {top1:.2f}, mean logprob {mean:.2f} on a counting "
            "prompt; a server that pairs each token with the next token's distribution looks like this)",
            top1,
            mean,
        )
    return ProbeResult(True, "prompt logprobs pass the value check", top1, mean)


def probe_prompt_logprobs(base_url: str, model: str, *, api_key: str | None = None, timeout: float = 120.0) -> ProbeResult:
    """Send the probe request to ``base_url`` (``http://host:port/v1``) and judge the answer."""
    from .client import OpenAIClient, RequestFailure, RetryPolicy

    body = {"model": model, "prompt": PROBE_PROMPT, "echo": True, "logprobs": 1, "max_tokens": 1, "temperature": 0}
    with OpenAIClient(base_url, api_key=api_key, policy=RetryPolicy(timeout_seconds=timeout, max_tries=2)) as client:
        answer = client.request_json("POST", "/completions", body)
    if isinstance(answer, RequestFailure):
        return ProbeResult(False, f"the echo request failed: {answer.summary()}")
    return judge_echo(answer)


def require_prompt_logprobs(base_url: str, model: str, *, key: str, api_key: str | None = None) -> ProbeResult:
    """The probe, raising the one-line error that suggests ``mode: gen`` when the endpoint is not usable."""
    result = probe_prompt_logprobs(base_url, model, api_key=api_key)
    if not result.usable:
        raise EngineError(
            f"endpoint {base_url} cannot score by log-likelihood: {result.reason}; set {key}: gen to score by generation"
        )
    return result
