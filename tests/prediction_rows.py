"""Tiny prediction frames for the store tests."""

from __future__ import annotations

import datetime as dt

import polars as pl

from shelfcast.io.stores.schema import PREDICTION_KEY, PREDICTION_SCHEMA

SCORED_ON = dt.date(2026, 11, 23)


def prediction_rows(
    *, scored_on: dt.date = SCORED_ON, series: int = 3, horizon: int = 2, forecast: float = 5.0, stock: bool = True
) -> pl.DataFrame:
    """`series` x `horizon` valid rows; `forecast` sets every demand column so a re-run can be told apart."""
    rows = []
    for s in range(series):
        for h in range(1, horizon + 1):
            rows.append(
                {
                    "scored_on": scored_on,
                    "scored_at": dt.datetime.combine(scored_on, dt.time(3, 0), tzinfo=dt.UTC),
                    "store_id": f"S{s % 2}",
                    "item_id": f"I{s}",
                    "date": scored_on + dt.timedelta(days=h),
                    "horizon": h,
                    "forecast": forecast + s,
                    "p10": forecast + s - 1.0,
                    "p50": forecast + s,
                    "p90": forecast + s + 2.0,
                    "stockout_risk": 0.1 * s if stock else None,
                    "stockout_label": s >= 2 if stock else None,
                    "threshold": 0.15 if stock else None,
                    "safety_stock": 3.0,
                    "reorder_point": 10.0,
                    "order_up_to": 20.0,
                    "order_quantity": 4.0 if stock else None,
                    "model_name": "shelfcast_gbm",
                    "model_version": "local",
                    "run_id": None,
                }
            )
    return pl.DataFrame(rows, schema=PREDICTION_SCHEMA).sort(PREDICTION_KEY)
