"""Forecast accuracy: point, scaled (MASE/RMSSE) and interval metrics, and their Polars-level evaluators.

Array functions take any 1-D array-likes, refuse empty, mismatched or NaN
input with an error naming the argument, and return plain floats.
Percentages (SMAPE, MAPE) are on a 0-100 scale; bias is forecast minus actual.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

FloatArray = npt.NDArray[np.float64]
SERIES_KEYS = ("store_id", "item_id")
DEFAULT_QUANTILES: Mapping[float, str] = MappingProxyType({0.1: "p10", 0.5: "p50", 0.9: "p90"})
VELOCITY = pl.Enum(["slow", "medium", "fast"])


def as_vector(values: npt.ArrayLike, name: str) -> FloatArray:
    """`values` as a finite 1-D float64 array; errors name `name`."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`{name}` must hold numbers: {exc}") from exc
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(
            f"`{name}` has {bad.size} NaN, null or infinite value(s) (first at index {bad[0]}: {arr[bad[0]]}); "
            "drop or fill them first"
        )
    return arr


def same_length(**arrays: FloatArray) -> None:
    """Raise naming the arguments when the arrays differ in length."""
    lengths = {name: arr.size for name, arr in arrays.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"`{n}` has {k}" for n, k in lengths.items())
        raise ValueError(f"{' and '.join(f'`{n}`' for n in lengths)} must have the same length; {shown}")


