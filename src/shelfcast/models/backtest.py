"""Rolling-origin backtests of the demand forecaster against the baselines.

Each window trains on what was known at its cutoff only and forecasts
`gap + 1 .. gap + horizon` steps after it; every candidate (the model, the
baselines and a blend) is scored on the same rows. Quantiles are calibrated
conformally: residuals of earlier windows set the intervals of later ones,
so their coverage is measured on periods they never saw.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from shelfcast.errors import DataValidationError
from shelfcast.features.frames import HORIZON
from shelfcast.features.panel import KEYS, SERIES, Panel
from shelfcast.features.spec import FeatureSpec
from shelfcast.models.baselines import BASELINES
from shelfcast.models.checkpoint import Checkpoints
from shelfcast.models.metrics import by_segment, forecast_metrics, series_scales, velocity_of
from shelfcast.models.selection import (
    Selection,
    SelectionConfig,
    choose,
    fit_blend_weight,
    metric_value,
    resolve_metric,
)
from shelfcast.models.train import ForecastConfig, TrainedForecaster, fit_forecaster

log = logging.getLogger(__name__)
MODEL = "gbm"
RECURSIVE = "gbm_recursive"
BLEND = "blend_gbm_seasonal_naive"
QUANTILES = (0.1, 0.5, 0.9)
Progress = Callable[[str, int, int], None]


class BacktestConfig(BaseModel):
    """Folds (rolling origins), horizon and gap of a rolling-origin backtest (in steps of the data)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    folds: int = Field(3, gt=0, description="Rolling origins (cutoffs) scored.")
    horizon: int = Field(28, gt=0)
    gap: int = Field(0, ge=0)
    step: int | None = Field(None, gt=0, description="Steps between cutoffs; default: the horizon.")
    holiday_weight: float = Field(5.0, gt=0, description="Weight of event periods in WMAE.")


def cutoffs(last: dt.date, config: BacktestConfig, step: dt.timedelta) -> list[dt.date]:
    """Cutoffs, oldest first; the last window's forecasts end on `last`."""
    stride = config.step or config.horizon
    final = last - step * (config.gap + config.horizon)
    return sorted(final - step * (stride * k) for k in range(config.folds))


@dataclass(frozen=True)
class DemandBacktest:
    """Every candidate's forecasts and scores, per window, overall and per segment."""

    forecasts: pl.DataFrame
    metrics: pl.DataFrame
    selected: str
    cutoffs: list[dt.date]
    segments: pl.DataFrame | None = None
    selection: Selection | None = None


def _weights(frame: pl.DataFrame, calendar: pl.DataFrame | None, weight: float) -> pl.DataFrame:
    if calendar is None or calendar.is_empty():
        return frame.with_columns(pl.lit(1.0).alias("weight"))
    events = calendar.select("date").unique().with_columns(pl.lit(weight).alias("weight"))
    return frame.join(events, on="date", how="left").with_columns(pl.col("weight").fill_null(1.0))


def conformal_scores(frame: pl.DataFrame) -> pl.DataFrame:
    """Variance-stabilised residuals (y - forecast) / sqrt(forecast + 1), per horizon."""
    return frame.select(
        HORIZON, ((pl.col("y") - pl.col("forecast")) / (pl.col("forecast") + 1.0).sqrt()).alias("score")
    )


def quantile_table(scores: pl.DataFrame, levels: tuple[float, ...] = QUANTILES) -> pl.DataFrame:
    """Score quantiles per horizon (pooled over all horizons where a horizon has few rows)."""
    pooled = {f"q{q:g}": scores["score"].quantile(q) for q in levels}
    per_h = scores.group_by(HORIZON).agg(
        pl.len().alias("n"), *[pl.col("score").quantile(q).alias(f"q{q:g}") for q in levels]
    )
    return per_h.with_columns(
        [
            pl.when(pl.col("n") >= 30).then(pl.col(f"q{q:g}")).otherwise(pooled[f"q{q:g}"]).alias(f"q{q:g}")
            for q in levels
        ]
    ).drop("n")


