"""The demand forecaster trained and backtested on Spark: features per group of series, XGBoost's own Spark estimator.

The same functions as a local fit build every row (`training_origins`,
`model_rows`, `training_features`, `scale_training`), run per group of
series; what a local fit decides over all rows (the level's window, the
features too rarely known to learn from, the categories' codes) is decided
here from aggregates over all rows, by the same rules (`full_window`,
`rarely_known_from`, `FeatureEncoder.fit_schema`). Differences from a local
fit, by design: when the training rows exceed `max_rows` the sample is a
hash of each row's key (the local fit draws `max_rows` at random), and
several XGBoost workers sketch their histograms on their own rows, so trees
differ slightly from a single-process fit (one worker gives the same trees).
Forecasts are made by the direct strategy (a recursive model feeds itself
one step at a time: run it per group with `predict`, not trained here).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from shelfcast.errors import DataValidationError
from shelfcast.features.build import hashed_columns
from shelfcast.features.frames import HORIZON, ORIGIN
from shelfcast.features.panel import KEYS, SERIES
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_shape
from shelfcast.io.spark.groups import (
    first_series,
    map_batches,
    map_groups,
    read_table,
    spark_schema,
    to_polars,
)
from shelfcast.io.spark.session import group_count, open_session, worker_count
from shelfcast.io.spark.xgb import fit_booster
from shelfcast.models.backtest import (
    MODEL,
    BacktestConfig,
    DemandBacktest,
    Progress,
    SeriesHistory,
    assess,
    backtest_cutoffs,
    cutoffs,
    score_windows,
    series_history,
    window_rows,
)
from shelfcast.models.baselines import BASELINES
from shelfcast.models.data import DataShape, group_data
from shelfcast.models.forecaster import FeatureEncoder, GBMForecaster
from shelfcast.models.quantile_forecast import ChosenCandidate, chosen_candidate
from shelfcast.models.selection import SelectionConfig, selection_windows
from shelfcast.models.train import (
    KEEP_RESOLUTION,
    MONOTONE,
    TARGET_COLUMN,
    ForecastConfig,
    TrainedForecaster,
    full_window,
    history_columns,
    history_steps,
    keep_share,
    rarely_known_from,
    sampled_training_rows,
    scale_training,
    training_origins,
)
from shelfcast.models.window import MAX_ROWS, model_window, sample_series
from shelfcast.settings import SparkConfig
from shelfcast.types import Freq

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, Row, SparkSession

log = logging.getLogger(__name__)
# Rows a job brings back to the driver, at most (backtest window rows, held-out scores): above, a seeded hash sample
# of whole series comes back instead; a few million rows describe a distribution of errors or scores.
MAX_DRIVER_ROWS = 4_000_000
STEPS = "__steps"
LABEL = "__label"
WEIGHT = "__weight"


@dataclass(frozen=True)
class SparkData:
    """The lake's per-series tables as Spark frames, the shape each group builds its panel with, and the session."""

    session: SparkSession
    config: SparkConfig
    shape: DataShape
    tables: dict[str, DataFrame]
    schemas: dict[str, pl.Schema]
    sample: dict[str, pl.DataFrame]  # a few series read on the driver: the group functions' schemas are probed on it
    _firsts: dict[dt.date, int] = field(default_factory=dict)

    @property
    def groups(self) -> int:
        return group_count(self.session, self.config)

    def first_dates(self) -> dict[dt.date, int]:
        """How many series start on each date (one Spark job, remembered: every window's fit reads it)."""
        if not self._firsts:
            from pyspark.sql import functions as sf

            starts = self.tables["sales"].groupBy(*SERIES).agg(sf.min("date").alias("first"))
            self._firsts.update({r["first"]: r["count"] for r in starts.groupBy("first").count().collect()})
        return self._firsts

    def run(self, fn: Any) -> DataFrame:
        """`fn(tables of one group) -> frame` over every group of series."""
        schema = spark_schema(fn(dict(self.sample)).schema)
        shared: dict[str, pl.DataFrame] = {str(k): v for k, v in self.shape.shared.items()}
        return map_groups(
            self.session, self.tables, fn, schema, groups=self.groups, shared=shared, schemas=self.schemas
        )


