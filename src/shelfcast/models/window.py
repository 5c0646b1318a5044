"""A fitted model's feature rows and predictions over a window of origins (for drift monitoring).

The reference saved with a model at training and the current window that
`shelfcast monitor` compares with it are built here, by the same feature
functions as training and scoring, with the model's own spec: demand rows
are one step ahead (`h` = 1) from each origin, stockout rows one per
(series, origin). The window is the `days` before its end date: origins
end - 1 step, ..., end - `days`, so a demand row's target day is known too.
Each origin's features use only rows up to that origin (they are computed
for every origin of the panel at once, as for training, and the leakage
tests hold them to it).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from shelfcast.features.build import build_features, phase_features
from shelfcast.features.frames import ORIGIN, model_rows
from shelfcast.features.origin import origin_features
from shelfcast.features.panel import SERIES, Panel
from shelfcast.models.stockout import StockoutModel, stockout_features, window_steps
from shelfcast.models.train import TrainedForecaster

PREDICTION = "prediction"
MAX_ROWS = 20_000


def window_origins(end: dt.date, *, days: int, step: dt.timedelta) -> list[dt.date]:
    """The origins of the `days` before `end` (at least one), latest last."""
    steps = max(1, days // step.days)
    return sorted(end - step * k for k in range(1, steps + 1))


def model_window(
    model: TrainedForecaster | StockoutModel,
    panel: Panel,
    *,
    end: dt.date,
    days: int,
    calendar: pl.DataFrame | None = None,
    max_rows: int = MAX_ROWS,
    seed: int = 0,
) -> pl.DataFrame:
    """Feature rows of the window before `end` with the model's output in `prediction` (risk or forecast).

    Sorted by series then origin. Above `max_rows`, whole series are sampled
    (seeded): the drift tests count how much rows of one series repeat each other.
    """
    known = panel.until(end)
    origins = [o for o in window_origins(end, days=days, step=panel.step) if o >= known.frame["date"].min()]  # type: ignore[operator]
    if not origins:
        return pl.DataFrame()
    if isinstance(model, StockoutModel):
        steps = window_steps(panel, model.definition.window)
        features = stockout_features(known, model.spec, origins, window=steps)
    else:
        rows = model_rows(known, model.spec, origins, [1])
        features = build_features(
            known,
            model.spec,
            rows,
            calendar=calendar,
            origin_table=origin_features(known, model.spec),
            phase_table=phase_features(known, model.spec),
        )
    features = sample_series(features, max_rows=max_rows, seed=seed).sort(*SERIES, ORIGIN)
    if features.is_empty():
        return features
    output = model.predict_proba(features) if isinstance(model, StockoutModel) else model.score(features)
    return features.with_columns(pl.Series(PREDICTION, np.asarray(output, dtype=np.float64)))


def sample_series(features: pl.DataFrame, *, max_rows: int, seed: int) -> pl.DataFrame:
    if features.height <= max_rows:
        return features
    series = features.select(SERIES).unique().sort(SERIES)
    per_series = features.height / series.height
    keep = series.sample(n=max(1, int(max_rows / per_series)), seed=seed)
    return features.join(keep, on=list(SERIES), how="semi")
