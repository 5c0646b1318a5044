"""The monitor job: drift of each champion's inputs and outputs, and its live accuracy, against its training.

For each task with a champion: the current window (the last `lookback_days`
days of origins in the lake, features by the champion's own spec through
the same functions as training and scoring, see `shelfcast.models.window`)
is compared with the reference window saved with the model; the stored
predictions are joined to the actuals ingested since (per model version)
and the champion's live metric is compared with its backtest figure.

Writes `<workspace>/monitoring/<YYYY-MM-DDTHHMMSS>/drift_summary.json` and
`report.html`, copies the summary to `<workspace>/monitoring/latest.json`
(read by the service for its gauges; keys in `monitoring.summary.SUMMARY_KEYS`,
`TASK_KEYS`), and logs a run to the MLflow experiment `shelfcast-monitoring`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from dataclasses import replace

import polars as pl

from shelfcast.errors import DataValidationError, ModelNotFoundError, ShelfcastError, TrackingError
from shelfcast.features.labels import definition_for, stockout_labels
from shelfcast.features.panel import SERIES
from shelfcast.io.champion import Champion, load_champion
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data
from shelfcast.io.model_files import load_forecaster, load_reference, load_stockout
from shelfcast.io.stores import open_store
from shelfcast.models.data import ModelData
from shelfcast.models.gates import RULES
from shelfcast.models.stockout import StockoutModel
from shelfcast.models.train import TrainedForecaster
from shelfcast.models.window import PREDICTION, model_window
from shelfcast.monitoring import accuracy
from shelfcast.monitoring.drift import DriftResult, DriftThresholds, FeatureDrift, compare
from shelfcast.monitoring.summary import MonitorReport, TaskMonitor, run_metrics
from shelfcast.settings import Settings
from shelfcast.types import TASKS, Task

log = logging.getLogger(__name__)
EXPERIMENT = "shelfcast-monitoring"
# Features that are functions of the calendar or of time itself: they differ between any two windows
# (a series is older, the months are others) without the data having changed, so they are not tested.
TIME_FEATURES = frozenset(
    {
        "age",
        "horizon",
        "o_weekday",
        "o_month",
        "t_weekday",
        "t_month",
        "t_week",
        "t_day_of_year",
        "t_day",
        "t_month_start",
        "t_month_end",
        "t_year",
        "t_event",
        "t_days_to_event",
        "t_days_since_event",
    }
)
# Steps since the last promotion or stockout: with rare events they count the days since the series began, like
# `age`, and grow between any two windows.
SINCE_PREFIX = "steps_since_"


def tested_features(model: TrainedForecaster | StockoutModel) -> dict[str, str]:
    """The model's input columns worth a drift test, categorical where the booster encodes them as such."""
    encoder = model.model.encoder_
    return {
        c: "categorical" if c in encoder.vocab_ else "numeric"
        for c in encoder.columns_
        if c not in TIME_FEATURES and not c.startswith(SINCE_PREFIX)
    }


def _drift(
    reference: pl.DataFrame, current: pl.DataFrame, model: TrainedForecaster | StockoutModel, limits: DriftThresholds
) -> tuple[DriftResult, FeatureDrift | None]:
    kinds = tested_features(model)
    features = compare(reference, current, features=kinds, thresholds=limits, group_by=SERIES)  # type: ignore[arg-type]
    outputs = compare(reference, current, features={PREDICTION: "numeric"}, thresholds=limits, group_by=SERIES)
    return features, outputs.features[0] if outputs.features else None


def backtest_value(settings: Settings, task: Task, champion: Champion) -> tuple[float | None, float | None]:
    """The champion's overall backtest figure for the task's metric, from its MLflow run, and (demand) its ratio
    to the seasonal naive's on the same windows."""
    from shelfcast.io.registry import Registry
    from shelfcast.io.tracking import CANDIDATE_PARAM

    if not champion.run_id:
        return None, None
    run = Registry(settings).run(champion.run_id)
    candidate = run.data.params.get(CANDIDATE_PARAM, "classifier" if task == Task.STOCKOUT else "gbm")
    metric = RULES[task].metric
    value = run.data.metrics.get(f"{metric}.{candidate}")
    naive = run.data.metrics.get(f"{metric}.seasonal_naive")
    relative = value / naive if task == Task.DEMAND and value is not None and naive else None
    return (None if value is None else float(value)), relative


def _live(
    task: Task,
    data: ModelData,
    predictions: pl.DataFrame | None,
    model: TrainedForecaster | StockoutModel,
    *,
    lookback_days: int,
) -> tuple[dict[str, accuracy.VersionAccuracy], pl.DataFrame]:
    if predictions is None or predictions.is_empty():
        return {}, pl.DataFrame()
    step_days = data.panel.step.days
    if task == Task.DEMAND:
        actuals = data.panel.frame.select(*SERIES, "date", pl.col("y").alias("units"))
        scored = accuracy.demand_scored(
            predictions,
            actuals,
            known_until=data.last_date,
            lookback_days=lookback_days,
            step_days=step_days,
            season_days=data.panel.season * step_days,
        )
        return accuracy.demand_by_version(scored), accuracy.demand_over_time(scored)
    assert isinstance(model, StockoutModel)
    origins = (
        predictions.select((pl.col("date") - pl.duration(days=pl.col("horizon") * step_days)).alias("o"))
        .unique()["o"]
        .to_list()
    )
    labels = stockout_labels(data.panel, origins=origins, definition=model.definition)
    scored = accuracy.stockout_scored(
        predictions, labels, known_until=data.last_date, lookback_days=lookback_days, step_days=step_days
    )
    return accuracy.stockout_by_version(scored), accuracy.stockout_over_time(scored)