def add_quantiles(forecast: pl.DataFrame, table: pl.DataFrame, levels: tuple[float, ...] = QUANTILES) -> pl.DataFrame:
    """p10/p50/p90 columns from a quantile table; sorted so they never cross."""
    out = forecast.join(table, on=HORIZON, how="left")
    spread = (pl.col("forecast") + 1.0).sqrt()
    names = [f"p{round(q * 100)}" for q in levels]
    out = out.with_columns(
        [
            (pl.col("forecast") + pl.col(f"q{q:g}").fill_null(0.0) * spread).clip(0.0).alias(n)
            for q, n in zip(levels, names, strict=True)
        ]
    ).drop([f"q{q:g}" for q in levels])
    if len(names) == 3:
        # Three columns sort with min, max and the median of three: no per-row lists (280k rows: 5 s -> 0.01 s).
        lo, mid, hi = (pl.col(n) for n in names)
        median = pl.max_horizontal(pl.min_horizontal(lo, mid), pl.min_horizontal(pl.max_horizontal(lo, mid), hi))
        return out.with_columns(
            pl.min_horizontal(lo, mid, hi).alias(names[0]),
            median.alias(names[1]),
            pl.max_horizontal(lo, mid, hi).alias(names[2]),
        )
    return out.with_columns(pl.concat_list(names).list.sort().list.to_struct(fields=names).struct.unnest())


def candidates(
    panel: Panel,
    spec: FeatureSpec,
    config: ForecastConfig,
    *,
    cutoff: dt.date,
    steps: int,
    calendar: pl.DataFrame | None,
    checkpoints: Checkpoints | None = None,
    only: str | None = None,
    blend_weight: float = 0.5,
) -> dict[str, pl.DataFrame]:
    """Forecasts of the model(s) and every baseline from `cutoff` for `steps` steps.

    The direct GBM is `MODEL`, the recursive one `RECURSIVE`; `config.strategy`
    "auto" gives both, so the backtest chooses. The blend (`only=BLEND`)
    weighs the GBM of `config.strategy` ("auto": the direct one) by
    `blend_weight` and the seasonal naive by the rest; the backtest builds
    its own blends from the windows' forecasts, with weights it fits. With
    `only`, just that candidate (and what it is made of) is computed.
    """
    strategies = {"direct": [MODEL], "recursive": [RECURSIVE], "auto": [MODEL, RECURSIVE]}[config.strategy]
    gbms, baselines = strategies, list(BASELINES)
    if only is not None:
        gbms = [only] if only in (MODEL, RECURSIVE) else strategies[:1] if only == BLEND else []
        baselines = [only] if only in BASELINES else ["seasonal_naive"] if only == BLEND else []
        if not gbms and not baselines:
            raise ValueError(f"unknown candidate {only!r}")
    out: dict[str, pl.DataFrame] = {}
    for name in gbms:
        model = fit_forecaster(
            panel,
            spec,
            gbm_config(config, name),
            cutoff=cutoff,
            horizon=steps,
            calendar=calendar,
            checkpoints=checkpoints,
        )
        out[name] = candidate_forecast(panel, name, gbm=model, cutoff=cutoff, steps=steps, calendar=calendar)
    for name in baselines:
        out[name] = candidate_forecast(panel, name, gbm=None, cutoff=cutoff, steps=steps, calendar=calendar)
    if only == BLEND:
        return {BLEND: blend(out[gbms[0]], out["seasonal_naive"], blend_weight)}
    return out if only is None else {only: out[only]}


def gbm_config(config: ForecastConfig, name: str) -> ForecastConfig:
    """The configuration of the GBM a candidate is or is made of: the recursive one for `RECURSIVE`, for the
    blend the one of `config.strategy` ("auto": the direct one), else the direct one."""
    recursive = name == RECURSIVE or (name == BLEND and config.strategy == "recursive")
    return config.model_copy(update={"strategy": "recursive" if recursive else "direct"})


