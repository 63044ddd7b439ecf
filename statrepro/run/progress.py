"""A running job's progress, read from its harness's own progress bars in the job's harness.log, and the plain
lines a CI log gets from it.

lm-eval and evalscope draw tqdm bars ("Requesting API:  45%|████▌     | 90/200 [00:28<00:34,  3.20it/s]"), one
carriage return per redraw. The bars stay in harness.log; statrepro reads the latest request bar from there and,
without a terminal, prints one plain line per job at most every ``PROGRESS_INTERVAL_SECONDS`` while its requests
advance, so a long job is never silent in a CI log.
"""

from __future__ import annotations

import codecs
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

PROGRESS_INTERVAL_SECONDS = 30.0  # the most often a job's progress line is printed
POLL_SECONDS = 1.0  # how often a running job's log is read

# The bars that count requests: lm-eval's API models, its HF model's two request kinds, vLLM's prompts, and
# evalscope's per-benchmark bar (also in its periodic log line, "[Elapsed: 00:28 < Remaining: 00:34, 3.20it/s]").
# Other bars (checkpoint shards, dataset maps, evalscope's outer bar over benchmarks) count something else.
_REQUEST_BAR = re.compile(
    r"(?P<bar>Requesting API|Running \w+ requests|Processed prompts|Evaluating\[[^\]]*\])"
    r":?\s+\d+%\|(?:[^|\n]*\|)?\s*(?P<done>\d+)/(?P<total>\d+)\s*"
    r"\[(?:Elapsed: )?[^<\]]*<\s*(?:Remaining: )?(?P<remaining>[^,\]]*?)\s*,\s*"
    r"(?:(?P<per_second>[\d.]+)\s*[a-zA-Z]+/s|(?P<per_item>[\d.]+)\s*s/[a-zA-Z]+|\?\s*[a-zA-Z]+/s)"
)
_TAIL_CHARS = 4096  # an unfinished redraw carried to the next read; a bar is far shorter


@dataclass(frozen=True)
class HarnessProgress:
    """The latest state of a harness's request bar."""

    bar: str  # the bar's own name, e.g. "Requesting API"
    done: int
    total: int
    rate: float | None  # requests per second; None before the harness knows
    remaining: float | None  # seconds, the harness's own estimate; None when unknown

    def eta(self) -> float | None:
        if self.remaining is not None:
            return self.remaining
        return (self.total - self.done) / self.rate if self.rate else None


def _seconds(text: str) -> float | None:
    """tqdm's '00:34', '1:02:03' or '2d, 1:02:03'; None for '?'."""
    try:
        parts = [float(part) for part in text.strip().split(":")]
    except ValueError:
        return None
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def parse_progress(text: str) -> HarnessProgress | None:
    """The last request bar drawn in ``text`` (redraws separated by carriage returns or newlines), or None."""
    for segment in reversed(re.split(r"[\r\n]", text)):
        match = _REQUEST_BAR.search(segment)
        if match is None:
            continue
        per_second, per_item = match["per_second"], match["per_item"]
        rate = float(per_second) if per_second else (1 / float(per_item) if per_item and float(per_item) else None)
        return HarnessProgress(match["bar"], int(match["done"]), int(match["total"]), rate, _seconds(match["remaining"]))
    return None


class LogProgress:
    """Follows a harness log as it grows: each ``read`` parses only what was written since the last."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a read may end inside a character
        self.tail = ""  # the last redraw read: it may still be half written
        self.latest: HarnessProgress | None = None

    def read(self) -> HarnessProgress | None:
        """The latest request bar so far (None before the first)."""
        try:
            with open(self.path, "rb") as log:
                log.seek(self.offset)
                data = log.read()
        except OSError:
            return self.latest
        self.offset += len(data)
        text = self.tail + self.decoder.decode(data)
        self.latest = parse_progress(text) or self.latest
        self.tail = text[max(text.rfind("\r"), text.rfind("\n")) + 1:][-_TAIL_CHARS:]
        return self.latest


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{rest:02d}s"


def progress_line(label: str, progress: HarnessProgress) -> str:
    """'a gsm8k seed 0: 90/200 requests (45%, Requesting API), 3.2 requests/s, ETA 0m34s'."""
    share = f"{progress.done / progress.total:.0%}, " if progress.total else ""
    rate = "? requests/s" if progress.rate is None else f"{progress.rate:.3g} requests/s"
    return f"{label}: {progress.done}/{progress.total} requests ({share}{progress.bar}), {rate}, ETA {_duration(progress.eta())}"


class ProgressLines:
    """When a job's progress earns a plain line: at most one per job every ``interval`` seconds (counted from the
    job's first bar), and only when its requests advanced since its last line. ``clock`` is injectable for tests."""

    def __init__(self, interval: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = PROGRESS_INTERVAL_SECONDS if interval is None else interval
        self.clock = clock
        self.last: dict[str, tuple[float, int]] = {}  # job key -> (time of its last line or first bar, requests done)

    def line(self, key: str, label: str, progress: HarnessProgress) -> str | None:
        now = self.clock()
        if key not in self.last:
            self.last[key] = (now, -1)
        since, done = self.last[key]
        if now - since < self.interval or progress.done == done:
            return None
        self.last[key] = (now, progress.done)
        return progress_line(label, progress)