def monitor_task(
    settings: Settings,
    task: Task,
    data: ModelData,
    predictions: pl.DataFrame | None,
    *,
    lookback_days: int,
) -> tuple[TaskMonitor, tuple[pl.DataFrame, pl.DataFrame] | None]:
    """One task's drift and live accuracy; a task without a champion (or without stock data) says why."""
    rule = RULES[task]
    if task == Task.STOCKOUT:
        try:
            definition_for(data.panel, risk_days=7, min_hours=None)
        except DataValidationError:
            return TaskMonitor(task, "sales_only", notes=["sales-only data: no stockout model to monitor"]), None
    try:
        champion = load_champion(settings, task)
    except ModelNotFoundError as exc:
        return TaskMonitor(task, "no_champion", notes=[str(exc)]), None
    model: TrainedForecaster | StockoutModel = (
        load_forecaster(champion.folder) if task == Task.DEMAND else load_stockout(champion.folder)
    )
    notes: list[str] = [] if champion.from_registry else ["the registry did not answer: the local copy was monitored"]
    reference = load_reference(champion.folder)
    current = model_window(model, data.panel, end=data.last_date, days=lookback_days, calendar=data.calendar)
    status, drift, outputs = _drift_of(
        settings, champion, model=model, reference=reference, current=current, notes=notes
    )
    by_version, over_time = _live(task, data, predictions, model, lookback_days=lookback_days)
    mine = by_version.get(champion.version)
    backtest, backtest_relative = _backtest_figures(settings, task, champion, notes=notes)
    if predictions is None or predictions.is_empty():
        notes.append("no stored predictions yet: run `shelfcast score`, then monitor after new actuals arrive")
    elif mine is None:
        notes.append(f"no prediction of v{champion.version} has its actuals yet")
    live = mine.value if mine else None
    relative = mine.relative if mine else None
    degraded = _degraded(
        settings, task, live=live, backtest=backtest, relative=relative, backtest_relative=backtest_relative
    )
    monitor = TaskMonitor(
        task=task,
        status=status,
        model_version=champion.version,
        notes=notes,
        drift_alarm=drift.alarm if drift else False,
        drifted_features=drift.drifted if drift else [],
        prediction_drift_alarm=outputs.alarm if outputs else False,
        features=sorted(drift.features, key=lambda f: -f.effect) if drift else [],
        prediction_drift=outputs,
        reference_rows=0 if reference is None else reference.height,
        current_rows=current.height,
        live_metric=rule.metric,
        higher_is_better=rule.higher_is_better,
        live_value=live,
        backtest_value=backtest,
        degraded=degraded,
        evaluated_rows=mine.rows if mine else 0,
        evaluated_days=mine.days if mine else 0,
        live_by_version={v: a.value for v, a in by_version.items() if a.value is not None},
        rows_by_version={v: a.rows for v, a in by_version.items()},
        live_extra=dict(mine.extra) if mine else {},
        live_relative=relative,
        backtest_relative=backtest_relative,
        relative_by_version={v: a.relative for v, a in by_version.items() if a.relative is not None},
        accuracy_over_time=[{**row, "date": row["date"].isoformat()} for row in over_time.iter_rows(named=True)]
        if over_time.height
        else [],
    )
    windows = (reference, current) if reference is not None else None
    return monitor, windows


def _drift_of(
    settings: Settings,
    champion: Champion,
    *,
    model: TrainedForecaster | StockoutModel,
    reference: pl.DataFrame | None,
    current: pl.DataFrame,
    notes: list[str],
) -> tuple[str, DriftResult | None, FeatureDrift | None]:
    """(status, feature drift, prediction drift) of the current window against the model's reference."""
    if reference is None or reference.is_empty():
        notes.append(
            f"{champion.task} v{champion.version} was saved without a reference window: retrain it to monitor drift"
        )
        return "no_reference", None, None
    if current.is_empty():
        notes.append("no origins in the current window")
        return "ok", None, None
    drift, outputs = _drift(reference, current, model, settings.drift)
    return "ok", drift, outputs


def _backtest_figures(
    settings: Settings, task: Task, champion: Champion, *, notes: list[str]
) -> tuple[float | None, float | None]:
    """The champion's backtest figure and its ratio to the naive; (None, None) with a note when unavailable."""
    try:
        return backtest_value(settings, task, champion)
    except TrackingError as exc:  # an unreachable registry: live accuracy is still reported
        log.warning("backtest figure of %s v%s unavailable: %s", task, champion.version, exc)
        notes.append(f"backtest figure unavailable ({exc})")
        return None, None


