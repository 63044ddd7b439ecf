"""The report's item browser, driven in a real headless Chromium by Playwright: filter counts against the verdict
JSON, full texts of a flip, keyboard navigation, pasted item links, hostile item texts and damaged item data.

One browser for the module, one page reused; each test loads the report it needs."""

from __future__ import annotations

import base64
import gzip
import json
import shutil

import numpy as np
import pytest

from statrepro.analysis import AnalysisOptions, analyze
from statrepro.harness.records import make_records
from statrepro.report import write_report
from statrepro.report.items import item_data
from statrepro.stats.rules import VerdictRules

HOSTILE = {
    "html": "<b>bold</b> & <i>italic</i> <img src=x onerror=\"window.__pwned=1\">",
    "script": "</script><script>window.__pwned=2</script>",
    "rtl": "\u202eevil\u202c مرحبا بالعالم \u05e9\u05dc\u05d5\u05dd",
    "control": "tab\there\x07bell\x1b[31mred\x00nul\u2028line",
}
LONG_A = "Step by step, A works it out. " * 40 + "#### 17"
LONG_B = "Step by step, B gets lost. " * 40 + "#### 71"
# Item 0's raw outputs (the extracted answer is LONG_*) and its 8-shot prompt, the same in every run of A and B.
OUTPUT_A = "Let me think.\n" + LONG_A + "\n\nQuestion: (the model went on)"
OUTPUT_B = "Let me think.\n" + LONG_B + "\n\n"
PROMPT = "Question: Natalia sold clips to 48 of her friends.\nAnswer: 72\n\n" * 8 + "Question: item 0?\nAnswer:"
DIVERGENT = ("The answer is 17", "The answer is 71", len("The answer is "), " 17"[1:], " 71"[1:])


def _records():
    """Two benchmarks: gsm8k (one subset, with hostile texts, a long flipped answer and missing runs) and mmlu
    (three subsets, answers that change without flipping)."""
    rng = np.random.default_rng(11)
    rows = {"A": [], "B": []}
    for benchmark, subsets, n_items in (("gsm8k", ["main"], 40), ("mmlu", ["anatomy", "law", "physics"], 45)):
        p = rng.beta(2, 2, n_items)
        scores_a = (rng.random((n_items, 3)) < p[:, None]).astype(float)
        scores_b = scores_a.copy()
        moved = rng.choice(n_items, size=n_items // 4, replace=False)
        scores_b[moved] = 1 - scores_a[moved]
        for item in range(n_items):
            key = f"{benchmark}/{item}"
            for side, scores in (("A", scores_a), ("B", scores_b)):
                for run in range(3):
                    if benchmark == "gsm8k" and side == "B" and item in (5, 6) and run == 2:
                        continue  # a failed run: the item has missing runs
                    answer = f"{side.lower() if benchmark == 'mmlu' and item % 5 == 0 else ''}answer {item}"
                    if benchmark == "gsm8k" and item == 0:
                        answer = LONG_A if side == "A" else LONG_B
                    if benchmark == "gsm8k" and 1 <= item <= 4:
                        answer = list(HOSTILE.values())[item - 1]
                    rows[side].append({
                        "benchmark": benchmark, "subset": subsets[item % len(subsets)], "item_key": key, "run_id": f"seed{run}",
                        "seed": run, "metric": "exact_match", "score": float(scores[item, run]), "prediction": answer,
                        "target": f"target {item}", "prompt_hash": f"h{item}", "doc_hash": f"d{item}", "model": f"m{side}",
                        "source": f"{side}/{benchmark}.jsonl",
                        **({"output": OUTPUT_A if side == "A" else OUTPUT_B, "prompt": PROMPT} if key == "gsm8k/0" else {}),
                    })
    # Item 0 of gsm8k always flips right -> wrong; its long answers are what a user reads first.
    for side, score in (("A", 1.0), ("B", 0.0)):
        for row in rows[side]:
            if row["item_key"] == "gsm8k/0":
                row["score"] = score
    return make_records(rows["A"]), make_records(rows["B"])


def _explain() -> dict:
    from statrepro.diagnose.explain import ExplainResult, ItemExplanation, Replay, TokenCheck

    text_a, text_b, offset, token_a, token_b = DIVERGENT
    replay = Replay(divergence=4, token_a=token_a, token_b=token_b, gap_a=0.9, gap_b=0.7, max_abs_delta_before=0.01,
                    not_greedy_a=None, not_greedy_b=None, text_a=text_a, text_b=text_b, offset=offset,
                    top_a={token_a: -0.1, token_b: -2.5, HOSTILE["html"]: -4.0}, top_b={token_b: -0.2, token_a: -1.9})
    tokens = TokenCheck(identical=True, length_a=30, length_b=30)
    items = (ItemExplanation("gsm8k", "gsm8k/0", "flipped", 1.0, 0.0, "distribution shift", "diverges at token 4", tokens, replay),)
    return ExplainResult(env_a="a", env_b="b", epsilon=0.1, shift_threshold=1.0, top_k=5, max_tokens=64, flipped=1,
                         items=items).to_dict()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    records_a, records_b = _records()
    options = AnalysisOptions(rules=VerdictRules(n_resamples=300), unpaired="missing")
    analysis = analyze(records_a, records_b, options, inputs={"a": "A", "b": "B"})
    paths = write_report(tmp_path_factory.mktemp("browser"), analysis, records_a=records_a, records_b=records_b, explain=_explain())
    verdict = json.loads(paths["verdict"].read_text())
    return analysis, records_a, paths, verdict


@pytest.fixture(scope="module")
def page():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
    chromium = next((path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))), None)
    if chromium is None:
        pytest.skip("no system Chromium (the install script installs /usr/bin/chromium); Playwright's own download is not used")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.on("dialog", lambda dialog: (page.errors.append("dialog: " + dialog.message), dialog.dismiss()))
        yield page
        browser.close()


