"""The frames features are computed on: the (series, origin, h) grid, and the panel keyed and cut in blocks.

A model row is (series, origin, horizon h): the forecast made at the end of
`origin` for the period `origin + h` (the *target*).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence

import numpy as np
import polars as pl

from shelfcast.features.panel import SERIES, Panel
from shelfcast.features.spec import FeatureSpec
from shelfcast.types import Freq

ORIGIN = "origin"
TARGET = "target_date"
HORIZON = "h"
EPOCH = dt.date(1970, 1, 5)  # a Monday: phases count from it


def steps_since_epoch(column: str, freq: str) -> pl.Expr:
    days = (pl.col(column) - pl.lit(EPOCH)).dt.total_days()
    return days // Freq(freq).days


ROW = "__row"  # row number in the frame (for aggregations)
SERIES_ID = "__series"
# Rows per block when running states are computed for one origin: the overhead
# per block is small, and a block's columns (not the whole panel's) stay in memory.
BLOCK_ROWS = 250_000


def history(panel: Panel, origin: dt.date) -> tuple[pl.DataFrame, str | list[str]]:
    """The panel's rows up to the origin, keyed (see `keyed`): all that features at the origin read."""
    return keyed(panel.frame.filter(pl.col("date") <= origin))


def keyed(frame: pl.DataFrame) -> tuple[pl.DataFrame, str | list[str]]:
    """The frame with an integer id per series when its rows come grouped by series, and the key to window over.

    Windows over one integer column are several times faster than over the
    two string ids, and give the same groups with their rows in the same
    order, so the same values. A panel is sorted by series; any other frame
    falls back on the string ids.
    """
    store, item = pl.col("store_id"), pl.col("item_id")
    before_store, before_item = store.shift(), item.shift()
    in_order = (store > before_store) | ((store == before_store) & (item >= before_item))
    # Null ids would pass the order check (comparisons with null are skipped) yet group apart.
    grouped = (store.null_count() + item.null_count() == 0) & in_order.all()
    if frame.height < 2 or not frame.select(grouped).item():
        return frame, list(SERIES)
    return frame.with_columns(pl.struct(*SERIES).rle_id().alias(SERIES_ID)), SERIES_ID


def blocks(frame: pl.DataFrame, by: str | list[str]) -> list[pl.DataFrame]:
    """The frame cut into blocks of about `BLOCK_ROWS` rows, never inside a series."""
    if by != SERIES_ID or frame.height <= BLOCK_ROWS:
        return [frame] if frame.height else []
    ids = frame[SERIES_ID].to_numpy()
    per_block = max(1, int(ids[-1] + 1) * BLOCK_ROWS // frame.height)
    starts = np.searchsorted(ids, np.arange(0, int(ids[-1]) + 1, per_block), side="left")
    bounds = [*starts.tolist(), frame.height]
    return [frame.slice(a, b - a) for a, b in itertools.pairwise(bounds) if b > a]


def model_rows(
    panel: Panel,
    spec: FeatureSpec,
    origins: Sequence[dt.date],
    horizons: Sequence[int],
    *,
    series: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The (series, origin, h) grid, sorted: one row per series alive at each origin and horizon.

    Built in its order (the sorted series crossed with the sorted origin x
    horizon pairs, keeping both orders) rather than sorted afterwards:
    sorting a training grid of millions of rows on two string ids took seconds.
    """
    step_days = Freq(spec.freq).days
    alive = panel.frame.group_by(SERIES).agg(pl.col("date").min().alias("__first"))
    if series is not None:
        alive = alive.join(series.select(SERIES), on=list(SERIES), how="semi")
    pairs = (
        pl.DataFrame({ORIGIN: list(origins)}, schema={ORIGIN: pl.Date})
        .join(pl.DataFrame({HORIZON: list(horizons)}, schema={HORIZON: pl.Int32}), how="cross")
        .sort(ORIGIN, HORIZON)
    )
    grid = (
        alive.sort(SERIES)
        .join(pairs, how="cross", maintain_order="left_right")
        .filter(pl.col("__first") <= pl.col(ORIGIN))
        .drop("__first")
    )
    return grid.with_columns((pl.col(ORIGIN) + pl.duration(days=pl.col(HORIZON) * step_days)).alias(TARGET))