def _degraded(
    settings: Settings,
    task: Task,
    *,
    live: float | None,
    backtest: float | None,
    relative: float | None,
    backtest_relative: float | None,
) -> bool:
    """Live accuracy worse than at backtest by more than the setting, compared relative to the naive when known."""
    tolerance = settings.monitor.accuracy_degradation
    if relative is not None and backtest_relative is not None:
        # Against the naive on the same rows, the period's difficulty cancels out (see monitoring.accuracy). A model
        # that still beats the naive is not called degraded: its edge varies with the season (measured on the
        # simulator with no drift: 0.84-0.93 of the naive's WAPE live against 0.72 in its backtest).
        return relative > 1.0 and accuracy.is_degraded(
            relative, backtest_relative, higher_is_better=False, tolerance=tolerance
        )
    return accuracy.is_degraded(live, backtest, higher_is_better=RULES[task].higher_is_better, tolerance=tolerance)


def _read_predictions(settings: Settings) -> tuple[pl.DataFrame | None, str | None]:
    try:
        return open_store(settings).read(), None
    except ShelfcastError as exc:
        return None, f"the prediction store could not be read: {exc}"


def run_monitor(
    settings: Settings, *, now: dt.datetime, lookback_days: int | None = None, write: bool = True
) -> MonitorReport:
    """Drift and live accuracy of every champion; writes the summary, the HTML report and an MLflow run.

    `write=False` (a dry run) measures the same and returns the report with nothing written or logged.
    """
    days = lookback_days or settings.monitor.lookback_days
    if days < 1:
        raise ValueError(f"`window_days` must be a positive number of days, got {days}")
    data = load_model_data(Lake(settings.workspace))
    predictions, store_note = _read_predictions(settings)
    tasks: dict[Task, TaskMonitor] = {}
    windows: dict[Task, tuple[pl.DataFrame, pl.DataFrame]] = {}
    for task in TASKS:
        monitor, pair = monitor_task(settings, task, data, predictions, lookback_days=days)
        tasks[task] = monitor
        if pair is not None:
            windows[task] = pair
    root = settings.workspace / "monitoring"
    folder = root / now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H%M%S")
    report = MonitorReport(
        created_at=now,
        window_days=days,
        data_last_date=data.last_date,
        tasks=tasks,
        folder=folder,
        summary_path=folder / "drift_summary.json",
        report_path=folder / "report.html",
        latest_path=root / "latest.json",
        mlflow_run_id=None,
        notes=[store_note] if store_note else [],
        windows=windows,
    )
    if not write:
        return report
    folder.mkdir(parents=True, exist_ok=True)
    from shelfcast.io.monitor_report import evidently_installed, evidently_reports, write_html

    write_html(report, report.report_path)
    if settings.monitor.evidently:
        if evidently_installed():
            report = replace(report, evidently_paths=evidently_reports(report, folder))
        else:
            note = "monitor.evidently is set, but Evidently is not installed: `uv sync --extra reports`"
            report = replace(report, notes=[*report.notes, note])
    run_id = _log_run(settings, report)
    report = replace(report, mlflow_run_id=run_id)
    _write_summary(report)
    return report


def _write_summary(report: MonitorReport) -> None:
    text = json.dumps(report.to_json(), indent=2, default=str) + "\n"
    report.summary_path.write_text(text)
    staging = report.latest_path.with_suffix(".json.tmp")
    shutil.copyfile(report.summary_path, staging)
    staging.replace(report.latest_path)  # atomic: the service never reads half a file


def _log_run(settings: Settings, report: MonitorReport) -> str | None:
    """The monitoring run in MLflow; a tracking failure is a warning (the files are written anyway)."""
    try:
        import mlflow

        from shelfcast.io.tracking import OWNER_TAG, connect, fluent, mlflow_errors, named_experiment, owner

        uri = connect(settings)
        with (
            mlflow_errors(uri),
            fluent(uri),
            mlflow.start_run(experiment_id=named_experiment(settings, EXPERIMENT), tags={OWNER_TAG: owner()}) as run,
        ):
            mlflow.set_tags(
                {
                    "shelfcast.job": "monitor",
                    "monitor.alert": str(report.alert).lower(),
                    **{f"{t}.model_version": m.model_version or "" for t, m in report.tasks.items()},
                }
            )
            mlflow.log_params({"window_days": report.window_days, "data_last_date": report.data_last_date.isoformat()})
            mlflow.log_metrics(run_metrics(report))
            summary = report.to_json() | {"mlflow_run_id": run.info.run_id}
            mlflow.log_dict(summary, "drift_summary.json")
            mlflow.log_artifact(str(report.report_path))
            for path in report.evidently_paths:
                mlflow.log_artifact(str(path))
            return str(run.info.run_id)
    except TrackingError as exc:
        log.warning("monitoring run not logged to MLflow: %s", exc)
        return None
