"""From a finished comparison to the first divergent token of each moved item (``statrepro explain``).

Items, most telling first: the flipped items (majority outcome changed), then the largest per-item score
changes, then items answered differently with the same score, up to ``limit``. For each item:

1. **Exact prompts.** What each side's harness sent is rebuilt from its own per-item output
   (``HarnessAdapter.sent_prompts``: lm-eval ``arguments``, evalscope ``messages``); the dataset is never
   re-rendered.
2. **Token check.** Each engine kind renders the token ids it ran for that prompt (``EngineKind.render_prompt``:
   chat template, BOS, system prompt); the first differing position is named, with a doubled BOS or a missing
   system prompt called by its name.
3. **Greedy replay** with top-k logprobs on both environments (in-process, managed server or endpoint) under
   each environment's own sampler settings, cut at the stop sequences the harness sent: the first divergent
   output token, both sides' top-2 logprob gap there, and the |logprob delta| of the chosen tokens before it.
4. **A flip class** (``FLIP_CLASSES``), decided in that order.

Log-likelihood items (multiple choice in modes ppl and clp) get the token check only: their replay is the
scoring itself, which the harness output already holds.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import InputError
from .logprobs import GREEDY_SLACK, Generation, compare_generations

if TYPE_CHECKING:
    import pandas as pd

    from ..engines.contract import RenderedPrompt

# Flip class -> what it means; classify() tries them in this order.
FLIP_CLASSES = {
    "prompt differs": "the engines ran different prompt tokens: a chat template, BOS or system prompt difference",
    "sampler setting": "a side decoded a token that was not its own most likely one before or at the divergence: a "
                       "sampler setting such as repeat_penalty overrides greedy decoding",
    "near tie": "at the divergence a side's top-2 logprob gap is below epsilon: numerical noise decided the token",
    "distribution shift": "both sides were confident and chose differently, or the chosen tokens' logprobs moved by "
                          "more than the shift threshold before any divergence: the model, its quantization or a kernel",
    "sampling": "temperature > 0 and the greedy replays agree: the flip is sampling noise",
    "not reproduced": "the greedy replays give the same output on both sides",
    "not replayed": "a log-likelihood item with identical prompt tokens: there is no generation to replay",
}
CONTEXT_PIECES = 3  # tokens shown on either side of a difference
REASONS = ("flipped", "score changed", "answer changed")


# ---------------------------------------------------------------------------------------------
# Token check


@dataclass(frozen=True)
class TokenCheck:
    """Whether two engines ran the same prompt token ids, and where they first differ."""

    identical: bool
    length_a: int
    length_b: int
    position: int | None = None
    token_a: str | None = None
    token_b: str | None = None
    context_a: str = ""
    context_b: str = ""
    defect: str | None = None
    how_a: str = ""
    how_b: str = ""
    prompt_a: str = ""
    """The prompt as A's engine ran it, its tokens' texts joined (``layers dump --explain`` feeds it on)."""

    def summary(self) -> str:
        if self.identical:
            return f"identical prompt tokens ({self.length_a})"
        text = f"the prompts differ in tokens at position {self.position}: A has {self.token_a!r}, B has {self.token_b!r}"
        return text + (f" ({self.defect})" if self.defect else "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"summary": self.summary()}


def _is_special(piece: str | None) -> bool:
    return bool(piece) and piece.startswith("<") and piece.endswith(">") and len(piece) > 2


def _starts_turn(pieces: tuple[str, ...], position: int, role: str) -> bool:
    """Whether a chat turn of ``role`` starts at ``position`` (a special token, then the role name)."""
    window = [piece.strip().lower() for piece in pieces[position : position + 3]]
    return bool(window) and _is_special(pieces[position]) and role in window[1:]


def name_defect(a: RenderedPrompt, b: RenderedPrompt, position: int) -> str | None:
    """A known template defect at the first differing position, by name; None when it is none of them."""
    for side, this, other in (("B", b, a), ("A", a, b)):
        # A special token repeated where the other side has it once: a BOS added by both harness and engine.
        if (
            0 < position < len(this.ids) and this.ids[position] == this.ids[position - 1] and _is_special(this.pieces[position])
            and (position >= len(other.ids) or other.ids[position] != other.ids[position - 1])
        ):
            kind = "BOS" if position == 1 else "special token"
            return f"doubled {kind} {this.pieces[position]!r} on {side}"
        turn_start = position - 1 if position > 0 and _is_special(other.pieces[position - 1]) else position
        if (
            position < len(other.pieces) and _starts_turn(other.pieces, turn_start, "system")
            and not any(_starts_turn(this.pieces, i, "system") for i in range(len(this.pieces)))
        ):
            return f"missing system prompt on {side}"
    return None


def compare_tokens(a: RenderedPrompt, b: RenderedPrompt) -> TokenCheck:
    """Token ids of one prompt on both sides, compared position by position."""
    if a.ids == b.ids:
        return TokenCheck(identical=True, length_a=len(a.ids), length_b=len(b.ids), how_a=a.how, how_b=b.how, prompt_a="".join(a.pieces))
    position = next((i for i, (x, y) in enumerate(zip(a.ids, b.ids)) if x != y), min(len(a.ids), len(b.ids)))
    start = max(0, position - CONTEXT_PIECES)
    return TokenCheck(
        identical=False, length_a=len(a.ids), length_b=len(b.ids), position=position,
        token_a=a.pieces[position] if position < len(a.pieces) else None,
        token_b=b.pieces[position] if position < len(b.pieces) else None,
        context_a="".join(a.pieces[start : position + CONTEXT_PIECES + 1]),
        context_b="".join(b.pieces[start : position + CONTEXT_PIECES + 1]),
        defect=name_defect(a, b, position), how_a=a.how, how_b=b.how, prompt_a="".join(a.pieces),
    )


@dataclass(frozen=True)
class PromptTokenSummary:
    """The token check over the items whose prompt hashes differ (what ``compare`` reports on its own)."""

    checked: int
    differing: int
    first: TokenCheck | None
    first_item: str | None

    def summary(self) -> str:
        if not self.differing:
            return (f"the prompt hashes differ but the tokens are identical on all {self.checked} checked items "
                    "(a harness hashing artefact)")
        return f"{self.differing} of {self.checked} checked items: {self.first.summary()} (e.g. {self.first_item})"


def summarize_token_checks(checks: dict[str, TokenCheck]) -> PromptTokenSummary:
    differing = {key: check for key, check in checks.items() if not check.identical}
    first_item = next(iter(differing), None)
    return PromptTokenSummary(checked=len(checks), differing=len(differing),
                              first=differing[first_item] if first_item else None, first_item=first_item)


# ---------------------------------------------------------------------------------------------
# Item choice


@dataclass(frozen=True)
class ChosenItem:
    benchmark: str
    item_key: str
    reason: str  # one of REASONS
    mean_a: float
    mean_b: float


def _first_value(records: pd.DataFrame, column: str) -> dict[str, Any]:
    """item_key -> the column's value in the item's first run, where it has one (an unlogged answer is no
    answer: NaN never equals NaN, so it would count every item as changed)."""
    import pandas as pd

    ordered = records.sort_values("run_id", kind="stable").drop_duplicates("item_key")
    return {key: value for key, value in zip(ordered["item_key"], ordered[column]) if not pd.isna(value)}


def choose_items(pairing, records_a: pd.DataFrame, records_b: pd.DataFrame, limit: int) -> tuple[list[ChosenItem], int]:
    """Up to ``limit`` items: flipped first, then the largest score changes, then changed answers; and how
    many items flipped in all."""
    from ..stats import item_means

    candidates: list[tuple[int, float, str, int, ChosenItem]] = []
    flipped_total = 0
    for name, bench in pairing.benchmarks.items():
        mean_a, mean_b = item_means(bench.scores_a), item_means(bench.scores_b)
        part_a, part_b = records_a[records_a["benchmark"] == name], records_b[records_b["benchmark"] == name]
        answers_a, answers_b = _first_value(part_a, "prediction"), _first_value(part_b, "prediction")
        for index, key in enumerate(bench.item_keys):
            a, b = float(mean_a[index]), float(mean_b[index])
            if np.isnan(a) or np.isnan(b):
                continue  # missing on one side: nothing to replay against
            if (a > 0.5) != (b > 0.5):
                reason = "flipped"
                flipped_total += 1
            elif a != b:
                reason = "score changed"
            elif key in answers_a and key in answers_b and answers_a[key] != answers_b[key]:
                reason = "answer changed"
            else:
                continue
            candidates.append((REASONS.index(reason), -abs(b - a), name, index, ChosenItem(name, key, reason, a, b)))
    candidates.sort(key=lambda entry: entry[:4])  # ties in the benchmark's item order
    return [entry[4] for entry in candidates[:limit]], flipped_total


# ---------------------------------------------------------------------------------------------
# Replay comparison and classes


def cut_at_stop(generation: Generation, stops: tuple[str, ...]) -> Generation:
    """The steps before the harness's first stop sequence: what was actually scored."""
    if not stops:
        return generation
    text = ""
    for index, step in enumerate(generation.steps):
        text += step.token
        if any(stop in text for stop in stops):
            kept = generation.steps[:index]
            return Generation(text="".join(step.token for step in kept), steps=kept)
    return generation


