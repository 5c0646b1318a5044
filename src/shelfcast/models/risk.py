"""Stockout risk at a cutoff from a fitted classifier (and from demand quantiles against stock), and its
rolling-origin backtest against the rule."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import polars as pl

from shelfcast.features.labels import StockoutDefinition, definition_for, rule_baseline, stockout_labels
from shelfcast.features.panel import SERIES, Panel
from shelfcast.models.backtest import BacktestConfig, Progress, cutoffs
from shelfcast.models.checkpoint import Checkpoints
from shelfcast.models.classification import stockout_metrics
from shelfcast.models.data import ModelData
from shelfcast.models.quantile_forecast import forecast_with_quantiles
from shelfcast.models.replenish import stock_position
from shelfcast.models.selection import SelectionConfig
from shelfcast.models.stockout import (
    StockoutConfig,
    StockoutModel,
    fit_stockout,
    quantile_risk,
    stockout_features,
    window_steps,
)
from shelfcast.models.train import ForecastConfig


def score_stockout(
    data: ModelData,
    *,
    cutoff: dt.date,
    definition: StockoutDefinition,
    forecast: pl.DataFrame | None = None,
    checkpoints: Checkpoints | None = None,
    config: StockoutConfig | None = None,
) -> pl.DataFrame:
    """risk (calibrated probability), label at the held-out threshold, the rule's score and, where stock is
    known and a forecast is given, the risk that demand over the window exceeds the stock on hand."""
    model = fit_stockout(
        data.panel, data.spec, config or StockoutConfig(), definition, cutoff=cutoff, checkpoints=checkpoints
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
        stock = stock_position(data.panel, cutoff=cutoff).select(*SERIES, "on_hand")
        from_quantiles = quantile_risk(forecast, stock, window=window).rename({"risk": "quantile_risk"})
        scored = scored.join(from_quantiles, on=list(SERIES), how="left")
    return scored


@dataclass(frozen=True)
class StockoutBacktest:
    metrics: pl.DataFrame
    cutoffs: list[dt.date]
    selected: str
    # Every scored (series, origin): risk, threshold, rule_score, label_true, window (for plots).
    scored: pl.DataFrame | None = None


def backtest_risk(
    data: ModelData,
    *,
    folds: int,
    risk_days: int,
    min_hours: float | None,
    progress: Progress | None = None,
    config: StockoutConfig | None = None,
    forecast_config: ForecastConfig | None = None,
    quantile_risk: bool = True,
    selection: SelectionConfig | None = None,
) -> StockoutBacktest:
    """Each window: fit at its cutoff, score the origin at the cutoff, compare with the rule.

    `quantile_risk=False` skips the demand forecast each window needs for the
    `quantile_risk` model (chosen by `selection` on the windows before the
    cutoff); the classifier's and the rule's scores do not use it.
    """
    if forecast_config is not None:
        data = replace(data, config=forecast_config)
    definition = definition_for(data.panel, risk_days=risk_days, min_hours=min_hours)
    steps = window_steps(data.panel, risk_days)
    dates = cutoffs(data.last_date, BacktestConfig(folds=folds, horizon=steps, step=steps), data.panel.step)
    frames = []
    for i, cutoff in enumerate(dates):
        if progress:
            progress(f"window {i + 1}/{len(dates)} (cutoff {cutoff})", i, len(dates))
        forecast = None
        if quantile_risk and "on_hand" in data.panel.frame.columns:
            forecast = forecast_with_quantiles(data, cutoff=cutoff, horizon=steps, selection=selection)
        scored = score_stockout(data, cutoff=cutoff, definition=definition, forecast=forecast, config=config)
        frames.append(labelled_at(scored, data.panel, definition, cutoff).with_columns(pl.lit(i + 1).alias("window")))
    return risk_backtest(pl.concat(frames), dates)


def labelled_at(scored: pl.DataFrame, panel: Panel, definition: StockoutDefinition, cutoff: dt.date) -> pl.DataFrame:
    """A cutoff's scored rows with the label their window turned out to have (`label_true`); unknown ones dropped."""
    labels = stockout_labels(panel, origins=[cutoff], definition=definition).drop_nulls("label")
    return scored.join(labels.select(*SERIES, "origin", pl.col("label").alias("label_true")), on=[*SERIES, "origin"])


def risk_backtest(scored_all: pl.DataFrame, dates: list[dt.date]) -> StockoutBacktest:
    """The metrics of every window's scored rows (`window` 1.., `label_true`): the classifier's, the rule's and,
    where the rows have it, the quantile risk's; per window and over all, and the best model by PR-AUC."""
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
