"""The benchmarks' options models: their checks and messages are the ones `statrepro bench ...` prints."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from statrepro.api_bench import CalibrationBenchOptions, ControlBenchOptions, SequentialBenchOptions, ThroughputBenchOptions
from statrepro.errors import validation_error


def cli_message(options_class, **values) -> str:
    with pytest.raises(ValidationError) as raised:
        options_class(**values)
    return str(validation_error(raised.value, options_class, as_option=True))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"tolerance": 1.5}, "--tolerance: must be in (0.0, 1.0), got 1.5"),
        ({"margin": "absolute", "tolerance": 0.3}, "--tolerance: 1.2 x 0.3 exceeds the lowest accuracy"),
        ({"items": (1, 200)}, "--items: item counts must be at least 2"),
        ({"engines": (0, -1)}, "--engines: engines are 'greedy' or a seed count of at least 1"),
        ({"flip_rate": 0.7}, "--flip-rate: 0.7 is not reachable at every accuracy of the grid"),
        ({"workers": 0}, "--sims and --workers must be at least 1 and --resamples at least 10"),
    ],
)
def test_calibration_options_name_the_bad_value(values, message):
    assert cli_message(CalibrationBenchOptions, **values) == message


def test_an_absolute_margin_is_checked_against_the_lowest_accuracy_only():
    assert CalibrationBenchOptions(margin="absolute", tolerance=0.3, accuracies=(0.5, 0.9)).tolerance == 0.3
    assert CalibrationBenchOptions(margin="relative", tolerance=0.3).tolerance == 0.3


def test_sequential_options_read_the_item_counts_text_only_over_items():
    assert SequentialBenchOptions(over="items", item_counts="200,400").item_counts == (200, 400)
    assert SequentialBenchOptions(over="seeds", item_counts="not numbers").item_counts == (200, 1000, 5000)
    assert cli_message(SequentialBenchOptions, over="items", item_counts="a,b") == "--item-counts: must be comma-separated integers, got 'a,b'"
    assert cli_message(SequentialBenchOptions, over="items", item_counts=(30,), blocks=20) == (
        "--item-counts: every item count must be at least 2 x --blocks (40)"
    )
    assert cli_message(SequentialBenchOptions, spending="linear") == "--spending: must be obrien-fleming or pocock, got 'linear'"


def test_control_and_throughput_options_refuse_counts_below_one():
    assert cli_message(ControlBenchOptions, excess=1.0) == "--sims must be at least 1 and --excess in (0, 1)"
    assert cli_message(ThroughputBenchOptions, concurrency=(4, 0)) == (
        "--concurrency, --items and --repeats must be at least 1 and --latency not negative"
    )


def test_bench_selection_prints_each_ladder_with_its_errors():
    from statrepro.api_bench import SelectionBenchOptions, bench_selection

    figures = bench_selection(SelectionBenchOptions(sims=2))
    assert set(figures) == {"five at the margin", "a degrading ladder", "three good, two at the margin"}
    assert all(0 <= row["fixed_sequence"] <= 1 and row["fixed_sequence_se"] > 0 for row in figures.values())
    with pytest.raises(ValueError, match="at least 1"):
        SelectionBenchOptions(sims=0)


def test_fault_bench_options_name_an_unknown_fault_and_bad_counts():
    from statrepro.api_bench import FaultsBenchOptions

    assert "unknown faults ['nope']; known: 429, 429-date" in cli_message(FaultsBenchOptions, faults=("429", "nope"))
    assert "kill-server" in cli_message(FaultsBenchOptions, faults=("nope",))
    assert "--items must be at least 2" in cli_message(FaultsBenchOptions, items=1)
    assert "--timeout above 0" in cli_message(FaultsBenchOptions, timeout=0)
    assert FaultsBenchOptions(faults=("stall", "kill-server")).faults == ("stall", "kill-server")
