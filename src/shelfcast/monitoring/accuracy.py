"""Live accuracy: stored predictions joined to the actuals that arrived since, per model version.

Pure: prediction rows (the prediction store's columns) and actuals in,
frames and numbers out. Only predictions whose actuals are fully known
count: a demand row when its day's sales are in (on or before
`known_until`), a stockout row when its whole risk window is (the label is
not null). The evaluation window is the last `lookback_days` days of forecast
days (demand) or of closed risk windows (stockout).

Demand accuracy also comes relative to the seasonal naive on the very same
rows (the value a week back from each forecast's origin, or a year on
weekly data): WAPE / WAPE of the naive. Raw WAPE moves with the period (a
January slump, a holiday week) whatever the model; the ratio does not, so
two versions that served at different times, or a model and its backtest,
can be compared through it.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import polars as pl

from shelfcast.features.panel import SERIES
from shelfcast.models.classification import stockout_metrics
from shelfcast.models.metrics import mape, wape

DEMAND_METRIC, STOCKOUT_METRIC = "wape", "pr_auc"


@dataclass(frozen=True)
class VersionAccuracy:
    version: str
    value: float | None  # the task's metric (WAPE or PR-AUC); None when it cannot be computed
    rows: int
    days: int
    extra: dict[str, float]  # MAPE (%) for demand, F1 for stockout, when defined
    relative: float | None = None  # demand: WAPE / the seasonal naive's WAPE on the same rows


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def demand_scored(
    predictions: pl.DataFrame,
    actuals: pl.DataFrame,
    *,
    known_until: dt.date,
    lookback_days: int,
    step_days: int = 1,
    season_days: int = 7,
) -> pl.DataFrame:
    """Prediction rows with their actual `units` and the seasonal naive's `naive` (null where its source day is
    missing), forecast days in the window and known (one row per prediction)."""
    start = known_until - dt.timedelta(days=lookback_days)
    rows = predictions.filter((pl.col("date") > start) & (pl.col("date") <= known_until))
    units = actuals.select(*SERIES, "date", "units")
    # The naive repeats the last season before the origin: whole seasons back from the target, at least one step
    # more than the horizon reaches.
    seasons = ((pl.col("horizon") * step_days + season_days - 1) // season_days).cast(pl.Int64)
    source = (pl.col("date") - pl.duration(days=seasons * season_days)).alias("_source")
    naive = units.rename({"date": "_source", "units": "naive"})
    return (
        rows.join(units, on=[*SERIES, "date"], how="inner")
        .filter(pl.col("units").is_not_null())
        .with_columns(source)
        .join(naive, on=[*SERIES, "_source"], how="left")
        .drop("_source")
    )


def stockout_scored(
    predictions: pl.DataFrame, labels: pl.DataFrame, *, known_until: dt.date, lookback_days: int, step_days: int = 1
) -> pl.DataFrame:
    """One row per scoring day and series with risk, alert and the realised label (`label_true`), windows closed.

    `labels`: store_id, item_id, origin, window_end, label (null for a partial window), as `stockout_labels` gives.
    """
    risk = (
        predictions.filter(pl.col("stockout_risk").is_not_null() & pl.col("stockout_model_version").is_not_null())
        .with_columns((pl.col("date") - pl.duration(days=pl.col("horizon") * step_days)).alias("origin"))
        .group_by("scored_on", *SERIES, "origin")
        .agg(
            pl.col("stockout_risk").first().alias("risk"),
            pl.col("stockout_label").first().cast(pl.Float64).alias("alert"),
            pl.col("stockout_model_version").first(),
        )
    )
    start = known_until - dt.timedelta(days=lookback_days)
    closed = labels.filter(
        pl.col("label").is_not_null() & (pl.col("window_end") <= known_until) & (pl.col("window_end") > start)
    )
    return risk.join(
        closed.select(*SERIES, "origin", "window_end", pl.col("label").cast(pl.Float64).alias("label_true")),
        on=[*SERIES, "origin"],
        how="inner",
    ).sort("scored_on", *SERIES)


def demand_by_version(scored: pl.DataFrame) -> dict[str, VersionAccuracy]:
    """WAPE (and MAPE) of each demand model version over the scored rows."""
    out = {}
    for (version,), part in scored.group_by("model_version"):
        units, forecast = part["units"].to_numpy(), part["forecast"].to_numpy()
        extra = {} if (m := mape(units, forecast).value) != m else {"mape": m}
        out[str(version)] = VersionAccuracy(
            str(version),
            _finite(wape(units, forecast)),
            part.height,
            part["date"].n_unique(),
            extra,
            relative=_relative(part),
        )
    return dict(sorted(out.items()))


def _relative(part: pl.DataFrame) -> float | None:
    if "naive" not in part.columns:
        return None
    both = part.filter(pl.col("naive").is_not_null())
    if both.is_empty():
        return None
    units = both["units"].to_numpy()
    model, naive = wape(units, both["forecast"].to_numpy()), wape(units, both["naive"].to_numpy())
    return _finite(model / naive) if naive > 0 else None  # NaN > 0 is False


def stockout_by_version(scored: pl.DataFrame) -> dict[str, VersionAccuracy]:
    """PR-AUC (and F1 at each row's stored alert) of each stockout model version."""
    out = {}
    for (version,), part in scored.group_by("stockout_model_version"):
        ranking = stockout_metrics(part, label="label_true", score="risk", threshold=0.5)
        alerts = stockout_metrics(part, label="label_true", score="alert", threshold=0.5)
        extra = {} if (f := alerts["f1"]) != f else {"f1": float(f)}
        out[str(version)] = VersionAccuracy(
            str(version), _finite(ranking["pr_auc"]), part.height, part["origin"].n_unique(), extra
        )
    return dict(sorted(out.items()))


def demand_over_time(scored: pl.DataFrame) -> pl.DataFrame:
    """WAPE per forecast day and model version: date, model_version, value, rows."""
    if scored.is_empty():
        return pl.DataFrame(schema={"date": pl.Date, "model_version": pl.String, "value": pl.Float64, "rows": pl.Int64})
    error = (pl.col("forecast") - pl.col("units")).abs().sum()
    return (
        scored.group_by("date", "model_version")
        .agg((error / pl.col("units").abs().sum()).alias("value"), pl.len().cast(pl.Int64).alias("rows"))
        .with_columns(pl.col("value").fill_nan(None))
        .sort("date", "model_version")
    )


def stockout_over_time(scored: pl.DataFrame) -> pl.DataFrame:
    """F1 of the alerts per scoring origin and model version (PR-AUC needs more rows than a day has)."""
    if scored.is_empty():
        return pl.DataFrame(schema={"date": pl.Date, "model_version": pl.String, "value": pl.Float64, "rows": pl.Int64})
    tp = (pl.col("alert") * pl.col("label_true")).sum()
    return (
        scored.group_by(pl.col("origin").alias("date"), pl.col("stockout_model_version").alias("model_version"))
        .agg(
            (2 * tp / (pl.col("alert").sum() + pl.col("label_true").sum())).alias("value"),
            pl.len().cast(pl.Int64).alias("rows"),
        )
        .with_columns(pl.col("value").fill_nan(None))
        .sort("date", "model_version")
    )


def is_degraded(live: float | None, backtest: float | None, *, higher_is_better: bool, tolerance: float) -> bool:
    """Live worse than the backtest by more than `tolerance`, a fraction of the backtest figure."""
    if live is None or backtest is None:
        return False
    slack = abs(backtest) * tolerance
    return live < backtest - slack if higher_is_better else live > backtest + slack
