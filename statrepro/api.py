"""The Python API: ``analyze`` two existing result sets, ``compare_environments`` end to end,
``run_environment_files`` (runs only) and ``explain_environments`` (why items moved).

Each validates its options here (``AnalyzeOptions``, ``CompareOptions``, ``RunOptions``, ``ExplainOptions``: a
bad value is a pydantic ValidationError naming the field); ``analyze`` and ``compare_environments`` write the
JSON verdict and the report when asked and return the ``Analysis``. The CLI only parses arguments into these
calls and prints what they return.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from .errors import InputError
from .stats.rules import DEFAULT_RULES, VerdictRules

if TYPE_CHECKING:
    from rich.console import Console

    from .analysis import Analysis


# Validators with the messages the CLI has always printed ("--tolerance: must be in (0.0, 1.0), got 1.5").
def _open_interval(low: float, high: float):
    return _interval(low, high, closed=False)


def _closed_interval(low: float, high: float):
    return _interval(low, high, closed=True)


def _interval(low: float, high: float, *, closed: bool):
    def check(cls, value: float | None) -> float | None:
        if value is not None and not (low <= value <= high if closed else low < value < high):
            raise ValueError(f"must be in {'[' if closed else '('}{low}, {high}{']' if closed else ')'}, got {value}")
        return value

    return classmethod(check)


def _at_least(low: int):
    def check(cls, value: int | None) -> int | None:
        if value is not None and value < low:
            raise ValueError(f"must be at least {low}, got {value}")
        return value

    return classmethod(check)


class VerdictOptions(BaseModel):
    """How a verdict is reached, as the user states it (the CLI's flag names); ``rules()`` is the
    ``stats.rules.VerdictRules`` object every design and the decision then carry. Defaults come from there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tolerance: float = DEFAULT_RULES.tolerance
    """Relative tolerance (margin = tolerance x score_A); absolute, in score points, with margin 'absolute'."""
    alpha: float = DEFAULT_RULES.alpha
    """Significance level, in (0, 0.5)."""
    mode: Literal["equivalence", "non-inferiority"] = DEFAULT_RULES.mode
    """Two-sided equivalence, or one-sided non-inferiority of B (B may be better)."""
    margin: Literal["relative", "absolute"] = DEFAULT_RULES.margin_kind
    """How the tolerance becomes a margin: relative to A's score, or absolute score points."""
    correction: Literal["holm", "bh"] = DEFAULT_RULES.correction
    """Multiple-benchmark adjustment for 'any benchmark differs'."""
    max_missing: float = DEFAULT_RULES.max_missing_share
    """Largest share of paired information that missing runs may take (per item the larger side's share of lost
    runs, averaged over items) before the verdict is inconclusive, in [0, 1)."""
    rng_seed: int = 0
    """Seed of the resampling RNG (bootstrap and permutations)."""
    score_range: Optional[tuple[float, float]] = DEFAULT_RULES.score_range
    """The metric's range [low, high] when statrepro does not know it (accuracy-like metrics are [0, 1]); the
    exact tests and the missing-run check bound their worst cases by it, never by the observed scores."""
    resamples: int = DEFAULT_RULES.n_resamples
    """Bootstrap resamples and Monte Carlo permutations (at least 100)."""
    kl_margin: Optional[float] = DEFAULT_RULES.kl_margin
    """Evidence gate (off by default): the one-sided (1 - alpha) upper bound of the mean choice KL(A||B), in nats,
    must lie within this; needs per-choice log-likelihoods (modes ppl and clp)."""
    top1_margin: Optional[float] = DEFAULT_RULES.top1_margin
    """Evidence gate (off by default): the share of items whose top choice changed, likewise."""
    flip_margin: Optional[float] = DEFAULT_RULES.flip_margin
    """Evidence gate (off by default): the excess of harmful flips (right to wrong) over the A/A control,
    likewise; needs the control."""

    @field_validator("score_range")
    @classmethod
    def _ordered_range(cls, value: Optional[tuple[float, float]]) -> Optional[tuple[float, float]]:
        if value is not None and not value[0] < value[1]:
            raise ValueError(f"needs low < high, got {value[0]:g},{value[1]:g}")
        return value

    _tolerance = field_validator("tolerance")(_open_interval(0.0, 1.0))
    _alpha = field_validator("alpha")(_open_interval(0.0, 0.5))
    _max_missing = field_validator("max_missing")(_open_interval(-1e-12, 1.0))
    _resamples = field_validator("resamples")(_at_least(100))

    @field_validator("kl_margin", "top1_margin", "flip_margin")
    @classmethod
    def _positive_margin(cls, value: Optional[float]) -> Optional[float]:
        if value is not None and not value > 0:
            raise ValueError(f"must be greater than 0, got {value:g}")
        return value

    def rules(self) -> VerdictRules:
        """The verdict rules these options state."""
        return VerdictRules(
            tolerance=self.tolerance, margin_kind=self.margin, alpha=self.alpha, mode=self.mode,
            correction=self.correction, max_missing_share=self.max_missing, score_range=self.score_range,
            n_resamples=self.resamples, kl_margin=self.kl_margin, top1_margin=self.top1_margin,
            flip_margin=self.flip_margin,
        )


class AnalyzeOptions(VerdictOptions):
    """Options of ``analyze``: the verdict's, plus the bootstrap's level and how unpaired items are treated."""

    seed_level: bool = False
    """Two-level bootstrap: also resample seeds within items."""
    intersect: bool = False
    """Analyse what both sides have: items one side lacks count as missing (the missing-share rule and the
    worst-case check apply), benchmarks on one side only are dropped (else unpaired items are an error)."""
    metric_overrides: dict[str, str] = Field(default_factory=dict)
    """Primary metric per benchmark or task, e.g. {"gsm8k": "exact_match,strict-match"}."""


class RunOptions(BaseModel):
    """What to run and where: overrides of the environment files, the store and the executor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    benchmarks: Optional[list[str]] = None
    """Benchmarks to run (default: each environment's own)."""
    seeds: Union[int, list[int], None] = None
    """Seed count or list, overriding the environments'."""
    limit: Optional[int] = None
    """Items per task (smoke runs; sign-off needs full sets)."""
    store: Path = Path("store")
    """Result store directory (resumable; finished runs are never redone)."""
    data_dir: Optional[Path] = None
    """Local benchmark data (default: the env's data_dir, else $STATREPRO_DATA_DIR)."""
    executor: str = "local"
    """local (this machine) or ray (a Ray cluster)."""
    ray_address: Optional[str] = None
    wait: bool = False
    """Wait for another run holding the store instead of refusing."""

    _limit = field_validator("limit")(_at_least(1))


class ExplainOptions(BaseModel):
    """How ``explain_environments`` picks the moved items and replays them (statrepro.diagnose.explain)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = 10
    """Items to explain: the flipped ones first, then the largest per-item score changes, then changed answers."""
    epsilon: float = 0.1
    """A divergence is a near tie when either side's top-2 logprob gap there is below this (nats)."""
    shift_threshold: float = 1.0
    """Identical greedy tokens whose logprobs moved by more than this (nats) count as a distribution shift."""
    top_k: int = 5
    """Top logprobs requested per replayed step (at least 2: near ties need the top-2 gap)."""
    max_tokens: int = 128
    """New tokens per greedy replay, capped by each environment's generation.max_tokens."""

    _limit = field_validator("limit", "max_tokens")(_at_least(1))
    _top_k = field_validator("top_k")(_at_least(2))
    _epsilon = field_validator("epsilon", "shift_threshold")(_open_interval(0.0, float("inf")))


class CompareOptions(VerdictOptions, RunOptions):
    """Options of ``compare_environments``: the verdict's, what to run and where, and the sequential design."""

    explain: Optional[ExplainOptions] = None
    """Explain the moved items after the verdict (``explain_environments`` on the same records)."""
    sequential: bool = False
    """Add one seed per side per round and stop at the first conclusive verdict (group-sequential)."""
    max_seeds: int = 5
    """With sequential: the budget of seeds per side."""
    block_size: Optional[int] = None
    """With sequential: run each benchmark's items in blocks of this many, in a pre-registered random order, each
    with every seed of each side, and decide after each block (item-sequential); None adds seeds instead."""
    max_items: Optional[int] = None
    """With block_size: the item budget per benchmark (None: all of its items)."""
    order_seed: Optional[int] = None
    """With block_size: seeds the random order of the items (None: derived from both environments and the item sets;
    the pair's order is pre-registered beside A's file, and another seed needs new_design)."""
    new_design: bool = False
    """With block_size: start a new item design for a pair that has one (another order seed), recorded in the verdict as
    a design change."""
    first_seeds: Optional[int] = None
    """With block_size: seeds per item while the blocks run; once every block has run, the environment's other
    seeds follow in rounds over the budgeted items (None: every seed within each block)."""
    kld: bool = False
    """After the verdict, the token-level KL divergence of B's next-token distributions from A's (both models loaded
    here, teacher-forced on A's first benchmark's prompts with gold answers; statrepro.diagnose.kld): evidence printed
    and written beside the verdict, never part of it. Over the whole vocabulary where both engine kinds give full
    logits (llama-cpp, hf), else over each served endpoint's top-20 prompt logprobs (the KLD then a lower bound)."""
    kld_limit: Optional[int] = None
    """With kld: how many texts (spread over the benchmark's subsets), as `statrepro kld --limit` (None: its default, 32)."""
    control: bool = False
    """Run A's environment a second time as the A/A control A' (stored as ``<A name>.control``: same
    configuration and seeds, its own run-to-run nondeterminism) and set A vs A' beside A vs B: flip rates, their
    excess over the control and its exact test. It changes the A-vs-B verdict only through ``flip_margin``."""

    _kld_limit = field_validator("kld_limit")(_at_least(1))

    @field_validator("max_seeds")
    @classmethod
    def _sequential_budget(cls, value: int, info: ValidationInfo) -> int:
        if info.data.get("sequential") and value < 2:
            raise ValueError(f"must be at least 2, got {value}")
        return value

    @field_validator("block_size", "max_items", "first_seeds")
    @classmethod
    def _item_design(cls, value: Optional[int], info: ValidationInfo) -> Optional[int]:
        if value is not None and not info.data.get("sequential"):
            raise ValueError("item blocks are a sequential design: add --sequential")
        if value is not None and info.field_name != "block_size" and info.data.get("block_size") is None:
            raise ValueError("needs item blocks: add --block-size")
        if value is not None and value < (2 if info.field_name == "max_items" else 1):
            raise ValueError(f"must be at least {2 if info.field_name == 'max_items' else 1}, got {value}")
        return value

    @field_validator("order_seed", "new_design")
    @classmethod
    def _item_order(cls, value, info: ValidationInfo):
        if value not in (None, False) and info.data.get("block_size") is None:
            raise ValueError("needs item blocks: add --block-size")
        return value

    @field_validator("control")
    @classmethod
    def _fixed_design_control(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("sequential"):
            raise ValueError("the A/A control runs with the fixed design only, not with sequential")
        return value

    @model_validator(mode="after")
    def _evidence_gates(self) -> "CompareOptions":
        if self.sequential and self.rules().evidence_margins():
            raise ValueError("the evidence gates (--kl-margin, --top1-margin, --flip-margin) run with the fixed design only, not with --sequential")
        if self.flip_margin is not None and not self.control:
            raise ValueError("--flip-margin needs the A/A control: add --control")
        if self.kld_limit is not None and not self.kld:
            raise ValueError("--kld-limit sets the texts of the token KLD: add --kld")
        return self


def _explain(config_a, config_b, records_a, records_b, options: ExplainOptions, console: Console):
    from .diagnose.explain import explain

    return explain(
        config_a, config_b, records_a, records_b, limit=options.limit, epsilon=options.epsilon,
        shift_threshold=options.shift_threshold, top_k=options.top_k, max_tokens=options.max_tokens,
        step=lambda text: console.print(f"explain: {text}", markup=False, highlight=False),
    )


def explain_environments(
    env_a: str | Path, env_b: str | Path, run: RunOptions | None = None, options: ExplainOptions | None = None, *,
    json_path: str | Path | None = None, console: Console | None = None,
):
    """Explain a finished comparison of two environment files from the store: the moved items' exact prompts,
    token check, greedy replays and flip classes (``statrepro.diagnose.explain.ExplainResult``).

    ``run`` must select the runs the comparison made (its benchmarks, seeds and limit)."""
    from rich.console import Console

    from .atomic import atomic_write_text
    from .run.orchestrate import check_comparable, item_block_records, load_env_records
    from .run.store import ResultStore

    run, options = run or RunOptions(), options or ExplainOptions()
    console = console or Console(stderr=True)
    config_a, config_b = load_environments([Path(env_a), Path(env_b)], run)
    check_comparable(config_a, config_b)
    store = ResultStore(run.store, check_harness_files=True)  # explain reads the harness output the records point to
    if not store.root.is_dir():
        raise InputError("no such store directory", path=store.root)
    # A comparison run in item blocks (compare --sequential --block-size) stored its blocks, not full runs.
    blocks = item_block_records(config_a, config_b, store, run.data_dir)
    records = []
    for index, config in enumerate((config_a, config_b)):
        found = load_env_records(config, store) if blocks is None else blocks[index]
        if found.empty:
            raise InputError(
                f"the store holds no finished run of {config.name!r}; run compare first (with the same --limit, --seeds and --benchmarks)",
                path=store.root,
            )
        records.append(found)
    result = _explain(config_a, config_b, *records, options, console)
    if json_path is not None:
        atomic_write_text(json_path, json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n")
    return result


def _analysis_options(options: VerdictOptions, **extra):
    from .analysis import AnalysisOptions

    return AnalysisOptions(rules=options.rules(), rng_seed=options.rng_seed, **extra)


def _doctor(a: Path, b: Path) -> dict | None:
    """The doctor's factor diff for the report, when both inputs are sources it can read."""
    from .diagnose.doctor import compare_sources

    try:
        return compare_sources(a, b).to_dict()
    except InputError:
        return None


def write_ci_outputs(verdict, *, junit: str | Path | None = None, github: bool = False) -> None:
    """What CI systems read, from a verdict JSON: the JUnit file, and with ``github`` the annotations (stdout) and
    the job summary ($GITHUB_STEP_SUMMARY); what was skipped is one note on stderr (``statrepro.report.ci``)."""
    if junit is None and not github:
        return
    from .report.ci import write_ci_outputs as write

    for note in write(verdict, junit=junit, github=github):
        print(f"note: {note}", file=sys.stderr)


def _write_outputs(analysis, json_path, report, *, argv, junit=None, github=False, **report_parts) -> None:
    """The JSON verdict, the report directory (with explain.json when an explanation is given) and the CI outputs."""
    from .atomic import atomic_write_text

    verdict = analysis.to_json()
    if json_path is not None:
        atomic_write_text(json_path, verdict.model_dump_json(indent=2))
    if report is not None:
        from .report import write_report

        write_report(report, analysis, argv=argv, **report_parts)
    write_ci_outputs(verdict, junit=junit, github=github)


def analyze(
    a: str | Path,
    b: str | Path,
    options: AnalyzeOptions | None = None,
    *,
    json_path: str | Path | None = None,
    report: str | Path | None = None,
    argv: list[str] | None = None,
    control: str | Path | None = None,
    junit: str | Path | None = None,
    github: bool = False,
) -> Analysis:
    """Compare two existing result sets (lm-eval output dirs, evalscope work dirs, ...) item by item.

    ``json_path`` receives the versioned JSON verdict, ``report`` a directory with report.html, report.md
    and verdict.json (``argv`` is the command line shown in its provenance). ``control`` is a third result set
    from A's environment (the A/A control A'), set beside A vs B without changing its verdict. ``junit`` receives
    a JUnit XML file, ``github`` adds GitHub Actions annotations and a job summary (``write_ci_outputs``).
    """
    from .analysis import analyze as analyze_records
    from .harness import load_side

    options = options or AnalyzeOptions()
    if options.flip_margin is not None and control is None:
        raise InputError("needs the A/A control: add --control DIR", key="--flip-margin")
    a, b = Path(a), Path(b)
    records_a = load_side(a, metric_overrides=options.metric_overrides)
    records_b = load_side(b, metric_overrides=options.metric_overrides)
    analysis_options = _analysis_options(
        options,
        unpaired="intersect" if options.intersect else "error",
        seed_level_bootstrap=options.seed_level,
    )
    inputs = {"a": str(a), "b": str(b)}
    records_control = None
    if control is not None:
        records_control = load_side(Path(control), metric_overrides=options.metric_overrides)
        inputs["control"] = str(control)
    analysis = analyze_records(records_a, records_b, analysis_options, inputs=inputs, records_control=records_control)
    _write_outputs(analysis, json_path, report, argv=argv or sys.argv, junit=junit, github=github, records_a=records_a,
                   records_b=records_b, doctor=_doctor(a, b))
    return analysis


def load_environments(paths: list[Path], options: RunOptions):
    """The environment files with the run options applied; their names must differ (they key the store)."""
    from .envfile import load_env
    from .run.plan import effective_env

    envs = [effective_env(load_env(path), benchmarks=options.benchmarks, seeds=options.seeds, limit=options.limit) for path in paths]
    first_path: dict[str, Path] = {}
    for path, env in zip(paths, envs):
        if env.name in first_path:
            raise InputError(
                f"two environments share the name {env.name!r} (also {first_path[env.name]}); names key the store",
                path=path, key="name",
            )
        first_path[env.name] = path
    return envs


def run_environment_files(env_files: list[str | Path], options: RunOptions | None = None, *, console: Console | None = None):
    """Run every missing (environment, benchmark, seed) job of ``env_files`` into the store; return the RunSummary."""
    from .run.orchestrate import get_executor, run_environments
    from .run.store import ResultStore

    options = options or RunOptions()
    envs = load_environments([Path(path) for path in env_files], options)
    store = ResultStore(options.store)
    with store.locked(wait=options.wait):
        return run_environments(envs, store, get_executor(options.executor, ray_address=options.ray_address),
                                data_dir=options.data_dir, console=console)


def compare_environments(
    env_a: str | Path,
    env_b: str | Path,
    options: CompareOptions | None = None,
    *,
    json_path: str | Path | None = None,
    report: str | Path | None = None,
    argv: list[str] | None = None,
    console: Console | None = None,
    junit: str | Path | None = None,
    github: bool = False,
) -> Analysis:
    """Run whatever is missing for both environment files, then decide whether B still scores like A.

    Plans the (environment, benchmark, seed) jobs, locks the store, runs the missing ones (or sequential
    rounds), loads and analyses the records, and writes the JSON verdict, the report and the CI outputs
    (``junit``, ``github``: see ``analyze``) when asked. Progress goes to ``console`` (stderr by default).
    """
    from rich.console import Console

    from .analysis import analyze as analyze_records
    from .run.orchestrate import check_comparable, env_manifest, get_executor, load_env_records, run_environments
    from .run.plan import control_env
    from .run.store import ResultStore

    options = options or CompareOptions()
    console = console or Console(stderr=True)
    env_a, env_b = Path(env_a), Path(env_b)
    config_a, config_b = load_environments([env_a, env_b], options)
    check_comparable(config_a, config_b)
    _check_kld_kinds(options, config_a, config_b, (env_a, env_b))
    config_control = control_env(config_a) if options.control else None
    if config_control is not None and config_control.name == config_b.name:
        raise InputError(f"B is named {config_b.name!r}, the name of A's control; names key the store", key="name")
    store = ResultStore(options.store)
    executor = get_executor(options.executor, ray_address=options.ray_address)
    if any(spec.limit for spec in config_a.benchmarks.values()):
        console.print("[yellow]note:[/] limited item counts make a smoke test; sign-off needs the full sets")
    sequential_result = None
    preregistration = {}
    with store.locked(wait=options.wait):
        rules = options.rules()
        if options.sequential and options.block_size is not None:
            from .run.orchestrate import run_item_sequential
            from .run.preregistration import registry_path

            sequential_result, records_a, records_b, registration = run_item_sequential(
                config_a, config_b, store, executor, rules, block_size=options.block_size, max_items=options.max_items,
                order_seed=options.order_seed, registry=registry_path(env_a, config_a, config_b),
                new_design=options.new_design, first_seeds=options.first_seeds, data_dir=options.data_dir, console=console,
            )
            preregistration = registration.to_json()
        elif options.sequential:
            from .run.orchestrate import run_sequential
            from .stats.looks import SequentialDesign

            design = SequentialDesign(max_rounds=options.max_seeds, rules=rules)
            sequential_result, records_a, records_b = run_sequential(
                config_a, config_b, store, executor, design, data_dir=options.data_dir, console=console
            )
        else:
            envs = [config_a, config_b] + ([config_control] if config_control is not None else [])
            summary = run_environments(envs, store, executor, data_dir=options.data_dir, console=console)
            console.print(summary.summary())
            records_a = load_env_records(config_a, store)
            records_b = load_env_records(config_b, store)
    records_control = load_env_records(config_control, store) if config_control is not None else None
    if records_control is not None and records_control.empty:
        raise InputError("no finished runs of the control A'; see the failures above", path=store.root)
    if records_a.empty or records_b.empty:
        raise InputError("no finished runs on one side; see the failures above", path=store.root)
    # Failed items are missing, not wrong: the verdict counts them.
    inputs = {"a": str(env_a), "b": str(env_b)} | ({"control": config_control.name} if config_control is not None else {})
    analysis = analyze_records(
        records_a, records_b, _analysis_options(options, unpaired="missing"), inputs=inputs, records_control=records_control
    )
    if sequential_result is not None:
        from .stats.sequential import sequential_decision

        # The sequential looks decided under the one rule set (stats.verdict.classify) with alpha spent over
        # rounds; the fixed analysis of the same data supplies the statistics shown beside them.
        analysis = replace(
            analysis,
            decision=sequential_decision(analysis.decision, sequential_result),
            sequential=sequential_result.to_json() | preregistration,
        )
        console.print(sequential_result.summary(), markup=False, highlight=False, soft_wrap=True)
    _check_prompt_tokens(analysis, config_a, config_b, records_a, records_b, console)
    explained = _explain(config_a, config_b, records_a, records_b, options.explain, console) if options.explain else None
    analysis = replace(analysis, token_kld=_token_kld(config_a, config_b, (env_a, env_b), options, console)) if options.kld else analysis
    manifests = {side: env_manifest(config, store) for side, config in (("A", config_a), ("B", config_b))}
    _write_outputs(
        analysis, json_path, report, argv=argv or sys.argv, junit=junit, github=github, records_a=records_a, records_b=records_b,
        manifests={side: manifest for side, manifest in manifests.items() if manifest}, doctor=_doctor(env_a, env_b),
        explain=explained.to_dict() if explained else None,
    )
    return analysis if explained is None else replace(analysis, explain=explained)


def _check_kld_kinds(options: CompareOptions, config_a, config_b, paths: tuple[Path, Path]) -> None:
    """With --kld, refuse a pair of engine kinds that give no next-token distributions before anything runs."""
    if options.kld:
        from .diagnose.kld import token_kld_path

        token_kld_path(config_a, config_b, paths)


def _token_kld(config_a, config_b, paths: tuple[Path, Path], options: CompareOptions, console: Console) -> dict:
    """compare --kld: the token KLD of B from A on A's default text set (statrepro kld's), as its to_dict."""
    from .diagnose.common import progress_bar
    from .diagnose.kld import compare_token_distributions, text_set

    texts = text_set(config_a, limit=options.kld_limit, data_dir=options.data_dir)
    console.print(f"token KLD of {config_b.name} from {config_a.name} on {len(texts.texts)} texts ({texts.source})")
    with progress_bar() as progress:
        return compare_token_distributions(config_a, config_b, texts, sources=paths, progress=progress).to_dict()


PROMPT_TOKEN_CHECKS = 50  # items whose prompt tokens compare checks when their hashes differ


def _check_prompt_tokens(analysis, config_a, config_b, records_a, records_b, console: Console) -> None:
    """Where prompt hashes differ, say whether the tokens the engines ran differ (and where) or only the hashes.

    The hashes cover what each harness logged (rendered text in-process, messages for a chat endpoint), so they
    differ across engines even when the tokens are the same."""
    from .diagnose.explain import sent_prompts_of, summarize_token_checks, token_checks

    for index, difference in enumerate(analysis.pairing.config_differences):
        if difference.factor != "prompt_hash":
            continue
        part_a = records_a[records_a["benchmark"] == difference.benchmark]
        part_b = records_b[records_b["benchmark"] == difference.benchmark]
        hashes = part_a.drop_duplicates("item_key").merge(part_b.drop_duplicates("item_key"), on="item_key", suffixes=("_a", "_b"))
        keys = list(hashes.loc[hashes["prompt_hash_a"] != hashes["prompt_hash_b"], "item_key"][:PROMPT_TOKEN_CHECKS])
        try:
            checks = token_checks(config_a, config_b, sent_prompts_of(config_a, part_a, set(keys)),
                                  sent_prompts_of(config_b, part_b, set(keys)), keys)
        except InputError as error:
            console.print(f"[yellow]note:[/] prompt token check skipped: {error}")
            continue
        if checks:
            tokens = summarize_token_checks(checks).summary()
            analysis.pairing.config_differences[index] = difference.model_copy(update={"detail": f"{difference.detail}; {tokens}"})



def verdict_json_schema() -> dict:
    """The JSON Schema of the verdict file that ``json_path`` receives (its schema_version is in it)."""
    from .verdict_schema import VerdictJson

    return VerdictJson.model_json_schema()
