"""`shelfcast demo`: the whole loop on a simulated chain, with no server."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

import shelfcast.cli.output as out
from shelfcast.cli.options import WorkspaceOpt, model, now, quiet_mlflow, settings, writable_workspace

app = typer.Typer()


@app.command()
def demo(
    workspace: WorkspaceOpt = None,
    stores: Annotated[int, typer.Option(help="Number of simulated stores.")] = 10,
    items: Annotated[int, typer.Option(help="Number of simulated items.")] = 50,
    days: Annotated[int, typer.Option(help="Number of simulated days.")] = 730,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    models: Annotated[
        bool, typer.Option("--models/--no-models", help="Train, promote and score, or only simulate and ingest.")
    ] = True,
) -> None:
    """The whole loop on a simulated chain, with no server: simulate, ingest, validate, backtest, train, register,
    promote, score the next 14 days, summarise."""
    from shelfcast.data.simulator import SimConfig

    cfg = writable_workspace(settings(workspace=workspace), create=True)
    config = model(SimConfig, {"n_stores": stores, "n_items": items, "n_days": days, "seed": seed})
    if models:
        quiet_mlflow()
    from shelfcast.workflows.demo import run_demo

    with out.progress_bar("demo") as progress:
        report = run_demo(cfg, config, today=dt.date.today(), now=now(), models=models, progress=progress)
    out.demo_summary(report)
    if not report.validation.ok:
        raise typer.Exit(1)
