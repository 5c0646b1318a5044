"""The reads of the pages for the people who run the models (Models, Monitoring, Data), cached, and their frames.

Each cached function takes the settings as `_settings` (not hashed: Streamlit
leaves out of the key every argument named with a leading underscore), where
it reads (the workspace or the tracking URI) and a stamp that changes with
what it reads: the MLflow store's file (embedded) or a 30-second clock (a
server, which has no cheap stamp), the monitoring folder's report names, the
quarantine file and the events file. Frames are shaped here (selects, joins,
sorts and labels), never modelled: the figures are the adapters' own.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import streamlit as st

from shelfcast.io.lake import QUARANTINE, Lake, file_stamp
from shelfcast.io.policy_log import monitoring_dir, read_events
from shelfcast.io.registry import ALIASES, PROMOTED_AT, ROLLED_BACK, Registry, VersionInfo
from shelfcast.io.tracking import CANDIDATE_PARAM, configured_uri, mlflow_dir
from shelfcast.models.gates import RULES
from shelfcast.settings import Settings
from shelfcast.types import TASKS, Task

SPINNER = False
SERVER_SECONDS = 30  # how long a registry on a server is trusted unchanged (it has no cheap stamp)
REPORT_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{6}$")  # jobs/monitor.py's folder names
GATE_PREFIX = "gate."

# Backtest metrics: the label (with its unit) of each shown; counts (rows, tp, fp, ...) are not shown.
METRICS: dict[str, str] = {
    "wape": "WAPE (share of units sold)",
    "mae": "MAE (units)",
    "rmse": "RMSE (units)",
    "bias": "bias (units, forecast - actual)",
    "mape": "MAPE (%)",
    "smape": "sMAPE (%)",
    "mase": "MASE (ratio to the in-sample naive)",
    "coverage_80": "p10-p90 coverage (share of days)",
    "pinball": "pinball loss (units)",
    "pr_auc": "PR-AUC (0-1)",
    "f1": "F1 (0-1)",
    "precision": "precision (share of alerts right)",
    "recall": "recall (share of stockouts caught)",
    "brier": "Brier score (0-1)",
    "alert_rate": "alert rate (share of series)",
}
HIGHER_IS_BETTER = frozenset({"pr_auc", "f1", "precision", "recall"})
# What "better" means where it is neither lower nor higher.
BEST: dict[str, str] = {"bias": "nearest 0 is best", "coverage_80": "nearest 0.80 is best", "alert_rate": ""}


def direction(metric: str) -> str:
    """How to read a metric's value: higher or lower is better, or where it is best."""
    if metric in BEST:
        return BEST[metric]
    return "higher is better" if metric in HIGHER_IS_BETTER else "lower is better"


# The metric of a report's `accuracy_over_time` per task (monitoring.accuracy: a day's WAPE; a day's F1 of the
# alerts, as a day has too few rows for a PR-AUC), and the backtest figure to draw beside it (None: not the same).
OVER_TIME_METRIC: dict[str, str] = {"demand": "wape", "stockout": "f1"}


# -- registry ----------------------------------------------------------------------------------------------------


def registry_stamp(settings: Settings) -> str | None:
    """What changes with the registry: its SQLite file in the workspace, else a 30 s clock; None when the
    workspace's own store was never made (nothing trained: no MLflow file is created by looking)."""
    uri = configured_uri(settings)
    embedded = mlflow_dir(settings) / "mlflow.db"
    if uri == f"sqlite:///{embedded}":
        return file_stamp(embedded) if embedded.exists() else None
    return f"clock:{int(time.time() // SERVER_SECONDS)}"


@st.cache_resource(max_entries=4, show_spinner=SPINNER)
def _registry(_settings: Settings, uri: str) -> Registry:
    return Registry(_settings)  # seconds (MLflow's import and client): made once per URI


