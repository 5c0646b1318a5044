"""The `shelfcast` command line: the root app, joining one leaf app per group of commands.

Each leaf module owns its Typer app and never imports this one. Leaves added without a name put their commands at
the top level (`shelfcast ingest`); named ones are groups (`shelfcast models list`). The order of the `add_typer`
calls is the order of `shelfcast --help`.
"""

from __future__ import annotations

from typing import Annotated

import typer

import shelfcast.cli.output as out
from shelfcast.cli import (
    dashboard,
    data,
    demo,
    modelling,
    models,
    monitor,
    pipeline,
    policy,
    retrain,
    serve,
    stack,
    stream,
)
from shelfcast.cli.options import VerboseOpt, run_app, set_verbose

app = typer.Typer(
    name="shelfcast",
    help="Demand forecasts, stockout risk and reorder advice for retail chains.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data.app)
app.add_typer(demo.app)
app.add_typer(modelling.app)
app.add_typer(policy.app)
app.add_typer(monitor.app)
app.add_typer(retrain.app)
app.add_typer(serve.app)
app.add_typer(dashboard.app)
app.add_typer(models.app, name="models")
app.add_typer(pipeline.app, name="pipeline")
app.add_typer(stream.app, name="stream")
app.add_typer(stack.app, name="stack")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.console.print(f"shelfcast {version('shelfcast')}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    verbose: VerboseOpt = False,
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    set_verbose(verbose)


def main() -> None:
    """Entry point: user mistakes become one line on stderr and exit code 1."""
    run_app(app)
