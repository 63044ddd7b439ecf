"""What every engine endpoint shares: the ServerInfo the manifest records and the helpers of managed servers.

Each managed server (engines/llama_cpp.py, engines/transformers_serve.py) is a context manager that starts on
a free 127.0.0.1 port, waits until it answers, yields a ServerInfo, and stops the process group however the
body ends (return, exception, Ctrl-C).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .process import LOOPBACK

if TYPE_CHECKING:
    from ..config import EnvConfig

# The sampling knobs whose server-side defaults decide what a harness that omits them gets.
REPORTED_DEFAULTS = ("repeat_penalty", "top_k", "top_p", "min_p", "temperature")
# Neither server documents a per-request seed scope beyond one process: concurrent sampled requests
# share one RNG, so sampled runs must send requests one at a time.
SEED_NOTE_SHARED_RNG = "seed reseeds the server's global RNG per request; send sampled requests one at a time"


@dataclass(frozen=True)
class ServerInfo:
    """Where an engine answers and what it does with generation settings; goes into the run manifest."""

    kind: str
    base_url: str
    served_model: str
    model_path: str | None = None
    log_path: str | None = None
    pid: int | None = None
    command: tuple[str, ...] = ()
    supports_request_seed: bool | None = None
    seed_note: str = ""
    effective_defaults: dict[str, Any] = field(default_factory=dict)
    """Server-side defaults a request gets for fields it omits (read back from the running server)."""
    version: str | None = None
    """The server's own version, as it reports it (None: it reports none)."""
    determinism: dict[str, Any] = field(default_factory=dict)
    """What ``engine.deterministic`` applied on this server and what it cannot guarantee (EngineKind.determinism)."""
    weights: dict[str, Any] = field(default_factory=dict)
    """The served weights file as read from it: path, sha256, file_type and tensor_types (models.GGUFWeights;
    empty where the kind does not read its weights)."""

    def summary(self) -> str:
        seed = {True: "per-request seed honoured", False: "per-request seed ignored", None: "seed support unknown"}
        defaults = ", ".join(f"{key}={value}" for key, value in self.effective_defaults.items())
        return f"{self.kind} at {self.base_url} serving {self.served_model!r}; {seed[self.supports_request_seed]}" + (
            f"; defaults: {defaults}" if defaults else ""
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def loopback_base_url(port: int) -> str:
    return f"http://{LOOPBACK}:{port}/v1"


def openapi_defaults(base_url: str, schema_name: str) -> dict[str, Any]:
    """Defaults of ``schema_name`` as the running FastAPI server publishes them ({} if unavailable)."""
    import httpx

    root = base_url.removesuffix("/v1")
    try:
        openapi = httpx.get(f"{root}/openapi.json", timeout=10).json()
    except (httpx.HTTPError, ValueError):
        return {}
    return schema_defaults(openapi, schema_name)


def schema_defaults(openapi: Any, schema_name: str) -> dict[str, Any]:
    """The REPORTED_DEFAULTS of request schema ``schema_name`` in a FastAPI ``/openapi.json`` answer ({} if absent)."""
    try:
        properties = openapi["components"]["schemas"][schema_name]["properties"]
    except (KeyError, TypeError):
        return {}
    if not isinstance(properties, dict):
        return {}
    fields = {name: properties.get(name) for name in REPORTED_DEFAULTS}
    return {name: field["default"] for name, field in fields.items() if isinstance(field, dict) and "default" in field}
