"""Feature rows come out sorted by series, origin and h whatever order the grid's inputs and the rows come in.

`model_rows` builds its grid in that order instead of sorting it, and
`build_features` sorts its rows once and keeps that order through its joins:
these tests hold both to the order the old sorts gave, and the features to
not depend on the order of the rows asked for (training samples them at random).
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.features.build import build_features, phase_features
from shelfcast.features.frames import HORIZON, ORIGIN, model_rows
from shelfcast.features.origin import origin_features
from shelfcast.features.panel import SERIES, Panel, build_panel
from shelfcast.features.spec import FeatureSpec

ORDER = [*SERIES, ORIGIN, HORIZON]


@pytest.fixture(scope="module")
def chain() -> tuple[Panel, pl.DataFrame | None]:
    result = simulate(SimConfig(n_stores=2, n_items=5, n_days=420, seed=7))
    tables = result.tables()
    return build_panel(tables, freq="D", exogenous_roles=result.exogenous_roles), tables.get("calendar")


def test_grid_is_sorted_whatever_the_order_of_origins_and_horizons(chain: tuple[Panel, pl.DataFrame | None]) -> None:
    panel, _ = chain
    spec = FeatureSpec.for_freq("D")
    origins = [dt.date(2022, 9, 1), dt.date(2022, 3, 5), dt.date(2022, 9, 1), dt.date(2022, 6, 30)]
    rows = model_rows(panel, spec, origins, [3, 1, 7, 2])
    assert rows.equals(rows.sort(ORDER))
    # Every series alive at each origin, once per origin given (a repeated origin repeats its rows).
    assert rows.height == 10 * 4 * 4
    later = model_rows(panel, spec, [dt.date(2022, 6, 30)], [2, 1], series=rows.select(SERIES).unique().tail(3))
    assert later.equals(later.sort(ORDER)) and later.height == 3 * 2


def test_features_do_not_depend_on_the_order_of_the_rows(chain: tuple[Panel, pl.DataFrame | None]) -> None:
    panel, calendar = chain
    spec = FeatureSpec.for_freq("D")
    origins = [dt.date(2022, 1, 3) + dt.timedelta(days=7 * k) for k in range(30)]
    grid = model_rows(panel, spec, origins, list(range(1, 29)))
    rows = grid.sample(fraction=0.3, seed=1)
    tables = {"origin_table": origin_features(panel, spec), "phase_table": phase_features(panel, spec)}
    shuffled = build_features(panel, spec, rows.sample(fraction=1.0, shuffle=True, seed=2), calendar=calendar, **tables)
    ordered = build_features(panel, spec, rows.sort(ORDER), calendar=calendar, **tables)
    assert shuffled.equals(ordered)
    assert shuffled.equals(shuffled.sort(ORDER))
    assert shuffled.height == rows.height
    # The tables cut to the rows' dates give what the whole tables give: each origin's own features.
    origin = origins[-1]
    one = build_features(panel, spec, model_rows(panel, spec, [origin], [1, 5]), calendar=calendar)
    every = build_features(panel, spec, grid, calendar=calendar, **tables)
    assert one.equals(every.filter((pl.col(ORIGIN) == origin) & pl.col(HORIZON).is_in([1, 5])).select(one.columns))
