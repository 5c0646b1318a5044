"""What monitoring saw, as data: per task (`TaskMonitor`) and per run (`MonitorReport`), with their JSON.

`<workspace>/monitoring/latest.json` is `MonitorReport.to_json()`; the
service reads its gauges from it, so its keys (`SUMMARY_KEYS`, and
`TASK_KEYS` per task) are stable and `SCHEMA_VERSION` changes when they do.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from shelfcast.monitoring.drift import FeatureDrift
from shelfcast.types import Task

SCHEMA_VERSION = 1
SUMMARY_KEYS = ("schema_version", "created_at", "window_days", "data_last_date", "alert", "mlflow_run_id", "tasks")
TASK_KEYS = (
    "status",
    "model_version",
    "notes",
    "drift_alarm",
    "drifted_features",
    "prediction_drift_alarm",
    "features",
    "prediction_drift",
    "reference_rows",
    "current_rows",
    "live_metric",
    "higher_is_better",
    "live_value",
    "backtest_value",
    "degraded",
    "evaluated_rows",
    "evaluated_days",
    "live_by_version",
    "rows_by_version",
    "live_extra",
    "live_relative",
    "backtest_relative",
    "relative_by_version",
    "accuracy_over_time",
)


@dataclass(frozen=True)
class TaskMonitor:
    """What monitoring saw for one task. `status`: ok, no_champion, sales_only or no_reference."""

    task: Task
    status: str
    model_version: str | None = None
    notes: list[str] = field(default_factory=list)
    drift_alarm: bool = False
    drifted_features: list[str] = field(default_factory=list)
    prediction_drift_alarm: bool = False
    features: list[FeatureDrift] = field(default_factory=list)
    prediction_drift: FeatureDrift | None = None
    reference_rows: int = 0
    current_rows: int = 0
    live_metric: str = ""
    higher_is_better: bool = False
    live_value: float | None = None
    backtest_value: float | None = None
    degraded: bool = False
    evaluated_rows: int = 0
    evaluated_days: int = 0
    live_by_version: dict[str, float] = field(default_factory=dict)  # version -> live metric (all versions seen)
    rows_by_version: dict[str, int] = field(default_factory=dict)
    live_extra: dict[str, float] = field(default_factory=dict)  # the champion's MAPE (%) or F1
    # Demand: WAPE over the seasonal naive's WAPE on the same rows (live), and the same ratio in the backtest.
    live_relative: float | None = None
    backtest_relative: float | None = None
    relative_by_version: dict[str, float] = field(default_factory=dict)
    accuracy_over_time: list[dict[str, Any]] = field(default_factory=list)  # date, model_version, value, rows

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("task")
        out["features"] = {f.feature: _drift_json(f) for f in self.features}
        out["prediction_drift"] = _drift_json(self.prediction_drift) if self.prediction_drift else None
        return out


@dataclass(frozen=True)
class MonitorReport:
    created_at: dt.datetime
    window_days: int
    data_last_date: dt.date
    tasks: dict[Task, TaskMonitor]
    folder: Path
    summary_path: Path
    report_path: Path
    latest_path: Path
    mlflow_run_id: str | None
    notes: list[str] = field(default_factory=list)
    # Kept for the HTML report and the CLI, not in the JSON.
    windows: dict[Task, tuple[pl.DataFrame, pl.DataFrame]] = field(default_factory=dict, repr=False)
    evidently_paths: list[Path] = field(default_factory=list)  # with the `reports` extra: Evidently's own reports

    @property
    def alert(self) -> bool:
        """Any drift alarm (features or predictions) or degraded live accuracy."""
        return any(t.drift_alarm or t.prediction_drift_alarm or t.degraded for t in self.tasks.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "created_at": self.created_at.isoformat(),
            "window_days": self.window_days,
            "data_last_date": self.data_last_date.isoformat(),
            "alert": self.alert,
            "mlflow_run_id": self.mlflow_run_id,
            "tasks": {task: monitor.to_json() for task, monitor in self.tasks.items()},
        }


def _drift_json(f: FeatureDrift) -> dict[str, Any]:
    out = asdict(f)
    out.pop("feature")
    return out


def run_metrics(report: MonitorReport) -> dict[str, float]:
    """Flat MLflow metrics: drift scores per feature, alarms, live and backtest figures per task."""
    out: dict[str, float] = {}
    for task, m in report.tasks.items():
        if m.model_version is None:
            continue
        out[f"{task}.drift_alarm"] = float(m.drift_alarm)
        out[f"{task}.drifted_features"] = float(len(m.drifted_features))
        out[f"{task}.prediction_drift_alarm"] = float(m.prediction_drift_alarm)
        out[f"{task}.degraded"] = float(m.degraded)
        out[f"{task}.evaluated_rows"] = float(m.evaluated_rows)
        for f in m.features:
            out[f"{task}.{'psi' if f.kind == 'numeric' else 'js'}.{f.feature}"] = f.effect
        if m.prediction_drift is not None:
            out[f"{task}.psi.prediction"] = m.prediction_drift.effect
        if m.live_value is not None:
            out[f"{task}.live.{m.live_metric}"] = m.live_value
        if m.backtest_value is not None:
            out[f"{task}.backtest.{m.live_metric}"] = m.backtest_value
    return out