# A check of the data's shape and first series (`SparkData.sample`) that raises on data a job cannot use.
DataCheck = Callable[[DataShape, Mapping[str, pl.DataFrame]], object]


def spark_data(
    session: SparkSession,
    config: SparkConfig,
    lake: Lake,
    shape: DataShape,
    sample: dict[str, pl.DataFrame] | None = None,
) -> SparkData:
    tables = {t: read_table(session, lake, t) for t in ("sales", "inventory") if lake.has(t)}
    schemas = {t: lake.scan(t).collect_schema() for t in tables}
    return SparkData(session, config, shape, tables, schemas, sample if sample is not None else first_series(lake))


def open_lake(config: SparkConfig, lake: Lake, *, check: DataCheck | None = None) -> SparkData:
    """The lake's data on a session of `config` (opened, or the one this process runs).

    `check` runs on the driver before the session opens: data a job cannot
    use is refused in a second, without starting a JVM.
    """
    shape, sample = load_shape(lake), first_series(lake)
    if check is not None:
        check(shape, sample)
    return spark_data(open_session(config), config, lake, shape, sample)


def fit_forecaster_spark(
    data: SparkData, config: ForecastConfig, *, cutoff: dt.date, horizon: int
) -> TrainedForecaster:
    """The direct XGBoost forecaster trained on Spark on everything known at `cutoff`, `horizon` steps ahead."""
    if horizon < 1:
        raise ValueError(f"`horizon` must be a positive integer, got {horizon}")
    shape, spec = data.shape, data.shape.spec
    config = config.model_copy(update={"engine": "xgboost", "strategy": "direct"})
    step = Freq(shape.freq).step
    origins, horizons = training_origins(config, cutoff=cutoff, first=shape.first, horizon=horizon, step=step)
    keep = keep_share(data.first_dates(), origins, horizons, cutoff=cutoff, step=step, max_rows=config.max_rows)
    calendar = shape.shared.get("calendar")

    def rows_of(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
        known = group_data(shape, tables).panel.until(cutoff)
        features = sampled_training_rows(
            known, spec, origins, horizons, cutoff=cutoff, keep=keep, seed=config.seed, calendar=calendar
        )
        starts = known.frame.group_by(SERIES).agg(pl.col("date").min().alias("__start"))
        steps = features.select(*SERIES, ORIGIN).join(starts, on=list(SERIES), how="left", maintain_order="left")
        return features.with_columns(steps.select(history_steps(step.days, start="__start"))["steps"].alias(STEPS))

    features = data.run(rows_of).persist()
    try:
        return _fit(data, features, config, cutoff=cutoff, horizon=horizon)
    finally:
        features.unpersist()


def _fit(
    data: SparkData, features: DataFrame, config: ForecastConfig, *, cutoff: dt.date, horizon: int
) -> TrainedForecaster:
    from pyspark.sql import functions as sf

    spec = data.shape.spec
    history = history_columns(features.columns)
    categorical = [c for c in [*spec.categorical, *hashed_columns(spec)] if c in features.columns]
    # One pass over the rows: their count, each window's share of full histories, each history column's known
    # share, and every category's values.
    counts = features.agg(
        sf.count(sf.lit(1)).alias("__rows"),
        *[sf.avg((sf.col(STEPS) >= w).cast("double")).alias(f"__w{w}") for w in spec.windows],
        *[sf.avg(sf.col(f"`{c}`").isNotNull().cast("double")).alias(c) for c in history],
        *category_sets(categorical),
    ).first()
    assert counts is not None
    if not counts["__rows"]:
        raise DataValidationError(f"no training rows with a target on or before the cutoff {cutoff}")
    window = full_window({w: counts[f"__w{w}"] or 0.0 for w in spec.windows}, spec)
    rare = rarely_known_from({c: counts[c] or 0.0 for c in history})
    if rare:
        log.info("left out of training, known on too few of its rows: %s", ", ".join(rare))
    features = features.drop(*rare)
    probe = pl.from_arrow(features.limit(0).toArrow())
    assert isinstance(probe, pl.DataFrame)
    inputs = probe.drop(TARGET_COLUMN, STEPS).schema
    encoder = FeatureEncoder(categorical).fit_schema(inputs, category_values(counts, categorical))
    model = GBMForecaster(
        engine="xgboost",
        objective=config.objective,
        n_estimators=config.n_estimators,
        learning_rate=config.learning_rate,
        num_leaves=config.num_leaves,
        categorical=categorical,
        monotone=MONOTONE,
        seed=config.seed,
    )
    model.encoder_ = encoder
    plain = plain_names(encoder)

    def encode(batch: pl.DataFrame) -> pl.DataFrame:
        scaled, label, level = scale_training(batch.drop(STEPS), spec, config, window)
        matrix = encoder.transform(scaled)
        out = pl.DataFrame(matrix, schema=plain, orient="row")
        return out.with_columns(
            pl.Series(LABEL, label, dtype=pl.Float64),
            pl.Series(WEIGHT, level if config.weight == "level" else [1.0] * len(level), dtype=pl.Float64),
        )

    train_encoded(data, features, encode, model, order=[*SERIES, ORIGIN, HORIZON])
    return TrainedForecaster(spec, config, model, cutoff, horizon, level_window=window)


def category_sets(categorical: Sequence[str]) -> list[Column]:
    """Aggregates of each categorical column's distinct values as text (nulls left out, as the local encoder
    does), to ride along another aggregate: `category_values` reads them from its row."""
    from pyspark.sql import functions as sf

    return [sf.collect_set(sf.col(f"`{c}`").cast("string")).alias(f"__values_{c}") for c in categorical]


def category_values(row: Row, categorical: Sequence[str]) -> dict[str, pl.Series]:
    """The encoder's category values from an aggregate row holding `category_sets`."""
    return {c: pl.Series(c, row[f"__values_{c}"], dtype=pl.String) for c in categorical}


def plain_names(encoder: FeatureEncoder) -> list[str]:
    """The matrix columns' names on Spark: it reads a dot in a column name (`ewm_0.05`) as a struct's field."""
    return [f"__f{i}" for i in range(len(encoder.columns_))]


def train_encoded(
    data: SparkData,
    rows: DataFrame,
    encode: Callable[[pl.DataFrame], pl.DataFrame],
    model: GBMForecaster,
    *,
    order: Sequence[str],
    classifier: bool = False,
) -> GBMForecaster:
    """`model` (its encoder set) trained by XGBoost on Spark on `rows`, each batch turned by `encode` into the
    matrix columns (`plain_names`), LABEL and WEIGHT; the booster gets the encoder's column names back."""
    encoder = model.encoder_
    plain = plain_names(encoder)
    schema = spark_schema(pl.Schema({**{c: pl.Float32 for c in plain}, LABEL: pl.Float64, WEIGHT: pl.Float64}))
    workers = worker_count(data.session, data.config)
    # The local fit's row order (`order`), in as many contiguous parts as workers: one worker then sees the rows a
    # local fit sees in the same order, so row subsampling draws the same rows and the trees are the same.
    # A range shuffle into exactly `workers` partitions, not a coalesce: XGBoost trains in a barrier stage, which
    # refuses a parent with another partition count (a coalesce of the sort's partitions failed on 1M rows).
    ordered = rows.repartitionByRange(workers, *order).sortWithinPartitions(*order)
    booster = fit_booster(
        map_batches(ordered, encode, schema),
        features=plain,
        label=LABEL,
        weight=WEIGHT,
        params=model.xgboost_params(),
        rounds=model.n_estimators,
        feature_types=model.feature_types(),
        workers=workers,
        classifier=classifier,
    )
    booster.feature_names = encoder.columns_
    return model.with_booster(encoder, booster)


def series_history_spark(data: SparkData, first_cutoff: dt.date) -> SeriesHistory:
    """`series_history` per group of series, concatenated: the same table, row for row."""
    shape = data.shape

    def history_of(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
        return series_history(group_data(shape, tables).panel, first_cutoff).table

    table = to_polars(data.run(history_of))
    category = next((c for c in table.columns if c not in _HISTORY_COLUMNS), None)
    return SeriesHistory(table.sort(SERIES), category)


_HISTORY_COLUMNS = ("store_id", "item_id", "n_history", "mae_scale", "mse_scale", "mean_demand")


@dataclass(frozen=True)
class WindowRows:
    """The window rows a backtest assesses on the driver, and the share of the series they cover (1: all)."""

    frame: pl.DataFrame
    share: float
    cap: int  # rows the driver takes at most

    @property
    def note(self) -> str | None:
        if self.share >= 1.0:
            return None
        return (
            f"assessed on a seeded hash sample of {100 * self.share:.1f}% of the series (whole series, at most "
            f"{self.cap:,} window rows on the driver)"
        )


def window_forecasts_spark(
    data: SparkData,
    windows: list[dt.date],
    backtest: BacktestConfig,
    *,
    models: Mapping[dt.date, TrainedForecaster],
    name: str = MODEL,
    baselines: Sequence[str] = tuple(BASELINES),
    max_rows: int | None = None,
) -> WindowRows:
    """Every window's rows (`window_rows`) of the fitted `models` (one per cutoff) and of the `baselines`.

    One pass over the data: each group of series forecasts every window with
    that window's model (shipped to the executors with the function) and the
    baselines. The rows come back to the driver, which blends, calibrates and
    scores them: when they would pass `max_rows` (default `MAX_DRIVER_ROWS`:
    series x horizon x windows x candidates), only a seeded hash sample of whole
    series comes back, the metrics then estimated on those series.
    """
    from pyspark.sql import functions as sf

    shape, steps = data.shape, backtest.gap + backtest.horizon
    calendar = shape.shared.get("calendar")
    series = sum(data.first_dates().values())
    expected = series * backtest.horizon * len(windows) * (len(baselines) + 1)
    cap = MAX_DRIVER_ROWS if max_rows is None else max_rows
    keep = min(KEEP_RESOLUTION, int(cap / expected * KEEP_RESOLUTION)) if expected else KEEP_RESOLUTION

    def forecasts_of(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
        panel = group_data(shape, tables).panel
        actual = panel.frame.select(*KEYS, "y")
        frames = []
        for i, cutoff in enumerate(windows):
            model = models.get(cutoff)
            if model is not None:
                forecast = model.predict(panel, calendar=calendar, origin=cutoff, horizon=steps).drop(HORIZON)
                frames.append(window_rows(forecast, name, i + 1, cutoff, panel=panel, backtest=backtest, actual=actual))
            for baseline in baselines:
                forecast = BASELINES[baseline](panel, cutoff=cutoff, horizon=steps)
                frames.append(
                    window_rows(forecast, baseline, i + 1, cutoff, panel=panel, backtest=backtest, actual=actual)
                )
        return pl.concat(frames, how="diagonal_relaxed")

    rows = data.run(forecasts_of)
    if keep < KEEP_RESOLUTION:
        rows = rows.filter(sf.pmod(sf.xxhash64(*SERIES), sf.lit(KEEP_RESOLUTION)) < keep)
        log.info("backtest window rows: a hash sample of %.2f%% of %d series", 100 * keep / KEEP_RESOLUTION, series)
    return WindowRows(to_polars(rows), keep / KEEP_RESOLUTION, cap)


def backtest_demand_spark(
    data: SparkData,
    config: ForecastConfig,
    backtest: BacktestConfig,
    *,
    selection: SelectionConfig | None = None,
    progress: Progress | None = None,
    windows_note: str | None = None,
    end: dt.date | None = None,
    max_rows: int | None = None,
) -> DemandBacktest:
    """`backtest_demand` on Spark: each window's GBM trained on Spark, forecasts per group, scores on the driver.

    The candidates are the direct GBM, every baseline and the blend (the
    recursive GBM is a local-engine candidate). Window rows are collected on
    the driver to be blended, calibrated and scored by the same functions as a
    local backtest: series x horizon x windows x candidates rows, a sample of
    whole series above `max_rows` (`window_forecasts_spark`, said in the
    selection's note). `end` (default: the data's last date) is where the last
    window ends: a backtest of what was known then, as the local one on the
    panel until `end`.
    """
    shape = data.shape
    windows = backtest_cutoffs(shape.first, end or shape.end, backtest, Freq(shape.freq).step)
    steps = backtest.gap + backtest.horizon
    models = {}
    for i, cutoff in enumerate(windows):
        if progress:
            progress(f"window {i + 1}/{len(windows)} (cutoff {cutoff}) on Spark", i, len(windows) + 1)
        models[cutoff] = fit_forecaster_spark(data, config, cutoff=cutoff, horizon=steps)
    if progress:
        progress("forecasts and scores on Spark", len(windows), len(windows) + 1)
    rows = window_forecasts_spark(data, windows, backtest, models=models, max_rows=max_rows)
    notes = [n for n in (windows_note, rows.note) if n]
    return assess(
        rows.frame,
        windows,
        series_history_spark(data, windows[0]),
        season=Freq(shape.freq).season,
        calendar=shape.shared.get("calendar"),
        backtest=backtest,
        selection=selection or SelectionConfig(),
        windows_note="; ".join(notes) or None,
    )


def chosen_on_spark(
    data: SparkData,
    config: ForecastConfig,
    *,
    cutoff: dt.date,
    horizon: int,
    selection: SelectionConfig | None = None,
) -> ChosenCandidate:
    """`chosen_forecast` on Spark, up to the forecasts: the candidate chosen by a Spark backtest of the windows
    ending at `cutoff`, its GBM trained on Spark to `cutoff`. Each group of series then forecasts itself with
    `ChosenCandidate.forecast` (the candidates are the direct GBM, the baselines and the blend)."""
    shape = data.shape
    selection = selection or SelectionConfig()
    config = config.model_copy(update={"engine": "xgboost", "strategy": "direct"})
    step = Freq(shape.freq).step
    windows = selection_windows(shape.first, cutoff, horizon=horizon, step=step, wanted=selection.windows)
    if windows.note:
        log.info("selection windows before %s: %s", cutoff, windows.note)
    check = backtest_demand_spark(
        data,
        config,
        BacktestConfig(folds=windows.count, horizon=horizon, step=windows.stride),
        selection=selection,
        windows_note=windows.note,
        end=cutoff,
    )
    log.info("backtest on Spark before %s selected %s", cutoff, check.selected)
    gbm = None if check.selected in BASELINES else fit_forecaster_spark(data, config, cutoff=cutoff, horizon=horizon)
    return chosen_candidate(check, cutoff=cutoff, steps=horizon, gbm=gbm)


def score_fitted_spark(
    data: SparkData, model: TrainedForecaster, backtest: BacktestConfig, *, name: str
) -> tuple[list[dt.date], pl.DataFrame]:
    """`score_fitted` on Spark: a fitted model as it is, from each window's cutoff: (cutoffs, metrics)."""
    shape = data.shape
    windows = cutoffs(shape.end, backtest, Freq(shape.freq).step)
    if model.cutoff > windows[0]:
        raise ValueError(f"the model was trained on data up to {model.cutoff}, after the first cutoff {windows[0]}")
    rows = window_forecasts_spark(
        data, windows, backtest, models=dict.fromkeys(windows, model), name=name, baselines=()
    )
    history = series_history_spark(data, windows[0])
    return windows, score_windows(rows.frame, history, windows, shape.shared.get("calendar"), backtest)


def reference_spark(data: SparkData, model: Any, *, end: dt.date, days: int) -> pl.DataFrame:
    """`model_window` per group of series, its whole-series sample taken again over the union (the drift reference).

    Each group samples twice its share of `MAX_ROWS`, so the driver holds
    about 2 x `MAX_ROWS` rows whatever the number of groups.
    """
    shape = data.shape
    calendar = shape.shared.get("calendar")
    per_group = max(1, math.ceil(2 * MAX_ROWS / data.groups))

    def window_of(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
        panel = group_data(shape, tables).panel
        return model_window(model, panel, end=end, days=days, calendar=calendar, max_rows=per_group)

    frame = to_polars(data.run(window_of))
    return sample_series(frame, max_rows=MAX_ROWS, seed=0).sort(*SERIES, ORIGIN)
