"""The train job: backtest, final fit, log to MLflow, register as challenger (gating is the promote job's)."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from shelfcast.errors import DataValidationError
from shelfcast.features.labels import definition_for
from shelfcast.features.spec import FeatureSpec
from shelfcast.io.backtest_report import backtest_json
from shelfcast.io.checkpoint import FileCheckpoints
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data
from shelfcast.io.model_files import save_model, save_reference
from shelfcast.io.plots import (
    feature_importance_png,
    forecast_vs_actual_png,
)
from shelfcast.io.pyfunc import predict_frame
from shelfcast.io.registry import Registry
from shelfcast.io.tracking import (
    CHAMPION_HOW_PARAM,
    CHAMPION_RUN_PARAM,
    CHAMPION_VERSION_PARAM,
    LoggedRun,
    TrainingRun,
    delta_lineage,
    log_training_run,
)
from shelfcast.jobs.train.fitted import Fitted, stockout_fitted
from shelfcast.jobs.train.rebacktest import (
    FORECAST_PREFIX,
    AsServed,
    ChampionRerun,
    Rerun,
    demand_as_served,
    demand_rerun,
    rebacktest_champion,
    stockout_rerun,
)
from shelfcast.models.backtest import (
    BLEND,
    MODEL,
    RECURSIVE,
    BacktestConfig,
    DemandBacktest,
    Progress,
    backtest_demand,
    conformal_scores,
    quantile_table,
)
from shelfcast.models.data import ModelData
from shelfcast.models.gates import RULES, PromotionReport
from shelfcast.models.risk import backtest_risk
from shelfcast.models.selection import Selection, SelectionConfig
from shelfcast.models.stockout import StockoutConfig, fit_stockout, stockout_features, window_steps
from shelfcast.models.train import ForecastConfig, fit_forecaster
from shelfcast.models.window import model_window
from shelfcast.settings import Engine, Settings
from shelfcast.types import Freq, Task

log = logging.getLogger(__name__)
EXAMPLE_ROWS = 5
# The backtest figures a training reports per model (the gates' metric first); the MLflow run logs them all.
SUMMARY_METRICS = {
    Task.DEMAND: ("wape", "wmae", "mae", "bias", "mase", "coverage_80"),
    Task.STOCKOUT: ("pr_auc", "roc_auc", "f1", "precision", "recall", "brier"),
}


@dataclass(frozen=True)
class TrainReport:
    task: Task
    run: LoggedRun
    version: str
    candidate: str
    scores: dict[str, float]
    promotion: PromotionReport | None  # set by `workflows.training.run_train` once the gates decided
    seconds: float
    selection: dict[str, Any] | None = None  # demand: the candidate chosen on the backtest windows, and why
    # Over all the backtest's windows pooled, per model (the candidates and every baseline): SUMMARY_METRICS.
    backtest: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The figures of the training (`train --json`): the version, the gates' verdict, the backtest per model."""
        promotion = self.promotion
        return {
            "task": str(self.task),
            "version": self.version,
            "run_id": self.run.run_id,
            "candidate": self.candidate,
            "promoted": promotion is not None and promotion.promoted,
            "gates": None
            if promotion is None
            else {
                "passed": promotion.gate.passed,
                "reason": promotion.gate.reason,
                "mean_of_windows": promotion.gate.values,
            },
            "backtest": self.backtest,
        }


def _checkpoints(settings: Settings) -> FileCheckpoints:
    return FileCheckpoints(settings.workspace / "checkpoints")