@dataclass(frozen=True)
class TaskModels:
    """One task's versions (oldest first) and the aliased ones."""

    task: Task
    versions: list[VersionInfo]

    def aliased(self, alias: str) -> VersionInfo | None:
        return next((v for v in self.versions if alias in v.aliases), None)


def task_models(settings: Settings, stamp: str) -> dict[Task, TaskModels]:
    """Every task's versions with aliases and tags; TrackingError when the registry cannot be read."""
    return _task_models(settings, configured_uri(settings), stamp)


@st.cache_resource(max_entries=4, show_spinner=SPINNER)
def _task_models(_settings: Settings, uri: str, stamp: str) -> dict[Task, TaskModels]:
    registry = _registry(_settings, uri)
    return {task: TaskModels(task, registry.versions(task)) for task in TASKS}


def run_scores(settings: Settings, run_id: str) -> pl.DataFrame:
    """A training run's overall backtest scores: model, role (served, baseline, other), metric, value."""
    return _run_scores(settings, configured_uri(settings), run_id)


@st.cache_data(max_entries=32, show_spinner=SPINNER)
def _run_scores(_settings: Settings, uri: str, run_id: str) -> pl.DataFrame:
    # A run's metrics never change once logged: the run id is the stamp.
    run = _registry(_settings, uri).run(run_id)
    task = Task(run.data.tags.get("shelfcast.task", Task.DEMAND))
    return scores_frame(run.data.metrics, task=task, candidate=run.data.params.get(CANDIDATE_PARAM))


def scores_frame(metrics: Mapping[str, float], *, task: Task, candidate: str | None) -> pl.DataFrame:
    """`{metric}.{model}` run metrics (overall, not per window) as rows, with each model's role."""
    baselines = set(RULES[task].baselines)
    rows = []
    for key, value in metrics.items():
        metric, _, model = key.partition(".")
        if metric not in METRICS or not model or re.search(r"\.w\d+$", model):
            continue
        role = "served" if model == candidate else "baseline" if model in baselines else "other candidate"
        rows.append({"model": model, "role": role, "metric": metric, "value": float(value)})
    schema = pl.Schema({"model": pl.String(), "role": pl.String(), "metric": pl.String(), "value": pl.Float64()})
    return pl.DataFrame(rows, schema=schema).sort("metric", "value")


def gate_values(info: VersionInfo) -> dict[str, float]:
    """The gate's figures of a version (its `gate.<metric>` tags) as numbers."""
    out = {}
    for key, value in info.tags.items():
        name = key.removeprefix(GATE_PREFIX)
        if key.startswith(GATE_PREFIX) and name not in ("passed", "reason"):
            try:
                out[name] = float(value)
            except ValueError:
                continue
    return out


def gate_passed(info: VersionInfo) -> bool | None:
    raw = info.tags.get(f"{GATE_PREFIX}passed")
    return None if raw is None else raw == "true"


def versions_frame(models: TaskModels) -> pl.DataFrame:
    """The history of versions, newest first: version, created, aliases, gate passed and reason, promoted at."""
    rows = [
        {
            "version": int(v.version),
            "created": dt.datetime.fromtimestamp(v.created / 1000, dt.UTC),
            "aliases": ", ".join(a for a in ALIASES if a in v.aliases),
            "gate_passed": gate_passed(v),
            "gate_reason": v.tags.get(f"{GATE_PREFIX}reason"),
            "promoted_at": _instant(v.tags.get(PROMOTED_AT)),
            "rolled_back": v.tags.get(ROLLED_BACK) == "true",
            "run_id": v.run_id,
        }
        for v in models.versions
    ]
    schema = pl.Schema(
        {
            "version": pl.Int64(),
            "created": pl.Datetime("us", "UTC"),
            "aliases": pl.String(),
            "gate_passed": pl.Boolean(),
            "gate_reason": pl.String(),
            "promoted_at": pl.Datetime("us", "UTC"),
            "rolled_back": pl.Boolean(),
            "run_id": pl.String(),
        }
    )
    return pl.DataFrame(rows, schema=schema).sort("version", descending=True)


