"""`compare --sequential --block-size`: items run in pre-registered random blocks through a harness, each
block once, and the comparison stops when the verdict is known.

The harness here is a stand-in written against the adapter contract (it cannot fail to be fast): it prepares
the job's items with the benchmark's own task generator, exactly as lm-eval and evalscope get them (so the
block's rows, their positions and ``Invocation.row_ids`` are the real ones), and scores each prepared item from
its own content, never from its position. An item stored under the wrong key would therefore carry another
item's score, which the full-run comparison below catches. The real harnesses run blocks in the slow
real-model test at the end."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from content_scored import ITEMS, content_scored, data_dir as _data_dir  # noqa: F401 (a fixture)
from statrepro.api import CompareOptions, RunOptions, compare_environments, explain_environments
from statrepro.envfile import load_env
from statrepro.errors import InputError
from statrepro.run.orchestrate import load_env_records
from statrepro.run.plan import effective_env
from statrepro.run.store import ResultStore

def _env(root: Path, name: str, **fields) -> Path:
    path = root / f"{name}.yaml"
    body = {"name": name, "harness": {"name": "content-scored"}, "benchmarks": {"gsm8k": {"num_fewshot": 0}}, "seeds": 1, **fields}
    path.write_text(yaml.safe_dump(body))
    return path


def _options(root: Path, **fields) -> CompareOptions:
    return CompareOptions(
        store=root / "store", data_dir=root / "data", margin="absolute", tolerance=0.1, sequential=True,
        **{"block_size": 50, **fields},
    )


def test_an_aa_comparison_stops_after_a_few_blocks_with_every_item_under_its_full_run_key(tmp_path, content_scored):
    _data_dir(tmp_path / "data")
    a, b = _env(tmp_path, "a"), _env(tmp_path, "b")
    analysis = compare_environments(a, b, _options(tmp_path), report=tmp_path / "report")
    sequential = analysis.sequential
    design = sequential["benchmarks"]["gsm8k"]
    stopped = f"gsm8k: equivalent after look {design['looks_run']} ({design['items_run']} of 400 items); stop reason: conclusive."
    for report in ("report.md", "report.html"):
        assert stopped in (tmp_path / "report" / report).read_text(), report
    assert analysis.decision.verdict == "equivalent" and sequential["over"] == "items"
    assert design["items_run"] < ITEMS and design["items_run"] % 50 == 0
    assert sequential["calls_spent"] == design["items_run"] * 2 and sequential["fixed_design_calls"] == ITEMS * 2
    # Only the blocks run reached the store: one job per block and side, each with a block of 50 items.
    store = ResultStore(tmp_path / "store")
    manifests = [json.loads(path.read_text()) for path in (tmp_path / "store").rglob("manifest.json")]
    assert len(manifests) == 2 * design["looks_run"] and {m["items"] for m in manifests} == {50}
    # Every stored item has the key and the score the same item has in a full run of A.
    blocks = load_env_records_of_store(store, "a")
    full = _full_run(tmp_path, a)
    merged = blocks.merge(full, on="item_key", suffixes=("_block", "_full"))
    assert len(merged) == design["items_run"] == blocks["item_key"].nunique()
    assert (merged["score_block"] == merged["score_full"]).all() and (merged["target_block"] == merged["target_full"]).all()
    # `statrepro explain` finds the blocks through the pre-registered design: there are no full runs to load
    # (they would be an error: "the store holds no finished run").
    explained = explain_environments(a, b, RunOptions(store=tmp_path / "store", data_dir=tmp_path / "data"))
    assert explained.summary() == "no item flipped and no item changed its score or answer: nothing to explain"
    # The items are a random sample of the benchmark (not its first rows): the order is pre-registered and seeded.
    rows = sorted(int(key.rsplit("/", 1)[1]) for key in blocks["item_key"])
    assert rows != list(range(len(rows))) and max(rows) > design["items_run"]


def test_a_finished_block_is_never_run_again_and_the_design_cannot_change(tmp_path, content_scored):
    _data_dir(tmp_path / "data")
    a, b = _env(tmp_path, "a"), _env(tmp_path, "b")
    first = compare_environments(a, b, _options(tmp_path))
    stamps = {path: path.stat().st_mtime_ns for path in (tmp_path / "store").rglob("manifest.json")}
    again = compare_environments(a, b, _options(tmp_path))
    assert {path: path.stat().st_mtime_ns for path in (tmp_path / "store").rglob("manifest.json")} == stamps
    assert again.sequential == first.sequential
    with pytest.raises(InputError, match="pre-registered with") as refused:
        compare_environments(a, b, _options(tmp_path, max_items=300))
    assert "max_items" in str(refused.value)


def test_a_broken_side_is_different_after_two_of_eight_blocks(tmp_path, content_scored):
    _data_dir(tmp_path / "data")
    a, b = _env(tmp_path, "a"), _env(tmp_path, "broken", generation={"max_tokens": 1})
    analysis = compare_environments(a, b, _options(tmp_path))
    design = analysis.sequential["benchmarks"]["gsm8k"]
    # O'Brien-Fleming holds the first look to 4.6e-10: 50 items of a 60-point loss miss it, 100 do not.
    assert analysis.decision.verdict == "different" and design["looks_run"] == 2 and design["items_run"] == 100
    assert analysis.decision.benchmarks[0].reason.startswith("B is clearly below the lower margin")


def test_blocks_at_one_seed_then_seed_rounds_over_every_block_until_the_seed_noise_averages_out(tmp_path, content_scored):
    _data_dir(tmp_path / "data")
    sampling = {"temperature": 0.7}
    a = _env(tmp_path, "a", generation=sampling, seeds=3)
    b = _env(tmp_path, "b", generation={**sampling, "max_tokens": 2}, seeds=3)
    options = _options(tmp_path, block_size=40, max_items=120, first_seeds=1)
    analysis = compare_environments(a, b, options)
    design = analysis.sequential["benchmarks"]["gsm8k"]
    # One seed per item leaves the seed noise in every item: all three blocks run without a verdict. Over three
    # seeds each item scores 2/3 on both sides, so the seed rounds end it.
    assert [look["verdict"] for look in design["looks"][:3]] == [None, None, None]
    assert analysis.decision.verdict == "equivalent" and design["items_run"] == 120 and design["seeds_run"] > 1
    assert analysis.sequential["calls_spent"] == 2 * 120 * design["seeds_run"]
    # Every block ran every seed up to the round reached, and nothing else.
    manifests = [json.loads(path.read_text()) for path in (tmp_path / "store").rglob("manifest.json")]
    assert sorted((m["env"]["name"], m["seed"]) for m in manifests) == sorted(
        (name, seed) for name in ("a", "b") for seed in range(design["seeds_run"]) for _ in range(3)
    )


def test_seed_rounds_with_a_deterministic_reference_and_a_sampling_candidate_stop_before_the_budget(tmp_path, content_scored):
    """`compare --sequential` (seed rounds) with a greedy A and a sampling B of the same mean: A's seeds after the
    first two are skipped (identical runs), B runs one seed per round. Over three seeds each of B's items scores
    2/3, so the TOST passes at round 3 of 5; A's skipped seeds count as copies, so the rounds go on past round 2
    (they used to re-analyse round 2 up to the budget and end inconclusive). The saving is reported against the
    fixed design as it runs (A: 2 seeds, B: 5) beside every seed of every item."""
    _data_dir(tmp_path / "data")
    a = _env(tmp_path, "a")
    b = _env(tmp_path, "b", generation={"temperature": 0.7, "max_tokens": 2})  # seed 0 is not A's run
    options = CompareOptions(store=tmp_path / "store", data_dir=tmp_path / "data", margin="absolute", tolerance=0.1,
                             sequential=True, max_seeds=5)
    analysis = compare_environments(a, b, options, json_path=tmp_path / "verdict.json", report=tmp_path / "report")
    sequential = analysis.sequential
    gsm8k = sequential["benchmarks"]["gsm8k"]
    assert analysis.decision.verdict == "equivalent" and gsm8k["rounds"] == 3 < 5
    assert gsm8k["seeds_repeated"] == {"a": True, "b": False}
    manifests = [json.loads(path.read_text()) for path in (tmp_path / "store").rglob("manifest.json")]
    assert sorted((m["env"]["name"], m["seed"]) for m in manifests) == [("a", 0), ("a", 1), ("b", 0), ("b", 1), ("b", 2)]
    assert sequential["calls_spent"] == ITEMS * (2 + 3)
    assert sequential["fixed_design_calls_as_run"] == ITEMS * (2 + 5) and sequential["fixed_design_calls"] == ITEMS * 10
    assert sequential["calls_saved_share"] == pytest.approx(2 / 7) and sequential["calls_saved_share_nominal"] == 0.5
    assert json.loads((tmp_path / "verdict.json").read_text())["sequential"] == sequential
    report = (tmp_path / "report" / "report.md").read_text()
    assert "29% fewer than the fixed design as it runs" in report and "50% fewer than every seed of every item" in report


def test_item_blocks_need_the_sequential_design_and_a_budget_above_the_benchmark_means_all_items(tmp_path, content_scored):
    _data_dir(tmp_path / "data")
    a, b = _env(tmp_path, "a"), _env(tmp_path, "b")
    with pytest.raises(ValueError, match="add --sequential"):
        CompareOptions(block_size=50)
    with pytest.raises(ValueError, match="must be at least 2"):
        _options(tmp_path, max_items=1)
    with pytest.raises(ValueError, match="add --block-size"):
        CompareOptions(sequential=True, first_seeds=1)
    with pytest.raises(ValueError, match="add --block-size"):
        CompareOptions(sequential=True, order_seed=3)
    with pytest.raises(ValueError, match="add --block-size"):
        CompareOptions(sequential=True, new_design=True)
    with pytest.raises(InputError, match="first_seeds must be in 1..1"):
        compare_environments(a, b, _options(tmp_path, first_seeds=2))
    analysis = compare_environments(a, b, _options(tmp_path, max_items=ITEMS + 1))
    assert analysis.sequential["benchmarks"]["gsm8k"]["design"]["max_items"] == ITEMS


def load_env_records_of_store(store: ResultStore, name: str) -> pd.DataFrame:
    frames = [pd.read_json(path, lines=True, dtype={"item_key": str, "target": str})
              for path in sorted(store.root.glob(f"{name}-*/*/seed-*/records.jsonl"))]
    return pd.concat(frames, ignore_index=True)


def _full_run(root: Path, env_file: Path) -> pd.DataFrame:
    """A's records from a plain (fixed, every item) run in a store of its own."""
    from statrepro.api import RunOptions, run_environment_files

    options = RunOptions(store=root / "full-store", data_dir=root / "data")
    run_environment_files([env_file], options)
    env = effective_env(load_env(env_file))
    records = load_env_records(env, ResultStore(root / "full-store"))
    assert len(records) == ITEMS
    return records.astype({"target": str})


