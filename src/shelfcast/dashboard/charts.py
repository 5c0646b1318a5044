"""Altair charts of the Models, Monitoring and Data pages: pure functions, a frame in, a chart out.

Readable without colour: every colour has a second channel (a shape, a
dash, a label on the bar or the axis); axes name their unit, and dates are
dates.
"""

from __future__ import annotations

import altair as alt
import polars as pl

Drawing = alt.Chart | alt.LayerChart
ROW_PX = 20  # height of one bar of a horizontal bar chart
EVENTS = ("promotion", "refusal", "rollback", "fallback", "ok")
EVENT_SHAPES = ("triangle-up", "cross", "triangle-down", "square", "circle")
EVENT_COLOURS = ("#1a9850", "#d73027", "#7b3294", "#f46d43", "#878787")
ROLES = ("served", "baseline", "other candidate")


def sized(chart: Drawing, height: int | alt.Step) -> Drawing:
    # Discrete axes get a step per row (Streamlit fits a fixed height to the whole chart, axes included).
    sized: Drawing = chart.properties(height=height)  # altair's `properties` is untyped
    return sized


def backtest_bars(
    scores: pl.DataFrame, *, metric: str, label: str, higher_is_better: bool, direction: str = ""
) -> Drawing:
    """One metric of a run's backtest, the served model against every baseline (bars labelled with their role
    and value, so colour is not needed)."""
    frame = scores.filter(pl.col("metric") == metric).with_columns(
        (pl.col("model") + " (" + pl.col("role") + ")").alias("name")
    )
    order = frame.sort("value", descending=higher_is_better)["name"].to_list()
    base = alt.Chart(frame.to_pandas()).encode(
        y=alt.Y("name:N", sort=order, title=None, axis=alt.Axis(labelLimit=320)),
        x=alt.X("value:Q", title=f"{label}, {direction}" if direction else label),
    )
    bars = base.mark_bar().encode(
        color=alt.Color("role:N", scale=alt.Scale(domain=list(ROLES)), legend=alt.Legend(title="model")),
        tooltip=["model:N", "role:N", alt.Tooltip("value:Q", format=".4g", title=label)],
    )
    text = base.mark_text(align="left", dx=3).encode(text=alt.Text("value:Q", format=".3g"))
    return sized(bars + text, alt.Step(ROW_PX))


def events_timeline(events: pl.DataFrame) -> Drawing:
    """The policy's decisions in time, one row per task; what happened by shape and colour."""
    frame = events.select("at", "task", "event", "action", "outcome", "reasons", "new_version")
    chart = (
        alt.Chart(frame.to_pandas())
        .mark_point(size=160, filled=True, opacity=0.9)
        .encode(
            x=alt.X("at:T", title="decided at (UTC)", axis=alt.Axis(format="%Y-%m-%d %H:%M")),
            y=alt.Y("task:N", title=None, axis=alt.Axis(labelLimit=320)),
            shape=alt.Shape("event:N", scale=alt.Scale(domain=list(EVENTS), range=list(EVENT_SHAPES)), title="event"),
            color=alt.Color("event:N", scale=alt.Scale(domain=list(EVENTS), range=list(EVENT_COLOURS)), title="event"),
            tooltip=[
                alt.Tooltip("at:T", format="%Y-%m-%d %H:%M:%S", title="at (UTC)"),
                "task:N",
                "event:N",
                "action:N",
                "outcome:N",
                "reasons:N",
            ],
        )
    )
    return sized(chart, alt.Step(48))


def drift_bars(drift: pl.DataFrame) -> Drawing:
    """Each feature's drift statistic against its threshold (a tick); drifted features are marked by colour and
    by a `drifted` label."""
    frame = drift.with_columns(
        pl.when(pl.col("drifted")).then(pl.lit("drifted")).otherwise(pl.lit("ok")).alias("verdict"),
        (pl.col("feature") + " (" + pl.col("statistic") + ")").alias("name"),
    )
    order = frame.sort("effect", descending=True)["name"].to_list()
    base = alt.Chart(frame.to_pandas()).encode(y=alt.Y("name:N", sort=order, title=None, axis=alt.Axis(labelLimit=320)))
    bars = base.mark_bar().encode(
        x=alt.X("effect:Q", title="drift statistic (PSI or Jensen-Shannon distance, unitless)"),
        color=alt.Color("verdict:N", scale=alt.Scale(domain=["ok", "drifted"], range=["#4575b4", "#d73027"])),
        tooltip=[
            "feature:N",
            "statistic:N",
            alt.Tooltip("effect:Q", format=".4f"),
            alt.Tooltip("threshold:Q", format=".3g"),
            alt.Tooltip("p_value:Q", format=".3g"),
            "verdict:N",
        ],
    )
    limit = base.mark_tick(color="black", thickness=2, size=ROW_PX - 4).encode(x="threshold:Q")
    flag = (
        base.transform_filter(alt.datum.verdict == "drifted")
        .mark_text(align="left", dx=4, fontWeight="bold")
        .encode(x="effect:Q", text="verdict:N")
    )
    return sized(bars + limit + flag, alt.Step(ROW_PX))