def _demand(
    data: ModelData,
    config: ForecastConfig,
    *,
    folds: int,
    horizon: int,
    out: Path,
    progress: Progress | None,
    checkpoints: FileCheckpoints,
    selection: SelectionConfig,
) -> Fitted:
    bt = backtest_demand(
        data.panel,
        data.spec,
        config,
        BacktestConfig(folds=folds, horizon=horizon),
        calendar=data.calendar,
        selection=selection,
    )
    assert bt.selection is not None
    candidate = bt.selection.candidate
    # The registered model is a GBM whatever was chosen; it serves the blend or a baseline through its `mix`.
    gbm = candidate if candidate in (MODEL, RECURSIVE) else bt.selection.blend_gbm or _best_gbm(bt)
    strategy = "recursive" if gbm == RECURSIVE else "direct"
    mix = _mix(bt.selection)
    if progress:
        progress(f"final fit ({candidate})", 1, 2)
    final = config.model_copy(update={"strategy": strategy})
    # The final fit on all the data is the long one: it checkpoints and resumes, as `forecast` and `score --fit` do.
    model = fit_forecaster(
        data.panel,
        data.spec,
        final,
        cutoff=data.last_date,
        horizon=horizon,
        calendar=data.calendar,
        checkpoints=checkpoints,
    )
    model = replace(model, mix=mix)
    example = model.feature_rows(data.panel, calendar=data.calendar).head(EXAMPLE_ROWS)
    best_baseline = str(
        bt.metrics.filter((pl.col("window") == "all") & pl.col("model").is_in(list(RULES[Task.DEMAND].baselines))).sort(
            bt.selection.metric
        )["model"][0]
    )
    reports = [
        feature_importance_png(model.model.feature_importance(), out / "feature_importance.png"),
        forecast_vs_actual_png(bt.forecasts, out / "forecast_vs_actual.png", models=[candidate, best_baseline]),
    ]
    model.model.feature_importance().write_csv(out / "feature_importance.csv")
    params = {
        **final.model_dump(),
        "horizon": horizon,
        "windows": folds,
        "cutoff": data.last_date,
        **{f"selection.{k}": v for k, v in selection.model_dump().items()},
        "selection.blend_weight": bt.selection.blend_weight,
    }
    quantiles = quantile_table(conformal_scores(bt.forecasts.filter(pl.col("model") == candidate)))
    return Fitted(candidate, model, bt.metrics, bt.cutoffs, params, example, reports, bt, quantiles)


def _selection_tags(fitted: Fitted) -> dict[str, str]:
    """The selection's decision and reason as run tags (demand only: the classifier has no candidates to choose)."""
    selection = getattr(fitted.backtest, "selection", None)
    if selection is None:
        return {}
    return {"shelfcast.selection": selection.candidate, "shelfcast.selection.reason": selection.reason[:4000]}


def _best_gbm(bt: DemandBacktest) -> str:
    assert bt.selection is not None
    overall = bt.selection.overall
    present = [m for m in (MODEL, RECURSIVE) if overall.get(m) is not None]
    return min(present, key=lambda m: overall[m]) if present else MODEL


def _mix(selection: Selection) -> tuple[str, float] | None:
    """What the registered GBM serves: None (itself), the blend with the seasonal naive, or a baseline alone."""
    if selection.candidate in (MODEL, RECURSIVE):
        return None
    if selection.candidate == BLEND:
        return "seasonal_naive", selection.blend_weight if selection.blend_weight is not None else 0.5
    return selection.candidate, 0.0


def _stockout(
    settings: Settings,
    data: ModelData,
    config: StockoutConfig,
    *,
    folds: int,
    risk_days: int,
    min_hours: float | None,
    out: Path,
    progress: Progress | None,
    forecast_config: ForecastConfig | None,
) -> Fitted:
    definition = definition_for(data.panel, risk_days=risk_days, min_hours=min_hours)
    bt = backtest_risk(
        data,
        folds=folds,
        risk_days=risk_days,
        min_hours=min_hours,
        config=config,
        forecast_config=forecast_config,
        selection=settings.selection,
    )
    if progress:
        progress("final fit (classifier)", 1, 2)
    model = fit_stockout(
        data.panel, data.spec, config, definition, cutoff=data.last_date, checkpoints=_checkpoints(settings)
    )
    steps = window_steps(data.panel, risk_days)
    known = data.panel.as_known_at(data.last_date)
    example = stockout_features(known, data.spec, [data.last_date], window=steps).head(EXAMPLE_ROWS)
    params = {
        # The demand forecast behind the backtest's quantile_risk model.
        **{f"{FORECAST_PREFIX}{k}": v for k, v in (forecast_config or data.config).model_dump().items()},
        "windows": folds,
        "cutoff": data.last_date,
    }
    return stockout_fitted(bt, model, example, out=out, params=params)


def _reference(settings: Settings, data: ModelData, model: Any) -> pl.DataFrame | None:
    """The final fit's latest window of origins and its predictions, saved with the model for drift monitoring."""
    try:
        return model_window(
            model, data.panel, end=data.last_date, days=settings.monitor.lookback_days, calendar=data.calendar
        )
    except DataValidationError as exc:  # monitoring then says the model has no reference; training goes on
        log.warning("no drift reference saved with the model: %s", exc)
        return None


@dataclass(frozen=True)
class _Trained:
    """A fit of either engine and what logging it and judging the champion need."""

    fitted: Fitted
    spec: FeatureSpec
    reference: pl.DataFrame | None
    rerun: Rerun  # the champion's config re-run on this fit's windows
    as_served: AsServed | None  # the champion scored as it serves (demand), None: refitted only
    tags: dict[str, str]


