"""A running job's progress from its harness's own bars (statrepro.run.progress): recorded lm-eval and evalscope
streams in, request counts out, and the plain CI-log lines throttled on an injected clock."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from tqdm import tqdm

from statrepro.run.progress import HarnessProgress, LogProgress, ProgressLines, parse_progress, progress_line

# An excerpt of a real lm-eval 0.4 harness.log (API model, 800 requests; every 25th redraw of its request bar kept,
# its context-building and tokenizing bars before it): carriage returns as tqdm wrote them.
RECORDED_LOG = Path(__file__).parent / "data" / "lm_eval_api_harness_log.txt"  # .txt: *.log is git-ignored
# Redraws as lm-eval (0.4, tqdm) and evalscope (1.x) write them into a file, one carriage return per redraw.
LM_EVAL_API = "Requesting API:  45%|████▌     | 90/200 [00:28<00:34,  3.20it/s]"
LM_EVAL_HF = "Running loglikelihood requests:   1%|          | 12/1000 [00:30<41:10,  2.50s/it]"
EVALSCOPE_BAR = "Evaluating[gsm8k]:  50%|█████     | 5/10 [00:05<00:05,  1.00it/s]"
EVALSCOPE_LOG = "2026-12-08 00:40:00 - evalscope - INFO: Evaluating[gsm8k]  60%| 6/10 [Elapsed: 00:06 < Remaining: 00:04, 1.00it/s]"
OTHER_BARS = [
    "Loading checkpoint shards: 100%|██████████| 2/2 [00:01<00:00,  1.50it/s]",
    "Running[eval]:   0%|          | 0/1 [00:00<?, ?benchmark/s]",
    "Checking cached requests: 100%|██████████| 200/200 [00:00<00:00, 91125.23it/s]",
    "Map: 100%|██████████| 200/200 [00:00<00:00, 4000.00 examples/s]",
]


@pytest.mark.parametrize(("text", "expected"), [
    (LM_EVAL_API, HarnessProgress("Requesting API", 90, 200, 3.2, 34.0)),
    (LM_EVAL_HF, HarnessProgress("Running loglikelihood requests", 12, 1000, 0.4, 41 * 60 + 10.0)),
    (EVALSCOPE_BAR, HarnessProgress("Evaluating[gsm8k]", 5, 10, 1.0, 5.0)),
    (EVALSCOPE_LOG, HarnessProgress("Evaluating[gsm8k]", 6, 10, 1.0, 4.0)),
    ("Requesting API:   0%|          | 0/200 [00:00<?, ?it/s]", HarnessProgress("Requesting API", 0, 200, None, None)),
])
def test_request_bars_are_read(text, expected):
    assert parse_progress(text) == expected


def test_other_bars_are_not_requests():
    assert all(parse_progress(bar) is None for bar in OTHER_BARS)
    assert parse_progress("\r".join([LM_EVAL_API, *OTHER_BARS])) == parse_progress(LM_EVAL_API)  # the last request bar


def recorded_stream() -> str:
    """What lm-eval writes to its log: transformers' shard bar, then the API bar redrawn per request (real tqdm)."""
    log = io.StringIO()
    for _ in tqdm(range(2), desc="Loading checkpoint shards", file=log, mininterval=0):
        pass
    log.write("2026-12-08:00:40:00 INFO [evaluator.py:500] Running generate_until requests\n")
    with tqdm(total=200, desc="Requesting API", file=log, mininterval=0, miniters=1) as bar:
        for _ in range(200):
            bar.update(1)
    return log.getvalue()


def test_a_growing_log_is_followed_across_reads_split_anywhere(tmp_path):
    data = recorded_stream().encode()
    assert data.count(b"\r") > 200 and b"\n" in data
    path = tmp_path / "harness.log"
    path.write_bytes(b"")
    follower = LogProgress(path)
    seen = []
    for cut in range(0, len(data), 997):  # 997 bytes at a time: cuts inside redraws and inside multi-byte characters
        with open(path, "ab") as log:
            log.write(data[cut:cut + 997])
        seen.append(follower.read())
    done = [progress.done for progress in seen if progress is not None]
    assert done == sorted(done) and len(set(done)) > 5
    assert (seen[-1].done, seen[-1].total, seen[-1].bar) == (200, 200, "Requesting API")


def test_a_line_at_most_every_interval_and_only_when_requests_advance():
    now = [0.0]
    lines = ProgressLines(interval=30, clock=lambda: now[0])

    def at(seconds: float, done: int) -> str | None:
        now[0] = seconds
        return lines.line("job", "a gsm8k seed 0", HarnessProgress("Requesting API", done, 200, 2.0, None))

    assert [at(0, 10), at(10, 20), at(29.9, 59)] == [None, None, None]  # counted from the job's first bar
    assert at(30, 60) == "a gsm8k seed 0: 60/200 requests (30%, Requesting API), 2 requests/s, ETA 1m10s"
    assert at(45, 90) is None
    assert at(70, 60 + 0) is None  # 40 s later but stalled: nothing new to say
    assert at(71, 142) is not None and at(90, 150) is None
    assert lines.line("other", "b gsm8k seed 0", HarnessProgress("Requesting API", 1, 200, None, None)) is None  # its own clock


def test_the_line_says_what_it_does_not_know():
    line = progress_line("a ceval seed 1", HarnessProgress("Requesting API", 0, 200, None, None))
    assert line == "a ceval seed 1: 0/200 requests (0%, Requesting API), ? requests/s, ETA ?"


def test_a_recorded_lm_eval_log_gives_its_request_bar_and_lines_every_30_s_of_its_own_time():
    data = RECORDED_LOG.read_bytes()
    redraws = re.split(r"[\r\n]", data.decode())
    first = next(index for index, text in enumerate(redraws) if "Requesting API" in text)
    assert any("Tokenizing inputs" in text for text in redraws[:first])  # other bars come first, and are not requests
    assert parse_progress("\r".join(redraws[:first])) is None
    # Replayed redraw by redraw, the clock being the bar's own elapsed time: a line per 30 s of it while requests advance.
    now = [0.0]
    lines = ProgressLines(clock=lambda: now[0])
    printed = []
    for text in redraws[first:]:
        progress = parse_progress(text)
        if progress is None:
            continue
        last = progress
        minutes, seconds = re.search(r"\[(\d+):(\d+)<", text).groups()
        now[0] = int(minutes) * 60 + int(seconds)
        line = lines.line("job", "q8_0 mmlu_redux seed 0", progress)
        printed += [(now[0], line)] if line else []
    assert last == HarnessProgress("Requesting API", 800, 800, 3.61, 0.0)  # the bar's last redraw: 03:41 elapsed
    times = [at for at, _ in printed]
    assert all(later - earlier >= 30 for earlier, later in zip(times, times[1:])) and 4 <= len(times) <= 7
    assert printed[0][1].startswith("q8_0 mmlu_redux seed 0: ") and " requests (" in printed[0][1]
