"""Quantile columns never cross, whatever the quantile table says."""

from __future__ import annotations

import itertools

import polars as pl

from shelfcast.models.backtest import add_quantiles


def test_crossing_quantiles_are_sorted_row_by_row() -> None:
    forecast = pl.DataFrame({"h": [1, 2, 3], "forecast": [10.0, 3.0, 0.0]})
    orders = list(itertools.permutations([-1.0, 0.5, 2.0]))
    for q10, q50, q90 in orders:
        table = pl.DataFrame({"h": [1, 2, 3], "q0.1": [q10] * 3, "q0.5": [q50] * 3, "q0.9": [q90] * 3})
        out = add_quantiles(forecast, table)
        assert out.columns == ["h", "forecast", "p10", "p50", "p90"]
        for row in out.iter_rows(named=True):
            values = sorted(max(0.0, row["forecast"] + q * (row["forecast"] + 1.0) ** 0.5) for q in (q10, q50, q90))
            assert [row["p10"], row["p50"], row["p90"]] == values