def drift_trend(trend: pl.DataFrame) -> Drawing:
    """Chosen features' drift statistic over the reports; a feature by colour and dash, drifted points filled."""
    frame = trend.with_columns(
        pl.when(pl.col("drifted")).then(pl.lit("drifted")).otherwise(pl.lit("ok")).alias("verdict")
    )
    base = alt.Chart(frame.to_pandas()).encode(
        x=alt.X("report:T", title="report (UTC)", axis=alt.Axis(format="%Y-%m-%d %H:%M")),
        y=alt.Y("effect:Q", title="drift statistic (PSI or JS distance)"),
    )
    lines = base.mark_line().encode(color=alt.Color("feature:N"), strokeDash=alt.StrokeDash("feature:N"))
    points = base.mark_point(size=70, filled=True).encode(
        color=alt.Color("feature:N"),
        shape=alt.Shape("verdict:N", scale=alt.Scale(domain=["ok", "drifted"], range=["circle", "diamond"])),
        tooltip=[alt.Tooltip("report:T", format="%Y-%m-%d %H:%M"), "feature:N", alt.Tooltip("effect:Q", format=".4f")],
    )
    return sized(lines + points, 260)


def alarms_chart(alarms: pl.DataFrame) -> Drawing:
    """Each task's drifted features per report; a drift alarm or a degraded model is a labelled point."""
    frame = alarms.with_columns(
        pl.when(pl.col("degraded"))
        .then(pl.lit("degraded"))
        .when(pl.col("drift_alarm") | pl.col("prediction_drift_alarm"))
        .then(pl.lit("drift alarm"))
        .otherwise(pl.lit("ok"))
        .alias("state")
    )
    states = ["ok", "drift alarm", "degraded"]
    base = alt.Chart(frame.to_pandas()).encode(
        x=alt.X("report:T", title="report (UTC)", axis=alt.Axis(format="%Y-%m-%d %H:%M")),
        y=alt.Y("drifted_features:Q", title="drifted features (count)", axis=alt.Axis(tickMinStep=1)),
    )
    lines = base.mark_line().encode(color=alt.Color("task:N"), strokeDash=alt.StrokeDash("task:N"))
    points = base.mark_point(size=90, filled=True).encode(
        color=alt.Color("task:N"),
        shape=alt.Shape("state:N", scale=alt.Scale(domain=states, range=["circle", "triangle-up", "cross"])),
        tooltip=[alt.Tooltip("report:T", format="%Y-%m-%d %H:%M"), "task:N", "state:N", "drifted_features:Q"],
    )
    return sized(lines + points, 260)


def accuracy_lines(accuracy: pl.DataFrame, *, label: str, backtest: float | None) -> Drawing:
    """Live accuracy per day and model version (colour and dash), with the backtest figure as a labelled rule."""
    base = alt.Chart(accuracy.to_pandas()).encode(
        x=alt.X("date:T", title="forecast day", axis=alt.Axis(format="%Y-%m-%d")),
        y=alt.Y("value:Q", title=label),
    )
    lines = base.mark_line(point=True).encode(
        color=alt.Color("model_version:N", title="version"),
        strokeDash=alt.StrokeDash("model_version:N", title="version"),
        tooltip=[
            alt.Tooltip("date:T", format="%Y-%m-%d"),
            "model_version:N",
            alt.Tooltip("value:Q", format=".4f"),
            "rows:Q",
        ],
    )
    if backtest is None:
        return sized(lines, 240)
    return sized(lines + _rule(backtest, "backtest"), 240)


def relative_trend(alarms: pl.DataFrame) -> Drawing:
    """Demand's WAPE relative to the seasonal naive over the reports: live and backtest (colour and dash), the
    naive itself the rule at 1."""
    long = (
        alarms.select("report", "live_relative", "backtest_relative")
        .unpivot(index="report", variable_name="figure", value_name="ratio")
        .with_columns(pl.col("figure").replace({"live_relative": "live", "backtest_relative": "backtest"}))
        .drop_nulls("ratio")
    )
    base = alt.Chart(long.to_pandas()).encode(
        x=alt.X("report:T", title="report (UTC)", axis=alt.Axis(format="%Y-%m-%d %H:%M")),
        y=alt.Y("ratio:Q", title="WAPE / naive's WAPE (ratio)", scale=alt.Scale(zero=True)),
    )
    lines = base.mark_line(point=True).encode(
        color=alt.Color("figure:N", title="figure"),
        strokeDash=alt.StrokeDash("figure:N", title="figure"),
        tooltip=[alt.Tooltip("report:T", format="%Y-%m-%d %H:%M"), "figure:N", alt.Tooltip("ratio:Q", format=".3f")],
    )
    return sized(lines + _rule(1.0, "seasonal naive", field="ratio"), 240)


def _rule(value: float, text: str, *, field: str = "value") -> Drawing:
    """A labelled horizontal rule at `value` (on the y field `field`, so that it shares the chart's scale)."""
    frame = pl.DataFrame({field: [value], "text": [text]}).to_pandas()
    rule = alt.Chart(frame).mark_rule(color="black", strokeDash=[2, 2]).encode(y=f"{field}:Q")
    label = alt.Chart(frame).mark_text(align="left", dy=-6, x=4).encode(y=f"{field}:Q", text="text:N")
    layered: Drawing = rule + label
    return layered


def quarantine_bars(counts: pl.DataFrame) -> Drawing:
    """Quarantined rows per rule, the count written on each bar."""
    base = alt.Chart(counts.to_pandas()).encode(
        y=alt.Y("rule:N", sort="-x", title=None, axis=alt.Axis(labelLimit=320)),
        x=alt.X("rows:Q", title="quarantined rows (count)", axis=alt.Axis(tickMinStep=1, format="d")),
    )
    bars = base.mark_bar(color="#d73027").encode(tooltip=["rule:N", "rows:Q", "tables:N"])
    text = base.mark_text(align="left", dx=3).encode(text="rows:Q")
    return sized(bars + text, alt.Step(ROW_PX))