def _first_not_greedy(generation: Generation, upto: int) -> int | None:
    for index, step in enumerate(generation.steps[: upto + 1]):
        if step.top and step.logprob < max(step.top.values()) - GREEDY_SLACK:
            return index
    return None


@dataclass(frozen=True)
class Replay:
    """The greedy replays of one item compared token by token."""

    divergence: int | None
    token_a: str | None
    token_b: str | None
    gap_a: float | None
    gap_b: float | None
    max_abs_delta_before: float | None
    not_greedy_a: int | None  # first step where A's chosen token was not its own top-1 (up to the divergence)
    not_greedy_b: int | None
    text_a: str
    text_b: str
    offset: int | None = None  # where the divergent token starts in text_a and text_b (the text before it is shared)
    top_a: dict[str, float] | None = None  # A's top-k logprobs at the divergence (the report's item browser shows them)
    top_b: dict[str, float] | None = None


def compare_replays(generation_a: Generation, generation_b: Generation, stops: tuple[str, ...], *, epsilon: float) -> Replay:
    a, b = cut_at_stop(generation_a, stops), cut_at_stop(generation_b, stops)
    compared = compare_generations("", a, b, epsilon=epsilon)
    upto = compared.divergence if compared.divergence is not None else max(len(a.steps), len(b.steps))
    at = compared.divergence
    prefix = "".join(step.token for step in a.steps[:at]) if at is not None else None
    return Replay(
        divergence=compared.divergence, token_a=compared.token_a, token_b=compared.token_b,
        gap_a=compared.gap_a, gap_b=compared.gap_b,
        max_abs_delta_before=max(compared.abs_delta_logprobs, default=None),
        not_greedy_a=_first_not_greedy(a, upto), not_greedy_b=_first_not_greedy(b, upto),
        text_a=a.text, text_b=b.text,
        offset=len(prefix) if prefix is not None and a.text.startswith(prefix) and b.text.startswith(prefix) else None,
        top_a=dict(a.steps[at].top) if at is not None and at < len(a.steps) else None,
        top_b=dict(b.steps[at].top) if at is not None and at < len(b.steps) else None,
    )