@dataclass(frozen=True)
class _Request:
    """What `train_challenger` asks either engine's fit for."""

    task: Task
    folds: int
    horizon: int | None
    risk_days: int
    min_hours: float | None
    forecast_config: ForecastConfig | None
    stockout_config: StockoutConfig | None
    out: Path
    progress: Progress | None


def _fit_locally(settings: Settings, lake: Lake, r: _Request) -> _Trained:
    data = load_model_data(lake)
    steps = r.horizon or Freq(data.panel.freq).default_horizon
    if r.progress:
        r.progress(f"backtest {r.task}", 0, 2)
    as_served: AsServed | None = None
    if r.task == Task.DEMAND:
        fitted = _demand(
            data,
            r.forecast_config or data.config,
            folds=r.folds,
            horizon=steps,
            out=r.out,
            progress=r.progress,
            checkpoints=_checkpoints(settings),
            selection=settings.selection,
        )
        rerun = demand_rerun(data, folds=r.folds, horizon=steps, selection=settings.selection)
        as_served = demand_as_served(data, folds=r.folds, horizon=steps)
    else:
        fitted = _stockout(
            settings,
            data,
            r.stockout_config or StockoutConfig(),
            folds=r.folds,
            risk_days=r.risk_days,
            min_hours=r.min_hours,
            out=r.out,
            progress=r.progress,
            forecast_config=r.forecast_config,
        )
        rerun = stockout_rerun(
            lambda config: backtest_risk(
                data, folds=r.folds, risk_days=r.risk_days, min_hours=r.min_hours, config=config, quantile_risk=False
            ),
            risk_days=r.risk_days,
            min_hours=r.min_hours,
        )
    return _Trained(fitted, data.spec, _reference(settings, data, fitted.model), rerun, as_served, {})


def _fit_on_spark(settings: Settings, lake: Lake, r: _Request) -> _Trained:
    """The same fit on Spark (`jobs.train.spark`): the same run, model folder and registry entry as a local one."""
    from shelfcast.io.spark.forecast import open_lake
    from shelfcast.jobs.train.spark import (
        demand_on_spark,
        spark_as_served,
        spark_rerun,
        stockout_on_spark,
        stockout_rerun_spark,
    )

    check = None
    if r.task == Task.STOCKOUT:
        from shelfcast.io.spark.stockout import definition_check

        check = definition_check(risk_days=r.risk_days, min_hours=r.min_hours)
    data = open_lake(settings.spark, lake, check=check)
    steps = r.horizon or Freq(data.shape.freq).default_horizon
    if r.progress:
        r.progress(f"backtest {r.task} on Spark", 0, 2)
    as_served: AsServed | None = None
    if r.task == Task.DEMAND:
        fitted, reference = demand_on_spark(
            settings,
            data,
            r.forecast_config,
            folds=r.folds,
            horizon=steps,
            out=r.out,
            progress=r.progress,
            mix_of=_mix,
        )
        rerun = spark_rerun(data, folds=r.folds, horizon=steps, selection=settings.selection)
        as_served = spark_as_served(data, folds=r.folds, horizon=steps)
    else:
        fitted, reference = stockout_on_spark(
            settings,
            data,
            r.stockout_config or StockoutConfig(),
            folds=r.folds,
            risk_days=r.risk_days,
            min_hours=r.min_hours,
            out=r.out,
            progress=r.progress,
            forecast_config=r.forecast_config,
        )
        rerun = stockout_rerun_spark(data, folds=r.folds, risk_days=r.risk_days, min_hours=r.min_hours)
    return _Trained(fitted, data.shape.spec, reference, rerun, as_served, {"shelfcast.engine": "spark"})


def _registered(
    registry: Registry, task: Task, logged: LoggedRun, fitted: Fitted, *, scores: dict[str, float], started: float
) -> TrainReport:
    """The run's model registered as a challenger, and the report of the training."""
    version = registry.register(task, logged.model_uri, run_id=logged.run_id)
    selection = getattr(fitted.backtest, "selection", None)
    return TrainReport(
        task,
        logged,
        version.version,
        fitted.candidate,
        scores,
        None,
        time.perf_counter() - started,
        selection.as_dict() if selection is not None else None,
        _overall(task, fitted.metrics),
    )


