"""The Item page's chart: sales history with stockout days marked and censored days shaded, promotions and
events, and the forecast with its p10-p90 band. Pure: frames in, an Altair chart out.

Readable without colour: stockouts are crosses, the forecast is dashed, censored days are a grey band, events are
labelled rules; every layer is named in a legend by shape and dash as well as colour.
"""

from __future__ import annotations

import datetime as dt

import altair as alt
import polars as pl

from shelfcast.dashboard.charts import Drawing, sized

SOLD, FORECAST, STOCKOUT = "units sold", "forecast (median)", "stockout day"


def _top_legend() -> alt.Legend:
    return alt.Legend(title=None, orient="top")


def stockout_days(history: pl.DataFrame) -> pl.Expr:
    """A day the shelf ran empty: no stock left, or hours out of stock recorded."""
    return (pl.col("on_hand").fill_null(1.0) <= 0) | (pl.col("stockout_hours").fill_null(0.0) > 0)


def item_chart(
    history: pl.DataFrame,
    forecast: pl.DataFrame | None,
    events: pl.DataFrame,
    *,
    unit: str = "day",
    cutoff: dt.date | None = None,
) -> Drawing:
    """`history`: date, units, promo, on_hand, stockout_hours; `forecast`: date, p10, p50, p90 (or None)."""
    x = alt.X("date:T", title="Date", axis=alt.Axis(format="%d %b %Y", labelAngle=-30))
    y_title = f"Units per {unit}"
    days = history.with_columns(stockout_days(history).alias("stockout"))
    step = dt.timedelta(days=7 if unit == "week" else 1)
    lines = days.select("date", "units").with_columns(pl.lit(SOLD).alias("what"))
    if forecast is not None and not forecast.is_empty():
        lines = pl.concat(
            [lines, forecast.select("date", pl.col("p50").alias("units"), pl.lit(FORECAST).alias("what"))]
        )
    sold = (
        alt.Chart(lines)
        .mark_line(point=alt.OverlayMarkDef(size=18))
        .encode(
            x,
            alt.Y("units:Q", title=y_title),
            alt.Color(
                "what:N",
                scale=alt.Scale(domain=[SOLD, FORECAST], range=["#1f4e79", "#d9822b"]),
                legend=_top_legend(),
            ),
            alt.StrokeDash(
                "what:N", scale=alt.Scale(domain=[SOLD, FORECAST], range=[[1, 0], [6, 3]]), legend=_top_legend()
            ),
            tooltip=[
                alt.Tooltip("date:T", title="Date"),
                alt.Tooltip("what:N", title="Line"),
                alt.Tooltip("units:Q", title="Units", format=".1f"),
            ],
        )
    )
    out_days = days.filter(pl.col("stockout")).with_columns(
        (pl.col("date") + step).alias("until"), pl.lit(STOCKOUT).alias("mark")
    )
    censored = (
        alt.Chart(out_days.select("date", "until"))
        .mark_rect(opacity=0.18, color="#7f7f7f")
        .encode(x, alt.X2("until:T"), tooltip=[alt.Tooltip("date:T", title="Censored day (sales < demand)")])
    )
    crosses = (
        alt.Chart(out_days.select("date", "units", "mark", "on_hand", "stockout_hours"))
        .mark_point(shape="cross", size=90, filled=True, color="#b22222")
        .encode(
            x,
            alt.Y("units:Q"),
            alt.Shape("mark:N", scale=alt.Scale(domain=[STOCKOUT], range=["cross"]), legend=_top_legend()),
            tooltip=[
                alt.Tooltip("date:T", title="Stockout day"),
                alt.Tooltip("units:Q", title="Units sold", format=".1f"),
                alt.Tooltip("on_hand:Q", title="On hand", format=".0f"),
                alt.Tooltip("stockout_hours:Q", title="Hours out of stock", format=".1f"),
            ],
        )
    )
    promo_days = days.filter(pl.col("promo").cast(pl.Float64, strict=False).fill_null(0) > 0).select("date")
    promos = (
        alt.Chart(promo_days.with_columns(pl.lit("promotion").alias("kind")))
        .mark_tick(thickness=2, size=10, color="#2e7d32")
        .encode(x, alt.Y(value=0), tooltip=[alt.Tooltip("date:T", title="On promotion")])
    )
    layers: list[alt.Chart] = [censored, sold, crosses, promos]
    if forecast is not None and not forecast.is_empty():
        band = (
            alt.Chart(forecast.select("date", "p10", "p90"))
            .mark_area(opacity=0.25, color="#d9822b")
            .encode(
                x,
                alt.Y("p10:Q", title=y_title),
                alt.Y2("p90:Q"),
                tooltip=[
                    alt.Tooltip("date:T", title="Date"),
                    alt.Tooltip("p10:Q", title="p10", format=".1f"),
                    alt.Tooltip("p90:Q", title="p90", format=".1f"),
                ],
            )
        )
        layers.insert(1, band)
    if not events.is_empty():
        rules = alt.Chart(events).mark_rule(strokeDash=[2, 2], color="#555").encode(x, tooltip=["date:T", "event:N"])
        labels = (
            alt.Chart(events)
            .mark_text(angle=270, align="left", dx=4, dy=-4, fontSize=10, color="#333")
            .encode(x, alt.Y(value=4), text="event:N")
        )
        layers += [rules, labels]
    if cutoff is not None:
        today = pl.DataFrame({"date": [cutoff], "label": ["cutoff"]})
        layers.append(
            alt.Chart(today).mark_rule(color="black").encode(x, tooltip=[alt.Tooltip("date:T", title="Cutoff")])
        )
    return sized(alt.LayerChart(layer=layers), 340)


def contribution_chart(reasons: pl.DataFrame) -> Drawing:
    """`reasons`: text, contribution (log-odds), direction: a diverging bar per reason, arrows in the labels."""
    bars = (
        alt.Chart(reasons)
        .mark_bar()
        .encode(
            alt.X("contribution:Q", title="Push on the risk (log-odds; right = riskier)"),
            alt.Y("text:N", title=None, sort=None, axis=alt.Axis(labelLimit=420)),
            alt.Color(
                "direction:N",
                title=None,
                scale=alt.Scale(domain=["up", "down"], range=["#b22222", "#1f77b4"]),
                legend=alt.Legend(labelExpr="datum.value == 'up' ? '▲ raises the risk' : '▼ lowers the risk'"),
            ),
            tooltip=["text:N", alt.Tooltip("contribution:Q", format="+.3f")],
        )
    )
    return sized(bars, alt.Step(26))
