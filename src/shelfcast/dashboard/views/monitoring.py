"""Monitoring: the latest report's drift per feature and its trend over past reports, live accuracy against the
backtest and the seasonal naive, the alerts, and the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import streamlit as st

from shelfcast.dashboard import charts, models_data, monitor_data, ui
from shelfcast.types import TASKS

TREND_DEFAULT = 5  # features drawn over time when none drifted: the largest statistics of the latest report
CHART_FEATURES = 25  # features in the drift chart unless all are asked for (the drifted ones always are)

settings = ui.settings_or_stop()
st.title("Monitoring")
try:
    reports = monitor_data.summaries(settings)
except OSError as exc:
    ui.problem(f"Cannot read the monitoring reports: {exc}")
    st.stop()
if not reports:
    ui.guide("No monitoring report yet", "shelfcast monitor")
    st.stop()

latest = reports[-1]
alarms = monitor_data.alarms_frame(reports)
left, middle, right, last = st.columns([3, 2, 2, 1])
left.metric("Latest report", latest["created_at"][:16].replace("T", " "), help="UTC")
middle.metric("Data up to", latest["data_last_date"])
right.metric("Window", f"{latest['window_days']} days")
last.metric("Reports", f"{len(reports):,}")


def alerts(summary: dict[str, Any]) -> None:
    shown = False
    for task, m in summary["tasks"].items():
        if m.get("drift_alarm"):
            drifted = ", ".join(m.get("drifted_features") or [])
            st.warning(f"**{task}: drift alarm**: the inputs drifted ({drifted}).", icon=":material/warning:")
            shown = True
        if m.get("prediction_drift_alarm"):
            st.warning(f"**{task}: the predictions drifted** from the reference window.", icon=":material/warning:")
            shown = True
        if m.get("degraded"):
            st.error(
                f"**{task}: degraded**: live {m.get('live_metric')} {m.get('live_value'):.4g} against "
                f"{m.get('backtest_value'):.4g} in the backtest.",
                icon=":material/trending_down:",
            )
            shown = True
    if not shown:
        st.success("No alert in the latest report: no drift alarm, no degraded model.", icon=":material/check:")


alerts(latest)
folder = Path(latest["folder"])
html = monitor_data.report_html(str(folder / "report.html"))
with st.container(horizontal=True):
    st.download_button(
        "Download the HTML report",
        html or b"",
        file_name=f"monitoring-{folder.name}.html",
        mime="text/html",
        icon=":material/download:",
        disabled=html is None,
    )
    st.caption(f"`{folder / 'report.html'}`" if html is not None else "this report has no HTML file")


def drift(task: str, m: dict[str, Any]) -> None:
    st.subheader("Drift per feature (latest report)")
    frame = monitor_data.with_thresholds(
        monitor_data.drift_frame(latest, task), psi=settings.drift.psi, js=settings.drift.js
    )
    if frame.is_empty():
        st.caption("No feature was tested in this report.")
        return
    st.caption(
        f"{frame['drifted'].sum()} of {frame.height} features drifted; reference {m.get('reference_rows', 0):,} rows, "
        f"current {m.get('current_rows', 0):,} rows. A feature drifts when its statistic reaches the threshold "
        "(the black tick) and the test is significant."
    )
    shown = frame
    if frame.height > CHART_FEATURES and not st.toggle(f"Chart all {frame.height} features", key=f"all_{task}"):
        shown = frame.filter(pl.col("drifted") | (pl.int_range(pl.len()) < CHART_FEATURES))
        st.caption(
            f"The {shown.height} largest statistics (and every drifted feature) are charted; all are in the table."
        )
    st.altair_chart(charts.drift_bars(shown), width="stretch")
    st.dataframe(
        frame.drop("kind"),
        hide_index=True,
        key=f"drift_{task}",
        column_config={
            "feature": st.column_config.TextColumn("Feature"),
            "statistic": st.column_config.TextColumn("Measure"),
            "effect": st.column_config.NumberColumn("Value", format="%.4f"),
            "threshold": st.column_config.NumberColumn("Threshold", format="%.3g"),
            "p_value": st.column_config.NumberColumn("p-value", format="%.3g"),
            "drifted": st.column_config.CheckboxColumn("Drifted"),
        },
    )
    st.subheader("Drift over the reports")
    trend = monitor_data.trend_frame(reports, task)
    drifted = frame.filter(pl.col("drifted"))["feature"].to_list()
    default = drifted or frame.head(TREND_DEFAULT)["feature"].to_list()
    chosen = st.multiselect("Features", frame["feature"].to_list(), default=default, key=f"trend_{task}")
    if chosen:
        st.altair_chart(charts.drift_trend(trend.filter(pl.col("feature").is_in(chosen))), width="stretch")


def accuracy(task: str, m: dict[str, Any]) -> None:
    st.subheader("Live accuracy")
    metric = str(m.get("live_metric") or "")
    label = models_data.METRICS.get(metric, metric)
    left, right, third = st.columns(3)
    live, backtest = m.get("live_value"), m.get("backtest_value")
    left.metric(f"Live {metric}", "n/a" if live is None else f"{live:.4g}", help=label)
    right.metric(f"Backtest {metric}", "n/a" if backtest is None else f"{backtest:.4g}")
    relative, backtest_relative = m.get("live_relative"), m.get("backtest_relative")
    if relative is not None or backtest_relative is not None:
        third.metric(
            "Live / seasonal naive",
            "n/a" if relative is None else f"{relative:.3f}",
            help="WAPE over the seasonal naive's WAPE on the same rows; below 1 beats the naive",
        )
        st.caption(
            "Against the seasonal naive: live "
            + ("n/a" if relative is None else f"{relative:.3f}")
            + ", backtest "
            + ("n/a" if backtest_relative is None else f"{backtest_relative:.3f}")
            + " (below 1: better than the naive)."
        )
    over_time = monitor_data.accuracy_frame(latest, task)
    if over_time.is_empty():
        st.caption(
            f"No live accuracy yet ({m.get('evaluated_rows', 0):,} predictions with their actuals): "
            "score, ingest the actuals that follow, then monitor."
        )
    else:
        daily = monitor_data.OVER_TIME_METRIC.get(task, metric)
        same = daily == metric  # the backtest figure is drawn only when it is the same metric
        if not same:
            st.caption(f"Per day the {daily.upper()} is shown: a day has too few rows for the {metric.upper()}.")
        chart = charts.accuracy_lines(
            over_time, label=f"{models_data.METRICS.get(daily, daily)} per day", backtest=backtest if same else None
        )
        st.altair_chart(chart, width="stretch")
    ratios = alarms.filter(pl.col("task") == task)
    if ratios["live_relative"].is_not_null().any() or ratios["backtest_relative"].is_not_null().any():
        st.caption(
            "Over the reports: the model's WAPE divided by the seasonal naive's on the same days, live and in the "
            "backtest; below the rule at 1 the model beats the naive."
        )
        st.altair_chart(charts.relative_trend(ratios), width="stretch")


for task, tab in zip(TASKS, st.tabs([f"{t.capitalize()} model" for t in TASKS]), strict=True):
    with tab:
        m = latest["tasks"].get(task) or {}
        version = m.get("model_version")
        st.markdown(f"**Status**: {m.get('status', 'not monitored')}" + (f", champion v{version}" if version else ""))
        for note in m.get("notes") or []:
            st.caption(note)
        if version is None:
            continue
        drift(task, m)
        accuracy(task, m)

st.header("Alarms over the reports")
st.altair_chart(charts.alarms_chart(alarms), width="stretch")
