"""`shelfcast train` and `shelfcast models ...`: training runs and the model registry (MLflow)."""

from __future__ import annotations

from typing import Annotated

import typer

from shelfcast import console as out
from shelfcast.cli import WorkspaceOpt, app, settings
from shelfcast.errors import ConfigError
from shelfcast.types import Task

models_app = typer.Typer(help="Registered models: list, show, promote, roll back.", no_args_is_help=True)
app.add_typer(models_app, name="models")


def _task(value: str) -> Task:
    if value not in ("demand", "stockout"):
        raise ConfigError(f"`--task` must be demand or stockout, got {value!r}")
    return value  # type: ignore[return-value]


@app.command()
def train(
    task: Annotated[str, typer.Option(help="demand or stockout.")] = "demand",
    windows: Annotated[int, typer.Option(min=1, help="Backtest windows the gates compare on.")] = 3,
    horizon: Annotated[
        int | None, typer.Option(min=1, help="demand: steps ahead [default 28 days / 13 weeks].")
    ] = None,
    window: Annotated[int, typer.Option(min=1, help="stockout: days ahead the risk covers.")] = 7,
    min_hours: Annotated[
        float | None,
        typer.Option(
            help="stockout, hourly stock data (e.g. FreshRetailNet): hours out of stock (over 0, at most 24) "
            "that make a day a stockout; default: the whole day."
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Backtest, train on all data, log to MLflow, register a challenger and promote it if it passes the gates."""
    chosen = _task(task)
    if min_hours is not None and not 0 < min_hours <= 24:
        raise ConfigError(f"`--min-hours` must be in (0, 24], got {min_hours}")
    if min_hours is not None and chosen != "stockout":
        raise ConfigError("`--min-hours` only applies to --task stockout")
    # Imported after the checks: MLflow's import prints warnings that would come before a one-line error.
    from shelfcast.workflows.training import run_train

    cfg = settings(workspace=workspace)
    with out.progress_bar(f"train {task}") as progress:
        report = run_train(
            cfg, task=chosen, windows=windows, horizon=horizon, window=window, min_hours=min_hours, progress=progress
        )
    out.train_summary(report)


@models_app.command("list")
def list_models(workspace: WorkspaceOpt = None) -> None:
    """Every version of the demand and stockout models, with aliases and gate results."""
    from shelfcast.io.registry import MODEL_NAMES, Registry

    registry = Registry(settings(workspace=workspace))
    versions = [v for task in MODEL_NAMES for v in registry.versions(task)]
    if not versions:
        out.console.print("no registered models; run `shelfcast train` first")
        return
    out.versions_table(f"Registered models ({registry.uri})", versions)


@models_app.command()
def show(
    name: Annotated[str, typer.Argument(help="demand, stockout or the registered name (shelfcast-demand).")],
    version: Annotated[str | None, typer.Option(help="Version [default: the champion].")] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """One version's aliases, gate tags and source."""
    from shelfcast.errors import ModelNotFoundError
    from shelfcast.io.registry import CHAMPION, Registry, task_of

    task = task_of(name)
    registry = Registry(settings(workspace=workspace))
    info = registry.version(task, version) if version else registry.alias(task, CHAMPION)
    if info is None:
        raise ModelNotFoundError(f"{task} has no champion; pass --version (see `shelfcast models list`)")
    out.version_detail(info)


@models_app.command()
def promote(
    task: Annotated[str, typer.Option(help="demand or stockout.")],
    version: Annotated[str, typer.Option(help="Version to make champion.")],
    force: Annotated[bool, typer.Option(help="Promote even if the gates refuse it.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Make a version the champion if it passes the gates; the old champion becomes previous_champion."""
    from shelfcast.jobs.promote import promote_version

    report = promote_version(settings(workspace=workspace), _task(task), version, force=force)
    before = f" (previous champion: v{report.previous})" if report.previous else ""
    out.console.print(f"{task} v{version} is the champion{before}; gates: {report.gate.reason}")


@models_app.command()
def rollback(
    task: Annotated[str, typer.Option(help="demand or stockout.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Make the previous champion the champion again."""
    from shelfcast.jobs.promote import rollback as run_rollback

    restored, demoted = run_rollback(settings(workspace=workspace), _task(task))
    was = f"; v{demoted.version} no longer has an alias" if demoted else ""
    out.console.print(f"{task} v{restored.version} is the champion again{was}")
