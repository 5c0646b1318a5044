"""Recursive multi-step forecasts: a one-step model fed its own forecasts.

From the cutoff the model forecasts t+1; that forecast becomes the demand of
t+1, the origin moves one step, and so on `horizon` times. Nothing observed
after the cutoff is read: the loop starts from `panel.as_known_at(cutoff)`,
whose later rows have y and every past-only column (inventory, covariates)
blanked, and only y is ever filled in, with forecasts. Planned prices and
promotions after the cutoff are blanked too unless the spec declares them
(`future_price_promo`), as the direct model does.

Rebuilding every feature at every step costs a full feature build per step
(seconds each on a few hundred series with years of history). Instead the
features that do not depend on demand (calendar, events, prices, inventory,
covariates, age) are built once for every step with the usual builder, and
the demand features (lags, rolling statistics, EWMs, the expanding mean,
seasonal profiles, the year-ago value) are computed per step in numpy over a
dense window of the last `spec.history_needed` steps, with running sums for
the two that reach back over the whole history. `tests/unit/models/
test_recursive.py` checks that every step's features equal the builder's on
the panel filled with the forecasts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable

import numpy as np
import polars as pl

from shelfcast.features.build import build_features
from shelfcast.features.frames import HORIZON, ORIGIN, model_rows
from shelfcast.features.origin import demand
from shelfcast.features.panel import KEYS, PLANNED_SALES_COLUMNS, SERIES, Panel
from shelfcast.features.spec import FeatureSpec
from shelfcast.types import Freq

log = logging.getLogger(__name__)
# Built feature rows -> forecasts in units, one per row.
Score = Callable[[pl.DataFrame], np.ndarray]


def recursion_panel(panel: Panel, spec: FeatureSpec, *, origin: dt.date, horizon: int) -> Panel:
    """What the loop may read: the panel known at `origin`, for the series alive then, one row per step to the end.

    Series without rows up to `origin + horizon` (the panel ends at the
    cutoff when forecasting the future) get them, with nothing known.
    """
    known = panel.as_known_at(origin)
    if not spec.future_price_promo:
        planned = [c for c in PLANNED_SALES_COLUMNS if c in known.frame.columns]
        later = pl.col("date") > origin
        known = dataclasses.replace(
            known,
            frame=known.frame.with_columns(pl.when(later).then(None).otherwise(pl.col(c)).alias(c) for c in planned),
        )
    series = model_rows(known, spec, [origin], [1]).select(SERIES)
    last = origin + known.step * horizon
    frame = known.frame.join(series, on=list(SERIES), how="semi", maintain_order="left").filter(pl.col("date") <= last)
    interval = Freq(known.freq).interval
    missing = (
        frame.group_by(SERIES)
        .agg(pl.col("date").max().alias("__last"))
        .filter(pl.col("__last") < last)
        .with_columns(pl.date_ranges(pl.col("__last") + known.step, pl.lit(last), interval=interval).alias("date"))
        .explode("date")
        .select(*SERIES, "date")
    )
    if missing.height:
        frame = pl.concat([frame, missing], how="diagonal_relaxed").sort(*KEYS)
    return dataclasses.replace(known, frame=frame)


def _demand_free(spec: FeatureSpec) -> FeatureSpec:
    """The spec without the features the loop computes itself (built once, they would be stale)."""
    return spec.model_copy(update={"lags": (), "windows": (), "ewm_alphas": (), "seasonal_profiles": ()})


class _Window:
    """Demand (and raw units) of every series over the dense window [origin - history + 1, origin + horizon]."""

    def __init__(self, panel: Panel, spec: FeatureSpec, series: pl.DataFrame, origin: dt.date, horizon: int) -> None:
        self.spec = spec
        self.history = spec.history_needed
        start = origin - panel.step * (self.history - 1)
        width = self.history + horizon
        rows = (
            panel.frame.filter(pl.col("date").is_between(start, origin))
            .join(series.with_row_index("__s"), on=list(SERIES), how="inner")
            .select(
                "__s",
                ((pl.col("date") - pl.lit(start)).dt.total_days() // panel.step.days).alias("__t"),
                demand(panel, spec).cast(pl.Float64).alias("__d"),
                pl.col("y").cast(pl.Float64),
            )
        )
        s, t = rows["__s"].to_numpy(), rows["__t"].to_numpy()
        self.d = np.full((series.height, width), np.nan)
        self.y = np.full((series.height, width), np.nan)
        self.d[s, t] = rows["__d"].to_numpy()
        self.y[s, t] = rows["y"].to_numpy()
        # The whole history before the window counts for the expanding mean and the EWMs.
        history = panel.frame.filter(pl.col("date") <= origin).with_columns(demand(panel, spec).alias("__d"))
        state = series.join(
            history.group_by(SERIES).agg(
                pl.col("__d").fill_null(0.0).sum().alias("__sum"),
                pl.col("__d").is_not_null().sum().alias("__n"),
                *[
                    pl.col("__d").ewm_mean(alpha=a, ignore_nulls=True).drop_nulls().last().alias(f"__ewm_{a:g}")
                    for a in spec.ewm_alphas
                ],
            ),
            on=list(SERIES),
            how="left",
            maintain_order="left",
        )
        self.total = state["__sum"].fill_null(0.0).to_numpy().astype(np.float64)
        self.count = state["__n"].fill_null(0).to_numpy().astype(np.float64)
        # EWM (adjust=True, nulls skipped) = num / den with den = sum of (1 - a)^j over the n values seen.
        self.ewm: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        for a in spec.ewm_alphas:
            den = (1.0 - (1.0 - a) ** self.count) / a
            value = state[f"__ewm_{a:g}"].fill_null(0.0).to_numpy().astype(np.float64)
            self.ewm[a] = (value * den, den)

    def features(self, k: int) -> dict[str, np.ndarray]:
        """Demand features at the k-th origin after the cutoff (k = 0: the cutoff), as `build_features` makes them."""
        spec, d, c = self.spec, self.d, self.history - 1 + k
        out = {f"lag_{lag}": d[:, c - lag + 1] for lag in spec.lags}
        for w in spec.windows:
            least = max(1, w // 4)
            block = d[:, c - w + 1 : c + 1]
            seen = ~np.isnan(block)
            n = seen.sum(axis=1)
            filled = np.where(seen, block, 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = filled.sum(axis=1) / n
                var = np.where(seen, (block - mean[:, None]) ** 2, 0.0).sum(axis=1) / (n - 1)
            enough = n >= least
            out[f"mean_{w}"] = np.where(enough, mean, np.nan)
            out[f"std_{w}"] = np.where(enough & (n >= 2), np.sqrt(np.maximum(var, 0.0)), np.nan)
            out[f"min_{w}"] = np.where(enough, np.where(seen, block, np.inf).min(axis=1), np.nan)
            out[f"max_{w}"] = np.where(enough, np.where(seen, block, -np.inf).max(axis=1), np.nan)
            units = self.y[:, c - w + 1 : c + 1]
            known = ~np.isnan(units)
            m = known.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                zero = (known & (units == 0)).sum(axis=1) / m
            out[f"zero_share_{w}"] = np.where(m >= least, zero, np.nan)
        for a, (num, den) in self.ewm.items():
            # As Polars' ewm_mean: null on a row whose own demand is missing.
            with np.errstate(invalid="ignore", divide="ignore"):
                out[f"ewm_{a:g}"] = np.where((den > 0) & ~np.isnan(d[:, c]), num / den, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["expanding_mean"] = self.total / self.count  # null (from NaN) until some demand is seen
        # Seasonal profiles of a one-step forecast end one season before the target.
        anchor = c + 1 - spec.season
        for p in spec.seasonal_profiles:
            cols = [anchor - spec.season * j for j in range(p) if anchor - spec.season * j >= 0]
            block = d[:, cols]
            seen = ~np.isnan(block)
            n = seen.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[f"season_mean_{p}"] = np.where(seen, block, 0.0).sum(axis=1) / n
        year = c + 1 - spec.year
        out["year_ago"] = d[:, year] if year >= 0 else np.full(d.shape[0], np.nan)
        return out

    def push(self, k: int, forecast: np.ndarray) -> None:
        """The forecast for the step after the k-th origin becomes its demand."""
        c = self.history + k
        self.d[:, c] = forecast
        self.y[:, c] = forecast
        self.total = self.total + forecast
        self.count = self.count + 1.0
        for a, (num, den) in self.ewm.items():
            self.ewm[a] = ((1.0 - a) * num + forecast, (1.0 - a) * den + 1.0)


def recursive_forecast(
    panel: Panel,
    spec: FeatureSpec,
    score: Score,
    *,
    origin: dt.date,
    horizon: int,
    calendar: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """(store_id, item_id, date, h, forecast) for 1..horizon steps after `origin`, one step at a time."""
    if horizon < 1:
        raise ValueError(f"`horizon` must be a positive integer, got {horizon}")
    known = recursion_panel(panel, spec, origin=origin, horizon=horizon)
    series = model_rows(known, spec, [origin], [1]).select(SERIES)
    n = series.height
    origins = [origin + known.step * k for k in range(horizon)]
    rows = model_rows(known, spec, origins, [1], series=series)
    # Everything but the demand features, for every step at once; sorted so step k is rows k*n .. (k+1)*n.
    fixed = build_features(known, _demand_free(spec), rows, calendar=calendar).sort(ORIGIN, *SERIES)
    if not fixed.slice(0, n).select(SERIES).equals(series):
        raise AssertionError("recursive steps lost their alignment with the series")
    window = _Window(known, spec, series, origin, horizon)
    forecasts = np.empty((horizon, n))
    for k in range(horizon):
        step = fixed.slice(k * n, n).with_columns(
            pl.Series(name, values, nan_to_null=True) for name, values in window.features(k).items()
        )
        forecasts[k] = score(step)
        window.push(k, forecasts[k])
    out = pl.concat([series.with_columns(pl.lit(k + 1, pl.Int32).alias(HORIZON)) for k in range(horizon)])
    step_days = known.step.days
    return (
        out.with_columns(
            (pl.lit(origin) + pl.duration(days=pl.col(HORIZON) * step_days)).alias("date"),
            pl.Series("forecast", forecasts.reshape(-1)),
        )
        .select(*SERIES, "date", HORIZON, "forecast")
        .sort(*SERIES, HORIZON)
    )
