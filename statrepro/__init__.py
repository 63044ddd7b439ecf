"""statrepro: paired, calibrated verdicts on whether an LLM still scores the same."""

__version__ = "0.1.0"