def _open(page, url: str) -> str:
    """Load the report and wait until the browser is drawn or has said why it cannot be; return its state."""
    page.goto("about:blank")
    page.goto(url)
    page.wait_for_function("document.getElementById('ib') && document.getElementById('ib').dataset.state !== 'loading'", timeout=20_000)
    return page.get_attribute("#ib", "data-state")


def _count(page) -> int:
    return int(page.get_attribute("#ib-count", "data-count"))


def test_each_filter_shows_the_verdict_json_count(built, page):
    analysis, records_a, paths, verdict = built
    assert _open(page, paths["html"].as_uri()) == "ready"
    benchmarks = verdict["benchmarks"]
    assert _count(page) == sum(b["n_items"] + b["n_missing"] for b in benchmarks.values())
    expected = {
        "flipped": sum(b["flip_decomposition"]["flips"]["count"] for b in benchmarks.values()),
        "harmful": sum(b["flip_decomposition"]["harmful"]["count"] for b in benchmarks.values()),
        "beneficial": sum(b["flip_decomposition"]["beneficial"]["count"] for b in benchmarks.values()),
        "churn": sum(b["flip_decomposition"]["churn"]["count"] for b in benchmarks.values()),
        "missing": sum(len(set((b["missing_runs"] or {}).get("partial_items", [])) | set(b["missing_items"])) for b in benchmarks.values()),
    }
    assert expected["flipped"] == expected["harmful"] + expected["beneficial"] > 0
    assert expected["churn"] > 0 and expected["missing"] == 2
    for flag, count in expected.items():
        page.select_option("#ib-flag", flag)
        assert _count(page) == count, flag
    page.select_option("#ib-flag", "flipped")
    for index, name in enumerate(sorted(benchmarks)):
        page.select_option("#ib-bench", str(index))
        assert _count(page) == benchmarks[name]["flips_up"] + benchmarks[name]["flips_down"], name
    page.select_option("#ib-bench", "")
    page.select_option("#ib-flag", "all")
    subsets = records_a.drop_duplicates("item_key")["subset"].value_counts()
    for subset, count in subsets.items():
        page.select_option("#ib-subset", subset)
        assert _count(page) == count, subset
    page.select_option("#ib-subset", "")
    page.select_option("#ib-class", "distribution shift")
    assert _count(page) == json.loads(paths["explain"].read_text())["classes"]["distribution shift"] == 1
    page.select_option("#ib-class", "")
    page.fill("#ib-search", "#### 71")  # only item 0's B answer
    assert _count(page) == 1 and page.text_content("#ib-rows tr td") == "gsm8k/0"
    assert page.errors == []


