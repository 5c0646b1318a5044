"""Tests of the simulate job: files written per layout and the report."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.jobs.simulate import run_simulate
from shelfcast.schemas import TABLE_NAMES

CONFIG = SimConfig(seed=3, n_stores=3, n_items=8, n_days=60)


def test_canonical_layout_round_trips(tmp_path: Path) -> None:
    messages: list[str] = []
    report = run_simulate(CONFIG, tmp_path, progress=messages.append)
    expected = simulate(CONFIG)
    for name in TABLE_NAMES:
        frame = pl.read_parquet(tmp_path / "canonical" / f"{name}.parquet")
        assert frame.equals(expected.tables()[name]), name
        assert report.rows[f"canonical/{name}"] == frame.height
    assert pl.read_parquet(tmp_path / "truth.parquet").equals(expected.truth)
    roles = json.loads((tmp_path / "canonical" / "exogenous_roles.json").read_text(encoding="utf-8"))
    assert roles == expected.exogenous_roles
    meta = json.loads((tmp_path / "simulation.json").read_text(encoding="utf-8"))
    assert SimConfig.model_validate(meta["config"]) == CONFIG
    assert meta["summary"]["stockout_rate"] == pytest.approx(expected.stockout_rate)
    assert report.stockout_rate == pytest.approx(expected.stockout_rate)
    assert report.seconds >= report.simulate_seconds > 0
    assert all(path.exists() for path in report.paths.values())
    assert messages
    assert not (tmp_path / "branch-csv").exists()


def test_all_layouts(tmp_path: Path) -> None:
    report = run_simulate(CONFIG, tmp_path, layouts=("canonical", "branch-csv", "wide"))
    csvs = sorted(p.name for p in (tmp_path / "branch-csv").glob("*.csv"))
    assert csvs == sorted(
        f"{n}.csv"
        for n in ("stock_movement", "stock_current", "sales_transactions", "item_master", "employees", "branches")
    )
    items = pl.read_csv(tmp_path / "branch-csv" / "item_master.csv")
    assert items["ArabicName"].str.contains(r"[\u0600-\u06FF]").all()  # UTF-8 survived
    wide = pl.read_csv(tmp_path / "wide" / "daily.csv", try_parse_dates=True)
    assert wide.height == CONFIG.n_series * CONFIG.n_days == report.rows["wide/daily_csv"]
    assert wide.schema["date"] == pl.Date


def test_unknown_layout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="`layouts` must be one or more of"):
        run_simulate(CONFIG, tmp_path, layouts=("canonical", "excel"))
    assert not any(tmp_path.iterdir())
