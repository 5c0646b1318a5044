"""Forecast metrics: hand-computed values, edge cases and the Polars-level evaluators."""

from __future__ import annotations

import datetime as dt
import math
import re

import numpy as np
import polars as pl
import pytest

from shelfcast.models.metrics import (
    MapeResult,
    bias,
    by_segment,
    coverage,
    forecast_metrics,
    interval_width,
    mae,
    mape,
    mase,
    pinball_loss,
    rmse,
    rmsse,
    scaled_errors,
    series_scales,
    smape,
    velocity_segments,
    wape,
    wmae,
)

# errors F - A = [1, 0, -2, 2]
Y = [1.0, 2.0, 3.0, 0.0]
F = [2.0, 2.0, 1.0, 2.0]


def test_point_metrics_by_hand() -> None:
    assert mae(Y, F) == pytest.approx(5 / 4)
    assert rmse(Y, F) == pytest.approx(math.sqrt(9 / 4))
    assert bias(Y, F) == pytest.approx(1 / 4)
    assert wape(Y, F) == pytest.approx(5 / 6)
    assert wmae(Y, F, weights=[1, 1, 5, 1]) == pytest.approx((1 + 0 + 5 * 2 + 2) / 8)


def test_smape_matches_kaggle_definition() -> None:
    # 200|F-A|/(|A|+|F|): 200/3, 0, 100, 200
    assert smape(Y, F) == pytest.approx((200 / 3 + 0 + 100 + 200) / 4)
    # Kaggle counts a row with A = F = 0 as 0, and A = 0 with F > 0 as 200.
    assert smape([0, 0], [0, 0]) == 0.0
    assert smape([0, 10], [5, 10]) == pytest.approx(100.0)
    kaggle = lambda a, f: 100 / len(a) * np.sum(2 * np.abs(f - a) / (np.abs(a) + np.abs(f)))  # noqa: E731
    a, f = np.array([3.0, 7.0, 12.0]), np.array([4.0, 5.0, 12.0])
    assert smape(a, f) == pytest.approx(kaggle(a, f))


def test_mape_skips_and_reports_zero_actuals() -> None:
    result = mape(Y, F)
    assert result == MapeResult(pytest.approx(100 * (1 / 1 + 0 / 2 + 2 / 3) / 3), 1)
    assert result.skipped == 1
    empty = mape([0, 0], [1, 2])
    assert math.isnan(empty.value) and empty.skipped == 2


def test_all_zero_actuals() -> None:
    zeros = [0.0, 0.0, 0.0]
    assert math.isnan(wape(zeros, [1, 2, 3]))
    assert math.isnan(wape(zeros, zeros))  # undefined even for a perfect forecast
    assert smape(zeros, zeros) == 0.0
    assert mae(zeros, zeros) == 0.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: mae([1, 2], [1, 2, 3]), "`y_true` and `y_pred` must have the same length"),
        (lambda: mae([], []), "`y_true` must not be empty"),
        (lambda: rmse([1, math.nan], [1, 2]), "`y_true` has 1 NaN"),
        (lambda: bias([1, 2], [1, math.nan]), "`y_pred` has 1 NaN"),
        (lambda: mae([[1, 2]], [[1, 2]]), "`y_true` must be one-dimensional"),
        (lambda: wmae([1, 2], [1, 2], weights=[1]), "`y_true` and `weights` must have the same length"),
        (lambda: wmae([1, 2], [1, 2], weights=[1, -1]), "`weights` must be non-negative"),
        (lambda: pinball_loss([1], [1], q=1.0), "`q` must be in (0, 1)"),
        (lambda: coverage([1, 2], lo=[0, 3], hi=[2, 2]), "`lo` exceeds `hi` in 1 of 2 rows"),
        (lambda: mase([1], [1], history=[1, 2], season=7), "`history` needs more than `season`=7"),
        (lambda: mase([1], [1], history=[1, 2], season=0), "`season` must be a positive integer"),
    ],
)
def test_bad_input_names_the_argument(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        call()  # type: ignore[operator]


def test_interval_metrics_by_hand() -> None:
    # y - f = [-1, 0, 2, -2] at q = 0.9: 0.1, 0, 1.8, 0.2
    assert pinball_loss(Y, F, q=0.9) == pytest.approx(2.1 / 4)
    assert pinball_loss(Y, F, q=0.5) == pytest.approx(mae(Y, F) / 2)
    lo, hi = [0.0, 2.0, 4.0, 0.0], [2.0, 3.0, 5.0, 1.0]
    assert coverage(Y, lo=lo, hi=hi) == pytest.approx(0.75)  # bounds are inclusive; 3 is outside [4, 5]
    assert coverage(Y, lo=Y, hi=Y) == 1.0
    assert interval_width(lo, hi) == pytest.approx(5 / 4)


def test_mase_and_rmsse_by_hand() -> None:
    history = [1.0, 3.0, 2.0, 4.0]  # naive diffs 2, -1, 2: MAE 5/3, MSE 3
    assert mase([5.0], [4.0], history=history, season=1) == pytest.approx(1 / (5 / 3))
    assert rmsse([5.0], [4.0], history=history, season=1) == pytest.approx(math.sqrt(1 / 3))
    assert math.isnan(mase([1.0], [2.0], history=[4.0, 4.0, 4.0], season=1))


def test_seasonal_naive_in_sample_scores_one() -> None:
    rng = np.random.default_rng(0)
    history = rng.poisson(5, 60).astype(float)
    m = 7
    assert mase(history[m:], history[:-m], history=history, season=m) == pytest.approx(1.0)
    assert rmsse(history[m:], history[:-m], history=history, season=m) == pytest.approx(1.0)


def _history(values: dict[tuple[str, str], list[float]]) -> pl.DataFrame:
    start = dt.date(2024, 1, 1)
    rows = [
        {"store_id": s, "item_id": i, "date": start + dt.timedelta(days=d), "y": v}
        for (s, i), series in values.items()
        for d, v in enumerate(series)
    ]
    return pl.DataFrame(rows)


def test_polars_scales_match_the_array_functions() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.poisson(4, 30).astype(float), rng.poisson(9, 30).astype(float)
    history = _history({("s1", "a"): list(a), ("s1", "b"): list(b), ("s2", "flat"): [3.0] * 30})
    # The in-sample seasonal naive as the "forecast" of each series' own history.
    frame = history.with_columns(
        forecast=pl.col("y").shift(7).over("store_id", "item_id", order_by="date")
    ).drop_nulls()
    scales = series_scales(history.sample(fraction=1.0, shuffle=True, seed=0), season=7)
    result = scaled_errors(frame, scales)
    assert result.mase == pytest.approx(1.0) and result.rmsse == pytest.approx(1.0)
    assert (result.series, result.skipped_zero_scale, result.skipped_no_history) == (2, 1, 0)
    unknown = frame.head(3).with_columns(item_id=pl.lit("new"))
    assert scaled_errors(unknown, scales).skipped_no_history == 1
    with pytest.raises(ValueError, match="duplicate"):
        series_scales(pl.concat([history, history.head(1)]), season=7)


def test_from_first_sale_drops_leading_zeros() -> None:
    history = _history({("s", "i"): [0.0, 0.0, 0.0, 2.0, 4.0, 2.0]})
    scales = series_scales(history, season=1, from_first_sale=True)
    assert scales.row(0, named=True) == {
        "store_id": "s",
        "item_id": "i",
        "n_history": 3,
        "mae_scale": 2.0,
        "mse_scale": 4.0,
    }
    assert series_scales(history, season=1)["mae_scale"].item() == pytest.approx(6 / 5)


def _forecast_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "store_id": ["s1", "s1", "s2", "s2"],
            "item_id": ["a", "a", "a", "a"],
            "y": Y,
            "forecast": F,
            "w": [1.0, 1.0, 5.0, 1.0],
            "p10": [0.0, 2.0, 4.0, 0.0],
            "p50": F,
            "p90": [2.0, 3.0, 5.0, 1.0],
        }
    )


