"""Item: one store x item: its sales and stockouts, the forecast with its band, the risk and why, the live day."""

from __future__ import annotations

import datetime as dt

import polars as pl
import streamlit as st

from shelfcast.dashboard import reads, ui
from shelfcast.dashboard.explain import explanation_or_reason
from shelfcast.dashboard.item_chart import contribution_chart, item_chart
from shelfcast.dashboard.tables import store_items


def units(value: float) -> str:
    """A quantity short enough for a metric: a decimal below 10 units only."""
    return f"{value:,.1f} units" if abs(value) < 10 else f"{value:,.0f} units"


HISTORY_CHOICES = {"4 weeks": 28, "13 weeks": 91, "26 weeks": 182, "1 year": 364, "2 years": 728}

settings = ui.settings_or_stop()
st.title("Item")
day = ui.scoring_or_stop(settings)
with st.container(horizontal=True):
    store_id = ui.pick("Store", ui.stores_of(day), param=ui.STORE_PARAM, key="item_store_pick")
    assert store_id is not None
    items = day.series.filter(pl.col("store_id") == store_id)["item_id"].sort().to_list()
    item_id = ui.pick("Item", items, param=ui.ITEM_PARAM, key="item_item_pick")
    assert item_id is not None
    span = st.selectbox("History shown", list(HISTORY_CHOICES), index=1, key="item_history")

try:
    weekly = reads.data_frequency(settings) == "W"
    history = reads.series_history(settings, store_id, item_id)
    advice = store_items(
        day, store_id, on_hand=reads.stock_on_hand(settings), attributes=reads.item_attributes(settings)
    ).filter(pl.col("item_id") == item_id)
except reads.READ_ERRORS as exc:
    ui.problem(f"Cannot read the lake: {exc}")
    st.stop()
row = advice.row(0, named=True)
rows = day.series_rows(store_id, item_id)
assert rows is not None
unit = "week" if weekly else "day"
shown_days = HISTORY_CHOICES[str(span)] * (7 if weekly else 1)
last_day = history["date"].max() if not history.is_empty() else day.first
assert isinstance(last_day, dt.date)
first_shown = last_day - dt.timedelta(days=shown_days)
history = history.filter(pl.col("date") > first_shown)
try:
    events = reads.calendar_events(settings, store_id, first_shown, day.last)
except reads.READ_ERRORS:
    events = pl.DataFrame(schema={"date": pl.Date, "event": pl.String})

# -- the risk and the advice ----------------------------------------------------------------------------------
risk, threshold = row["stockout_risk"], row["threshold"]
cols = st.columns(5)
if risk is None:
    cols[0].metric("Stockout risk", "n/a", help="No stockout risk on this data (sales only, or no stockout model).")
else:
    cols[0].metric(
        "Stockout risk",
        f"{risk:.0%}",
        delta=f"{'ALERT, ' if row['stockout_label'] else ''}threshold {threshold:.0%}",
        delta_color="inverse" if row["stockout_label"] else "off",
        delta_arrow="off",
        help="Probability of a stockout in the risk window; an alert at or above the model's threshold.",
    )
cols[1].metric(f"Demand next 7 {unit}s", units(row["forecast_7"]))
on_hand = row["on_hand"]
cols[2].metric(
    "On hand",
    "unknown" if on_hand is None else units(on_hand),
    help=None if row["counted_on"] is None else f"counted on {row['counted_on']}",
)
cols[3].metric(
    "Reorder at / up to",
    "n/a" if row["reorder_point"] is None else f"{row['reorder_point']:,.0f} / {row['order_up_to']:,.0f}",
)
quantity = row["order_quantity"]
cols[4].metric("Order now", "n/a" if quantity is None else units(quantity))

# -- the chart -----------------------------------------------------------------------------------------------
st.subheader("Sales, stockouts and the forecast")
forecast = rows.select("date", "p10", "p50", "p90")
st.altair_chart(item_chart(history, forecast, events, unit=unit, cutoff=last_day), width="stretch")
stockouts = history.filter(
    (pl.col("on_hand").fill_null(1.0) <= 0) | (pl.col("stockout_hours").fill_null(0.0) > 0)
).height
st.caption(
    f"{history.height:,} {unit}s shown, {stockouts:,} with a stockout (crosses; their sales understate demand, "
    f"shaded). Forecast of {day.scored_on}: median (dashed) with its p10-p90 band; promotions are the green ticks "
    "at the top, events the dotted rules."
)
with st.expander("Forecast table"):
    st.dataframe(
        rows.select("date", "horizon", "forecast", "p10", "p50", "p90"),
        hide_index=True,
        column_config={c: st.column_config.NumberColumn(c, format="%.1f") for c in ("forecast", "p10", "p50", "p90")},
    )

# -- why ------------------------------------------------------------------------------------------------------
st.subheader("Why this risk")
if risk is None:
    st.caption("No stockout risk on this data, so nothing to explain.")
else:
    found = explanation_or_reason(
        settings, store_id, item_id, scored_on=day.scored_on, version=rows["stockout_model_version"][0]
    )
    if isinstance(found, str):
        st.info(found, icon=":material/info:")
    else:
        reasons = pl.DataFrame(
            [{"text": r.text, "contribution": r.contribution, "direction": r.direction} for r in found.reasons],
            schema={"text": pl.String, "contribution": pl.Float64, "direction": pl.String},
        )
        raises, lowers = st.columns(2)
        for column, direction, title in ((raises, "up", "▲ Raises the risk"), (lowers, "down", "▼ Lowers the risk")):
            lines = [f"- {r.text}" for r in found.reasons if r.direction == direction] or ["- nothing"]
            column.markdown("\n".join([f"**{title}**", *lines]))
        if not reasons.is_empty():
            st.altair_chart(contribution_chart(reasons), width="stretch")
        st.caption(
            f"Stockout model v{found.model_version} at {found.origin}: risk {found.risk:.0%} (threshold "
            f"{found.threshold:.0%}); the features that moved this item's risk most, from the model's own "
            "contributions."
        )


# -- live ------------------------------------------------------------------------------------------------------
@st.fragment(run_every=dt.timedelta(seconds=max(settings.live.refresh_seconds, 2.0)))
def live_part(store_id: str = store_id, item_id: str = item_id) -> None:
    st.subheader("Today, live")
    view = reads.live_view(settings, store_id, item_id)
    if isinstance(view, str):
        st.caption(view)
        return
    live = st.columns(4)
    live[0].metric(f"Sold on {view.day}", f"{view.buckets.today.units:,.0f} units")
    live[1].metric("This week / month", f"{view.buckets.week.units:,.0f} / {view.buckets.month.units:,.0f}")
    count = view.stock.on_hand
    live[2].metric("Last stock count", "none" if count is None else f"{count:,.0f} units", help=view.stock.count_key)
    now = view.stock.now
    live[3].metric(
        "Stock now", "unknown" if now is None else f"{now:,.0f} units", help=f"{view.stock.after} sales/receipts since"
    )
    if view.buckets.updated_at is not None:
        st.caption(f"Updated {view.buckets.updated_at:%Y-%m-%d %H:%M:%S} UTC; refreshed every few seconds.")


live_part()
