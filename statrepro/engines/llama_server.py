"""Entry point for the managed llama.cpp server: ``python -m statrepro.engines.llama_server``.

llama-cpp-python's server takes ``repeat_penalty`` only per request, with a default of 1.1, so a harness
that does not send it silently gets 1.1. This launcher accepts ``--default_repeat_penalty X``, sets it
as the server-side default of both completion endpoints, then hands every other argument unchanged to
``llama_cpp.server``'s own command line.

It also fixes llama-cpp-python's echoed prompt log-likelihoods (``echo: true, logprobs: k``): the server
pairs the logits row *after* token k with token k, which is right only when the prompt starts with a BOS
token the model adds itself. For models that add none (SmolLM2) every prompt logprob is then the wrong
one (summed -126 against the true -21.5). ``--align_echo_logprobs`` shifts the rows by one for such
prompts, so token k is scored by the row that predicts it; the conditioning is unchanged. It also lists a
sampled end-of-generation token, which the server otherwise drops, so the lists always end with the one
generated token that clients such as lm-eval slice off. The capability
probe (engines/logprob_probe.py) checks the values at job start either way.
"""

from __future__ import annotations

import argparse
import re
import sys


def _set_request_default(field: str, value: float) -> None:
    # Must run before llama_cpp.server.app is imported: FastAPI reads the request schemas when the
    # routes are declared.
    from llama_cpp.server.types import CreateChatCompletionRequest, CreateCompletionRequest

    for request_model in (CreateCompletionRequest, CreateChatCompletionRequest):
        request_model.model_fields[field].default = value
        request_model.model_rebuild(force=True)


_ECHO_ROWS = "all_logprobs = Llama.logits_to_logprobs(self._scores)[token_offset:]"


def _aligned_rows(rows, token_offset, echo, prompt_tokens, bos):
    """The logprob rows to zip with the echoed tokens: for a prompt without a leading BOS, row i-1 scores token i."""
    import numpy as np

    rows = rows[token_offset:]
    if echo and len(rows) and (not prompt_tokens or prompt_tokens[0] != bos):
        # The first echoed token has no predicting row (its value is reported as null anyway); row i-1 scores
        # token i, and the last prompt row scores the generated token (or the end-of-generation token).
        rows = np.concatenate([rows[:1], rows])
    return rows


def _echo_completion(completion_tokens, echo, eos):
    """The generated tokens an echo answer lists: when the one sampled token ends generation, the server
    drops it, so the lists end one short and a client slicing ``[ctxlen:-1]`` loses the last prompt token.
    The end-of-generation token is listed instead, as it was sampled."""
    return completion_tokens if completion_tokens or not echo else [eos]


def _top_k(row, k):
    """The k best (logprob, token id) pairs of one row, best first: what the server's full Python sort of the
    vocabulary per token computes, in a fraction of the time (it made one echo request take ~0.3 s a token)."""
    import numpy as np

    k = max(0, min(int(k or 0), len(row)))
    if k == 0:
        return []
    ids = np.argpartition(row, -k)[-k:]
    ids = ids[np.argsort(row[ids])[::-1]]
    return [(row[i], int(i)) for i in ids]


_FULL_SORT = re.compile(r"list\(\s*sorted\(\s*zip\(logprobs_token, range\(len\(logprobs_token\)\)\), reverse=True\s*\)\s*\)")


_ECHO_TOKENS = re.compile(r"(prompt_tokens\[1 if prompt_tokens\[0\] == self\.token_bos\(\) else 0 :\]\s*)\+ completion_tokens")


def align_echo_logprobs() -> bool:
    """Patch ``Llama._create_completion`` in this process (False: this llama-cpp-python version differs)."""
    import inspect
    import textwrap

    from llama_cpp import llama as module

    method = module.Llama._create_completion
    source = textwrap.dedent(inspect.getsource(method))
    if source.count(_ECHO_ROWS) != 1:
        return False
    source = source.replace(
        _ECHO_ROWS,
        "all_logprobs = _statrepro_aligned_rows(Llama.logits_to_logprobs(self._scores), token_offset, echo, prompt_tokens, self.token_bos())",
    )
    source, echoes = _ECHO_TOKENS.subn(r"\1+ _statrepro_echo_completion(completion_tokens, echo, self.token_eos())", source)
    if echoes != 1:
        return False
    source, sorts = _FULL_SORT.subn("_statrepro_top_k(logprobs_token, logprobs)", source)
    namespace = dict(vars(module), _statrepro_aligned_rows=_aligned_rows, _statrepro_top_k=_top_k, _statrepro_echo_completion=_echo_completion)
    exec(compile(source, inspect.getsourcefile(method) or "<llama>", "exec"), namespace)  # noqa: S102
    module.Llama._create_completion = namespace[method.__name__]
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--default_repeat_penalty", type=float, default=None)
    parser.add_argument("--align_echo_logprobs", action="store_true")
    own, passthrough = parser.parse_known_args(argv)
    if own.align_echo_logprobs and not align_echo_logprobs():
        print("statrepro: could not align echoed logprobs in this llama-cpp-python version", file=sys.stderr)
    if own.default_repeat_penalty is not None:
        _set_request_default("repeat_penalty", own.default_repeat_penalty)
    from llama_cpp.server.__main__ import main as llama_main

    sys.argv = [sys.argv[0], *passthrough]
    llama_main()


if __name__ == "__main__":
    main()