def _pair(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    t, p = as_vector(y_true, "y_true"), as_vector(y_pred, "y_pred")
    same_length(y_true=t, y_pred=p)
    return t, p


def mae(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Mean absolute error."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(p - t)))


def rmse(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Root mean squared error."""
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def bias(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Mean of forecast minus actual: positive means over-forecasting."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(p - t))


def wape(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Weighted absolute percentage error as a fraction: sum|F-A| / sum|A|; nan when every actual is 0."""
    t, p = _pair(y_true, y_pred)
    denom = float(np.sum(np.abs(t)))
    return float(np.sum(np.abs(p - t))) / denom if denom > 0 else math.nan


def smape(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Symmetric MAPE in percent (0-200), as in Kaggle's Store Item Demand: mean of 200|F-A|/(|A|+|F|), 0 if both 0."""
    t, p = _pair(y_true, y_pred)
    denom = np.abs(t) + np.abs(p)
    terms = np.divide(200.0 * np.abs(p - t), denom, out=np.zeros_like(denom), where=denom > 0)
    return float(np.mean(terms))


@dataclass(frozen=True)
class MapeResult:
    """MAPE in percent over the non-zero actuals, and how many zero actuals it skipped (report them)."""

    value: float
    skipped: int


def mape(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> MapeResult:
    """Mean absolute percentage error in percent, skipping zero actuals; value is nan when all actuals are 0."""
    t, p = _pair(y_true, y_pred)
    keep = t != 0
    skipped = int(t.size - np.count_nonzero(keep))
    if not keep.any():
        return MapeResult(math.nan, skipped)
    return MapeResult(float(100.0 * np.mean(np.abs(p[keep] - t[keep]) / np.abs(t[keep]))), skipped)


def wmae(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, weights: npt.ArrayLike) -> float:
    """Weighted MAE, sum(w|F-A|) / sum(w), as in Walmart's competition (holiday weeks weigh 5)."""
    t, p = _pair(y_true, y_pred)
    w = as_vector(weights, "weights")
    same_length(y_true=t, weights=w)
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"`weights` must be non-negative with a positive sum, got min {w.min()} and sum {w.sum()}")
    return float(np.sum(w * np.abs(p - t)) / np.sum(w))


def _check_season(season: int) -> None:
    if isinstance(season, bool) or not isinstance(season, int) or season < 1:
        raise ValueError(
            f"`season` must be a positive integer (the seasonal lag, 1 for the naive forecast), got {season!r}"
        )


def _naive_scales(history: npt.ArrayLike, season: int) -> tuple[float, float]:
    """In-sample (MAE, MSE) of the seasonal naive forecast over `history`."""
    _check_season(season)
    h = as_vector(history, "history")
    if h.size <= season:
        raise ValueError(f"`history` needs more than `season`={season} values to scale errors, got {h.size}")
    diff = h[season:] - h[:-season]
    return float(np.mean(np.abs(diff))), float(np.mean(diff**2))


def mase(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, history: npt.ArrayLike, season: int) -> float:
    """MAE scaled by the in-sample MAE of the seasonal naive forecast on one series' `history`; nan when that is 0."""
    scale, _ = _naive_scales(history, season)
    return mae(y_true, y_pred) / scale if scale > 0 else math.nan


def rmsse(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, history: npt.ArrayLike, season: int) -> float:
    """Root mean squared scaled error (M5) against the seasonal naive on one series' `history`; nan if its MSE is 0."""
    _, scale = _naive_scales(history, season)
    return math.sqrt(rmse(y_true, y_pred) ** 2 / scale) if scale > 0 else math.nan


def pinball_loss(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, q: float) -> float:
    """Mean pinball (quantile) loss of the forecast `y_pred` of quantile `q`; at q=0.5 it is MAE/2."""
    if not 0 < q < 1:
        raise ValueError(f"`q` must be in (0, 1), got {q}")
    t, p = _pair(y_true, y_pred)
    diff = t - p
    return float(np.mean(np.maximum(q * diff, (q - 1) * diff)))


def _bounds(lo: npt.ArrayLike, hi: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    low, high = as_vector(lo, "lo"), as_vector(hi, "hi")
    same_length(lo=low, hi=high)
    crossed = np.flatnonzero(low > high)
    if crossed.size:
        raise ValueError(
            f"`lo` exceeds `hi` in {crossed.size} of {low.size} rows (first at index {crossed[0]}: "
            f"{low[crossed[0]]} > {high[crossed[0]]}); sort each row's quantiles before scoring"
        )
    return low, high


def coverage(y_true: npt.ArrayLike, *, lo: npt.ArrayLike, hi: npt.ArrayLike) -> float:
    """Share of actuals inside the closed interval [lo, hi]."""
    t = as_vector(y_true, "y_true")
    low, high = _bounds(lo, hi)
    same_length(y_true=t, lo=low)
    return float(np.mean((t >= low) & (t <= high)))


def interval_width(lo: npt.ArrayLike, hi: npt.ArrayLike) -> float:
    """Mean width of the intervals [lo, hi]."""
    low, high = _bounds(lo, hi)
    return float(np.mean(high - low))


def require_columns(frame: pl.DataFrame, name: str, columns: Iterable[str]) -> None:
    """Raise naming `name` and the missing columns when `frame` lacks any of `columns`."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"`{name}` lacks column(s) {', '.join(map(repr, missing))}; it has {frame.columns}")


def column(frame: pl.DataFrame, col: str) -> FloatArray:
    """One column as a checked float array; errors name the column."""
    return as_vector(frame.get_column(col).cast(pl.Float64).to_numpy(), f"frame[{col!r}]")


def series_scales(
    history: pl.DataFrame,
    *,
    season: int,
    actual: str = "y",
    keys: Sequence[str] = SERIES_KEYS,
    date: str = "date",
    from_first_sale: bool = False,
) -> pl.DataFrame:
    """Per series: `n_history`, and the in-sample MAE and MSE of the seasonal naive (`mae_scale`, `mse_scale`).

    The lag counts rows, so each series' history must be a regular, gap-free
    panel. Scales are null when a series has no more than `season` rows.
    `from_first_sale` drops each series' leading zeros first, as M5 does.
    """
    _check_season(season)
    keys = list(keys)
    require_columns(history, "history", [*keys, date, actual])
    column(history, actual)  # refuses nulls and NaN with the column's name
    if history.select(pl.struct([*keys, date]).is_duplicated().any()).item():
        raise ValueError(f"`history` has duplicate ({', '.join(keys)}, {date}) rows; aggregate them first")
    frame = history.sort([*keys, date])
    if from_first_sale:
        frame = frame.filter((pl.col(actual) != 0).cast(pl.Int8).cum_max().over(keys) > 0)
    diff = (pl.col(actual) - pl.col(actual).shift(season)).over(keys)
    return (
        frame.with_columns(_diff=diff)
        .group_by(keys, maintain_order=True)
        .agg(
            n_history=pl.len(),
            mae_scale=pl.col("_diff").abs().mean(),
            mse_scale=(pl.col("_diff") ** 2).mean(),
        )
    )


@dataclass(frozen=True)
class ScaledErrors:
    """MASE and RMSSE averaged over series with a positive scale, and the series left out (report them)."""

    mase: float
    rmsse: float
    series: int
    skipped_zero_scale: int
    skipped_no_history: int


def scaled_errors(
    frame: pl.DataFrame,
    scales: pl.DataFrame,
    *,
    actual: str = "y",
    predicted: str = "forecast",
    keys: Sequence[str] = SERIES_KEYS,
) -> ScaledErrors:
    """Per-series MASE and RMSSE of a forecast frame against `series_scales`, averaged unweighted over series (M4)."""
    keys = list(keys)
    require_columns(frame, "frame", [*keys, actual, predicted])
    require_columns(scales, "scales", [*keys, "mae_scale", "mse_scale"])
    for col in (actual, predicted):
        column(frame, col)  # refuses nulls and NaN with the column's name
    err = pl.col(predicted).cast(pl.Float64) - pl.col(actual).cast(pl.Float64)
    per = (
        frame.group_by(keys)
        .agg(mae=err.abs().mean(), mse=(err**2).mean())
        .join(scales.select([*keys, "mae_scale", "mse_scale"]), on=keys, how="left")
    )
    ok = per.filter(pl.col("mae_scale") > 0)
    means = ok.select(
        mase=(pl.col("mae") / pl.col("mae_scale")).mean(),
        rmsse=(pl.col("mse") / pl.col("mse_scale")).sqrt().mean(),
    ).fill_null(math.nan)
    return ScaledErrors(
        mase=float(means.item(0, "mase")),
        rmsse=float(means.item(0, "rmsse")),
        series=ok.height,
        skipped_zero_scale=per.filter(pl.col("mae_scale") == 0).height,
        skipped_no_history=per.filter(pl.col("mae_scale").is_null()).height,
    )


def forecast_metrics(
    frame: pl.DataFrame,
    *,
    actual: str = "y",
    predicted: str = "forecast",
    weight: str | None = None,
    quantiles: Mapping[float, str] = DEFAULT_QUANTILES,
    history: pl.DataFrame | None = None,
    season: int = 7,
    keys: Sequence[str] = SERIES_KEYS,
    scales: pl.DataFrame | None = None,
) -> dict[str, float]:
    """Every forecast metric the frame supports, by name.

    Always: n_rows, mae, rmse, bias, wape, smape, mape, mape_skipped_zeros.
    With `weight`: wmae. With `history` (same `actual` column and `keys`), or
    its `series_scales` as `scales`: mase, rmsse, scaled_series,
    scale_skipped_zero, scale_skipped_no_history.
    Per quantile column present: pinball_<column>; per pair q, 1-q present:
    coverage_<level> and width_<level> (e.g. coverage_80 for p10/p90).
    """
    require_columns(frame, "frame", [actual, predicted])
    y, f = column(frame, actual), column(frame, predicted)
    mape_result = mape(y, f)
    out: dict[str, float] = {
        "n_rows": float(frame.height),
        "mae": mae(y, f),
        "rmse": rmse(y, f),
        "bias": bias(y, f),
        "wape": wape(y, f),
        "smape": smape(y, f),
        "mape": mape_result.value,
        "mape_skipped_zeros": float(mape_result.skipped),
    }
    if weight is not None:
        require_columns(frame, "frame", [weight])
        out["wmae"] = wmae(y, f, weights=column(frame, weight))
    if scales is None and history is not None:
        scales = series_scales(history, season=season, actual=actual, keys=keys)
    if scales is not None:
        scaled = scaled_errors(frame, scales, actual=actual, predicted=predicted, keys=keys)
        out |= {
            "mase": scaled.mase,
            "rmsse": scaled.rmsse,
            "scaled_series": float(scaled.series),
            "scale_skipped_zero": float(scaled.skipped_zero_scale),
            "scale_skipped_no_history": float(scaled.skipped_no_history),
        }
    present = {q: c for q, c in sorted(quantiles.items()) if c in frame.columns}
    for q, col in present.items():
        out[f"pinball_{col}"] = pinball_loss(y, column(frame, col), q=q)
    for q_lo, lo_col in present.items():
        hi_col = next((c for q, c in present.items() if q_lo < 0.5 and math.isclose(q, 1 - q_lo)), None)
        if hi_col is None:
            continue
        level = round((1 - 2 * q_lo) * 100)
        lo, hi = column(frame, lo_col), column(frame, hi_col)
        out[f"coverage_{level}"] = coverage(y, lo=lo, hi=hi)
        out[f"width_{level}"] = interval_width(lo, hi)
    return out


def by_segment(
    frame: pl.DataFrame, segment_col: str | Sequence[str], fn: Callable[..., Mapping[str, float]], **kwargs: Any
) -> pl.DataFrame:
    """One row per segment (sorted): the segment's value(s) and `fn(segment_frame, **kwargs)`'s metrics."""
    cols = [segment_col] if isinstance(segment_col, str) else list(segment_col)
    require_columns(frame, "frame", cols)
    if frame.is_empty():
        return frame.select(cols)
    parts = frame.sort(cols, nulls_last=True).partition_by(cols, maintain_order=True)
    segments = pl.concat([part.select(cols).head(1) for part in parts])
    metrics = pl.from_dicts([dict(fn(part, **kwargs)) for part in parts], infer_schema_length=None)
    return pl.concat([segments, metrics], how="horizontal")


def velocity_segments(
    history: pl.DataFrame,
    *,
    quantiles: tuple[float, float] = (1 / 3, 2 / 3),
    actual: str = "y",
    keys: Sequence[str] = SERIES_KEYS,
) -> pl.DataFrame:
    """Each series' `mean_demand` in `history` and its `velocity`: slow/medium/fast, cut at `quantiles` of the means.

    A mean equal to a cut goes to the slower segment, so with many idle
    series (mean 0 at both cuts) the medium segment can be empty.
    """
    keys = list(keys)
    require_columns(history, "history", [*keys, actual])
    column(history, actual)
    means = history.group_by(keys).agg(mean_demand=pl.col(actual).cast(pl.Float64).mean()).sort(keys)
    return velocity_of(means, quantiles=quantiles)


def velocity_of(means: pl.DataFrame, *, quantiles: tuple[float, float] = (1 / 3, 2 / 3)) -> pl.DataFrame:
    """`velocity_segments` from each series' `mean_demand` (computed elsewhere, e.g. per group of series)."""
    lo_q, hi_q = quantiles
    if not 0 < lo_q < hi_q < 1:
        raise ValueError(f"`quantiles` must be two increasing values in (0, 1), got {quantiles}")
    lo, hi = np.quantile(means.get_column("mean_demand").to_numpy(), [lo_q, hi_q])
    demand = pl.col("mean_demand")
    velocity = (
        pl.when(demand <= lo).then(pl.lit("slow")).when(demand <= hi).then(pl.lit("medium")).otherwise(pl.lit("fast"))
    )
    return means.with_columns(velocity=velocity.cast(VELOCITY))