def test_next_flip_shows_both_sides_in_full_and_a_pasteable_link(built, page):
    _, _, paths, _ = built
    _open(page, paths["html"].as_uri())
    page.select_option("#ib-bench", "0")  # gsm8k: its first flip in key order is item 0, whose answers are long
    page.keyboard.press("n")
    assert page.get_attribute("#ib-detail h3", "data-item") == "gsm8k/gsm8k/0"
    answers = page.eval_on_selector_all("#ib-detail [data-field=answer] pre", "nodes => nodes.map(n => n.textContent)")
    assert answers == [LONG_A, LONG_B] * 3  # three runs, A beside B, untruncated
    outputs = page.eval_on_selector_all("#ib-detail [data-field=output] pre", "nodes => nodes.map(n => n.textContent)")
    assert outputs == [OUTPUT_A, OUTPUT_B] * 3
    prompts = page.eval_on_selector_all("#ib-detail [data-field=prompt] pre", "nodes => nodes.map(n => n.textContent)")
    assert prompts == [PROMPT]  # the same in every run of both sides: shown once, in full
    link = page.get_attribute("#ib-link", "href")
    assert link == "#item=gsm8k/gsm8k%2F0" and page.url.endswith(link)
    page.keyboard.press("n")
    second = page.get_attribute("#ib-detail h3", "data-item")
    assert second != "gsm8k/gsm8k/0" and page.text_content("#ib-detail h3 .ib-tag") in ("right → wrong", "wrong → right")
    page.keyboard.press("p")
    assert page.get_attribute("#ib-detail h3", "data-item") == "gsm8k/gsm8k/0"
    page.keyboard.press("j")  # next item, flipped or not
    assert page.get_attribute("#ib-detail h3", "data-item") == "gsm8k/gsm8k/1"

    # The link, pasted into a fresh tab, opens the same item.
    _open(page, paths["html"].as_uri() + "#item=gsm8k/gsm8k%2F0")
    assert page.get_attribute("#ib-detail h3", "data-item") == "gsm8k/gsm8k/0"
    _open(page, paths["html"].as_uri() + "#item=gsm8k/nope")
    assert "gsm8k/nope is not in this report" in page.text_content("#ib-status")
    assert page.errors == []


def test_first_divergent_token_is_marked_with_both_top_logprobs(built, page):
    _, _, paths, _ = built
    _open(page, paths["html"].as_uri() + "#item=gsm8k/gsm8k%2F0")
    marks = page.eval_on_selector_all("#ib-detail mark.ib-diverge", "nodes => nodes.map(n => n.textContent)")
    assert marks == [DIVERGENT[3], DIVERGENT[4]]
    replays = page.eval_on_selector_all("#ib-detail [data-field=replay] pre", "nodes => nodes.map(n => n.textContent)")
    assert replays == [DIVERGENT[0], DIVERGENT[1]]
    tables = page.eval_on_selector_all("#ib-detail table.ib-top", "ts => ts.map(t => t.querySelectorAll('tbody tr').length)")
    assert tables == [3, 2]
    assert page.errors == []


def test_hostile_item_texts_are_shown_as_text_and_never_run(built, page):
    _, _, paths, _ = built
    _open(page, paths["html"].as_uri())
    for index, text in enumerate(HOSTILE.values(), start=1):
        page.evaluate("key => { location.hash = '#item=gsm8k/' + encodeURIComponent(key); }", f"gsm8k/{index}")
        page.wait_for_function("key => document.querySelector('#ib-detail h3')?.dataset.item === 'gsm8k/' + key", arg=f"gsm8k/{index}")
        shown = page.eval_on_selector_all("#ib-detail [data-field=answer] pre", "nodes => nodes.map(n => n.textContent)")
        assert shown and all(value == text for value in shown), index
    page.fill("#ib-search", "<img")  # the list shows the hostile text as a key match, no element appears
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("document.scripts.length") == 2  # the report's own two, nothing injected
    assert page.evaluate("document.querySelectorAll('main img:not([src^=\"data:image/png\"])').length") == 0
    page.evaluate("location.hash = '#item=gsm8k/gsm8k%2F0'")
    page.wait_for_selector("#ib-detail table.ib-top")
    assert json.dumps(HOSTILE["html"]) in page.text_content("#ib-detail table.ib-top")  # a hostile token, as text
    assert page.errors == []