@pytest.mark.model
@pytest.mark.slow  # minutes of real-model runs: CI's end-to-end phase
def test_fp32_aa_through_lm_eval_stops_early_on_items_and_seeds_with_the_full_runs_verdict(tmp_path):
    """The real harness on the real model: in-process fp32 log-likelihood scoring on both sides (bitwise
    repeatable), 120 mmlu_redux items in blocks of 40 with a budget of 3 seeds per side."""
    from typer.testing import CliRunner

    from statrepro.cli import app

    subjects = ["world_religions", "miscellaneous", "global_facts", "electrical_engineering", "conceptual_physics",
                "high_school_mathematics", "human_aging", "college_chemistry", "computer_security", "high_school_geography",
                "elementary_mathematics", "virology", "management", "human_sexuality", "high_school_psychology",
                "public_relations", "college_mathematics", "medical_genetics", "abstract_algebra", "prehistory"]
    body = {"model": {"path": "embedded", "dtype": "float32"}, "engine": {"kind": "hf"}, "batch_size": 4, "seeds": 3,
            "harness": {"name": "lm-eval", "apply_chat_template": False},
            "benchmarks": {"mmlu_redux": {"mode": "clp", "limit": 6, "subsets": subjects}}}
    files = []
    for name in ("fp32-a", "fp32-b"):
        files.append(tmp_path / f"{name}.yaml")
        files[-1].write_text(yaml.safe_dump({"name": name, **body}))
    verdicts = {}
    for design, extra in (("items", ["--sequential", "--block-size", "40"]), ("fixed", [])):
        out = tmp_path / f"{design}.json"
        result = CliRunner().invoke(app, ["compare", *map(str, files), "--store", str(tmp_path / f"store-{design}"),
                                          "--margin", "absolute", "--tolerance", "0.1", "--json", str(out), *extra])
        assert result.exit_code == 0, result.output
        verdicts[design] = json.loads(out.read_text())
    sequential = verdicts["items"]["sequential"]["benchmarks"]["mmlu_redux"]
    assert verdicts["items"]["verdict"] == verdicts["fixed"]["verdict"] == "equivalent"
    assert verdicts["fixed"]["benchmarks"]["mmlu_redux"]["n_items"] == 120
    # Stopped early on items: no item changed, and 80 unchanged items pass the second look's spent level.
    assert sequential["items_run"] == 80 and sequential["looks_run"] == 2
    # ... and on seeds: every block ran two seeds per side, found them identical, and skipped the third.
    manifests = [json.loads(path.read_text()) for path in (tmp_path / "store-items").rglob("manifest.json")]
    assert len(manifests) == 2 * 2 * sequential["looks_run"]
    assert {m["seed"] for m in manifests} == {0, 1}


