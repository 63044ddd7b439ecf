"""Item-sequential verdicts: boundaries at unequal information, error rates at and beyond the margin by
simulation (superpopulation and a fixed finite benchmark), determinism of the item order, pre-registration."""

import math
from dataclasses import replace

import numpy as np
import pytest

from statrepro.errors import InputError
from statrepro.run.store import ResultStore
from statrepro.stats.boundaries import boundary_levels, nominal_levels
from statrepro.stats.item_sequential import ItemSequentialDesign, item_sequential_step
from statrepro.stats.rules import VerdictRules
from statrepro.stats.simulate import GREEDY, GridCell, calibration_grid

ALPHA = 0.05


def _mc_error(rate: float, n: int) -> float:
    """Two Monte Carlo standard errors of a rate estimated from n simulations."""
    return 2 * math.sqrt(rate * (1 - rate) / n)


def test_boundaries_at_unequal_information_spend_exactly_the_level():
    fractions = (0.15, 0.4, 0.55, 1.0)
    levels = boundary_levels(fractions, 0.025, "obrien-fleming")
    rng = np.random.default_rng(3)
    steps = rng.standard_normal((400_000, len(fractions))) * np.sqrt(np.diff((0.0,) + fractions))
    z = np.cumsum(steps, axis=1) / np.sqrt(fractions)
    from scipy import stats

    crossed = (z >= stats.norm.isf(levels)).any(axis=1).mean()
    assert crossed == pytest.approx(0.025, abs=_mc_error(0.025, 400_000) + 5e-4)
    # Equal spacing is the seed-round design's boundary.
    assert boundary_levels((0.25, 0.5, 0.75, 1.0), 0.05, "pocock") == pytest.approx(nominal_levels(4, 0.05, "pocock"))


def test_item_order_is_a_seeded_permutation_cut_into_blocks():
    design = ItemSequentialDesign(n_items=1000, block_size=300, order_seed=7, max_items=900)
    again = ItemSequentialDesign(n_items=1000, block_size=300, order_seed=7, max_items=900)
    other = ItemSequentialDesign(n_items=1000, block_size=300, order_seed=8, max_items=900)
    np.testing.assert_array_equal(design.item_order(), again.item_order())
    assert not np.array_equal(design.item_order(), other.item_order())
    assert design.look_items == (300, 600, 900) and design.fractions == pytest.approx((1 / 3, 2 / 3, 1.0))
    blocks = np.concatenate([design.block(k) for k in range(1, design.looks + 1)])
    np.testing.assert_array_equal(blocks, design.item_order())
    assert len(set(blocks)) == 900 and blocks.max() < 1000
    ragged = ItemSequentialDesign(n_items=250, block_size=100, order_seed=0)
    assert ragged.look_items == (100, 200, 250)
    with pytest.raises(ValueError):
        ItemSequentialDesign(n_items=100, block_size=0, order_seed=0)
    with pytest.raises(ValueError):
        ItemSequentialDesign(n_items=100, block_size=10, order_seed=0, max_items=101)


def test_step_is_stateless_and_stops_at_the_first_verdict():
    design = ItemSequentialDesign(n_items=2000, block_size=400, order_seed=1, seeds=3)
    rng = np.random.default_rng(0)
    a, b = GridCell(0.6, 2000, 3).scenario(4.0, tolerance=0.05, concentration=0.3).draw(rng)
    order = design.item_order()
    full = item_sequential_step(design, a[order], b[order])
    assert full.verdict == "different" and full.stop_reason == "conclusive" and full.look < design.looks
    assert full.calls_spent == 2 * 3 * design.look_items[full.look - 1] < full.fixed_design_calls
    # Only the items of the completed looks matter: extra rows past the stopping look change nothing.
    stop = design.look_items[full.look - 1]
    prefix = item_sequential_step(design, a[order][:stop], b[order][:stop])
    assert prefix.to_dict() == full.to_dict()
    with pytest.raises(ValueError):
        item_sequential_step(design, a[order][:399], b[order][:399])
    assert "saved" in full.summary()


def _simulate(cell: GridCell, shift: float, sims: int, rng: np.random.Generator, first_seeds: int | None = None) -> list[str]:
    scenario = cell.scenario(shift, tolerance=0.05, greedy_seeds=1)
    design = ItemSequentialDesign(
        n_items=cell.n_items, block_size=cell.n_items // 5, order_seed=0, seeds=max(cell.seeds, 1), first_seeds=first_seeds
    )
    a, b = scenario.draw_many(rng, sims)
    return [item_sequential_step(design, a[i], b[i]).verdict for i in range(sims)]


