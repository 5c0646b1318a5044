"""Models: per task the champion, challenger and previous champion with their gates, the backtest against every
baseline, the history of versions, and the monitoring policy's decisions in time."""

from __future__ import annotations

import polars as pl
import streamlit as st

from shelfcast.dashboard import charts, models_data, ui
from shelfcast.errors import TrackingError
from shelfcast.io.registry import CHALLENGER, CHAMPION, PREVIOUS, VersionInfo
from shelfcast.models.gates import RULES
from shelfcast.types import TASKS, Task

TITLES = {CHAMPION: "Champion", CHALLENGER: "Challenger", PREVIOUS: "Previous champion"}

settings = ui.settings_or_stop()
st.title("Models")
try:
    stamp = models_data.registry_stamp(settings)
    models = models_data.task_models(settings, stamp) if stamp is not None else None
except TrackingError as exc:
    ui.problem(f"Cannot read the model registry: {exc}")
    st.stop()
if models is None or not any(m.versions for m in models.values()):
    ui.guide("No models registered yet", "shelfcast train")
    st.stop()


def alias_card(task: Task, alias: str, info: VersionInfo | None) -> None:
    with st.container(border=True):
        if info is None:
            st.markdown(f"**{TITLES[alias]}**: none")
            return
        passed = models_data.gate_passed(info)
        verdict = "not gated" if passed is None else "gates passed" if passed else "gates refused"
        st.markdown(f"**{TITLES[alias]}**: v{info.version} ({verdict})")
        st.caption(info.tags.get("gate.reason") or "no gate verdict recorded")
        values = models_data.gate_values(info)
        if values:
            st.dataframe(
                pl.DataFrame({"gate figure": list(values), "value": list(values.values())}),
                hide_index=True,
                key=f"gate_{task}_{alias}",
                column_config={"value": st.column_config.NumberColumn(format="%.4g")},
            )


def backtest(task: Task, versions: list[VersionInfo], champion: VersionInfo | None) -> None:
    st.subheader("Backtest against the baselines")
    labels = [f"v{v.version}" + (f" ({', '.join(v.aliases)})" if v.aliases else "") for v in reversed(versions)]
    chosen = champion or versions[-1]
    index = [v.version for v in reversed(versions)].index(chosen.version)
    picked = st.selectbox("Version", labels, index=index, key=f"bt_version_{task}")
    info = list(reversed(versions))[labels.index(picked)]
    try:
        scores = models_data.run_scores(settings, info.run_id) if info.run_id else None
    except TrackingError as exc:
        ui.problem(f"Cannot read the run of v{info.version}: {exc}")
        return
    if scores is None or scores.is_empty():
        st.caption(f"v{info.version}'s run logged no backtest metrics.")
        return
    rule = RULES[task]
    metrics = [m for m in models_data.METRICS if m in set(scores["metric"])]
    metric = st.selectbox(
        "Metric",
        metrics,
        index=metrics.index(rule.metric) if rule.metric in metrics else 0,
        format_func=lambda m: models_data.METRICS[m],
        key=f"bt_metric_{task}",
    )
    assert metric is not None
    chart = charts.backtest_bars(
        scores,
        metric=metric,
        label=models_data.METRICS[metric],
        higher_is_better=metric in models_data.HIGHER_IS_BETTER,
        direction=models_data.direction(metric),
    )
    st.altair_chart(chart, width="stretch")
    st.dataframe(
        scores.filter(pl.col("metric") == metric).select("model", "role", "value"),
        hide_index=True,
        key=f"bt_table_{task}",
        column_config={"value": st.column_config.NumberColumn(models_data.METRICS[metric], format="%.4g")},
    )


def history(task: Task, frame: pl.DataFrame) -> None:
    st.subheader("Versions")
    st.dataframe(
        frame.drop("run_id"),
        hide_index=True,
        key=f"versions_{task}",
        column_config={
            "version": st.column_config.NumberColumn("Version", format="v%d"),
            "created": st.column_config.DatetimeColumn("Created (UTC)", format="YYYY-MM-DD HH:mm"),
            "aliases": st.column_config.TextColumn("Aliases"),
            "gate_passed": st.column_config.CheckboxColumn("Gates passed"),
            "gate_reason": st.column_config.TextColumn("Gate verdict", width="large"),
            "promoted_at": st.column_config.DatetimeColumn("Promoted at (UTC)", format="YYYY-MM-DD HH:mm"),
            "rolled_back": st.column_config.CheckboxColumn("Rolled back"),
        },
    )


for task, tab in zip(TASKS, st.tabs([f"{t.capitalize()} model" for t in TASKS]), strict=True):
    with tab:
        task_models = models[task]
        if not task_models.versions:
            ui.guide(f"No {task} model registered yet", f"shelfcast train --task {task}")
            continue
        for column, alias in zip(st.columns(3), (CHAMPION, CHALLENGER, PREVIOUS), strict=True):
            with column:
                alias_card(task, alias, task_models.aliased(alias))
        backtest(task, task_models.versions, task_models.aliased(CHAMPION))
        history(task, models_data.versions_frame(task_models))

st.header("Policy decisions")
events = models_data.policy_events(settings)
if events.is_empty():
    st.caption("No decision of the monitoring policy yet (`shelfcast retrain` records one per task).")
else:
    st.altair_chart(charts.events_timeline(events), width="stretch")
    st.dataframe(
        events.select(
            "at", "task", "event", "action", "outcome", "reasons", "champion_version", "new_version", "trigger"
        ),
        hide_index=True,
        key="events",
        column_config={"at": st.column_config.DatetimeColumn("At (UTC)", format="YYYY-MM-DD HH:mm:ss")},
    )