def candidate_forecast(
    panel: Panel,
    name: str,
    *,
    gbm: TrainedForecaster | None,
    cutoff: dt.date,
    steps: int,
    calendar: pl.DataFrame | None,
    blend_weight: float = 0.5,
) -> pl.DataFrame:
    """One candidate's forecasts from `cutoff` for `steps` steps: a baseline's, the fitted `gbm`'s (trained to
    `cutoff`, for a GBM candidate and the blend), or the blend of the two."""
    if name in BASELINES:
        return BASELINES[name](panel, cutoff=cutoff, horizon=steps)
    if gbm is None:
        raise ValueError(f"the candidate {name!r} needs a fitted GBM")
    forecast = gbm.predict(panel, calendar=calendar).drop(HORIZON)
    if name == BLEND:
        return blend(forecast, BASELINES["seasonal_naive"](panel, cutoff=cutoff, horizon=steps), blend_weight)
    return forecast


def blend(gbm: pl.DataFrame, naive: pl.DataFrame, weight: float) -> pl.DataFrame:
    """weight x the GBM's forecast + (1 - weight) x the seasonal naive's, where both forecast a row."""
    both = gbm.select(*KEYS, "forecast").join(naive.select(*KEYS, "forecast"), on=list(KEYS), suffix="_sn")
    return both.select(*KEYS, (pl.col("forecast") * weight + pl.col("forecast_sn") * (1 - weight)).alias("forecast"))


def backtest_demand(
    panel: Panel,
    spec: FeatureSpec,
    config: ForecastConfig,
    backtest: BacktestConfig,
    *,
    calendar: pl.DataFrame | None = None,
    progress: Progress | None = None,
    selection: SelectionConfig | None = None,
    windows_note: str | None = None,
) -> DemandBacktest:
    """Score the model, the baselines and a blend on the same rolling-origin windows, and choose among them.

    Each window's GBMs are trained on what was known at its cutoff. The
    choice follows `shelfcast.models.selection` (its metric, margin and the
    blend's fitted weight).
    """
    selection = selection or SelectionConfig()
    first, last = panel.frame["date"].min(), panel.frame["date"].max()
    assert isinstance(first, dt.date) and isinstance(last, dt.date)
    windows = backtest_cutoffs(first, last, backtest, panel.step)
    steps = backtest.gap + backtest.horizon
    actual = panel.frame.select(*KEYS, "y")
    frames: list[pl.DataFrame] = []
    for i, cutoff in enumerate(windows):
        if progress:
            progress(f"window {i + 1}/{len(windows)} (cutoff {cutoff})", i, len(windows))
        log.info("backtest window %d: cutoff %s", i + 1, cutoff)
        for name, forecast in candidates(panel, spec, config, cutoff=cutoff, steps=steps, calendar=calendar).items():
            frames.append(window_rows(forecast, name, i + 1, cutoff, panel=panel, backtest=backtest, actual=actual))
    return assess(
        pl.concat(frames, how="diagonal_relaxed"),
        windows,
        series_history(panel, windows[0]),
        season=panel.season,
        calendar=calendar,
        backtest=backtest,
        selection=selection,
        windows_note=windows_note,
    )


def backtest_cutoffs(first: dt.date, last: dt.date, backtest: BacktestConfig, step: dt.timedelta) -> list[dt.date]:
    """The windows' cutoffs for data from `first` to `last`; DataValidationError when the first has no history."""
    windows = cutoffs(last, backtest, step)
    if windows[0] <= first:
        raise DataValidationError(
            f"not enough history for {backtest.folds} window(s) of {backtest.horizon} steps: "
            f"the first cutoff {windows[0]} is not after the first date; use fewer --windows or a shorter --horizon"
        )
    return windows


