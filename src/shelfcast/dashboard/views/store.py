"""Store: one store's items ranked by stockout risk, with the reorder advice and today's order list."""

from __future__ import annotations

import polars as pl
import streamlit as st

from shelfcast.dashboard import reads, ui
from shelfcast.dashboard.tables import order_list, store_items

PAGE_SIZES = (25, 50, 100, 500)

settings = ui.settings_or_stop()
st.title("Store")
day = ui.scoring_or_stop(settings)
try:
    on_hand = reads.stock_on_hand(settings)
    attributes = reads.item_attributes(settings)
except reads.READ_ERRORS as exc:
    ui.problem(f"Cannot read the lake: {exc}")
    st.stop()

store_id = ui.pick("Store", ui.stores_of(day), param=ui.STORE_PARAM, key="store_pick")
assert store_id is not None
items = store_items(day, store_id, on_hand=on_hand, attributes=attributes)
has_risk = items["stockout_risk"].is_not_null().any()
has_orders = items["order_quantity"].is_not_null().any()

st.caption(f"Scoring of {day.scored_on} (run {day.scored_at:%Y-%m-%d %H:%M} UTC), forecasts {day.first} to {day.last}")
left, middle, right = st.columns(3)
left.metric("Items scored", f"{items.height:,}")
middle.metric("Flagged at risk", f"{items['stockout_label'].fill_null(False).sum():,}" if has_risk else "n/a")
right.metric("To order now", f"{(items['order_quantity'].fill_null(0) > 0).sum():,}" if has_orders else "n/a")

with st.container(horizontal=True):
    categories = items["category"].drop_nulls().unique().sort().to_list() if "category" in items.columns else []
    chosen = st.multiselect("Category", categories, placeholder="every category") if categories else []
    min_risk = st.slider("Minimum stockout risk", 0.0, 1.0, 0.0, 0.05, disabled=not has_risk)
if chosen:
    items = items.filter(pl.col("category").is_in(chosen))
if has_risk and min_risk > 0:
    items = items.filter(pl.col("stockout_risk") >= min_risk)
if not has_risk:
    st.caption("No stockout risk on this data (sales only, or no stockout model): items are ranked by forecast.")
if not has_orders:
    st.caption("No reorder advice: the data has no stock counts (ingest an inventory table, then score).")

size = st.session_state.get("store_page_size", PAGE_SIZES[1])
pages = max(1, -(-items.height // size))
page = min(int(st.session_state.get("store_page", 1)), pages)
shown = items.slice((page - 1) * size, size)
st.dataframe(
    shown.with_columns(("item?store=" + pl.col("store_id") + "&item=" + pl.col("item_id")).alias("details")).drop(
        "store_id"
    ),
    hide_index=True,
    column_config={
        "item_id": st.column_config.TextColumn("Item"),
        "category": st.column_config.TextColumn("Category"),
        "stockout_risk": st.column_config.ProgressColumn(
            "Stockout risk", format="percent", min_value=0.0, max_value=1.0, help="Probability of a stockout"
        ),
        "stockout_label": st.column_config.CheckboxColumn("Alert", help="risk at or above the model's threshold"),
        "threshold": st.column_config.NumberColumn("Threshold", format="percent", help="the model's alert threshold"),
        "forecast_7": st.column_config.NumberColumn("Demand next 7 periods", format="%.1f units"),
        "on_hand": st.column_config.NumberColumn("On hand", format="%.0f units"),
        "counted_on": st.column_config.DateColumn("Counted on"),
        "reorder_point": st.column_config.NumberColumn("Reorder point", format="%.0f units"),
        "order_up_to": st.column_config.NumberColumn("Order up to", format="%.0f units"),
        "order_quantity": st.column_config.NumberColumn("Order now", format="%.0f units"),
        "details": st.column_config.LinkColumn("Details", display_text="open item"),
    },
)
with st.container(horizontal=True):
    st.selectbox("Rows per page", PAGE_SIZES, index=PAGE_SIZES.index(size), key="store_page_size")
    st.number_input(f"Page (of {pages})", 1, pages, page, key="store_page")
    st.caption(
        f"items {min(items.height, (page - 1) * size + 1):,}-{min(items.height, page * size):,} of {items.height:,}"
    )

orders = order_list(items)
st.download_button(
    f"Download the order list ({orders.height:,} items to order today, as shown above)",
    orders.write_csv(),
    file_name=f"order-list-{store_id}-{day.scored_on}.csv",
    mime="text/csv",
    icon=":material/download:",
    disabled=orders.is_empty(),
)
