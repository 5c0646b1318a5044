"""The batch scoring job: forecasts, quantiles, stockout risk and reorder advice for every series, into a store.

By default it scores with the registry's champions (demand and, where the
data has stock, stockout), read from their local copy in the workspace when
that is the current version; `fit=True` (`shelfcast score --fit`) instead
trains both at the cutoff as `shelfcast forecast` and `shelfcast stockout`
do, with no registry involved.

Without a model to trust (no champion and no local copy, or a task the
monitoring policy put in fallback), the task is scored by its rule
baseline: demand by the seasonal naive with its empirical p10/p50/p90,
stockout risk by the rule "a stockout in the last 7 days, or on hand below
safety stock" (risk 0 or 1). The rows say so (`model_version` or
`stockout_model_version` = `rule-baseline`) and so does the report's note.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, replace

import polars as pl

from shelfcast.errors import ConfigError, DataValidationError, ModelNotFoundError
from shelfcast.features.frames import HORIZON
from shelfcast.features.labels import RULE_BASELINE, definition_for
from shelfcast.features.panel import SERIES
from shelfcast.io.champion import load_champion
from shelfcast.io.checkpoint import FileCheckpoints
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data
from shelfcast.io.model_files import load_forecaster, load_quantiles, load_stockout
from shelfcast.io.policy_log import in_fallback
from shelfcast.io.stores import PREDICTION_SCHEMA, PredictionStore, open_store
from shelfcast.models.backtest import QUANTILES, Progress, add_quantiles
from shelfcast.models.data import ModelData, parse_cutoff
from shelfcast.models.fallback import baseline_forecast, rule_risk
from shelfcast.models.quantile_forecast import forecast_with_quantiles
from shelfcast.models.replenish import reorder_advice
from shelfcast.models.risk import apply_stockout, score_stockout
from shelfcast.models.selection import SelectionConfig
from shelfcast.models.stockout import StockoutModel, window_steps
from shelfcast.models.train import TrainedForecaster
from shelfcast.settings import Engine, Settings
from shelfcast.types import Freq, Task

log = logging.getLogger(__name__)
DEFAULT_MODEL_NAME = "shelfcast_gbm"
DEFAULT_MODEL_VERSION = "local"
ADVICE = ("safety_stock", "reorder_point", "order_up_to", "order_quantity")
SALES_ONLY = "sales-only data: no stockout risk (ingest an inventory table to get it)"
DEMAND_BASELINE = "seasonal_naive"


@dataclass(frozen=True)
class ScoreReport:
    store: str
    location: str
    rows: int
    series: int
    cutoff: dt.date
    scored_on: dt.date
    horizon: int  # steps
    model_name: str
    model_version: str
    run_id: str | None
    stockout_version: str | None
    alerts: int | None
    note: str | None
    model_seconds: float
    write_seconds: float
    freq: Freq = Freq.DAILY  # what one step of `horizon` is
    engine: Engine = "local"  # where the scoring ran

    @property
    def periods(self) -> str:
        """The horizon in words: "14 days", "2 weeks"."""
        return self.freq.periods(self.horizon)

    def to_dict(self) -> dict[str, object]:
        """The figures of the scoring (`score --json`): what was scored, from when, with which models."""
        return {
            "rows": self.rows,
            "series": self.series,
            "horizon": self.horizon,
            "unit": self.freq.unit,
            "cutoff": str(self.cutoff),
            "scored_on": str(self.scored_on),
            "store": self.store,
            "model": self.model_name,
            "model_version": self.model_version,
            "run_id": self.run_id,
            "stockout_version": self.stockout_version,
            "alerts": self.alerts,
            "note": self.note,
        }


@dataclass(frozen=True)
class ModelInfo:
    name: str = DEFAULT_MODEL_NAME
    version: str = DEFAULT_MODEL_VERSION
    run_id: str | None = None


@dataclass(frozen=True)
class ScoringModels:
    """The fitted models a scoring run uses, and what the prediction rows say about them."""

    demand: TrainedForecaster | None  # None: the seasonal-naive baseline (fallback)
    quantiles: pl.DataFrame | None
    demand_info: ModelInfo
    stockout: StockoutModel | None = None
    stockout_info: ModelInfo | None = None
    note: str | None = None  # why there is no stockout model, or why a rule baseline scored
    stockout_rule: bool = False  # stockout risk from the rule baseline (fallback)


def _join(*notes: str | None) -> str | None:
    kept = [n for n in notes if n]
    return "; ".join(kept) if kept else None


def champion_models(settings: Settings, data: ModelData) -> ScoringModels:
    """The champions, or for a task without a trustworthy one its rule baseline (the note says which and why)."""
    demand_note = None
    fallback = in_fallback(settings, Task.DEMAND)
    if fallback is not None:
        demand_note = f"demand in fallback since {fallback.since} ({fallback.reason})"
    else:
        try:
            demand = load_champion(settings, Task.DEMAND)
        except ModelNotFoundError as exc:
            demand_note = str(exc)
    if demand_note is not None:
        log.warning("scoring demand with the seasonal-naive baseline: %s", demand_note)
        models = ScoringModels(
            demand=None,
            quantiles=None,
            demand_info=ModelInfo(DEMAND_BASELINE, RULE_BASELINE),
            note=f"{demand_note}: forecasts from the seasonal-naive baseline",
        )
    else:
        models = ScoringModels(
            demand=load_forecaster(demand.folder),
            quantiles=load_quantiles(demand.folder),
            demand_info=ModelInfo(demand.name, demand.version, demand.run_id),
        )
    try:
        definition_for(data.panel, risk_days=7, min_hours=None)
    except DataValidationError:
        return replace(models, note=_join(models.note, SALES_ONLY))
    fallback = in_fallback(settings, Task.STOCKOUT)
    if fallback is not None:
        reason = f"stockout in fallback since {fallback.since} ({fallback.reason})"
        return replace(models, stockout_rule=True, note=_join(models.note, f"{reason}: risk from the rule baseline"))
    try:
        stockout = load_champion(settings, Task.STOCKOUT)
    except ModelNotFoundError as exc:
        return replace(models, stockout_rule=True, note=_join(models.note, f"{exc}: risk from the rule baseline"))
    return replace(
        models,
        stockout=load_stockout(stockout.folder),
        stockout_info=ModelInfo(stockout.name, stockout.version, stockout.run_id),
    )


def champion_forecast(
    models: ScoringModels, data: ModelData, *, cutoff: dt.date, steps: int, least: int | None = None
) -> pl.DataFrame:
    """The demand champion's forecasts from `cutoff` for `steps` steps, with its p10/p50/p90.

    `least`: the steps the advice and the risk window need whatever horizon is asked (default `steps`).
    """
    model = models.demand
    if model is None:
        return baseline_forecast(data, cutoff=cutoff, steps=steps)
    if not model.recursive and steps > model.horizon:
        freq = Freq(data.panel.freq)
        raise ConfigError(_too_short(model.horizon, steps=steps, least=steps if least is None else least, freq=freq))
    if cutoff < model.cutoff:
        log.warning("scoring at %s with a champion trained on data up to %s", cutoff, model.cutoff)
    forecast = model.predict(data.panel, calendar=data.calendar, origin=cutoff, horizon=steps)
    table = models.quantiles
    if table is None:  # a model saved without one: the interval collapses onto the point forecast
        table = pl.DataFrame(schema={HORIZON: pl.Int32, **{f"q{q:g}": pl.Float64 for q in QUANTILES}})
    return add_quantiles(forecast, table)


def _too_short(trained: int, *, steps: int, least: int, freq: Freq) -> str:
    """Why a direct champion cannot score `steps` steps, with the command that works."""
    head = f"the demand champion forecasts at most {trained} steps ({freq.unit}s) and scoring needs {steps}"
    retrain = f"`shelfcast train --task demand --horizon {steps}`"
    if least <= trained:  # only the horizon asked for is too long: a shorter one works
        return (
            f"{head} (`--horizon {steps}`): score with `shelfcast score --horizon {trained}`, or retrain with {retrain}"
        )
    return (
        f"{head} ({freq.periods(least)} at least: the lead time plus a review week, and the stockout risk window, "
        f"for the reorder advice): retrain with {retrain}"
    )


@dataclass(frozen=True)
class _Risk:
    """Stockout risk per series (None: not scored), the model that scored it, and the note for the report."""

    frame: pl.DataFrame | None = None
    model: ModelInfo | None = None
    note: str | None = None


def _demand_forecast(
    data: ModelData,
    models: ScoringModels | None,
    *,
    cutoff: dt.date,
    steps: int,
    least: int,
    checkpoints: FileCheckpoints,
    progress: Progress | None,
    selection: SelectionConfig,
) -> pl.DataFrame:
    """Forecasts with quantiles from the demand champion (what its training chose: the GBM, the blend or a
    baseline), or without `models` from the candidate the same selection chooses at the cutoff."""
    if models is not None:
        if progress:
            progress(f"forecast ({models.demand_info.name} v{models.demand_info.version})", 0, 2)
        return champion_forecast(models, data, cutoff=cutoff, steps=steps, least=least)
    return forecast_with_quantiles(
        data, cutoff=cutoff, horizon=steps, selection=selection, checkpoints=checkpoints, progress=progress
    )


def _champion_risk(
    models: ScoringModels,
    data: ModelData,
    *,
    forecast: pl.DataFrame,
    cutoff: dt.date,
    risk_days: int,
    progress: Progress | None,
) -> _Risk:
    """Risk from the stockout champion, its rule baseline in fallback, or none (the models' note says why)."""
    if models.stockout is not None:
        if progress:
            progress("stockout risk", 1, 2)
        risk = apply_stockout(models.stockout, data, cutoff=cutoff, forecast=forecast)
        return _Risk(risk, models.stockout_info, models.note)
    if models.stockout_rule:
        rule = rule_risk(data, cutoff=cutoff, risk_days=risk_days)
        return _Risk(rule, ModelInfo(RULE_BASELINE, RULE_BASELINE), models.note)
    return _Risk(note=models.note)


def _fitted_risk(
    data: ModelData,
    forecast: pl.DataFrame,
    *,
    cutoff: dt.date,
    risk_days: int,
    checkpoints: FileCheckpoints,
    progress: Progress | None,
) -> _Risk:
    """Risk from a stockout model fitted at the cutoff, or none on sales-only data."""
    try:
        definition = definition_for(data.panel, risk_days=risk_days, min_hours=None)
    except DataValidationError:
        return _Risk(note=SALES_ONLY)
    if progress:
        progress("stockout risk", 1, 2)
    risk = score_stockout(data, cutoff=cutoff, definition=definition, forecast=forecast, checkpoints=checkpoints)
    return _Risk(risk, ModelInfo())


def build_predictions(
    data: ModelData,
    settings: Settings,
    *,
    cutoff: dt.date,
    horizon: int,
    scored_on: dt.date,
    scored_at: dt.datetime,
    models: ScoringModels | None = None,
    risk_days: int = 7,
    progress: Progress | None = None,
) -> tuple[pl.DataFrame, str | None]:
    """Prediction rows for every series, and a note when stockout risk could not be scored.

    With `models` (the champions) nothing is trained; without, both models
    are fitted at the cutoff. The forecast runs far enough for the reorder
    advice (lead time plus a review week) and the risk window, whatever
    `horizon` the rows keep.
    """
    if horizon < 1:
        raise ValueError(f"`horizon` must be a positive integer, got {horizon}")
    # A champion classifier predicts its own risk horizon, whatever was asked.
    risk_days = models.stockout.definition.window if models is not None and models.stockout is not None else risk_days
    least = max(window_steps(data.panel, settings.lead_time_days + 7), window_steps(data.panel, risk_days))
    steps = max(horizon, least)
    checkpoints = FileCheckpoints(settings.workspace / "checkpoints")
    forecast = _demand_forecast(
        data,
        models,
        cutoff=cutoff,
        steps=steps,
        least=least,
        checkpoints=checkpoints,
        progress=progress,
        selection=settings.selection,
    )
    advice = reorder_advice(
        data.panel,
        forecast,
        cutoff=cutoff,
        lead_time_days=settings.lead_time_days,
        service_level=settings.service_level,
    )
    if models is None:
        risk = _fitted_risk(
            data, forecast, cutoff=cutoff, risk_days=risk_days, checkpoints=checkpoints, progress=progress
        )
    else:
        risk = _champion_risk(models, data, forecast=forecast, cutoff=cutoff, risk_days=risk_days, progress=progress)
    rows = assemble_rows(
        forecast,
        advice,
        risk.frame,
        horizon=horizon,
        scored_on=scored_on,
        scored_at=scored_at,
        model=models.demand_info if models is not None else ModelInfo(),
        stockout_version=risk.model.version if risk.model else None,
    )
    return rows, risk.note


def assemble_rows(
    forecast: pl.DataFrame,
    advice: pl.DataFrame,
    risk: pl.DataFrame | None,
    *,
    horizon: int,
    scored_on: dt.date,
    scored_at: dt.datetime,
    model: ModelInfo,
    stockout_version: str | None = None,
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
            pl.lit(stockout_version if risk.height else None, pl.String).alias("stockout_model_version"),
        )
    )
    return rows.cast(pl.Schema({c: PREDICTION_SCHEMA[c] for c in ("horizon", "threshold", *ADVICE)}))