@dataclass(frozen=True)
class SeriesHistory:
    """What the scores read from each series' history before the first cutoff, one row per series.

    `table`: store_id, item_id, the seasonal naive's in-sample errors (`series_scales`: n_history, mae_scale,
    mse_scale, for MASE), `mean_demand` (velocity segments) and the `category` attribute when the data has one.
    Computed once per backtest, over the whole panel or per group of series (then concatenated).
    """

    table: pl.DataFrame
    category: str | None = None

    @property
    def scales(self) -> pl.DataFrame:
        return self.table.select(*SERIES, "n_history", "mae_scale", "mse_scale")


def series_history(panel: Panel, first_cutoff: dt.date) -> SeriesHistory:
    """The `SeriesHistory` of the panel's series before `first_cutoff`."""
    history = panel.until(first_cutoff).frame.select(*KEYS, "y")
    means = history.group_by(SERIES).agg(pl.col("y").cast(pl.Float64).mean().alias("mean_demand"))
    table = series_scales(history, season=panel.season).join(means, on=list(SERIES), how="left")
    category = next((c for c in panel.categorical if "categ" in c.lower()), None)
    if category is not None:
        # Every series of the panel has its category, those born after the first cutoff too (no history row).
        attrs = panel.frame.select(*SERIES, pl.col(category).cast(pl.String)).unique(subset=list(SERIES))
        table = table.join(attrs, on=list(SERIES), how="full", coalesce=True)
    return SeriesHistory(table, category)


def assess(
    forecasts: pl.DataFrame,
    windows: list[dt.date],
    history: SeriesHistory,
    *,
    season: int,
    calendar: pl.DataFrame | None,
    backtest: BacktestConfig,
    selection: SelectionConfig,
    windows_note: str | None = None,
) -> DemandBacktest:
    """Blend, calibrate, score and choose, from every candidate's window rows (`window_rows`) and the history."""
    forecasts = _weights(forecasts, calendar, backtest.holiday_weight)
    metric = resolve_metric(selection, calendar)
    blended, gbm, weight, per_window = _blend_rows(forecasts, metric, scales=history.scales, season=season)
    forecasts = _calibrate(pl.concat([forecasts, blended], how="diagonal_relaxed"))
    metrics = _score(forecasts, history, windows)
    chosen, reason = choose(metrics, metric=metric, incumbents=[MODEL, RECURSIVE, BLEND], margin=selection.margin)
    decision = Selection(
        candidate=chosen,
        metric=metric,
        reason=reason,
        scores=_window_scores(metrics, metric, windows),
        overall={r["model"]: r[metric] for r in metrics.filter(pl.col("window") == "all").iter_rows(named=True)},
        cutoffs=windows,
        blend_weight=weight,
        blend_gbm=gbm,
        windows_note=windows_note,
        blend_weights=per_window,
    )
    log.info("selected %s by %s: %s", chosen, metric, reason)
    segments = segment_metrics(forecasts, history, models=sorted({MODEL, RECURSIVE, chosen, "seasonal_naive"}))
    return DemandBacktest(forecasts, metrics, chosen, windows, segments, decision)


