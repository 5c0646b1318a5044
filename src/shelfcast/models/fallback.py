"""What scores when no model can be trusted: the seasonal naive with its quantiles, and the rule's risk."""

from __future__ import annotations

import datetime as dt

import polars as pl

from shelfcast.features.frames import HORIZON
from shelfcast.features.labels import RULE_THRESHOLD, definition_for, rule_baseline
from shelfcast.features.panel import SERIES
from shelfcast.models.baselines import seasonal_naive_quantiles
from shelfcast.models.data import ModelData


def baseline_forecast(data: ModelData, *, cutoff: dt.date, steps: int) -> pl.DataFrame:
    """The demand fallback: the seasonal naive with its empirical p10/p50/p90 (the point where a series has none)."""
    frame = seasonal_naive_quantiles(data.panel, cutoff=cutoff, horizon=steps)
    days = data.panel.step.days
    return frame.with_columns(
        ((pl.col("date") - pl.lit(cutoff)).dt.total_days() // days).cast(pl.Int32).alias(HORIZON),
        *[pl.coalesce(pl.col(q), pl.col("forecast")).alias(q) for q in ("p10", "p50", "p90")],
    )


def rule_risk(data: ModelData, *, cutoff: dt.date, risk_days: int = 7) -> pl.DataFrame:
    """The stockout fallback: the rule baseline's 0/1 as the risk, alert at 0.5; null where it cannot tell."""
    definition = definition_for(data.panel, risk_days=risk_days, min_hours=None)
    rule = rule_baseline(data.panel, origins=[cutoff], window=risk_days, definition=definition)
    return rule.select(
        *SERIES,
        pl.col("score").cast(pl.Float64).alias("risk"),
        pl.col("score").cast(pl.Int8).alias("label"),
        pl.lit(RULE_THRESHOLD).alias("threshold"),
    )