def _overall(task: Task, metrics: pl.DataFrame) -> dict[str, dict[str, float]]:
    """Each model's SUMMARY_METRICS over all the windows, in the backtest's order of models."""
    names = [m for m in SUMMARY_METRICS[task] if m in metrics.columns]
    rows = metrics.filter(pl.col("window") == "all").select("model", *names).to_dicts()
    return {str(row.pop("model")): {k: float(v) for k, v in row.items() if v is not None} for row in rows}


def train_challenger(
    settings: Settings,
    *,
    task: Task,
    folds: int = 3,
    horizon: int | None = None,
    risk_days: int = 7,
    min_hours: float | None = None,
    forecast_config: ForecastConfig | None = None,
    stockout_config: StockoutConfig | None = None,
    progress: Progress | None = None,
    tags: Mapping[str, str] | None = None,
    engine: Engine = "local",
) -> TrainReport:
    """Backtest, fit on everything, log the run and register a challenger (the promote job gates it).

    `tags` go on the MLflow run (the pipeline links its Prefect flow run this way). `engine="spark"` runs the
    backtest and the fit on Spark (`jobs.train.spark`).
    """
    started = time.perf_counter()
    lake = Lake(settings.workspace)
    registry = Registry(settings)
    fit = _fit_on_spark if engine == "spark" else _fit_locally
    with tempfile.TemporaryDirectory(prefix="shelfcast-train-") as tmp:
        out = Path(tmp)
        request = _Request(task, folds, horizon, risk_days, min_hours, forecast_config, stockout_config, out, progress)
        trained = fit(settings, lake, request)
        fitted = trained.fitted
        # New days since the champion was trained move the cutoffs on: it is then scored on these windows too,
        # so the gates still compare like with like.
        champion = rebacktest_champion(
            registry, task, fitted.cutoffs, trained.rerun, as_served=trained.as_served, progress=progress
        )
        scores = _primary_scores(task, fitted)
        logged = _log_run(
            settings,
            lake,
            spec=trained.spec,
            reference=trained.reference,
            task=task,
            fitted=fitted,
            champion=champion,
            scores=scores,
            out=out,
            tags={**dict(tags or {}), **trained.tags},
        )
    return _registered(registry, task, logged, fitted, scores=scores, started=started)


def _primary_scores(task: Task, fitted: Fitted) -> dict[str, float]:
    """The candidate's overall backtest scores the gates read: the task's metric, and F1 where there is one."""
    overall = fitted.metrics.filter((pl.col("model") == fitted.candidate) & (pl.col("window") == "all"))
    return {m: float(overall[m][0]) for m in (RULES[task].metric, "f1") if m in overall.columns}


def _log_run(
    settings: Settings,
    lake: Lake,
    *,
    spec: FeatureSpec,
    reference: pl.DataFrame | None,
    task: Task,
    fitted: Fitted,
    champion: ChampionRerun | None,
    scores: dict[str, float],
    out: Path,
    tags: Mapping[str, str] | None,
) -> LoggedRun:
    """Write the model, its reference window and the backtest files, and log them all as one MLflow run."""
    params, metrics = fitted.params, fitted.metrics
    if champion is not None:
        params = {
            **params,
            CHAMPION_VERSION_PARAM: champion.version,
            CHAMPION_RUN_PARAM: champion.run_id,
            CHAMPION_HOW_PARAM: champion.how,
        }
        metrics = pl.concat([metrics, champion.metrics], how="diagonal_relaxed")
    backtest_json(fitted.backtest, out / "backtest.json", task=task)
    metrics.write_csv(out / "backtest.csv")
    model_dir = save_model(fitted.model, out / "native", quantiles=fitted.quantiles)
    if reference is not None and reference.height:
        save_reference(reference, model_dir)
    files = [*fitted.reports, out / "backtest.json", out / "backtest.csv", out / "feature_importance.csv"]
    logged = log_training_run(
        settings,
        TrainingRun(
            task=task,
            candidate=fitted.candidate,
            params=params,
            spec=spec,
            metrics=metrics,
            cutoffs=fitted.cutoffs,
            primary=scores,
            model_dir=model_dir,
            input_example=fitted.example,
            output_example=predict_frame(fitted.model, fitted.example, fitted.quantiles),
            manifest=lake.manifest(),
            lake_root=lake.root.resolve(),
            artifacts=[p for p in files if p is not None],
            tags={**dict(tags or {}), **_selection_tags(fitted)},
        ),
    )
    # The Delta tables written from the lake as it is now (`--format delta`), as the run's inputs; none: nothing.
    delta_lineage(settings, logged.run_id)
    return logged