def test_forecast_metrics_reports_every_metric_present() -> None:
    frame = _forecast_frame()
    out = forecast_metrics(frame.drop("p10", "p90", "p50"))
    assert set(out) == {"n_rows", "mae", "rmse", "bias", "wape", "smape", "mape", "mape_skipped_zeros"}
    assert out["mape_skipped_zeros"] == 1.0 and out["mae"] == pytest.approx(1.25)
    history = _history({("s1", "a"): [1.0, 3.0, 2.0, 4.0], ("s2", "a"): [2.0, 2.0]})
    full = forecast_metrics(frame, weight="w", history=history, season=1)
    assert full["wmae"] == pytest.approx(13 / 8)
    assert full["pinball_p50"] == pytest.approx(full["mae"] / 2)
    assert full["coverage_80"] == pytest.approx(0.75) and full["width_80"] == pytest.approx(1.25)
    # s1: MAE 1/2 over scale 5/3; s2: flat history, skipped and counted.
    assert full["mase"] == pytest.approx(0.5 / (5 / 3))
    assert (full["scaled_series"], full["scale_skipped_zero"]) == (1.0, 1.0)
    with pytest.raises(ValueError, match=r"`frame` lacks column\(s\) 'yhat'"):
        forecast_metrics(frame, predicted="yhat")
    with pytest.raises(ValueError, match=r"`frame\['y'\]` has 1 NaN, null"):
        forecast_metrics(frame.with_columns(y=pl.when(pl.col("w") > 1).then(None).otherwise(pl.col("y"))))


def test_by_segment_one_row_per_segment() -> None:
    frame = _forecast_frame()
    table = by_segment(frame, "store_id", forecast_metrics, weight="w")
    assert table["store_id"].to_list() == ["s1", "s2"]
    assert table["n_rows"].to_list() == [2.0, 2.0]
    assert table["mae"].to_list() == pytest.approx([0.5, 2.0])


def test_velocity_segments_label_by_mean_demand() -> None:
    history = _history({("s", "a"): [0.0, 1.0], ("s", "b"): [5.0, 5.0], ("s", "c"): [20.0, 40.0]})
    seg = velocity_segments(history)
    assert seg["item_id"].to_list() == ["a", "b", "c"]
    assert seg["velocity"].cast(pl.String).to_list() == ["slow", "medium", "fast"]
    assert seg["mean_demand"].to_list() == [0.5, 5.0, 30.0]
    frame = history.with_columns(forecast=pl.col("y") + 1).join(seg.select("item_id", "velocity"), on="item_id")
    table = by_segment(frame, "velocity", forecast_metrics)
    assert table["velocity"].cast(pl.String).to_list() == ["slow", "medium", "fast"]
    assert table["bias"].to_list() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="`quantiles` must be two increasing values"):
        velocity_segments(history, quantiles=(0.7, 0.3))
