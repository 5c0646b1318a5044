"""`shelfcast retrain` and `shelfcast events`: the monitoring policy's decisions, carried out and listed."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer

import shelfcast.cli.output as out
from shelfcast.cli.options import (
    RenamedFlags,
    WorkspaceOpt,
    existing_workspace,
    quiet_mlflow,
    settings,
    writable_workspace,
)
from shelfcast.errors import ConfigError
from shelfcast.types import TASKS, Task

if TYPE_CHECKING:
    from shelfcast.workflows.retrain import RetrainReport

app = typer.Typer()
TaskOpt = Annotated[str, typer.Option(help="demand, stockout or all.")]


def tasks_of(value: str) -> tuple[Task, ...]:
    if value == "all":
        return TASKS
    if value not in ("demand", "stockout"):
        raise ConfigError(f"`--task` must be demand, stockout or all, got {value!r}")
    return (value,)  # type: ignore[return-value]


def retrain_summary(report: RetrainReport) -> None:
    rows = [
        {"task": o.decision.task, "decision": o.decision.action, "why": o.decision.reason, "outcome": o.outcome}
        for o in report.outcomes
    ]
    out.frame_table(f"Decisions at {report.at:%Y-%m-%d %H:%M} UTC", rows)
    for note in report.notes:
        out.console.print(note)


@app.command(cls=RenamedFlags)
def retrain(
    workspace: WorkspaceOpt = None,
    task: TaskOpt = "all",
    force: Annotated[bool, typer.Option(help="Retrain even when the policy finds the champion healthy.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Monitor and decide, but change nothing.")] = False,
    lookback_days: Annotated[
        int | None,
        typer.Option(min=1, help="Days of origins monitoring looks at.", show_default="setting monitor.lookback_days"),
    ] = None,
) -> None:
    """Monitor, then let the policy decide per model: ok, retrain (through the gates), roll back or fall back."""
    chosen = tasks_of(task)
    cfg = writable_workspace(settings(workspace=workspace))
    quiet_mlflow()
    from shelfcast.workflows.retrain import act_on_monitoring

    with out.status("monitoring and deciding"):
        report = act_on_monitoring(
            cfg, now=dt.datetime.now(dt.UTC), tasks=chosen, force=force, dry_run=dry_run, lookback_days=lookback_days
        )
    retrain_summary(report)


@app.command()
def events(
    workspace: WorkspaceOpt = None,
    limit: Annotated[int, typer.Option(min=1, help="Most recent events shown.")] = 20,
) -> None:
    """The policy's decisions so far, newest first: what it saw, what it did, what came of it."""
    import polars as pl

    from shelfcast.io.policy_log import read_events, read_state

    cfg = existing_workspace(settings(workspace=workspace))
    frame = read_events(cfg).sort("at", descending=True).head(limit)
    shown = frame.select(
        pl.col("at").dt.strftime("%Y-%m-%d %H:%M"),
        "task",
        "action",
        "champion_version",
        "outcome",
        "reasons",
        "trigger",
    )
    rows = shown.rename({"champion_version": "champion"}).to_dicts()
    out.frame_table(f"Policy events in {cfg.workspace / 'monitoring'}", rows)
    state = read_state(cfg)
    for held in state.fallback.values():
        out.console.print(f"[yellow]{held.task} in fallback since {held.since}[/]: {held.reason}")
    out.console.print(f"retrains so far: {state.retrains} (last {state.last_retrain_at or 'never'})")
