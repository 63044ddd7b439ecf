"""`statrepro bench advice`: the realised power of the advice after an inconclusive pilot (issue 21)."""

from statrepro.bench import _advice_task
from statrepro.stats import INCONCLUSIVE
from statrepro.stats.simulate import GREEDY


def test_a_200_item_pilot_gets_no_size_rather_than_one_that_under_delivers():
    """Greedy engine, accuracy 0.3, true loss of half the margin: a 200-item pilot sees about 1.5 flips, and sizes
    planned on it delivered 0.63-0.65 (the plug-in) or 0.37 (its exact path), not 0.80. The advice is withheld;
    any that were given would have to deliver 80% +/- 5 points within MC error."""
    row = _advice_task((0.3, GREEDY, 0.5, 100, 200, 0.05, 0.05, 0))
    assert row[INCONCLUSIVE] >= 80
    assert row["items_no_advice"] == row[INCONCLUSIVE] - row["items_advised"]
    if row["items_advised"]:
        assert abs(row["items_power"] - 0.8) <= 0.05 + 2 * row["items_power_mc_se"]
    assert row["items_advised"] == 0