def _blend_rows(
    forecasts: pl.DataFrame, metric: str, *, scales: pl.DataFrame, season: int
) -> tuple[pl.DataFrame, str | None, float | None, dict[int, float]]:
    """The blend's rows on every window, each from a weight fitted on the other windows; and the weight on all.

    The blend mixes the better GBM (by the selection metric over all windows)
    with the seasonal naive. With one window there are no other windows: its
    rows use the weight fitted on that window itself (said in the decision).
    """
    gbms = [m for m in (MODEL, RECURSIVE) if forecasts.filter(pl.col("model") == m).height]
    naive = forecasts.filter(pl.col("model") == "seasonal_naive")
    if not gbms or naive.is_empty():
        return forecasts.clear(), None, None, {}
    gbm = min(
        gbms, key=lambda m: metric_value(forecasts.filter(pl.col("model") == m), metric, scales=scales, season=season)
    )
    pair = forecasts.filter(pl.col("model") == gbm).join(
        naive.select(*KEYS, pl.col("forecast").alias("forecast_sn")), on=list(KEYS), how="inner"
    )
    windows = sorted(pair["window"].unique().to_list())
    weight = fit_blend_weight(pair, metric, scales=scales, season=season)
    per_window = {
        w: fit_blend_weight(pair.filter(pl.col("window") != w), metric, scales=scales, season=season)
        if len(windows) > 1
        else weight
        for w in windows
    }
    rows = pair.with_columns(
        pl.col("window").replace_strict(per_window, return_dtype=pl.Float64).alias("__w"),
        pl.lit(BLEND).alias("model"),
    ).with_columns((pl.col("forecast") * pl.col("__w") + pl.col("forecast_sn") * (1 - pl.col("__w"))).alias("forecast"))
    keep = [c for c in forecasts.columns if c not in ("p10", "p50", "p90")]
    return rows.select(keep), gbm, weight, per_window


def _window_scores(metrics: pl.DataFrame, metric: str, windows: list[dt.date]) -> pl.DataFrame:
    per = metrics.filter(pl.col("window") != "all").select(
        "model", pl.col("window").cast(pl.Int32), pl.col(metric).alias("value")
    )
    dates = pl.DataFrame({"window": list(range(1, len(windows) + 1)), "cutoff": windows}).cast({"window": pl.Int32})
    return per.join(dates, on="window", how="left").select("model", "window", "cutoff", "value").sort("model", "window")


