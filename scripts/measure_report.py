"""Size and open time of report.html for gsm8k's size: 1,319 items x 5 seeds x 2 sides, synthetic texts of
realistic length (the issue's budget: under 5 MB, open in under 2 s).

    PYTHONPATH=. python scripts/measure_report.py [--items 1319] [--seeds 5] [--out DIR] [--no-browser]

Two reports: the records as the harness readers fill them today (extracted answer, target, prompt hash) and the
worst case with the optional ``output`` and ``prompt`` columns too (an 8-shot prompt of about 3,800 characters and
a sampled chain of thought of about 450 characters, a different one in every run), both with 50 explained items.
Prints each report's size, its item data's size, the time to write it, and the time until the item browser is
drawn in headless Chromium (Playwright, the system chromium). Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FEWSHOT_CHARS, QUESTION_CHARS, OUTPUT_CHARS = 3_500, 300, 450


def _text(rng: np.random.Generator, words: np.ndarray, chars: int) -> str:
    """Zipf-distributed words from a fixed vocabulary: compresses about as well as English."""
    picked = words[np.minimum(rng.zipf(1.3, size=chars // 4), len(words)) - 1]
    return " ".join(picked)[:chars]


def synthetic_records(n_items: int, n_seeds: int, *, texts: bool, rng_seed: int = 0):
    """Records of A and B with an 8% flip rate around a 40% accuracy."""
    from statrepro.harness.records import make_records

    rng = np.random.default_rng(rng_seed)
    words = np.array(["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), size=rng.integers(2, 9))) for _ in range(3000)])
    fewshot = _text(rng, words, FEWSHOT_CHARS)
    p = rng.beta(0.8, 1.2, n_items)
    frames = []
    for side, shift in (("A", 0.0), ("B", 0.03)):
        rows = []
        for item in range(n_items):
            prompt = fewshot + "\n\nQuestion: " + _text(rng, words, QUESTION_CHARS) + "\nAnswer:"
            for seed in range(n_seeds):
                right = rng.random() < min(1.0, max(0.0, p[item] - shift))
                row = {
                    "benchmark": "gsm8k", "subset": "main", "item_key": f"gsm8k/{item}", "run_id": f"seed{seed}", "seed": seed,
                    "metric": "exact_match", "score": float(right), "prediction": str(item % 97 if right else rng.integers(0, 500)),
                    "target": str(item % 97), "prompt_hash": f"{item:08x}", "doc_hash": f"d{item}", "model": f"m{side}",
                    "source": f"{side}/samples.jsonl",
                }
                if texts:
                    row |= {"output": _text(rng, words, OUTPUT_CHARS) + f" #### {row['prediction']}", "prompt": prompt}
                rows.append(row)
        frame = make_records(rows)
        if texts:
            frame["output"] = [row["output"] for row in rows]
            frame["prompt"] = [row["prompt"] for row in rows]
        frames.append(frame)
    return frames


def synthetic_explain(analysis, n_items: int = 50) -> dict:
    from statrepro.diagnose.explain import ExplainResult, ItemExplanation, Replay, TokenCheck

    bench = analysis.pairing.benchmarks["gsm8k"]
    items = []
    for key in bench.item_keys[:n_items]:
        text = "Let us think step by step. " * 12
        replay = Replay(divergence=60, token_a=" 4", token_b=" 5", gap_a=0.05, gap_b=0.6, max_abs_delta_before=0.02, not_greedy_a=None,
                        not_greedy_b=None, text_a=text + "4", text_b=text + "5", offset=len(text) - 1,
                        top_a={f" {d}": -0.1 * d for d in range(5)}, top_b={f" {d}": -0.2 * d for d in range(5)})
        items.append(ItemExplanation("gsm8k", key, "flipped", 1.0, 0.0, "near tie", "diverges at token 60", TokenCheck(True, 900, 900), replay))
    return ExplainResult(env_a="a", env_b="b", epsilon=0.1, shift_threshold=1.0, top_k=5, max_tokens=256, flipped=len(items),
                         items=tuple(items)).to_dict()


def open_time(path: Path) -> float | None:
    """Seconds from navigation until the item browser has drawn its list (None without Playwright or Chromium)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if chromium is None:
        return None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto("about:blank")
        start = time.perf_counter()
        page.goto(path.as_uri())
        page.wait_for_function("document.getElementById('ib').dataset.state !== 'loading'", timeout=60_000)
        elapsed = time.perf_counter() - start
        state = page.get_attribute("#ib", "data-state")
        browser.close()
    return elapsed if state == "ready" else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1319)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    from statrepro.analysis import AnalysisOptions, analyze
    from statrepro.report import write_report
    from statrepro.report.browser import data_block
    from statrepro.stats.rules import VerdictRules

    out = args.out or Path(tempfile.mkdtemp(prefix="statrepro-report-size-"))
    print(f"gsm8k-sized report: {args.items} items x {args.seeds} seeds x 2 sides (written under {out})")
    for texts in (False, True):
        records_a, records_b = synthetic_records(args.items, args.seeds, texts=texts)
        analysis = analyze(records_a, records_b, AnalysisOptions(rules=VerdictRules(n_resamples=2000)), inputs={"a": "A", "b": "B"})
        explain = synthetic_explain(analysis)
        start = time.perf_counter()
        paths = write_report(out / ("with-texts" if texts else "records-today"), analysis, records_a=records_a, records_b=records_b, explain=explain)
        written = time.perf_counter() - start
        data = len(data_block(analysis, records_a, records_b, explain))
        opened = None if args.no_browser else open_time(paths["html"])
        label = "with output and prompt columns" if texts else "records as read today"
        opened_text = "n/a (no Playwright or Chromium)" if opened is None else f"{opened:.2f} s"
        print(f"  {label}: report.html {paths['html'].stat().st_size / 1e6:.2f} MB (item data {data / 1e6:.2f} MB), "
              f"written in {written:.1f} s, item browser drawn in {opened_text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