def test_damaged_item_data_gets_a_message_never_a_blank_page(built, page, tmp_path):
    _, _, paths, _ = built
    html = paths["html"].read_text()
    start = html.index('id="ib-data"')
    data_start = html.index(">", start) + 1
    cut_file = tmp_path / "cut.html"
    cut_file.write_text(html[: data_start + (html.index("</script>", data_start) - data_start) // 2])  # the file ends mid-data
    shortened = tmp_path / "short.html"
    end = html.index("</script>", data_start)
    shortened.write_text(html[: end - 100] + html[end:])  # the data lost its end, the page did not
    garbled = tmp_path / "garbled.html"
    garbled.write_text(html[:data_start] + "A" * (end - data_start) + html[end:])  # right length, not gzip
    missing = tmp_path / "missing.html"
    missing.write_text(html[:start].rsplit("<script", 1)[0] + "</body></html>")
    for path, words in ((cut_file, "truncated"), (shortened, "truncated"), (garbled, "does not decompress"), (missing, "missing")):
        assert _open(page, path.as_uri()) == "error", path.name
        status = page.text_content("#ib-status")
        assert "The item browser cannot open" in status and words in status, (path.name, status)
        assert page.is_visible("#ib-status") and page.text_content("h1")  # the verdict still shows
    page.errors.clear()


def test_item_data_round_trips_and_stores_each_text_once(built):
    analysis, records_a, _, verdict = built
    data = item_data(analysis, records_a, None)
    assert len(data["items"]) == sum(b["n_items"] + b["n_missing"] for b in verdict["benchmarks"].values())
    assert len(data["strings"]) == len(set(data["strings"]))
    first = next(item for item in data["items"] if item["key"] == "gsm8k/0")
    assert [data["strings"][run[1]] for run in first["a"]] == [LONG_A] * 3 and first["b"][0][1] == -1  # no B records given
    assert first["harmful"] and not first["beneficial"] and not first["churn"]
    from statrepro.report.items import encode_item_data

    decoded = json.loads(gzip.decompress(base64.b64decode(encode_item_data(data))))
    assert decoded == json.loads(json.dumps(data))


def test_texts_a_harness_reader_fills_reach_the_item_data_in_full(tmp_path):
    """lm-eval samples -> load_side -> item_data: each side's raw output and the shared prompt of a flipped item,
    whole, the prompt stored once."""
    from harness_output import DATES, generation_samples, write_lm_eval_run

    from statrepro.harness import load_side

    outputs = {"a": "Janet keeps 16 - 3 - 4 = 9 eggs.\n9 * 2 = 18\n#### 18\n\n", "b": "She sells 16 - 3 = 13 eggs.\n#### 26 \u2028<b>"}
    prompt = "Question: Natalia sold clips.\nAnswer: 72\n\n" * 60 + "Question: Janet’s ducks?\nAnswer:"
    for side, scores in (("a", [1.0, 0.0]), ("b", [0.0, 0.0])):
        lines = generation_samples("gsm8k", {"flexible-extract": scores})
        for line in lines:
            line["arguments"]["gen_args_0"]["arg_0"] = prompt
        lines[0]["resps"] = [[outputs[side]]]
        write_lm_eval_run(tmp_path / side, DATES[0], 1, {"gsm8k": lines})
    records_a, records_b = load_side(tmp_path / "a"), load_side(tmp_path / "b")
    analysis = analyze(records_a, records_b, AnalysisOptions(rules=VerdictRules(n_resamples=200)))
    data = item_data(analysis, records_a, records_b)
    assert data["columns"][1:3] == ["output", "prompt"]
    flipped = next(item for item in data["items"] if item["key"] == "gsm8k/0")
    assert flipped["harmful"]
    (run_a,), (run_b,) = flipped["a"], flipped["b"]
    assert [data["strings"][run[2]] for run in (run_a, run_b)] == [outputs["a"], outputs["b"]]
    assert data["strings"][run_a[3]] == data["strings"][run_b[3]] == prompt and data["strings"].count(prompt) == 1


def test_a_gsm8k_sized_report_stays_under_five_megabytes(tmp_path):
    """1,319 items x 5 seeds x 2 sides with outputs and prompts in every run (scripts/measure_report.py prints the
    figures and the open time; only the size is asserted)."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "measure_report.py"
    spec = importlib.util.spec_from_file_location("measure_report", script)
    measure = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(measure)
    records_a, records_b = measure.synthetic_records(1319, 5, texts=True)
    analysis = analyze(records_a, records_b, AnalysisOptions(rules=VerdictRules(n_resamples=300)))
    paths = write_report(tmp_path, analysis, records_a=records_a, records_b=records_b, explain=measure.synthetic_explain(analysis))
    assert paths["html"].stat().st_size < 5_000_000