def _instant(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


# -- policy events -----------------------------------------------------------------------------------------------


def policy_events(settings: Settings) -> pl.DataFrame:
    """The policy's decisions with what came of them (`event`: promotion, refusal, rollback, fallback, ok)."""
    path = monitoring_dir(settings) / "events.parquet"
    return _policy_events(settings, str(path.resolve()), file_stamp(path) if path.exists() else "")


@st.cache_data(max_entries=4, show_spinner=SPINNER)
def _policy_events(_settings: Settings, path: str, stamp: str) -> pl.DataFrame:
    return events_frame(read_events(_settings))


def events_frame(events: pl.DataFrame) -> pl.DataFrame:
    """Each decision named by what happened: a new champion is a promotion (a rollback's is a rollback), a
    retrain that crowned nothing a refusal, a fallback a fallback, the rest ok."""
    action, crowned = pl.col("action"), pl.col("new_version").is_not_null()
    event = (
        pl.when(action == "rollback")
        .then(pl.lit("rollback"))
        .when(crowned)
        .then(pl.lit("promotion"))
        .when(action == "fallback")
        .then(pl.lit("fallback"))
        .when(action == "retrain")
        .then(pl.lit("refusal"))
        .otherwise(pl.lit("ok"))
    )
    return events.with_columns(event.alias("event")).sort("at", descending=True)


# -- monitoring --------------------------------------------------------------------------------------------------


def report_names(settings: Settings) -> tuple[str, ...]:
    """The monitoring reports' folder names, oldest first (the stamp of every monitoring read)."""
    root = monitoring_dir(settings)
    if not root.is_dir():
        return ()
    return tuple(
        sorted(p.name for p in root.iterdir() if REPORT_NAME.match(p.name) and (p / "drift_summary.json").exists())
    )


def summaries(settings: Settings) -> list[dict[str, Any]]:
    """Every report's `drift_summary.json` (keys in `monitoring.summary`), oldest first, with its `folder`."""
    return _summaries(str(monitoring_dir(settings).resolve()), report_names(settings))


@st.cache_data(max_entries=4, show_spinner=SPINNER)
def _summaries(folder: str, names: tuple[str, ...]) -> list[dict[str, Any]]:
    # A report folder is written once (its summary last): the names are the stamp.
    root = Path(folder)
    out = []
    for name in names:
        try:
            summary = json.loads((root / name / "drift_summary.json").read_text())
        except (OSError, ValueError):
            continue  # a report being written or damaged: the others are still shown
        out.append(summary | {"folder": str(root / name)})
    return out


def drift_frame(summary: Mapping[str, Any], task: str) -> pl.DataFrame:
    """One task's features of a report: feature, kind, statistic (PSI or JS), effect, threshold, p-value, alarm."""
    thresholds = summary.get("thresholds") or {}
    monitor = summary["tasks"].get(task) or {}
    rows = [
        {
            "feature": name,
            "kind": f["kind"],
            "statistic": "PSI" if f["kind"] == "numeric" else "JS distance",
            "effect": f["effect"],
            "threshold": thresholds.get("psi" if f["kind"] == "numeric" else "js"),
            "p_value": f["p_value"],
            "drifted": bool(f["alarm"]),
        }
        for name, f in (monitor.get("features") or {}).items()
    ]
    schema = pl.Schema(
        {
            "feature": pl.String(),
            "kind": pl.String(),
            "statistic": pl.String(),
            "effect": pl.Float64(),
            "threshold": pl.Float64(),
            "p_value": pl.Float64(),
            "drifted": pl.Boolean(),
        }
    )
    return pl.DataFrame(rows, schema=schema).sort("effect", descending=True)


def with_thresholds(frame: pl.DataFrame, *, psi: float, js: float) -> pl.DataFrame:
    """The settings' thresholds where the report does not say which it used."""
    by_kind = pl.when(pl.col("kind") == "numeric").then(pl.lit(psi)).otherwise(pl.lit(js))
    return frame.with_columns(pl.col("threshold").fill_null(by_kind))


def trend_frame(reports: Sequence[Mapping[str, Any]], task: str) -> pl.DataFrame:
    """One task's drift over the reports: report (time), feature, effect, drifted."""
    rows = [
        {"report": _instant(r["created_at"]), "feature": name, "effect": f["effect"], "drifted": bool(f["alarm"])}
        for r in reports
        for name, f in ((r["tasks"].get(task) or {}).get("features") or {}).items()
    ]
    schema = pl.Schema(
        {"report": pl.Datetime("us", "UTC"), "feature": pl.String(), "effect": pl.Float64(), "drifted": pl.Boolean()}
    )
    return pl.DataFrame(rows, schema=schema).sort("report", "feature")


def alarms_frame(reports: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """Every task's alarms per report: report, task, drifted features, drift alarm, degraded, live vs naive."""
    rows = [
        {
            "report": _instant(r["created_at"]),
            "task": task,
            "model_version": m.get("model_version"),
            "drifted_features": len(m.get("drifted_features") or []),
            "drift_alarm": bool(m.get("drift_alarm")),
            "prediction_drift_alarm": bool(m.get("prediction_drift_alarm")),
            "degraded": bool(m.get("degraded")),
            "live_value": m.get("live_value"),
            "backtest_value": m.get("backtest_value"),
            "live_relative": m.get("live_relative"),
            "backtest_relative": m.get("backtest_relative"),
        }
        for r in reports
        for task, m in r["tasks"].items()
    ]
    schema = pl.Schema(
        {
            "report": pl.Datetime("us", "UTC"),
            "task": pl.String(),
            "model_version": pl.String(),
            "drifted_features": pl.Int64(),
            "drift_alarm": pl.Boolean(),
            "prediction_drift_alarm": pl.Boolean(),
            "degraded": pl.Boolean(),
            "live_value": pl.Float64(),
            "backtest_value": pl.Float64(),
            "live_relative": pl.Float64(),
            "backtest_relative": pl.Float64(),
        }
    )
    return pl.DataFrame(rows, schema=schema).sort("report", "task")


def accuracy_frame(summary: Mapping[str, Any], task: str) -> pl.DataFrame:
    """A report's live accuracy per forecast day and model version: date, model_version, value, rows."""
    rows = (summary["tasks"].get(task) or {}).get("accuracy_over_time") or []
    schema = pl.Schema({"date": pl.Date(), "model_version": pl.String(), "value": pl.Float64(), "rows": pl.Int64()})
    if not rows:
        return pl.DataFrame(schema=schema)
    return (
        pl.DataFrame(rows)
        .with_columns(pl.col("date").str.to_date())
        .select([pl.col(c).cast(t) for c, t in schema.items()])
    )


# -- the lake ----------------------------------------------------------------------------------------------------


def manifest(settings: Settings) -> dict[str, Any]:
    """The lake's manifest (empty tables when nothing was ingested); LakeError when it is damaged."""
    return Lake(settings.workspace).manifest()


def tables_frame(info: Mapping[str, Any]) -> pl.DataFrame:
    """The lake's tables: rows, series, first and last date, frequency, columns."""
    rows = [
        {
            "table": name,
            "rows": int(t.get("rows") or 0),
            "series": t.get("series"),
            "date_min": t.get("date_min"),
            "date_max": t.get("date_max"),
            "frequency": t.get("frequency"),
            "columns": ", ".join(t.get("columns") or {}),
        }
        for name, t in sorted((info.get("tables") or {}).items())
    ]
    schema = pl.Schema(
        {
            "table": pl.String(),
            "rows": pl.Int64(),
            "series": pl.Int64(),
            "date_min": pl.String(),
            "date_max": pl.String(),
            "frequency": pl.String(),
            "columns": pl.String(),
        }
    )
    return pl.DataFrame(rows, schema=schema).with_columns(pl.col("date_min", "date_max").str.to_date())


def ingests_frame(info: Mapping[str, Any]) -> pl.DataFrame:
    """The last ingests, newest first: when, source, path, rows read, kept and quarantined."""
    rows = []
    for ingest in info.get("ingests") or []:
        parts = ingest.get("parts") or []
        rows.append(
            {
                "at": _instant(ingest.get("at")),
                "source": ingest.get("source"),
                "path": ingest.get("path"),
                "tables": ", ".join(sorted({str(p.get("table")) for p in parts})),
                "read": sum(int(p.get("read") or 0) for p in parts),
                "kept": sum(int(p.get("kept") or 0) for p in parts),
                "quarantined": sum(int(p.get("quarantined") or 0) for p in parts),
            }
        )
    schema = pl.Schema(
        {
            "at": pl.Datetime("us", "UTC"),
            "source": pl.String(),
            "path": pl.String(),
            "tables": pl.String(),
            "read": pl.Int64(),
            "kept": pl.Int64(),
            "quarantined": pl.Int64(),
        }
    )
    return pl.DataFrame(rows, schema=schema).sort("at", descending=True, nulls_last=True)


def quarantine(settings: Settings) -> pl.DataFrame | None:
    """The quarantine table (source, line, table, rule, detail, raw); None when nothing was ever quarantined."""
    lake = Lake(settings.workspace)
    if not lake.has(QUARANTINE):
        return None
    path = lake.path(QUARANTINE)
    return _quarantine(settings, str(path.resolve()), file_stamp(path))


@st.cache_resource(max_entries=4, show_spinner=SPINNER)
def _quarantine(_settings: Settings, path: str, stamp: str) -> pl.DataFrame:
    return Lake(_settings.workspace).read(QUARANTINE)


def rule_counts(rows: pl.DataFrame) -> pl.DataFrame:
    """Quarantined rows per rule (and the tables it hit), most first."""
    return (
        rows.group_by("rule")
        .agg(pl.len().cast(pl.Int64).alias("rows"), pl.col("table").unique().sort().str.join(", ").alias("tables"))
        .sort(["rows", "rule"], descending=[True, False])
    )


def rule_sample(rows: pl.DataFrame, rule: str, *, n: int = 20) -> pl.DataFrame:
    """The first `n` rows quarantined by `rule`: source, line, table, detail and the row as read."""
    return rows.filter(pl.col("rule") == rule).select("source", "line", "table", "detail", "raw").head(n)


def workspace_path(settings: Settings, path: str | Path) -> str:
    """`path` relative to the workspace where it is inside it (shorter on the page)."""
    try:
        return str(Path(path).resolve().relative_to(settings.workspace.resolve()))
    except ValueError:
        return str(path)


# -- the live path -----------------------------------------------------------------------------------------------


def live_configured(settings: Settings) -> bool:
    """Whether the live path is set up: the service reads it (`live.serve`), or Redis or the `live` section
    were set (in the environment or shelfcast.toml) rather than left to their defaults."""
    return settings.live.serve or bool({"live", "redis_url"} & settings.model_fields_set)


def stream_status(settings: Settings) -> Any:
    """`shelfcast stream status` (not cached: a few Redis calls, and the page is watched for change);
    StreamError when Redis does not answer."""
    from shelfcast.jobs.stream import status

    return status(settings)


@st.cache_data(max_entries=4, show_spinner=SPINNER)
def report_html(path: str) -> bytes | None:
    """A report's HTML (for the download button), None when it has none; a report folder is written once, so
    its path is its stamp."""
    try:
        return Path(path).read_bytes()
    except OSError:
        return None
