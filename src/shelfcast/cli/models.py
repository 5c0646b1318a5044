"""`shelfcast models list | show | promote | rollback`: the model registry (MLflow)."""

from __future__ import annotations

from typing import Annotated

import typer

import shelfcast.cli.output as out
from shelfcast.cli.options import WorkspaceOpt, parse_task, registry_settings

app = typer.Typer(help="Registered models: list, show, promote, roll back.", no_args_is_help=True)


@app.command("list")
def list_models(workspace: WorkspaceOpt = None) -> None:
    """Every version of the demand and stockout models, with aliases and gate results."""
    from shelfcast.io.registry import MODEL_NAMES, Registry

    registry = Registry(registry_settings(workspace))
    registry.reap()  # runs a killed process left RUNNING are FAILED
    versions = [v for task in MODEL_NAMES for v in registry.versions(task)]
    if not versions:
        out.console.print("no registered models; run `shelfcast train` first")
        return
    out.versions_table(f"Registered models ({registry.uri})", versions)


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="demand, stockout or the registered name (shelfcast-demand).")],
    version: Annotated[str | None, typer.Option(help="Version.", show_default="the champion")] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """One version's aliases, gate tags and source."""
    from shelfcast.errors import ModelNotFoundError
    from shelfcast.io.registry import CHAMPION, Registry, task_of

    task = task_of(name)
    registry = Registry(registry_settings(workspace))
    info = registry.version(task, version) if version else registry.alias(task, CHAMPION)
    if info is None:
        raise ModelNotFoundError(f"{task} has no champion; pass --version (see `shelfcast models list`)")
    out.version_detail(info)


@app.command()
def promote(
    task: Annotated[str, typer.Option(help="demand or stockout.")],
    version: Annotated[str, typer.Option(help="Version to make champion.")],
    force: Annotated[bool, typer.Option(help="Promote even if the gates refuse it.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Make a version the champion if it passes the gates; the old champion becomes previous_champion."""
    from shelfcast.jobs.promote import promote_version

    report = promote_version(registry_settings(workspace), parse_task(task), version, force=force)
    before = f" (previous champion: v{report.previous})" if report.previous else ""
    out.console.print(f"{task} v{version} is the champion{before}; gates: {report.gate.reason}")


@app.command()
def rollback(
    task: Annotated[str, typer.Option(help="demand or stockout.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Make the previous champion the champion again."""
    from shelfcast.jobs.promote import rollback as run_rollback

    restored, demoted = run_rollback(registry_settings(workspace), parse_task(task))
    was = f"; v{demoted.version} no longer has an alias" if demoted else ""
    out.console.print(f"{task} v{restored.version} is the champion again{was}")
