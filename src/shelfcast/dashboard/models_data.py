"""The Models page's reads, cached, and their frames: the registry's versions with their gates, the runs'
backtest metrics, the policy's events.

Each cached function takes the settings as `_settings` (Streamlit leaves out
of the key every argument named with a leading underscore), where it reads
(the workspace or the tracking URI) and a stamp that changes with what it
reads: the MLflow store's file (embedded) or a 30-second clock (a server,
which has no cheap stamp), the events file. Frames are shaped here (selects,
joins, sorts and labels), never modelled: the figures are the adapters' own.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import streamlit as st

from shelfcast.dashboard.reads import instant
from shelfcast.io.lake import file_stamp
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


# -- registry ----------------------------------------------------------------------------------------------------


def embedded_registry(settings: Settings) -> Path | None:
    """The workspace's own registry file when it is the one configured (no MLflow server), else None."""
    embedded = mlflow_dir(settings) / "mlflow.db"
    return embedded if configured_uri(settings) == f"sqlite:///{embedded}" else None


def registry_stamp(settings: Settings) -> str | None:
    """What changes with the registry: its SQLite file in the workspace, else a 30 s clock; None when the
    workspace's own store was never made (nothing trained: no MLflow file is created by looking)."""
    embedded = embedded_registry(settings)
    if embedded is not None:
        return file_stamp(embedded) if embedded.exists() else None
    return f"clock:{int(time.time() // SERVER_SECONDS)}"


def warm_registry(settings: Settings) -> None:
    """Open the workspace's own registry once, before the server starts: MLflow keeps its store per URI, so the
    first Models or Item page skips the SQLite engine and schema check (0.7 s). A registry on a server is left
    alone: an unreachable one would hold the start. TrackingError when the file cannot be read."""
    embedded = embedded_registry(settings)
    if embedded is not None and embedded.exists():
        registry = Registry(settings)
        for task in TASKS:
            registry.versions(task)


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
            "promoted_at": instant(v.tags.get(PROMOTED_AT)),
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
