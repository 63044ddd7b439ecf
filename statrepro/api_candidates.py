"""One reference against many candidates: ``compare_candidates`` (``statrepro compare REF CAND1 CAND2 ...``).

The reference runs once (the store keeps its runs; every candidate pairs with them), each candidate gets its own
verdict under the same rules, and the candidates are cleared as a fixed sequence in the order given, from the
safest to the most aggressive (``stats.selection``), so that "ship the smallest that passes" ships one truly
beyond the margin with probability at most alpha. The exit code is the worst candidate's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .api import CompareOptions, compare_environments, load_environments, run_environment_files, write_ci_outputs
from .errors import InputError

if TYPE_CHECKING:
    from rich.console import Console

    from .analysis import Analysis
    from .stats.selection import Selection
    from .verdict_schema import VerdictJson


@dataclass(frozen=True)
class CandidatesAnalysis:
    """Each candidate's comparison with the reference, in the pre-registered order, and the selection."""

    reference: str
    inputs: dict[str, str]  # candidate name -> its environment file
    analyses: dict[str, Analysis]  # candidate name -> reference vs candidate
    selection: Selection
    weights: dict[str, dict]  # candidate name -> its served weights as its run manifest records them ({}: unknown)

    @property
    def worst(self) -> str:
        """The candidate whose verdict is the worst (the first such in the order)."""
        from .stats.verdict import worst

        verdict = worst([analysis.decision.verdict for analysis in self.analyses.values()])
        return next(name for name, analysis in self.analyses.items() if analysis.decision.verdict == verdict)

    @property
    def exit_code(self) -> int:
        return self.analyses[self.worst].decision.exit_code

    def to_json(self) -> VerdictJson:
        """The worst candidate's verdict JSON with every candidate (``candidates``) and the ``selection``."""
        from .verdict_schema import CandidateJson, RecoveryJson, SelectionJson

        def finite(value: float) -> float | None:
            return float(value) if math.isfinite(value) else None

        candidates = []
        for name, analysis in self.analyses.items():
            recovery = {}
            for item in analysis.decision.benchmarks:
                c = item.comparison
                choices = analysis.choices.get(item.name)
                recovery[item.name] = RecoveryJson(
                    ratio=finite(c.score_b / c.score_a) if c.score_a else None,
                    ratio_ci=[finite(1 + bound) for bound in c.bootstrap.rel_diff_ci],
                    flip_rate=c.flips.rate,
                    flip_rate_expected=c.flips.expected_rate,
                    choice_kl=finite(choices.kl.mean) if choices else None,
                    choice_kl_ci=[finite(bound) for bound in choices.kl.ci] if choices else None,
                    top_changed=choices.top_changed.mean if choices else None,
                )
            weights = self.weights.get(name, {})
            candidates.append(CandidateJson(
                name=name, input=self.inputs[name], verdict=analysis.decision.verdict,
                exit_code=analysis.decision.exit_code, cleared=name in self.selection.cleared, recovery=recovery,
                file_type=weights.get("file_type"), size_bytes=weights.get("size_bytes"), comparison=analysis.to_json(),
            ))
        selection = SelectionJson(
            procedure=self.selection.procedure, order=list(self.selection.order), cleared=list(self.selection.cleared),
            shipped=self.selection.shipped, stopped_at=self.selection.stopped_at,
        )
        top = self.analyses[self.worst].to_json()
        return top.model_copy(update={"candidates": candidates, "selection": selection})


def _same_configuration(reference, candidate) -> bool:
    """Whether two loaded environments differ in nothing but their names (an A/A, whatever the user meant)."""
    return reference.model_dump(exclude={"name"}) == candidate.model_dump(exclude={"name"})


def _served_weights(config, options: CompareOptions) -> dict:
    """The candidate's served weights as its run manifest recorded them (type, size), {} where none is recorded."""
    from .run.orchestrate import env_manifest
    from .run.store import ResultStore

    weights = dict(((env_manifest(config, ResultStore(options.store)) or {}).get("endpoint") or {}).get("weights") or {})
    path = Path(weights.get("path", ""))
    if weights and weights.get("size_bytes") is None and path.is_file():  # manifests written before sizes were recorded
        weights["size_bytes"] = path.stat().st_size
    return weights


def compare_candidates(
    reference: str | Path,
    candidates: list[str | Path],
    options: CompareOptions | None = None,
    *,
    json_path: str | Path | None = None,
    report: str | Path | None = None,
    argv: list[str] | None = None,
    console: Console | None = None,
    junit: str | Path | None = None,
    github: bool = False,
) -> CandidatesAnalysis:
    """Compare the reference environment file with each candidate's, in the order given (the safest first), under
    one set of options; clear the candidates as a fixed sequence. ``report`` gets one sub-directory per candidate
    (``<report>/<candidate name>/``) and a summary, ``json_path`` the worst candidate's verdict with every candidate
    and the selection; ``junit`` and ``github`` one test case and one summary row per candidate and benchmark."""
    from rich.console import Console

    from .atomic import atomic_write_text
    from .stats.selection import select_in_sequence

    options = options or CompareOptions()
    console = console or Console(stderr=True)
    if len(candidates) < 2:
        raise InputError("compare_candidates needs at least two candidates; compare_environments takes one")
    if options.sequential or options.control or options.explain:
        raise InputError("several candidates run the fixed design only: drop --sequential, --control and --explain")
    if options.kld:
        raise InputError("--kld compares one candidate with the reference; run `statrepro kld REF CAND` per candidate", key="--kld")
    paths = [Path(reference)] + [Path(candidate) for candidate in candidates]
    configs = load_environments(paths, options)  # one line when two of them share a name
    from .run.orchestrate import check_comparable

    for path, config in zip(paths[1:], configs[1:]):
        try:
            check_comparable(configs[0], config)
        except InputError as error:  # with several candidates, say which one cannot pair with the reference
            raise InputError(error.message, path=path, key=error.key) from None
        if _same_configuration(configs[0], config):
            console.print(f"[yellow]warning:[/] {path}: configured exactly as the reference; this candidate is an A/A check")
    # Every job at once (the reference's once), so the executor schedules them together; each comparison below
    # then finds its runs in the store.
    console.print(run_environment_files(paths, options, console=console).summary())
    analyses, inputs = {}, {}
    for path, config in zip(paths[1:], configs[1:]):
        console.print(f"candidate {config.name}: {path}", markup=False, highlight=False)
        analyses[config.name] = compare_environments(
            paths[0], path, options, report=Path(report) / config.name if report is not None else None,
            argv=argv, console=console,
        )
        inputs[config.name] = str(path)
    names = list(analyses)
    result = CandidatesAnalysis(
        reference=configs[0].name, inputs=inputs, analyses=analyses,
        selection=select_in_sequence(names, [analyses[name].decision.verdict for name in names]),
        weights={config.name: _served_weights(config, options) for config in configs[1:]},
    )
    verdict = result.to_json()
    if json_path is not None:
        atomic_write_text(json_path, verdict.model_dump_json(indent=2))
    if report is not None:
        from .report.candidates import write_candidates_report

        write_candidates_report(Path(report), verdict)
    write_ci_outputs(verdict, junit=junit, github=github)
    return result