GRID = calibration_grid(accuracies=(0.3, 0.6, 0.9), items=(200, 1000), engines=(GREEDY, 1, 3))


@pytest.mark.parametrize("shift", [1.0, 1.2])
def test_false_pass_at_and_beyond_the_margin_is_held(shift):
    rng = np.random.default_rng(11)
    sims = 40
    verdicts = [v for cell in GRID for v in _simulate(cell, shift, sims, rng)]
    passing = np.mean([v in ("equivalent", "within_tolerance") for v in verdicts])
    assert passing <= ALPHA + _mc_error(ALPHA, len(verdicts))


def test_false_different_inside_the_margin_is_held():
    rng = np.random.default_rng(12)
    verdicts = [v for cell in GRID for shift in (0.0, 1.0) for v in _simulate(cell, shift, 25, rng)]
    different = np.mean([v == "different" for v in verdicts])
    assert different <= ALPHA + _mc_error(ALPHA, len(verdicts))


# Items then seeds: blocks at one seed per item, then seed rounds up to 3 or 5 over the budgeted items.
COMBINED_GRID = calibration_grid(accuracies=(0.3, 0.6, 0.9), items=(200, 1000), engines=(3, 5))


def test_blocks_at_one_seed_then_seed_rounds_look_at_their_share_of_the_calls():
    design = ItemSequentialDesign(n_items=1000, block_size=250, order_seed=0, max_items=500, seeds=3, first_seeds=1)
    assert design.schedule == ((250, 1), (500, 1), (500, 2), (500, 3))
    assert design.fractions == pytest.approx((1 / 6, 1 / 3, 2 / 3, 1.0)) and design.blocks == 2
    with pytest.raises(ValueError, match="look must be in 1..2"):
        design.block(3)
    with pytest.raises(ValueError, match="first_seeds must be in 1..3"):
        ItemSequentialDesign(n_items=1000, block_size=250, order_seed=0, seeds=3, first_seeds=4)
    # A look is complete when its items and its seeds have run: three blocks' worth of rows at one seed is look 2.
    scenario = GridCell(0.6, 1000, 3).scenario(2.0, tolerance=0.05)
    a, b = scenario.draw(np.random.default_rng(0))
    order = design.item_order()
    early = item_sequential_step(design, a[order][:, :1], b[order][:, :1])
    assert early.look <= 2 and early.seeds_run == 1 and early.calls_spent == 2 * early.items_run


def test_a_deterministic_side_counts_its_skipped_seeds_in_the_looks_and_not_in_the_calls():
    """Blocks at one seed, then seed rounds: a greedy A's third seed is skipped (its first two were identical), so
    the store holds two of its columns. The last look (every item at three seeds) must still be reached, and the
    calls count what ran, against the fixed design as it runs (A: two seeds) and against every seed."""
    rng = np.random.default_rng(5)
    items = 400
    p = rng.beta(2, 2, items)
    a = np.repeat((rng.random((items, 1)) < p[:, None]).astype(float), 2, axis=1)
    b = (rng.random((items, 3)) < p[:, None]).astype(float)
    design = ItemSequentialDesign(n_items=items, block_size=200, order_seed=0, seeds=3, first_seeds=1, futility=0.0)
    order = design.item_order()
    decision = item_sequential_step(design, a[order], b[order])
    assert decision.look == design.looks == 4 and (decision.items_run, decision.seeds_run) == (items, 3)
    assert decision.calls_spent == items * (2 + 3) and decision.fixed_design_calls_as_run == items * (2 + 3)
    assert decision.fixed_design_calls == items * 3 * 2
    # The same data with A's copies in the matrix decide alike: how the store holds them does not matter.
    assert item_sequential_step(design, np.repeat(a[order][:, :1], 3, axis=1), b[order]) == decision
    # Every block at every seed: each block of A skips its third seed.
    whole = item_sequential_step(replace(design, first_seeds=None), a[order], b[order])
    assert whole.calls_spent == whole.items_run * (2 + 3)


