"""The stockout classifier on Spark: its rows built per group of series, XGBoost trained by `xgboost.spark`,
the calibration and the alert threshold chosen on the driver exactly as a local fit chooses them.

What runs where:

- The rows (`models.stockout.stockout_rows`: every labelled origin's features
  and the cutoff's own rows) are built per group of series by the same Polars
  function a local fit runs on the whole panel.
- The first model (without the held-out origins) and the final one (every
  origin) are trained distributed; the class weight comes from one count.
- Both models score the held-out and the cutoff's rows on the executors; those
  scores (one per series and held-out origin, and one per series) come back
  to the driver, where `models.stockout.calibrated` learns the calibration
  and the threshold. Above `MAX_DRIVER_ROWS` rows a hash sample of whole series
  comes back instead: the map and the threshold are read from a distribution,
  and a few million rows describe it.
- The backtest scores each window's cutoff per group with `apply_stockout`
  (the fitted model shipped to the executors) and `labelled_at`; the metrics
  are `risk_backtest`'s. Where stock is known, the `quantile_risk` comparison
  forecasts demand with the candidate a Spark demand backtest before each
  window's cutoff chose (`forecast.chosen_on_spark`), per group too.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from shelfcast.errors import DataValidationError
from shelfcast.features.build import hashed_columns
from shelfcast.features.labels import StockoutDefinition, definition_for
from shelfcast.features.panel import SERIES
from shelfcast.io.spark.forecast import (
    LABEL,
    MAX_DRIVER_ROWS,
    WEIGHT,
    SparkData,
    category_sets,
    category_values,
    chosen_on_spark,
    plain_names,
    train_encoded,
)
from shelfcast.io.spark.groups import map_batches, spark_schema, to_polars
from shelfcast.models.backtest import BacktestConfig, Progress, cutoffs
from shelfcast.models.data import DataShape, group_data
from shelfcast.models.forecaster import FeatureEncoder, GBMForecaster
from shelfcast.models.quantile_forecast import ChosenCandidate
from shelfcast.models.risk import StockoutBacktest, apply_stockout, labelled_at, risk_backtest
from shelfcast.models.selection import SelectionConfig
from shelfcast.models.stockout import (
    ORIGIN,
    Holdout,
    StockoutConfig,
    StockoutModel,
    calibrated,
    class_weight,
    stockout_classifier,
    stockout_plan,
    stockout_rows,
)
from shelfcast.models.train import KEEP_RESOLUTION, ForecastConfig
from shelfcast.types import Freq

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)
_TRAIN = "__train"


def definition_on(data: SparkData, *, risk_days: int, min_hours: float | None) -> StockoutDefinition:
    """`definition_for` the lake: it reads the panel's columns, which every group shares."""
    return definition_check(risk_days=risk_days, min_hours=min_hours)(data.shape, data.sample)


def definition_check(*, risk_days: int, min_hours: float | None) -> Callable[..., StockoutDefinition]:
    """`definition_for` from a shape and its first series: as `open_lake`'s check, data without the stock signal
    (or without the hours `min_hours` needs) is refused before Spark starts."""

    def check(shape: DataShape, sample: Mapping[str, pl.DataFrame]) -> StockoutDefinition:
        return definition_for(group_data(shape, dict(sample)).panel, risk_days=risk_days, min_hours=min_hours)

    return check


