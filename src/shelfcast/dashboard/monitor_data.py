"""The Monitoring page's reads, cached (keyed on the report folders' names), and their frames."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import streamlit as st

from shelfcast.dashboard.reads import instant
from shelfcast.io.policy_log import monitoring_dir
from shelfcast.settings import Settings

SPINNER = False
REPORT_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{6}$")  # jobs/monitor.py's folder names

# The metric of a report's `accuracy_over_time` per task (monitoring.accuracy: a day's WAPE; a day's F1 of the
# alerts, as a day has too few rows for a PR-AUC), and the backtest figure to draw beside it (None: not the same).
OVER_TIME_METRIC: dict[str, str] = {"demand": "wape", "stockout": "f1"}


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
        {"report": instant(r["created_at"]), "feature": name, "effect": f["effect"], "drifted": bool(f["alarm"])}
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
            "report": instant(r["created_at"]),
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


@st.cache_data(max_entries=4, show_spinner=SPINNER)
def report_html(path: str) -> bytes | None:
    """A report's HTML (for the download button), None when it has none; a report folder is written once, so
    its path is its stamp."""
    try:
        return Path(path).read_bytes()
    except OSError:
        return None
