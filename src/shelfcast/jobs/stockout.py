"""Stockout jobs: risk and reorder advice at a cutoff, and a rolling-origin backtest against the rule."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

from shelfcast.errors import ConfigError, DataValidationError
from shelfcast.features.labels import StockoutDefinition, rule_baseline, stockout_labels
from shelfcast.features.panel import SERIES, Panel
from shelfcast.io.lake import Lake
from shelfcast.jobs.forecast import forecast_with_quantiles
from shelfcast.jobs.modeling import ModelData, load_model_data
from shelfcast.models.backtest import BacktestConfig, Progress, cutoffs
from shelfcast.models.classification import stockout_metrics
from shelfcast.models.replenish import lead_time_demand, replenishment, stock_position
from shelfcast.models.stockout import (
    StockoutConfig,
    StockoutModel,
    fit_stockout,
    quantile_risk,
    stockout_features,
    window_steps,
)
from shelfcast.models.train import ForecastConfig
from shelfcast.settings import Settings

HOURS_SIGNALS = ("stockout_hours", "hourly_stockout")


def definition_for(panel: Panel, *, window: int, min_hours: float | None) -> StockoutDefinition:
    """The stockout definition for this data: on-hand reaching zero where known, else observed stockout hours.

    Checked before any model is trained: data without a stock signal (sales
    only, e.g. Store Item or Walmart) cannot say when a shelf was empty, and
    `min_hours` means nothing without stockout hours.
    """
    columns = panel.frame.columns
    hours = any(c in columns for c in HOURS_SIGNALS)
    if not hours and "on_hand" not in columns:
        raise DataValidationError(
            "stockout risk needs stock data, and the lake has sales only: ingest an inventory table with "
            "on_hand or stockout_hours per day (e.g. `shelfcast ingest FILE --source generic --table inventory "
            "--map on_hand=COLUMN ...`)"
        )
    if min_hours is not None and not hours:
        raise ConfigError(
            f"`--min-hours` {min_hours:g} needs stockout hours, but the inventory has on_hand only; "
            "leave it out (a stockout is then on_hand reaching zero)"
        )
    return StockoutDefinition(window=window, min_hours=min_hours, use_on_hand="on_hand" in columns)


def daily_forecast(weekly: pl.DataFrame) -> pl.DataFrame:
    """Each weekly forecast as seven days with the week's mean and variance (the advice counts days).

    A day gets a seventh of the week's forecast, and a seventh of its variance
    (quantile distances from the forecast divided by sqrt(7)), so the seven
    days, summed as independent, give back the week. Only the lead-time sums
    use these days (a day's p10 may fall below zero; its spread is what counts).
    """
    spread = 7.0**0.5
    days = weekly.with_columns(pl.int_ranges(0, 7).alias("__day")).explode("__day")
    return days.with_columns(
        (pl.col("date") + pl.duration(days=pl.col("__day"))).alias("date"),
        (pl.col("forecast") / 7.0).alias("forecast"),
        *[
            (pl.col("forecast") / 7.0 + (pl.col(c) - pl.col("forecast")) / spread).alias(c)
            for c in ("p10", "p50", "p90")
        ],
    ).drop("__day")


def reorder_advice(panel: Panel, forecast: pl.DataFrame, *, cutoff: dt.date, settings: Settings) -> pl.DataFrame:
    """Safety stock, reorder point and order quantities from lead-time demand quantiles of the forecast."""
    daily = daily_forecast(forecast) if panel.freq == "W" else forecast
    demand_lt = lead_time_demand(daily, lead_time_days=settings.lead_time_days)
    stock = None
    if "on_hand" in panel.frame.columns:
        extra = ["on_order"] if "on_order" in panel.frame.columns else []
        stock = stock_position(panel, as_of=cutoff).select(*SERIES, "on_hand", *extra)
    advice = replenishment(demand_lt, stock=stock, service_level=settings.service_level)
    keep = ["safety_stock", "reorder_point", "order_up_to", "order_quantity", "reorder_now"]
    return advice.select(*SERIES, *[c for c in keep if c in advice.columns])


@dataclass(frozen=True)
class StockoutReport:
    path: Path
    rows: int
    alerts: int
    threshold: float
    cutoff: dt.date
    seconds: float


def score_stockout(
    data: ModelData,
    *,
    cutoff: dt.date,
    definition: StockoutDefinition,
    forecast: pl.DataFrame | None = None,
    checkpoint_dir: Path | None = None,
    config: StockoutConfig | None = None,
) -> pl.DataFrame:
    """risk (calibrated probability), label at the held-out threshold, the rule's score and, where stock is
    known and a forecast is given, the risk that demand over the window exceeds the stock on hand."""
    model = fit_stockout(
        data.panel, data.spec, config or StockoutConfig(), definition, cutoff=cutoff, checkpoint_dir=checkpoint_dir
    )
    return apply_stockout(model, data, cutoff=cutoff, forecast=forecast)


def apply_stockout(
    model: StockoutModel, data: ModelData, *, cutoff: dt.date, forecast: pl.DataFrame | None = None
) -> pl.DataFrame:
    """A fitted classifier's risk and label for every series at `cutoff` (see `score_stockout`)."""
    definition = model.definition
    window = window_steps(data.panel, definition.window)
    # The model's own spec: a champion sees the features it was trained on, whatever the lake's defaults are now.
    features = stockout_features(data.panel.as_known_at(cutoff), model.spec, [cutoff], window=window)
    risk = model.predict_proba(features)
    rule = rule_baseline(data.panel, origins=[cutoff], window=definition.window, definition=definition)
    scored = (
        features.select(*SERIES, "origin")
        .with_columns(pl.Series("risk", risk), pl.lit(model.threshold).alias("threshold"))
        .with_columns((pl.col("risk") >= pl.col("threshold")).cast(pl.Int8).alias("label"))
        .join(rule.select(*SERIES, "origin", pl.col("score").alias("rule_score")), on=[*SERIES, "origin"], how="left")
    )
    if forecast is not None and "on_hand" in data.panel.frame.columns:
        stock = stock_position(data.panel, as_of=cutoff).select(*SERIES, "on_hand")
        from_quantiles = quantile_risk(forecast, stock, window=window).rename({"risk": "quantile_risk"})
        scored = scored.join(from_quantiles, on=list(SERIES), how="left")
    return scored


def run_stockout(
    settings: Settings, *, cutoff: dt.date | None, window: int, min_hours: float | None, out: Path
) -> StockoutReport:
    started = time.perf_counter()
    data = load_model_data(Lake(settings.workspace))
    cutoff = cutoff or data.last_date
    definition = definition_for(data.panel, window=window, min_hours=min_hours)
    # The demand forecast covers the risk window and the lead time plus review period of the advice.
    days = max(window, settings.lead_time_days + 7)
    steps = window_steps(data.panel, days)
    checkpoints = settings.workspace / "checkpoints"
    forecast = forecast_with_quantiles(data, cutoff=cutoff, horizon=steps, checkpoint_dir=checkpoints)
    scored = score_stockout(data, cutoff=cutoff, definition=definition, forecast=forecast, checkpoint_dir=checkpoints)
    advice = reorder_advice(data.panel, forecast, cutoff=cutoff, settings=settings)
    result = scored.join(advice, on=list(SERIES), how="left").drop("origin").sort("risk", descending=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.write_parquet(out)
    return StockoutReport(
        out,
        result.height,
        int(result["label"].sum()),
        float(result["threshold"][0]),
        cutoff,
        time.perf_counter() - started,
    )


@dataclass(frozen=True)
class StockoutBacktest:
    metrics: pl.DataFrame
    cutoffs: list[dt.date]
    selected: str
    # Every scored (series, origin): risk, threshold, rule_score, label_true, window (for plots).
    scored: pl.DataFrame | None = None


def backtest_stockout(
    settings: Settings,
    *,
    windows: int,
    window: int,
    min_hours: float | None,
    progress: Progress | None = None,
    config: StockoutConfig | None = None,
    forecast_config: ForecastConfig | None = None,
    data: ModelData | None = None,
    quantile_risk: bool = True,
) -> StockoutBacktest:
    """Each window: fit at its cutoff, score the origin at the cutoff, compare with the rule.

    `data`: already loaded from the workspace's lake (default: load it).
    `quantile_risk=False` skips the demand forecast each window needs for the
    `quantile_risk` model; the classifier's and the rule's scores do not use it.
    """
    data = data or load_model_data(Lake(settings.workspace))
    if forecast_config is not None:
        data = replace(data, config=forecast_config)
    definition = definition_for(data.panel, window=window, min_hours=min_hours)
    steps = window_steps(data.panel, window)
    dates = cutoffs(data.last_date, BacktestConfig(windows=windows, horizon=steps, step=steps), data.panel.step)
    frames = []
    for i, cutoff in enumerate(dates):
        if progress:
            progress(f"window {i + 1}/{len(dates)} (cutoff {cutoff})", i, len(dates))
        forecast = None
        if quantile_risk and "on_hand" in data.panel.frame.columns:
            forecast = forecast_with_quantiles(data, cutoff=cutoff, horizon=steps)
        scored = score_stockout(data, cutoff=cutoff, definition=definition, forecast=forecast, config=config)
        labels = stockout_labels(data.panel, origins=[cutoff], definition=definition).drop_nulls("label")
        frames.append(
            scored.join(
                labels.select(*SERIES, "origin", pl.col("label").alias("label_true")), on=[*SERIES, "origin"]
            ).with_columns(pl.lit(i + 1).alias("window"))
        )
    scored_all = pl.concat(frames)
    rows = []
    groups = [
        ("all", scored_all),
        *((str(w), scored_all.filter(pl.col("window") == w)) for w in range(1, len(dates) + 1)),
    ]
    for label, frame in groups:
        rows.append({"model": "classifier", "window": label, **_classifier_metrics(frame)})
        rule = frame.drop_nulls("rule_score").with_columns(pl.col("rule_score").cast(pl.Float64))
        values = stockout_metrics(rule, label="label_true", score="rule_score", threshold=0.5, k=0.05)
        rows.append({"model": "rule", "window": label, **{k: float(v) for k, v in values.items()}})
        if "quantile_risk" in frame.columns and frame["quantile_risk"].drop_nulls().len():
            # Demand quantiles against stock: a probability by construction, alerting at 0.5.
            usable = frame.drop_nulls("quantile_risk")
            values = stockout_metrics(usable, label="label_true", score="quantile_risk", threshold=0.5, k=0.05)
            rows.append({"model": "quantile_risk", "window": label, **{k: float(v) for k, v in values.items()}})
    metrics = pl.DataFrame(rows)
    best = metrics.filter(pl.col("window") == "all").sort("pr_auc", descending=True, nulls_last=True)["model"][0]
    return StockoutBacktest(metrics, dates, best, scored_all)


def _classifier_metrics(frame: pl.DataFrame) -> dict[str, float]:
    """Ranking metrics on the calibrated risk; alert metrics at each window's own held-out threshold."""
    ranking = stockout_metrics(frame, label="label_true", score="risk", threshold=0.5, k=0.05)
    alerts = frame.with_columns((pl.col("risk") >= pl.col("threshold")).cast(pl.Float64).alias("__alert"))
    at_threshold = stockout_metrics(alerts, label="label_true", score="__alert", threshold=0.5)
    keep = ("alert_rate", "precision", "recall", "f1", "tn", "fp", "fn", "tp")
    values = {**ranking, **{k: at_threshold[k] for k in keep}}
    return {k: float(v) for k, v in values.items()}
