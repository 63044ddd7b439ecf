"""Regenerate docs/config-reference.md and docs/verdict-schema.md from the pydantic models.

Run: /work/venv/bin/python scripts/gen_config_reference.py   (tests/report/test_report.py checks the docs are current)
"""

from __future__ import annotations

from pathlib import Path

from statrepro.report.config_reference import reference_docs
from statrepro.atomic import atomic_write_text

DOCS = Path(__file__).resolve().parent.parent / "docs"


def main() -> None:
    for name, text in reference_docs().items():
        atomic_write_text(DOCS / name, text)
        print(f"wrote {DOCS / name}")


if __name__ == "__main__":
    main()