def classify(tokens: TokenCheck, replay: Replay | None, *, sampled: bool, epsilon: float, shift_threshold: float) -> tuple[str, str]:
    """(flip class, one line with the numbers behind it)."""
    if not tokens.identical:
        return "prompt differs", tokens.summary()
    if replay is None:
        return "not replayed", "log-likelihood item; identical prompt tokens"
    delta = replay.max_abs_delta_before
    delta_text = "n/a" if delta is None else f"{delta:.3g}"
    if replay.divergence is None:
        if sampled:
            return "sampling", "greedy replays agree; the runs sampled at temperature > 0"
        if delta is not None and delta > shift_threshold:
            return "distribution shift", f"same tokens, but max |dlogprob| {delta_text} > {shift_threshold:g} along the answer"
        return "not reproduced", f"greedy replays agree ({len(replay.text_a)} chars); max |dlogprob| {delta_text}"
    at = f"token {replay.divergence}: A {replay.token_a!r}, B {replay.token_b!r}"
    gaps = f"top-2 gap A {_fmt(replay.gap_a)}, B {_fmt(replay.gap_b)}"
    for side, step in (("A", replay.not_greedy_a), ("B", replay.not_greedy_b)):
        if step is not None:
            return "sampler setting", f"{side} chose a token below its own top-1 at step {step}; diverges at {at}"
    tied = [side for side, gap in (("A", replay.gap_a), ("B", replay.gap_b)) if gap is not None and gap < epsilon]
    if tied:
        return "near tie", f"diverges at {at}; {gaps} ({' and '.join(tied)} below {epsilon:g}); max |dlogprob| before {delta_text}"
    return "distribution shift", f"diverges at {at}; {gaps} >= {epsilon:g}; max |dlogprob| before {delta_text}"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