def fit_stockout_spark(
    data: SparkData, config: StockoutConfig, definition: StockoutDefinition, *, cutoff: dt.date
) -> StockoutModel:
    """`fit_stockout` on Spark, with XGBoost: the same rows, weights, calibration and threshold."""
    from pyspark.sql import functions as sf

    shape, spec = data.shape, data.shape.spec
    config = config.model_copy(update={"engine": "xgboost"})
    plan = stockout_plan(shape.freq, config, definition, cutoff)

    def rows_of(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
        return stockout_rows(group_data(shape, tables).panel, spec, definition, plan)

    rows = data.run(rows_of).withColumn(_TRAIN, sf.col(ORIGIN) < sf.lit(plan.holdout_from)).persist()
    try:
        categorical = [c for c in [*spec.categorical, *hashed_columns(spec)] if c in rows.columns]
        labelled = sf.col("label").isNotNull()
        counts = rows.agg(
            sf.sum((labelled & sf.col(_TRAIN)).cast("long")).alias("train"),
            sf.sum((labelled & ~sf.col(_TRAIN)).cast("long")).alias("hold"),
            sf.count(sf.lit(1)).alias("rows"),
        ).first()
        assert counts is not None
        if not (counts["train"] or counts["hold"]):
            raise DataValidationError(f"no complete {definition.window}-day label windows before the cutoff {cutoff}")
        if not counts["train"] or not counts["hold"]:
            raise DataValidationError(
                "too few origins to train and calibrate; give more history or fewer holdout origins"
            )
        train = _sampled(rows.filter(labelled & sf.col(_TRAIN)), counts["train"], config)
        rate = _positive_rate(train)
        positive = class_weight(config, rate)
        first = _train(data, train, config, categorical, positive)
        final = first
        if config.refit_all:
            full = _sampled(rows.filter(labelled), counts["train"] + counts["hold"], config)
            final = _train(data, full, config, categorical, positive)
        holdout = _holdout(rows.filter(~labelled | ~sf.col(_TRAIN)), first, final, cutoff=cutoff)
    finally:
        rows.unpersist()
    model = calibrated(spec, config, definition, final=final, holdout=holdout, rate=rate)
    log.info(
        "stockout model on Spark: %d training rows, %.1f%% positives, threshold %.3f (%s)",
        counts["train"],
        100 * rate,
        model.threshold,
        config.threshold,
    )
    return model


def _sampled(rows: DataFrame, count: int, config: StockoutConfig) -> DataFrame:
    """At most about `config.max_rows` of `rows`: a seeded hash sample of (series, origin) above it."""
    if count <= config.max_rows:
        return rows
    from pyspark.sql import functions as sf

    keep = int(config.max_rows / count * KEEP_RESOLUTION)
    draw = sf.pmod(sf.xxhash64(*SERIES, ORIGIN, sf.lit(config.seed)), sf.lit(KEEP_RESOLUTION))
    return rows.filter(draw < keep)


def _positive_rate(rows: DataFrame) -> float:
    from pyspark.sql import functions as sf

    row = rows.agg(sf.avg(sf.col("label").cast("double")).alias("rate")).first()
    return float(row["rate"]) if row is not None and row["rate"] is not None else 0.0


def _train(
    data: SparkData, rows: DataFrame, config: StockoutConfig, categorical: list[str], positive: float | None
) -> GBMForecaster:
    """One classifier trained on `rows` (labelled), its encoder fitted on their schema and category values."""

    probe = pl.from_arrow(rows.drop(_TRAIN).limit(0).toArrow())
    assert isinstance(probe, pl.DataFrame)
    inputs = probe.drop("label").schema
    sets = rows.agg(*category_sets(categorical)).first() if categorical else None  # one job for every column
    values = category_values(sets, categorical) if sets is not None else {}
    model = stockout_classifier(config, categorical)
    model.encoder_ = FeatureEncoder(categorical).fit_schema(inputs, values)
    encoder, plain = model.encoder_, plain_names(model.encoder_)

    def encode(batch: pl.DataFrame) -> pl.DataFrame:
        y = batch["label"].cast(pl.Float64)
        weight = pl.Series(WEIGHT, [1.0] * batch.height, dtype=pl.Float64)
        if positive is not None:
            weight = pl.Series(WEIGHT, np.where(y.to_numpy() == 1, positive, 1.0), dtype=pl.Float64)
        out = pl.DataFrame(encoder.transform(batch), schema=plain, orient="row")
        return out.with_columns(y.alias(LABEL), weight)

    return train_encoded(data, rows.drop(_TRAIN), encode, model, order=[*SERIES, ORIGIN], classifier=True)


def _holdout(rows: DataFrame, first: GBMForecaster, final: GBMForecaster, *, cutoff: dt.date) -> Holdout:
    """Both models' raw scores on the held-out rows and the cutoff's, scored on the executors, back on the driver."""
    from pyspark.sql import functions as sf

    count = rows.count()
    if count > MAX_DRIVER_ROWS:
        keep = int(MAX_DRIVER_ROWS / count * KEEP_RESOLUTION)
        rows = rows.filter(sf.pmod(sf.xxhash64(*SERIES), sf.lit(KEEP_RESOLUTION)) < keep)  # whole series

    def scores(batch: pl.DataFrame) -> pl.DataFrame:
        features = batch.drop("label", _TRAIN)
        raw_first = first.predict(features)
        raw_final = raw_first if final is first else final.predict(features)
        return batch.select(*SERIES, ORIGIN, "label").with_columns(
            pl.Series("first", raw_first, dtype=pl.Float64), pl.Series("final", raw_final, dtype=pl.Float64)
        )

    schema = spark_schema(
        pl.Schema(
            {
                "store_id": pl.String,
                "item_id": pl.String,
                ORIGIN: pl.Date,
                "label": pl.Int8,
                "first": pl.Float64,
                "final": pl.Float64,
            }
        )
    )
    scored = to_polars(map_batches(rows, scores, schema)).sort(*SERIES, ORIGIN)
    hold = scored.filter(pl.col(ORIGIN) < cutoff)
    current = scored.filter(pl.col(ORIGIN) == cutoff)
    return Holdout(
        raw=hold["first"].to_numpy(),
        label=hold["label"].to_numpy().astype(np.float64),
        origin=hold[ORIGIN].to_physical().to_numpy(),
        current_first=current["first"].to_numpy(),
        current_final=current["final"].to_numpy(),
    )


def backtest_risk_spark(
    data: SparkData,
    *,
    folds: int,
    risk_days: int,
    min_hours: float | None,
    config: StockoutConfig | None = None,
    progress: Progress | None = None,
    forecast_config: ForecastConfig | None = None,
    quantile_risk: bool = True,
    selection: SelectionConfig | None = None,
) -> StockoutBacktest:
    """`backtest_risk` on Spark: each window's classifier fitted on Spark at its cutoff, the cutoff's rows scored
    per group with the rule (and, where stock is known, the quantile risk of the demand candidate a Spark backtest
    before the cutoff chose: `chosen_on_spark`), labelled; the same metrics."""
    shape = data.shape
    config = (config or StockoutConfig()).model_copy(update={"engine": "xgboost"})
    definition = definition_on(data, risk_days=risk_days, min_hours=min_hours)
    freq = Freq(shape.freq)
    steps = freq.steps_in(risk_days)
    dates = cutoffs(shape.end, BacktestConfig(folds=folds, horizon=steps, step=steps), freq.step)
    with_stock = "on_hand" in group_data(shape, data.sample).panel.frame.columns
    frames = []
    for i, cutoff in enumerate(dates):
        if progress:
            progress(f"window {i + 1}/{len(dates)} (cutoff {cutoff})", i, len(dates))
        demand = None
        if quantile_risk and with_stock:
            demand = chosen_on_spark(
                data, forecast_config or shape.config, cutoff=cutoff, horizon=steps, selection=selection
            )
        model = fit_stockout_spark(data, config, definition, cutoff=cutoff)
        scored = scored_spark(data, model, cutoff=cutoff, demand=demand)
        frames.append(scored.with_columns(pl.lit(i + 1).alias("window")))
    return risk_backtest(pl.concat(frames), dates)


def scored_spark(
    data: SparkData, model: StockoutModel, *, cutoff: dt.date, demand: ChosenCandidate | None = None
) -> pl.DataFrame:
    """Every series' risk, label, rule score and true label at `cutoff` (`apply_stockout`, `labelled_at`); with
    `demand`, the quantile risk of its forecasts against the stock on hand."""
    shape, definition = data.shape, model.definition
    model = replace(model, holdout=None)  # shipped to every task: without the held-out scores it no longer needs
    calendar = shape.shared.get("calendar")

    def scored_of(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
        group = group_data(shape, tables)
        forecast = demand.forecast(group.panel, calendar=calendar) if demand is not None else None
        scored = apply_stockout(model, group, cutoff=cutoff, forecast=forecast)
        return labelled_at(scored, group.panel, definition, cutoff)

    return to_polars(data.run(scored_of)).sort(*SERIES)
