"""Entry point for the managed llama.cpp server: ``python -m statrepro.engines.llama_server``.

llama-cpp-python's server takes ``repeat_penalty`` only per request, with a default of 1.1, so a harness
that does not send it silently gets 1.1. This launcher accepts ``--default_repeat_penalty X``, sets it
as the server-side default of both completion endpoints, then hands every other argument unchanged to
``llama_cpp.server``'s own command line.
"""

from __future__ import annotations

import argparse
import sys


def _set_request_default(field: str, value: float) -> None:
    # Must run before llama_cpp.server.app is imported: FastAPI reads the request schemas when the
    # routes are declared.
    from llama_cpp.server.types import CreateChatCompletionRequest, CreateCompletionRequest

    for request_model in (CreateCompletionRequest, CreateChatCompletionRequest):
        request_model.model_fields[field].default = value
        request_model.model_rebuild(force=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--default_repeat_penalty", type=float, default=None)
    own, passthrough = parser.parse_known_args(argv)
    if own.default_repeat_penalty is not None:
        _set_request_default("repeat_penalty", own.default_repeat_penalty)
    from llama_cpp.server.__main__ import main as llama_main

    sys.argv = [sys.argv[0], *passthrough]
    llama_main()


if __name__ == "__main__":
    main()
