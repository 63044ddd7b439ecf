"""Engine kind ``toy-endpoint``: an external OpenAI-compatible endpoint with its own default concurrency."""

from statrepro.engines.openai_endpoint import ExternalEndpoint


class ToyEndpoint(ExternalEndpoint):
    name = "toy-endpoint"
    default_concurrency = 3  # tells the test that config asked this kind, not the built-in openai (8)
