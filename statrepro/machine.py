"""What this machine is, for run manifests and harness command lines: hardware and library versions."""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from importlib import metadata

TRACKED_PACKAGES = ("statrepro", "lm_eval", "evalscope", "torch", "transformers", "llama_cpp_python", "numpy", "datasets")


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            try:
                versions[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                versions[name] = None
    return versions


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpus() -> list[dict[str, str]]:
    """GPU model and driver via nvidia-smi when present; an empty list on CPU-only machines."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        name, _, driver = line.partition(",")
        gpus.append({"name": name.strip(), "driver": driver.strip()})
    return gpus


@lru_cache(maxsize=1)
def detect_hardware() -> dict:
    """CPU, cores, GPUs with drivers, and the torch build, for the manifest."""
    import os

    info: dict = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "gpus": _gpus(),
    }
    # Read torch's build from its metadata rather than importing it: importing torch costs seconds per job.
    torch_version = package_versions()["torch"]
    info["torch"] = torch_version
    info["torch_build"] = torch_version.split("+", 1)[1] if torch_version and "+" in torch_version else None
    return info