# ---------------------------------------------------------------------------------------------
# Result


@dataclass(frozen=True)
class ItemExplanation:
    benchmark: str
    item_key: str
    reason: str
    mean_a: float
    mean_b: float
    flip_class: str
    detail: str
    tokens: TokenCheck
    replay: Replay | None

    def to_dict(self) -> dict[str, Any]:
        payload = {k: v for k, v in asdict(self).items() if k not in ("tokens", "replay")}
        return payload | {"tokens": self.tokens.to_dict(), "replay": asdict(self.replay) if self.replay else None}


@dataclass(frozen=True)
class ExplainResult:
    """Why items moved between A and B, item by item and by class."""

    env_a: str
    env_b: str
    epsilon: float
    shift_threshold: float
    top_k: int
    max_tokens: int
    flipped: int
    items: tuple[ItemExplanation, ...]
    settings_differ: tuple[str, ...] = field(default=())  # sampler settings that differ, e.g. "repeat_penalty 1.0 vs 1.1"

    def counts(self) -> dict[str, int]:
        found = Counter(item.flip_class for item in self.items)
        return {name: found[name] for name in FLIP_CLASSES if found[name]}

    def summary(self) -> str:
        if not self.items:
            return "no item flipped and no item changed its score or answer: nothing to explain"
        lead = f"{self.flipped} items flipped" if self.flipped else "no item flipped"
        classes = ", ".join(f"{name} {count}" for name, count in self.counts().items())
        text = f"{lead}; explained {len(self.items)}: {classes}"
        if "sampler setting" in self.counts() and self.settings_differ:
            text += f" (differing sampler settings: {'; '.join(self.settings_differ)})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "env_a": self.env_a, "env_b": self.env_b, "epsilon": self.epsilon, "shift_threshold": self.shift_threshold,
            "top_k": self.top_k, "max_tokens": self.max_tokens, "flipped": self.flipped,
            "classes": self.counts(), "class_meanings": {name: FLIP_CLASSES[name] for name in self.counts()},
            "settings_differ": list(self.settings_differ), "items": [item.to_dict() for item in self.items],
            "summary": self.summary(),
        }


# ---------------------------------------------------------------------------------------------
# Orchestration over two environments


def sent_prompts_of(env, records: pd.DataFrame, item_keys: set[str]) -> dict[str, Any]:
    """item_key -> SentPrompt for ``item_keys``, read from the harness output files the records came from."""
    from pathlib import Path

    from ..harness import get_harness
    from ..harness.contract import row_ids_of, row_key

    adapter = get_harness(env.harness.name)
    rows = records[records["item_key"].isin(item_keys)].sort_values("run_id", kind="stable")
    prompts: dict[str, Any] = {}
    for source in dict.fromkeys(rows["source"].dropna()):
        found = adapter.sent_prompts(Path(source))
        row_ids = row_ids_of(Path(source))
        if row_ids:  # a block of selected rows: its output keys items by position in the block
            found = {row_key(key, row_ids): prompt for key, prompt in found.items()}
        prompts.update({key: prompt for key, prompt in found.items() if key in item_keys and key not in prompts})
    return prompts


def sampler_settings_differ(env_a, env_b) -> tuple[str, ...]:
    """Sampler settings in force that differ, an unset repeat penalty read as the engine's default."""
    from ..engines import engine_kind

    def in_force(env) -> dict[str, Any]:
        generation = env.generation
        penalty = generation.repeat_penalty
        if penalty is None:
            penalty = engine_kind(env.engine.kind).default_repeat_penalty
        return {"repeat_penalty": penalty, "temperature": generation.temperature, "top_p": generation.top_p}

    a, b = in_force(env_a), in_force(env_b)
    return tuple(f"{name} {a[name]} vs {b[name]}" for name in a if a[name] != b[name])


