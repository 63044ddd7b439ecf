"""The statrepro command line. It only parses and prints: every command calls one function of the Python API
(statrepro.api, api_diagnose, api_bench); heavy imports happen inside commands, so --help stays fast.

One module per command family (evaluate, diagnose, bench, schema), the shared options and the bad-input
contract in common.py, the rich output in render.py. This module assembles the app.
"""

from __future__ import annotations

import typer

from . import baseline, diagnose, evaluate, plan, schema
from .view import view
from .bench import bench_app
from .store import store_app

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Paired, calibrated sign-off that a model still scores the same after a hardware, engine or precision change.",
    pretty_exceptions_enable=False,
)

# Registered here, in the order `statrepro --help` lists them; the groups (bench, layers) follow the commands.
for command in (
    evaluate.analyze,
    schema.schema,
    evaluate.run,
    evaluate.compare,
    baseline.gate,
    diagnose.explain,
    diagnose.probe,
    diagnose.logprobs,
    diagnose.kld,
    diagnose.template,
    diagnose.doctor,
    view,
    plan.plan,
):
    app.command()(command)
app.add_typer(bench_app, name="bench")
app.add_typer(baseline.baseline_app, name="baseline")
app.add_typer(diagnose.layers_app, name="layers")
app.add_typer(store_app, name="store")
