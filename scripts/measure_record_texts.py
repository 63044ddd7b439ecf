"""records.jsonl size with and without the text columns (output, prompt) for stored jobs.

Re-reads each job's kept harness output with this checkout's reader and writes the records as the store does.
Usage: PYTHONPATH=. python scripts/measure_record_texts.py STORE/<env>/<benchmark>-<spec>/seed-<n> [...]
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

from statrepro.harness import load_side


def records_bytes(records) -> tuple[int, int]:
    """Bytes of records.jsonl as the store writes it, and gzipped as a baseline bundle packs it."""
    data = records.to_json(orient="records", lines=True, force_ascii=False).encode("utf-8")
    return len(data), len(gzip.compress(data, compresslevel=9, mtime=0))


def main(job_dirs: list[str]) -> None:
    for job_dir in map(Path, job_dirs):
        records = load_side(job_dir / "harness" / "output")
        with_texts = records_bytes(records)
        without = records_bytes(records.drop(columns=["output", "prompt"]))
        prompts = records["prompt"].dropna().str.len()
        print(f"{job_dir}: {len(records)} rows; records.jsonl {without[0]:,} bytes without texts, {with_texts[0]:,} with "
              f"({with_texts[0] / without[0]:.1f}x); gzipped {without[1]:,} and {with_texts[1]:,}; "
              f"prompt mean {prompts.mean():.0f} chars, max {prompts.max()}; "
              f"harness output kept beside it {sum(f.stat().st_size for f in (job_dir / 'harness').rglob('*') if f.is_file()):,} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
