"""Stockout labels and the rule baseline: hand-computed windows, nulls for partial windows, leak checks."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest
from pydantic import ValidationError

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.errors import DataValidationError
from shelfcast.features.labels import StockoutDefinition, rule_baseline, stockout_events, stockout_labels
from shelfcast.features.panel import Panel, build_panel

D0 = dt.date(2024, 1, 1)


def day(i: int) -> dt.date:
    return D0 + dt.timedelta(days=i - 1)


def tiny(freq: str = "D", item: str = "A", **columns: list[Any]) -> Panel:
    n = len(next(iter(columns.values())))
    step = 7 if freq == "W" else 1
    frame = pl.DataFrame(
        {
            "store_id": ["S"] * n,
            "item_id": [item] * n,
            "date": [D0 + dt.timedelta(days=i * step) for i in range(n)],
            "y": [1.0] * n,
            **columns,
        }
    )
    return Panel(frame.with_columns(pl.col(pl.Int64).cast(pl.Float64)), freq)


def labels(p: Panel, origins: list[dt.date], **definition: Any) -> list[int | None]:
    out = stockout_labels(p, origins=origins, definition=StockoutDefinition(**definition))
    return out["label"].to_list()


@pytest.fixture(scope="module")
def sim_panel() -> Panel:
    res = simulate(SimConfig(n_stores=2, n_items=5, n_days=120, seed=7))
    return build_panel(res.tables(), freq="D", exogenous_roles=res.exogenous_roles)


ON_HAND = [5, 5, 0, 5, 5, 5, 5, 5, 5, 5]


def test_label_is_one_when_on_hand_hits_zero_in_the_window_after_the_origin() -> None:
    p = tiny(on_hand=ON_HAND)
    # Window of 2 days: origin 1 covers days 2-3 (day 3 is out), origin 3 covers 4-5 (the origin itself is not in it).
    assert labels(p, [day(1), day(2), day(3), day(8)], window=2) == [1, 1, 0, 0]


def test_windows_past_the_end_get_null_labels_and_say_so() -> None:
    p = tiny(on_hand=ON_HAND)
    out = stockout_labels(p, origins=[day(8), day(9), day(10)], definition=StockoutDefinition(window=2))
    assert out["label"].to_list() == [0, None, None]
    assert out["reason"].to_list()[0] is None
    assert out["reason"].to_list()[1:] == ["window runs past the series' last period"] * 2
    assert out["window_end"].to_list() == [day(10), day(11), day(12)]


def test_windows_before_a_series_starts_are_null_too() -> None:
    p = tiny(on_hand=ON_HAND)
    out = stockout_labels(p, origins=[D0 - dt.timedelta(days=1), D0 - dt.timedelta(days=2)], definition=None)
    assert out["label"].to_list() == [None, 1]
    assert out["reason"].to_list()[0] == "window starts before the series' first period"


def test_hours_count_only_from_min_hours_and_a_full_day_by_default() -> None:
    p = tiny(stockout_hours=[0, 0, 6, 0, 0, 24, 0, 0])
    assert labels(p, [day(1)], window=2) == [0]
    assert labels(p, [day(1)], window=2, min_hours=4) == [1]
    assert labels(p, [day(1)], window=2, min_hours=8) == [0]
    assert labels(p, [day(4)], window=2) == [1]


def test_hourly_flags_are_counted_when_there_are_no_stockout_hours() -> None:
    flags = [[0] * 24, [1] * 5 + [0] * 19, [0] * 24, [1] * 24]
    frame = tiny(hourly_stockout=[[0] * 24] * 4).frame.with_columns(
        pl.Series("hourly_stockout", flags, dtype=pl.List(pl.Int8))
    )
    p = Panel(frame, "D")
    assert labels(p, [day(1)], window=2, min_hours=5) == [1]
    assert labels(p, [day(1)], window=2) == [0]
    assert labels(p, [day(2)], window=2) == [1]


def test_below_safety_stock_counts_only_when_asked() -> None:
    p = tiny(on_hand=[5, 5, 2, 5, 5], safety_stock=[3, 3, 3, 3, 3])
    assert labels(p, [day(1)], window=2) == [0]
    assert labels(p, [day(1)], window=2, below_safety_stock=True) == [1]


def test_unknown_stock_gives_null_unless_a_stockout_was_seen() -> None:
    p = tiny(on_hand=[5, None, 5, None, 0, 5])
    out = stockout_labels(p, origins=[day(1), day(3)], definition=StockoutDefinition(window=2))
    assert out["label"].to_list() == [None, 1]
    assert out["reason"].to_list()[0] == "stock unknown on some periods of the window"


def test_a_panel_without_stock_signals_is_refused() -> None:
    p = tiny(on_hand=ON_HAND)
    with pytest.raises(DataValidationError, match="no stock signal"):
        stockout_labels(p, origins=[day(1)], definition=StockoutDefinition(use_on_hand=False))


def test_weekly_panels_count_a_7_day_window_as_one_week() -> None:
    p = tiny("W", on_hand=[5, 0, 5, 5])
    out = stockout_labels(p, origins=[D0, D0 + dt.timedelta(weeks=1)], definition=None)
    assert out["label"].to_list() == [1, 0]
    assert out["window_end"].to_list() == [D0 + dt.timedelta(weeks=1), D0 + dt.timedelta(weeks=2)]


def test_labels_depend_only_on_the_window_after_the_origin(sim_panel: Panel) -> None:
    origin, window = dt.date(2022, 2, 20), 7
    frame = sim_panel.frame
    definition = StockoutDefinition(window=window)
    before = stockout_labels(sim_panel, origins=[origin], definition=definition)
    outside = (pl.col("date") <= origin) | (pl.col("date") > origin + dt.timedelta(days=window))
    changed = frame.with_columns(
        pl.when(outside).then(0.0).otherwise(pl.col("on_hand")).alias("on_hand"),
        pl.when(outside).then(24.0).otherwise(pl.col("stockout_hours")).alias("stockout_hours"),
    )
    assert before.equals(stockout_labels(Panel(changed, "D"), origins=[origin], definition=definition))
    inside = frame.with_columns(
        pl.when(pl.col("date") == origin + dt.timedelta(days=3)).then(0.0).otherwise(pl.col("on_hand")).alias("on_hand")
    )
    after = stockout_labels(Panel(inside, "D"), origins=[origin], definition=definition)
    assert after["label"].to_list() == [1] * after.height


def test_vectorised_labels_match_a_plain_loop(sim_panel: Panel) -> None:
    definition = StockoutDefinition(window=5, min_hours=6.0)
    origins = [dt.date(2022, 1, 20), dt.date(2022, 3, 3), dt.date(2022, 4, 25)]
    got = stockout_labels(sim_panel, origins=origins, definition=definition)
    events = stockout_events(sim_panel, definition)
    for origin in origins:
        inside = events.filter((pl.col("date") > origin) & (pl.col("date") <= origin + dt.timedelta(days=5)))
        expected = inside.group_by("store_id", "item_id").agg(
            pl.when(pl.len() == 5).then(pl.col("stockout").max()).alias("expected")
        )
        joined = got.filter(pl.col("origin") == origin).join(expected, on=["store_id", "item_id"], how="left")
        assert joined["label"].to_list() == joined["expected"].to_list()


def test_rule_scores_recent_stockouts_and_low_stock_at_the_origin() -> None:
    p = tiny(on_hand=[5, 0, 5, 5, 5, 5, 2, 5], safety_stock=[3] * 8)
    out = rule_baseline(p, origins=[day(2), day(4), day(5), day(7), day(8)], window=3)
    # Day 2 is out of stock: origins 2 and 4 see it in their 3-day lookback, origin 5 (days 3-5) does not.
    # Day 7 is below safety stock at the origin; day 8 is back above it.
    assert out["score"].to_list() == [1, 1, 0, 1, 0]
    assert out.columns == ["store_id", "item_id", "origin", "score"]


def test_rule_score_is_null_without_data_in_the_lookback() -> None:
    p = tiny(on_hand=[5, 5])
    out = rule_baseline(p, origins=[D0 - dt.timedelta(days=1), day(20)], window=7)
    assert out["score"].to_list() == [None, None]


def test_rule_scores_ignore_everything_after_the_origin(sim_panel: Panel) -> None:
    origins = [dt.date(2022, 2, 1), dt.date(2022, 3, 1)]
    before = rule_baseline(sim_panel, origins=origins, window=7)
    for origin in origins:
        later = pl.col("date") > origin
        scrambled = sim_panel.frame.with_columns(
            pl.when(later).then(0.0).otherwise(pl.col("on_hand")).alias("on_hand"),
            pl.when(later).then(24.0).otherwise(pl.col("stockout_hours")).alias("stockout_hours"),
            pl.when(later).then(1e6).otherwise(pl.col("safety_stock")).alias("safety_stock"),
        )
        after = rule_baseline(Panel(scrambled, "D"), origins=[origin], window=7)
        assert after.equals(before.filter(pl.col("origin") == origin))


def test_definition_is_frozen_and_strict() -> None:
    definition = StockoutDefinition()
    assert (definition.window, definition.min_hours, definition.use_on_hand) == (7, None, True)
    with pytest.raises(ValidationError):
        StockoutDefinition(windw=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        StockoutDefinition(min_hours=30)
    with pytest.raises(ValidationError):
        definition.window = 3  # type: ignore[misc]


def test_origins_are_checked() -> None:
    p = tiny(on_hand=ON_HAND)
    with pytest.raises(ValueError, match="`origins`"):
        stockout_labels(p, origins=[], definition=None)
    with pytest.raises(ValueError, match=r"`origins`.*dtype"):
        stockout_labels(p, origins=pl.Series(["2024-01-01"]), definition=None)
    with pytest.raises(ValueError, match=r"`window`.*got 0"):
        rule_baseline(p, origins=[day(1)], window=0)