def test_calls_fractions_are_conservative_when_seeds_add_less_information_than_calls():
    """The boundaries spend at the calls share; the true information of a seed round is larger (item variance
    does not shrink with seeds), so the looks correlate more than planned and cross less often (Slepian)."""
    from scipy import stats

    design = ItemSequentialDesign(n_items=1000, block_size=250, order_seed=0, seeds=3, first_seeds=1, rules=VerdictRules(alpha=0.025))
    levels = boundary_levels(design.fractions, 0.025, "obrien-fleming")
    crossed = {}
    for seed_share in (0.0, 0.5, 1.0):  # share of one seed's variance that is seed noise
        # Information of (n items, s seeds) is n / (item + seed / s) with item + seed = 1.
        information = np.array([n / ((1 - seed_share) + seed_share / s) for n, s in design.schedule])
        rng = np.random.default_rng(4)
        steps = rng.standard_normal((200_000, information.size)) * np.sqrt(np.diff(np.concatenate([[0.0], information])))
        z = np.cumsum(steps, axis=1) / np.sqrt(information)
        crossed[seed_share] = (z >= stats.norm.isf(levels)).any(axis=1).mean()
    mc = _mc_error(0.025, 200_000)
    assert crossed[1.0] == pytest.approx(0.025, abs=mc + 5e-4)  # pure seed noise: the calls share is the information
    assert crossed[0.0] < crossed[0.5] < 0.025 - mc  # item variance: seed rounds add less, the boundary holds more


@pytest.mark.parametrize("shift", [1.0, 1.2])
def test_items_then_seeds_false_pass_at_and_beyond_the_margin_is_held(shift):
    rng = np.random.default_rng(21)
    verdicts = [v for cell in COMBINED_GRID for v in _simulate(cell, shift, 40, rng, first_seeds=1)]
    passing = np.mean([v in ("equivalent", "within_tolerance") for v in verdicts])
    assert passing <= ALPHA + _mc_error(ALPHA, len(verdicts))


def test_items_then_seeds_false_different_inside_the_margin_is_held():
    rng = np.random.default_rng(22)
    verdicts = [v for cell in COMBINED_GRID for shift in (0.0, 1.0) for v in _simulate(cell, shift, 25, rng, first_seeds=1)]
    different = np.mean([v == "different" for v in verdicts])
    assert different <= ALPHA + _mc_error(ALPHA, len(verdicts))


def test_finite_benchmark_at_the_margin_sampled_without_replacement():
    """One fixed benchmark whose own mean difference is exactly the margin: only the item order and the seed
    draws vary, so the estimand is the finite benchmark's mean (items sampled without replacement)."""
    rng = np.random.default_rng(5)
    n, accuracy = 1000, 0.6
    p_a = rng.beta(accuracy * 0.5, (1 - accuracy) * 0.5, size=n)
    p_b = p_a * (1 - 0.05 * accuracy / p_a.mean())  # B's benchmark mean is exactly the margin below A's
    passes = 0
    sims = 300
    for sim in range(sims):
        design = ItemSequentialDesign(n_items=n, block_size=200, order_seed=sim, seeds=1)
        order = design.item_order()
        a = (rng.random(n) < p_a).astype(float)[order]
        b = (rng.random(n) < p_b).astype(float)[order]
        passes += item_sequential_step(design, a, b).verdict in ("equivalent", "within_tolerance")
    assert passes / sims <= ALPHA + _mc_error(ALPHA, sims)


def test_a_different_budget_is_refused_by_the_store(tmp_path):
    store = ResultStore(tmp_path)
    design = ItemSequentialDesign(n_items=1000, block_size=100, order_seed=3, max_items=500, seeds=3)
    store.register_design("a--b", design.to_dict())
    store.register_design("a--b", design.to_dict())  # resuming the same design
    for changed in ({"max_items": 1000}, {"block_size": 50}, {"order_seed": 4}):
        other = ItemSequentialDesign(**{**design.to_dict(), "rules": design.rules, **changed})
        with pytest.raises(InputError, match="pre-registered"):
            store.register_design("a--b", other.to_dict())


def test_bench_sequential_over_items_prints_the_mix_and_the_pooled_rates():
    from typer.testing import CliRunner

    from statrepro.cli import app

    runner = CliRunner()
    result = runner.invoke(
        app, ["bench", "sequential", "--over", "items", "--sims", "2", "--item-counts", "200", "--blocks", "4"]
    )
    assert result.exit_code == 0, result.output
    for text in ("item-dominated", "seed-dominated", "greedy", "seeds-only", "false pass 1.2x", "calls saved"):
        assert text in result.output
    assert runner.invoke(app, ["bench", "sequential", "--over", "rows"]).exit_code == 2
    assert runner.invoke(app, ["bench", "sequential", "--over", "items", "--item-counts", "10"]).exit_code == 2
