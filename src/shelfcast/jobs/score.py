"""The batch scoring job: forecasts, quantiles, stockout risk and reorder advice for every series, into a store.

Until the registry hands over a champion, the job trains the forecaster and
the stockout classifier at the cutoff as `shelfcast forecast` and
`shelfcast stockout` do; the model's name, version and run id are arguments
so the registry's champion can be named once it exists.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

import polars as pl

from shelfcast.errors import DataValidationError
from shelfcast.features.build import HORIZON
from shelfcast.features.panel import SERIES
from shelfcast.io.lake import Lake
from shelfcast.io.stores import PREDICTION_SCHEMA, PredictionStore, open_store
from shelfcast.jobs.forecast import forecast_with_quantiles
from shelfcast.jobs.modeling import ModelData, load_model_data
from shelfcast.jobs.stockout import definition_for, reorder_advice, score_stockout
from shelfcast.models.backtest import Progress
from shelfcast.models.stockout import window_steps
from shelfcast.settings import Settings

log = logging.getLogger(__name__)
DEFAULT_MODEL_NAME = "shelfcast_gbm"
DEFAULT_MODEL_VERSION = "local"
ADVICE = ("safety_stock", "reorder_point", "order_up_to", "order_quantity")


@dataclass(frozen=True)
class ScoreReport:
    store: str
    location: str
    rows: int
    series: int
    cutoff: dt.date
    scored_on: dt.date
    horizon: int
    model_name: str
    model_version: str
    run_id: str | None
    alerts: int | None
    note: str | None
    model_seconds: float
    write_seconds: float


@dataclass(frozen=True)
class ModelInfo:
    name: str = DEFAULT_MODEL_NAME
    version: str = DEFAULT_MODEL_VERSION
    run_id: str | None = None


def build_predictions(
    data: ModelData,
    settings: Settings,
    *,
    cutoff: dt.date,
    horizon: int,
    scored_on: dt.date,
    scored_at: dt.datetime,
    model: ModelInfo,
    window: int = 7,
    progress: Progress | None = None,
) -> tuple[pl.DataFrame, str | None]:
    """Prediction rows for every series, and a note when stockout risk could not be scored.

    The forecast runs far enough for the reorder advice (lead time plus a
    review week) and the risk window, whatever `horizon` the rows keep.
    """
    if horizon < 1:
        raise ValueError(f"`horizon` must be a positive integer, got {horizon}")
    checkpoints = settings.workspace / "checkpoints"
    steps = max(horizon, window_steps(data.panel, settings.lead_time_days + 7), window_steps(data.panel, window))
    forecast = forecast_with_quantiles(
        data, cutoff=cutoff, horizon=steps, checkpoint_dir=checkpoints, progress=progress
    )
    advice = reorder_advice(data.panel, forecast, cutoff=cutoff, settings=settings)
    note = None
    risk: pl.DataFrame | None = None
    try:
        definition = definition_for(data.panel, window=window, min_hours=None)
    except DataValidationError:
        note = "sales-only data: no stockout risk (ingest an inventory table to get it)"
    else:
        if progress:
            progress("stockout risk", 2, 2)
        risk = score_stockout(data, cutoff=cutoff, definition=definition, forecast=forecast, checkpoint_dir=checkpoints)
    rows = assemble_rows(forecast, advice, risk, horizon=horizon, scored_on=scored_on, scored_at=scored_at, model=model)
    return rows, note


def assemble_rows(
    forecast: pl.DataFrame,
    advice: pl.DataFrame,
    risk: pl.DataFrame | None,
    *,
    horizon: int,
    scored_on: dt.date,
    scored_at: dt.datetime,
    model: ModelInfo,
) -> pl.DataFrame:
    """Prediction rows from the forecast with quantiles (column `h`), the advice and the risk per series."""
    if risk is None:
        risk = pl.DataFrame(
            schema={"store_id": pl.String, "item_id": pl.String, "risk": pl.Float64, "label": pl.Int8}
        ).with_columns(pl.lit(None, pl.Float64).alias("threshold"))
    advice = advice.select(*SERIES, *[pl.col(c) if c in advice.columns else pl.lit(None).alias(c) for c in ADVICE])
    rows = (
        forecast.filter(pl.col(HORIZON) <= horizon)
        .join(advice, on=list(SERIES), how="left")
        .join(risk.select(*SERIES, "risk", "label", "threshold"), on=list(SERIES), how="left")
        .select(
            pl.lit(scored_on).alias("scored_on"),
            pl.lit(scored_at.astimezone(dt.UTC)).dt.cast_time_unit("us").alias("scored_at"),
            *SERIES,
            "date",
            pl.col(HORIZON).alias("horizon"),
            "forecast",
            "p10",
            "p50",
            "p90",
            pl.col("risk").alias("stockout_risk"),
            pl.col("label").cast(pl.Boolean).alias("stockout_label"),
            "threshold",
            *ADVICE,
            pl.lit(model.name).alias("model_name"),
            pl.lit(model.version).alias("model_version"),
            pl.lit(model.run_id, pl.String).alias("run_id"),
        )
    )
    return rows.cast(pl.Schema({c: PREDICTION_SCHEMA[c] for c in ("horizon", "threshold", *ADVICE)}))


def run_score(
    settings: Settings,
    *,
    horizon: int = 14,
    cutoff: dt.date | None = None,
    now: dt.datetime | None = None,
    scored_on: dt.date | None = None,
    model: ModelInfo | None = None,
    store: PredictionStore | None = None,
    progress: Progress | None = None,
) -> ScoreReport:
    """Score every series from the cutoff (default: the last date) and replace the scoring day in the store."""
    started = time.perf_counter()
    now = now or dt.datetime.now(dt.UTC)
    scored_on = scored_on or now.date()
    model = model or ModelInfo()
    target = store or open_store(settings)
    target.check()
    data = load_model_data(Lake(settings.workspace))
    cutoff = cutoff or data.last_date
    rows, note = build_predictions(
        data,
        settings,
        cutoff=cutoff,
        horizon=horizon,
        scored_on=scored_on,
        scored_at=now,
        model=model,
        progress=progress,
    )
    modelled = time.perf_counter()
    written = target.write(rows, scored_on=scored_on)
    log.info("%d predictions of %s written to %s", written, scored_on, target.location)
    labels = rows.group_by(SERIES).agg(pl.col("stockout_label").first())["stockout_label"]
    return ScoreReport(
        store=settings.prediction_store if store is None else type(store).__name__,
        location=target.location,
        rows=written,
        series=rows.select(SERIES).n_unique(),
        cutoff=cutoff,
        scored_on=scored_on,
        horizon=horizon,
        model_name=model.name,
        model_version=model.version,
        run_id=model.run_id,
        alerts=None if note else int(labels.sum()),
        note=note,
        model_seconds=modelled - started,
        write_seconds=time.perf_counter() - modelled,
    )