def token_checks(env_a, env_b, prompts_a: dict, prompts_b: dict, keys: list[str]) -> dict[str, TokenCheck]:
    """The token check of every key both sides have a prompt for."""
    from ..engines import engine_kind

    keys = [key for key in keys if key in prompts_a and key in prompts_b]
    rendered_a = engine_kind(env_a.engine.kind).render_prompts(env_a, [prompts_a[key] for key in keys])
    rendered_b = engine_kind(env_b.engine.kind).render_prompts(env_b, [prompts_b[key] for key in keys])
    return {key: compare_tokens(a, b) for key, a, b in zip(keys, rendered_a, rendered_b)}


def explain(
    env_a, env_b, records_a: pd.DataFrame, records_b: pd.DataFrame, *, limit: int = 10, epsilon: float = 0.1,
    shift_threshold: float = 1.0, top_k: int = 5, max_tokens: int = 128, step: Callable[[str], None] | None = None,
) -> ExplainResult:
    """Explain the moved items of a finished comparison of ``env_a`` and ``env_b`` (EnvConfigs) from their records."""
    import time
    from contextlib import ExitStack

    from ..analysis import pair
    from .logprobs import side_from_env

    if limit < 1 or top_k < 2 or max_tokens < 1 or epsilon <= 0:
        raise InputError("explain needs limit >= 1, top_k >= 2, max_tokens >= 1 and epsilon > 0")
    step = step or (lambda text: None)
    chosen, flipped = choose_items(pair(records_a, records_b, unpaired="missing"), records_a, records_b, limit)
    result = dict(env_a=env_a.name, env_b=env_b.name, epsilon=epsilon, shift_threshold=shift_threshold, top_k=top_k,
                  max_tokens=max_tokens, flipped=flipped, settings_differ=sampler_settings_differ(env_a, env_b))
    if not chosen:
        return ExplainResult(items=(), **result)
    keys = {item.item_key for item in chosen}
    prompts_a, prompts_b = sent_prompts_of(env_a, records_a, keys), sent_prompts_of(env_b, records_b, keys)
    for side, env, prompts in (("A", env_a, prompts_a), ("B", env_b, prompts_b)):
        if not prompts:
            raise InputError(f"the harness output of {env.name} records no prompts to replay (side {side})")
    chosen = [item for item in chosen if item.item_key in prompts_a and item.item_key in prompts_b]
    started = time.monotonic()
    checks = token_checks(env_a, env_b, prompts_a, prompts_b, [item.item_key for item in chosen])
    step(f"token check: {len(checks)} items, {sum(not c.identical for c in checks.values())} differ ({time.monotonic() - started:.1f} s)")
    to_replay = [item.item_key for item in chosen if checks[item.item_key].identical and not prompts_a[item.item_key].continuations]
    generations: dict[str, list[Generation]] = {}
    if to_replay:
        from ..engines import engine_kind

        with ExitStack() as servers:
            for side, env, prompts in (("A", env_a, prompts_a), ("B", env_b, prompts_b)):
                started = time.monotonic()
                sent = [prompts[key] for key in to_replay]
                rendered = engine_kind(env.engine.kind).render_prompts(env, sent)
                replayer = side_from_env(env, servers=servers, params={})
                generations[side] = replayer.replay(sent, rendered, max_tokens=min(max_tokens, env.generation.max_tokens), top_k=top_k)
                step(f"replayed {len(sent)} items greedily on {env.name} ({time.monotonic() - started:.1f} s)")
    sampled = env_a.generation.temperature > 0 or env_b.generation.temperature > 0
    explanations = []
    for item in chosen:
        replay = None
        if item.item_key in to_replay:
            index = to_replay.index(item.item_key)
            stops = tuple(dict.fromkeys(prompts_a[item.item_key].stop + prompts_b[item.item_key].stop))
            replay = compare_replays(generations["A"][index], generations["B"][index], stops, epsilon=epsilon)
        flip_class, detail = classify(checks[item.item_key], replay, sampled=sampled, epsilon=epsilon, shift_threshold=shift_threshold)
        explanations.append(ItemExplanation(item.benchmark, item.item_key, item.reason, item.mean_a, item.mean_b, flip_class,
                                            detail, checks[item.item_key], replay))
    return ExplainResult(items=tuple(explanations), **result)
