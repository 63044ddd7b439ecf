"""stats/advice.py: a need is given only where an inconclusive pilot places it."""

from statrepro.stats.advice import MAX_NEED_SPREAD, advice_text, placed_need
from statrepro.stats.power import PowerResult


def test_a_need_that_barely_moves_across_the_plausible_range_is_given():
    advice = placed_need(1000, (900, int(900 * MAX_NEED_SPREAD)), changed_items=40, min_changed_items=10)
    assert advice.need == 1000 and advice.need_range == (900, 1350) and advice.withheld is None


def test_a_wide_or_unbounded_range_withholds_the_need_with_its_reason():
    for need_range in ((900, int(900 * MAX_NEED_SPREAD) + 1), (900, None), (None, None)):
        advice = placed_need(1000, need_range, changed_items=40, min_changed_items=10)
        assert advice.need is None and advice.need_range is None
        assert advice.withheld.startswith("no reliable size")


def test_a_pilot_with_few_changed_items_gets_no_size_even_when_the_range_is_narrow():
    # The exact path's power ignores the difference, so its range is a single value: narrow, yet unplaced.
    advice = placed_need(500, (500, 500), changed_items=3, min_changed_items=10)
    assert advice.need is None and "changed items (3) are under 10" in advice.withheld


def test_no_finite_need_says_so_rather_than_no_reliable_size():
    advice = placed_need(None, (None, None), changed_items=40, min_changed_items=10)
    assert advice.need is None and "no finite amount" in advice.withheld


def test_the_text_gives_a_placed_need_or_says_why_none_and_shows_the_mde():
    given = PowerResult(0.02, 0.04, 1000, None, (900, 1200), None, None, "no finite amount reaches 80% power")
    assert advice_text(given, 0.03) == "likely need ~1000 items (plausible range 900-1200)"
    withheld = placed_need(1000, (900, None), changed_items=40, min_changed_items=10).withheld
    text = advice_text(PowerResult(0.0512, 0.1024, None, None, None, None, withheld, None), 0.025)
    assert text.startswith("no reliable size") and "0.0512 (10.2% of A) (MDE)" in text and "±0.0250" in text
