"""Test environment: the shared benchmark data beside the repo, and no Hugging Face Hub access."""

import os
from pathlib import Path

_SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
if _SHARED_DATA.is_dir() and not os.environ.get("STATREPRO_DATA_DIR"):
    os.environ["STATREPRO_DATA_DIR"] = str(_SHARED_DATA)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

# The fault-injecting fake OpenAI server as a fixture for every test module.
from fakes import fake_openai  # noqa: E402,F401
