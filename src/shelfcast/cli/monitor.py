"""`shelfcast monitor`: drift of each champion's inputs and outputs, and its live accuracy."""

from __future__ import annotations

import datetime as dt
import sys
from typing import TYPE_CHECKING, Annotated

import typer

import shelfcast.cli.output as out
from shelfcast.cli.options import RenamedFlags, WorkspaceOpt, quiet_mlflow, settings, writable_workspace

if TYPE_CHECKING:
    from shelfcast.monitoring.summary import MonitorReport

app = typer.Typer()
TOP = 5


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def monitor_summary(report: MonitorReport) -> None:
    """Per task: the drift verdict with the top drifted features, live against backtest, and where the report is."""
    rows = []
    for task, m in report.tasks.items():
        if m.model_version is None:
            rows.append({"task": task, "champion": "-", "data drift": "; ".join(m.notes)})
            continue
        drifted = ", ".join(m.drifted_features[:TOP]) + (" ..." if len(m.drifted_features) > TOP else "")
        verdict = f"ALARM: {drifted}" if m.drift_alarm else ("no reference" if m.status == "no_reference" else "none")
        rows.append(
            {
                "task": task,
                "champion": f"v{m.model_version}",
                "data drift": verdict,
                "prediction drift": "ALARM" if m.prediction_drift_alarm else "none",
                f"live ({m.live_metric})": _fmt(m.live_value),
                "backtest": _fmt(m.backtest_value),
                "evaluated": f"{m.evaluated_rows:,} rows / {m.evaluated_days} days",
                "accuracy": "DEGRADED" if m.degraded else ("ok" if m.live_value is not None else "not measured yet"),
            }
        )
    out.frame_table(f"Monitoring: {report.window_days} days of origins up to {report.data_last_date}", rows)
    for task, m in report.tasks.items():
        for note in m.notes if m.model_version is not None else []:
            out.console.print(f"{task}: {note}")
    for note in report.notes:
        out.console.print(note)
    out.console.print(f"report: {report.report_path}")
    for path in report.evidently_paths:
        out.console.print(f"Evidently: {path}")
    out.console.print(f"summary: {report.summary_path} (latest: {report.latest_path})")
    if report.mlflow_run_id:
        out.console.print(f"MLflow run {report.mlflow_run_id} in experiment shelfcast-monitoring")
    out.console.print("[bold red]ALERT[/]" if report.alert else "no alert")


@app.command(cls=RenamedFlags)
def monitor(
    workspace: WorkspaceOpt = None,
    lookback_days: Annotated[
        int | None,
        typer.Option(
            min=1, help="Days of origins in the current window.", show_default="setting monitor.lookback_days"
        ),
    ] = None,
    fail_on_alert: Annotated[
        bool, typer.Option(help="Exit with code 2 on a drift alarm or degraded live accuracy (for schedulers).")
    ] = False,
    evidently: Annotated[
        bool | None,
        typer.Option(
            "--evidently/--no-evidently",
            help="Also write Evidently's report per task (the `reports` extra).",
            show_default="setting monitor.evidently",
        ),
    ] = None,
) -> None:
    """Data and prediction drift of the champions against their training window, and their live accuracy."""
    cfg = writable_workspace(
        settings(workspace=workspace, monitor=None if evidently is None else {"evidently": evidently})
    )
    quiet_mlflow()
    from shelfcast.jobs.monitor import run_monitor

    with out.status("monitoring"):
        report = run_monitor(cfg, now=dt.datetime.now(dt.UTC), lookback_days=lookback_days)
    monitor_summary(report)
    if fail_on_alert and report.alert:
        sys.exit(2)