def run_score(
    settings: Settings,
    *,
    horizon: int | None = None,
    cutoff: str | dt.date | None = None,
    now: dt.datetime | None = None,
    scored_on: dt.date | None = None,
    fit: bool = False,
    store: PredictionStore | None = None,
    progress: Progress | None = None,
    engine: Engine = "local",
) -> ScoreReport:
    """Score every series from the cutoff (default: the last date) and replace the scoring day in the store.

    With the registry's champions by default; `fit` trains at the cutoff instead. `horizon` is in steps of
    the data (days, or weeks on weekly data); None: the frequency's default (`Freq.score_horizon`).
    `engine="spark"` runs the same scoring per group of series on Spark (`jobs.score.spark`), champions only.
    """
    started = time.perf_counter()
    now = now or dt.datetime.now(dt.UTC)
    scored_on = scored_on or now.date()
    if engine == "spark" and fit:
        from shelfcast.jobs.score.spark import FIT_REFUSED

        raise ConfigError(FIT_REFUSED)
    target = store or open_store(settings)
    target.check()
    if engine == "spark":
        from shelfcast.jobs.score.spark import score_on_spark

        name = settings.prediction_store if store is None else type(store).__name__
        return score_on_spark(
            settings,
            target,
            store_name=name,
            horizon=horizon,
            cutoff=cutoff,
            now=now,
            scored_on=scored_on,
            progress=progress,
        )
    data = load_model_data(Lake(settings.workspace))
    cutoff = parse_cutoff(cutoff, data)
    freq = Freq(data.panel.freq)
    horizon = horizon or freq.score_horizon
    models = None if fit else champion_models(settings, data)
    model = models.demand_info if models is not None else ModelInfo()
    rows, note = build_predictions(
        data,
        settings,
        cutoff=cutoff,
        horizon=horizon,
        scored_on=scored_on,
        scored_at=now,
        models=models,
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
        stockout_version=rows["stockout_model_version"][0] if rows.height else None,
        alerts=None if rows["stockout_risk"].is_null().all() else int(labels.sum()),
        note=note,
        model_seconds=modelled - started,
        write_seconds=time.perf_counter() - modelled,
        freq=freq,
    )