def test_hand_picked_rows_outside_the_benchmark_are_a_one_line_error(tmp_path, content_scored):
    from typer.testing import CliRunner

    from statrepro.cli import app

    _data_dir(tmp_path / "data")
    env = _env(tmp_path, "a", benchmarks={"gsm8k": {"num_fewshot": 0, "limit": 100, "item_rows": {"main": [3, 100]}}})
    result = CliRunner().invoke(app, ["run", str(env), "--store", str(tmp_path / "store"), "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip() == "error: item_rows.main: row 100 is outside the 100 rows of subset 'main' (after the limit)"
    assert not list((tmp_path / "store").rglob("records.jsonl"))


def test_the_item_order_is_derived_and_pre_registered_beside_a_so_another_order_seed_is_refused(tmp_path, content_scored):
    """Retrying one data set under other order seeds (each with a new --store) and keeping the first pass raised the
    false-pass rate at the margin from 0.05 to 0.15. The pair's order is now registered beside A's file: another
    --order-seed is one line and exit 2, whatever the store, unless --new-design starts a new design, which the
    verdict JSON and the report record as a design change."""
    from typer.testing import CliRunner

    from statrepro.cli import app

    _data_dir(tmp_path / "data")
    a, b = _env(tmp_path, "a"), _env(tmp_path, "b")

    def compare(store: str, *extra: str):
        out = tmp_path / f"{store}.json"
        argv = ["compare", str(a), str(b), "--store", str(tmp_path / store), "--data-dir", str(tmp_path / "data"),
                "--margin", "absolute", "--tolerance", "0.1", "--sequential", "--block-size", "50",
                "--json", str(out), "--report", str(tmp_path / f"{store}-report"), *extra]
        result = CliRunner().invoke(app, argv)
        return result, json.loads(out.read_text()) if out.exists() else None

    first, verdict = compare("store-1")
    assert first.exit_code == 0, first.output
    order = verdict["sequential"]["order"]
    assert order["user_given"] is False and order["seed"] == order["derived_seed"] and verdict["sequential"]["design_changes"] == []
    registry = tmp_path / ".statrepro-designs" / "a--b.json"
    assert order["registry"] == str(registry) and json.loads(registry.read_text())["designs"][0]["order_seed"] == order["seed"]
    # Another seed, even in a new store: refused in one line before anything runs.
    refused, _ = compare("store-2", "--order-seed", "7")
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert refused.output.strip().count("\n") == 0 and f"pre-registered with order seed {order['seed']}, not 7" in refused.output
    assert not (tmp_path / "store-2" / "designs").exists()
    # The registered seed itself (or none) is accepted anywhere.
    again, same = compare("store-3", "--order-seed", str(order["seed"]))
    assert again.exit_code == 0 and same["sequential"]["order"]["seed"] == order["seed"]
    # --new-design runs the new order and says so.
    changed, verdict = compare("store-4", "--order-seed", "7", "--new-design")
    assert changed.exit_code == 0, changed.output
    sequential = verdict["sequential"]
    assert sequential["order"] == {**order, "seed": 7, "user_given": True}
    assert [change["order_seed"] for change in sequential["design_changes"]] == [order["seed"]]
    assert sequential["benchmarks"]["gsm8k"]["design"]["order_seed"] == 7
    report = (tmp_path / "store-4-report" / "report.md").read_text()
    assert "Item order: seed 7, given with --order-seed" in report
    assert f"Design changed after data were seen: this pair was registered earlier with order seed {order['seed']}" in report
    # The new design is now the pair's: the old seed is refused in its turn.
    back, _ = compare("store-5", "--order-seed", str(order["seed"]))
    assert back.exit_code == 2 and "pre-registered with order seed 7" in back.output


def test_the_derived_order_seed_ignores_how_the_files_are_written_but_not_what_they_say(tmp_path):
    from statrepro.run.preregistration import derived_order_seed

    items = {"gsm8k": [["main", row] for row in range(10)]}
    plain = tmp_path / "plain.yaml"
    plain.write_text("name: a\nseeds: 3\nbenchmarks: {gsm8k: {num_fewshot: 0}}\n")
    styled = tmp_path / "styled.yaml"
    styled.write_text("# the reference\nbenchmarks:\n  gsm8k:\n    num_fewshot: 0   # zero-shot\nseeds:    3\nname: a\n")
    b = load_env(plain)
    seed = derived_order_seed(load_env(plain), b, items)
    assert derived_order_seed(load_env(styled), b, items) == seed
    assert derived_order_seed(load_env(plain), b, {"gsm8k": items["gsm8k"][:9]}) != seed
    changed = tmp_path / "changed.yaml"
    changed.write_text("name: a\nseeds: 3\nbenchmarks: {gsm8k: {num_fewshot: 5}}\n")
    assert derived_order_seed(load_env(changed), b, items) != seed
