"""Test doubles. ``fake_openai`` is a pytest fixture (re-exported by tests/conftest.py)."""

from collections.abc import Iterator

import pytest

from .fake_openai import ACTIONS, FakeOpenAI, RecordedRequest

__all__ = ["ACTIONS", "FakeOpenAI", "RecordedRequest", "fake_openai"]


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A running fault-injecting OpenAI-compatible server; script faults with ``fake_openai.script(...)``."""
    fake = FakeOpenAI().start()
    try:
        yield fake
    finally:
        fake.stop()
