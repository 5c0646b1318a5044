"""No feature may read past its origin: scrambling every later value must not move any of them."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.features.build import build_features
from shelfcast.features.frames import ORIGIN, model_rows
from shelfcast.features.panel import Panel, build_panel
from shelfcast.features.spec import FeatureSpec

ORIGIN_DATE = dt.date(2022, 9, 30)


@pytest.fixture(scope="module")
def chain() -> tuple[Panel, pl.DataFrame]:
    result = simulate(SimConfig(n_stores=2, n_items=6, n_days=400, seed=3))
    tables = result.tables()
    roles = dict(result.exogenous_roles) | {"planned_markdown": "known_in_advance"}
    # A covariate known in advance, so the test also covers the target side.
    exo = tables["exogenous"].with_columns(pl.col("date").dt.ordinal_day().cast(pl.Float64).alias("planned_markdown"))
    tables = {**tables, "exogenous": exo}
    return build_panel(tables, freq="D", exogenous_roles=roles), tables["calendar"]


def _scramble_after(panel: Panel, cutoff: dt.date, keep: set[str]) -> Panel:
    """Every value after `cutoff` replaced by noise, except the columns in `keep` (known in advance)."""
    rng = np.random.default_rng(0)
    later = pl.col("date") > cutoff
    frame = panel.frame
    numeric = [c for c, t in frame.schema.items() if t.is_numeric() and c not in keep]
    noise = {c: pl.Series(rng.uniform(0, 1000, frame.height)) for c in numeric}
    frame = frame.with_columns([pl.when(later).then(noise[c]).otherwise(pl.col(c)).alias(c) for c in numeric])
    if "hourly_stockout" in frame.columns:
        frame = frame.with_columns(
            pl.when(later).then(None).otherwise(pl.col("hourly_stockout")).alias("hourly_stockout")
        )
    return Panel(frame, panel.freq, panel.known_in_advance, panel.past_only, panel.categorical)


def _features(panel: Panel, spec: FeatureSpec, calendar: pl.DataFrame) -> pl.DataFrame:
    rows = model_rows(panel, spec, [ORIGIN_DATE], list(range(1, 120)))
    return build_features(panel, spec, rows, calendar=calendar).sort("store_id", "item_id", ORIGIN, "h")


@pytest.mark.parametrize("censoring", ["none", "impute"])
def test_no_feature_reads_after_its_origin(chain: tuple[Panel, pl.DataFrame], censoring: str) -> None:
    panel, calendar = chain
    spec = FeatureSpec.for_freq(
        "D",
        exogenous_known=("planned_markdown",),
        exogenous_past=("temperature", "cpi"),
        censoring=censoring,  # type: ignore[arg-type]
    )
    honest = _features(panel, spec, calendar)
    scrambled = _features(_scramble_after(panel, ORIGIN_DATE, {"planned_markdown"}), spec, calendar)
    assert honest.columns == scrambled.columns
    for column in honest.columns:
        assert honest[column].equals(scrambled[column], check_names=False), f"feature {column} reads after the origin"


def test_the_check_catches_a_feature_that_reads_ahead(chain: tuple[Panel, pl.DataFrame]) -> None:
    # A promotion plan is a legitimate look-ahead only when declared; this shows
    # the scramble check does notice features that read after the origin.
    panel, calendar = chain
    spec = FeatureSpec.for_freq("D", future_price_promo=True)
    honest = _features(panel, spec, calendar)
    scrambled = _features(_scramble_after(panel, ORIGIN_DATE, set()), spec, calendar)
    assert not honest["t_price"].equals(scrambled["t_price"])