def window_rows(
    forecast: pl.DataFrame,
    name: str,
    window: int,
    cutoff: dt.date,
    *,
    panel: Panel,
    backtest: BacktestConfig,
    actual: pl.DataFrame,
) -> pl.DataFrame:
    """One model's forecasts of one window, with their horizon and actuals (the gap's steps left out)."""
    h = ((pl.col("date") - pl.lit(cutoff)).dt.total_days() // panel.step.days).cast(pl.Int32)
    return (
        forecast.with_columns(
            h.alias(HORIZON),
            pl.lit(name).alias("model"),
            pl.lit(window).alias("window"),
            pl.lit(cutoff).alias("cutoff"),
        )
        .filter(pl.col(HORIZON) > backtest.gap)
        .join(actual, on=list(KEYS), how="inner")
    )


def score_fitted(
    model: TrainedForecaster,
    panel: Panel,
    backtest: BacktestConfig,
    *,
    name: str,
    calendar: pl.DataFrame | None = None,
) -> tuple[list[dt.date], pl.DataFrame]:
    """A model already fitted, as it is (not refitted), forecasting from each window's cutoff: (cutoffs, metrics).

    Scored like `backtest_demand`'s candidates (same rows, weights and
    metrics), so the two compare. A model trained past the first cutoff is
    refused (ValueError): it would be judged on days it learned from.
    """
    windows = cutoffs(panel.frame["date"].max(), backtest, panel.step)  # type: ignore[arg-type]
    if model.cutoff > windows[0]:
        raise ValueError(f"the model was trained on data up to {model.cutoff}, after the first cutoff {windows[0]}")
    actual = panel.frame.select(*KEYS, "y")
    steps = backtest.gap + backtest.horizon
    frames = [
        window_rows(
            model.predict(panel, calendar=calendar, origin=cutoff, horizon=steps),
            name,
            i + 1,
            cutoff,
            panel=panel,
            backtest=backtest,
            actual=actual,
        )
        for i, cutoff in enumerate(windows)
    ]
    return windows, score_windows(
        pl.concat(frames, how="diagonal_relaxed"), series_history(panel, windows[0]), windows, calendar, backtest
    )


def score_windows(
    forecasts: pl.DataFrame,
    history: SeriesHistory,
    windows: list[dt.date],
    calendar: pl.DataFrame | None,
    backtest: BacktestConfig,
) -> pl.DataFrame:
    """The metrics of window rows (`window_rows`) per model, per window and overall, as the backtest scores them."""
    return _score(_weights(forecasts, calendar, backtest.holiday_weight), history, windows)


SEGMENT_METRICS = ("n_rows", "wape", "mae", "bias", "smape")


def segment_metrics(forecasts: pl.DataFrame, history: SeriesHistory, *, models: list[str]) -> pl.DataFrame:
    """WAPE and friends per store, per category (an item attribute named like one) and per sales velocity."""
    means = history.table.select(*SERIES, "mean_demand").drop_nulls("mean_demand").sort(SERIES)
    velocity = velocity_of(means).select(*SERIES, "velocity")
    frame = forecasts.filter(pl.col("model").is_in(models)).join(velocity, on=list(SERIES), how="left")
    dimensions = ["store_id", "velocity"]
    if history.category is not None:
        attrs = history.table.select(*SERIES, history.category)
        frame = frame.join(attrs, on=list(SERIES), how="left")
        dimensions.append(history.category)
    parts = []
    for dim in dimensions:
        table = by_segment(frame.with_columns(pl.col(dim).cast(pl.String)), ["model", dim], _segment_scores)
        parts.append(table.rename({dim: "segment"}).with_columns(pl.lit(dim).alias("dimension")))
    return pl.concat(parts, how="diagonal_relaxed").select("dimension", "segment", "model", *SEGMENT_METRICS)


def _segment_scores(frame: pl.DataFrame) -> dict[str, float]:
    values = forecast_metrics(frame, quantiles={})
    return {k: float(values[k]) for k in SEGMENT_METRICS}


def _calibrate(forecasts: pl.DataFrame) -> pl.DataFrame:
    """Intervals for each GBM's and the blend's window k from its residuals of windows < k (none for the first)."""
    out = []
    for (window,), frame in forecasts.partition_by("window", as_dict=True).items():
        parts = [frame.filter(~pl.col("model").is_in([MODEL, RECURSIVE, BLEND]))]
        for name in (MODEL, RECURSIVE, BLEND):
            model = frame.filter(pl.col("model") == name)
            earlier = forecasts.filter((pl.col("window") < window) & (pl.col("model") == name))
            if model.height and earlier.height:
                model = add_quantiles(model, quantile_table(conformal_scores(earlier)))
            parts.append(model)
        out.append(pl.concat(parts, how="diagonal_relaxed"))
    return pl.concat(out, how="diagonal_relaxed")


def _score(forecasts: pl.DataFrame, history: SeriesHistory, windows: list[dt.date]) -> pl.DataFrame:
    rows: list[dict[str, object]] = []
    scales = history.scales
    quantiles: Mapping[float, str] = {0.1: "p10", 0.5: "p50", 0.9: "p90"}
    for model in forecasts["model"].unique().sort().to_list():
        subset = forecasts.filter(pl.col("model") == model)
        groups = [
            ("all", subset),
            *((str(w), subset.filter(pl.col("window") == w)) for w in range(1, len(windows) + 1)),
        ]
        for label, frame in groups:
            if frame.is_empty():
                continue
            values = forecast_metrics(frame, weight="weight", quantiles={}, scales=scales)
            # Intervals exist from the second window on (calibrated on earlier ones): score them there.
            calibrated = frame.drop_nulls("p10") if "p10" in frame.columns else frame.clear()
            if calibrated.height:
                interval = forecast_metrics(calibrated, quantiles=quantiles)
                values |= {k: v for k, v in interval.items() if k.startswith(("pinball", "coverage", "width"))}
            rows.append({"model": model, "window": label, **{k: float(v) for k, v in values.items()}})
    return pl.DataFrame(rows)
