"""The modelling commands on the data of every source adapter.

For each adapter a small simulated chain is written in that adapter's raw
layout, ingested, and run through the jobs behind `shelfcast forecast`,
`shelfcast stockout` and `shelfcast backtest --task demand|stockout`. Data
with no stock signal (Store Item, Walmart: sales only) must refuse the
stockout commands with a one-line message instead of a traceback or made-up
risks.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from helpers import NOW, TODAY

from shelfcast.cli import output as console
from shelfcast.data.sim_layouts import branch_csv_tables, wide_table
from shelfcast.data.simulator import SimConfig, SimResult, simulate
from shelfcast.data.sources import get_source
from shelfcast.data.sources.generic import load_mapping
from shelfcast.errors import ShelfcastError
from shelfcast.io.backtest_report import backtest_json
from shelfcast.jobs.backtest import run_backtest
from shelfcast.jobs.forecast import run_forecast
from shelfcast.jobs.ingest import run_ingest
from shelfcast.jobs.stockout import backtest_stockout, run_stockout
from shelfcast.models.backtest import BLEND, MODEL, RECURSIVE
from shelfcast.models.baselines import BASELINES
from shelfcast.models.train import ForecastConfig
from shelfcast.settings import Settings

pytestmark = pytest.mark.integration

N_STORES, N_ITEMS = 2, 4
N_SERIES = N_STORES * N_ITEMS
# Slow enough movers to have zero days and stockouts, fast enough to have a signal.
CHAIN = SimConfig(
    n_stores=N_STORES, n_items=N_ITEMS, seed=21, min_base_demand=1.0, max_base_demand=40.0, safety_factor=0.0
)
DAYS, WEEKS = 400, 120
CANDIDATES = {MODEL, RECURSIVE, BLEND, *BASELINES}
SALES_ONLY = ("store-item", "walmart")
REORDER = ("safety_stock", "reorder_point", "order_up_to", "order_quantity")
NO_STOCK = "stockout risk needs stock data, and the lake has sales only"


def _number(column: str) -> pl.Expr:
    """S001 -> 1: the integer ids the Kaggle-style layouts use."""
    return pl.col(column).str.extract(r"(\d+)").cast(pl.Int64)


# Raw layouts: one writer per adapter, returning what to ingest as (path, source, options).
Ingests = list[tuple[Path, str, dict[str, object]]]


def _canonical(sim: SimResult, folder: Path) -> Ingests:
    folder.mkdir(parents=True)
    for name, frame in sim.tables().items():
        frame.write_parquet(folder / f"{name}.parquet")
    (folder / "exogenous_roles.json").write_text(json.dumps(sim.exogenous_roles))
    return [(folder, "canonical", {})]


def _store_item(sim: SimResult, folder: Path) -> Ingests:
    """train.csv: date, store, item, sales (every day of every series, as Kaggle ships it)."""
    folder.mkdir(parents=True)
    sim.sales.select(
        pl.col("date").dt.strftime("%Y-%m-%d"),
        _number("store_id").alias("store"),
        _number("item_id").alias("item"),
        pl.col("units").cast(pl.Int64).alias("sales"),
    ).write_csv(folder / "train.csv")
    return [(folder, "store-item", {})]


def _freshretailnet(sim: SimResult, folder: Path) -> Ingests:
    """train_daily.parquet: normalised sale amounts, stock-out hours and the 24 hourly flags (out at day's end)."""
    folder.mkdir(parents=True)
    keys = ["date", "store_id", "item_id"]
    hours = sim.inventory.select(*keys, pl.col("stockout_hours").round(0).clip(0, 24).cast(pl.Int64).alias("out"))
    daily = sim.sales.join(hours, on=keys).join(sim.items.select("item_id", "category"), on="item_id")
    flags = [[int(h >= 24 - k) for h in range(24)] for k in daily["out"].to_list()]
    rng = np.random.default_rng(0)
    category = pl.col("category").rank("dense").cast(pl.Int64)
    daily.select(
        pl.lit(0).alias("city_id"),
        _number("store_id").alias("store_id"),
        pl.lit(1).alias("management_group_id"),
        category.alias("first_category_id"),
        category.alias("second_category_id"),
        _number("item_id").alias("third_category_id"),
        _number("item_id").alias("product_id"),
        pl.col("date").alias("dt"),
        (pl.col("units") / 10).alias("sale_amount"),
        pl.col("out").alias("stock_hours"),
        pl.Series("hours_stock_status", flags, dtype=pl.List(pl.Int64)),
        pl.when(pl.col("promo") == 1).then(0.8).otherwise(1.0).alias("discount"),
        pl.lit(0).alias("holiday_flag"),
        pl.col("promo").cast(pl.Int64).alias("activity_flag"),
        pl.Series("precpt", rng.gamma(1.0, 2.0, daily.height)),
        pl.Series("avg_temperature", rng.normal(20, 5, daily.height)),
        pl.Series("avg_humidity", rng.normal(70, 5, daily.height)),
        pl.Series("avg_wind_level", rng.normal(2, 0.5, daily.height)),
    ).write_parquet(folder / "train_daily.parquet")
    return [(folder, "freshretailnet", {})]


def _branch_csv(sim: SimResult, folder: Path) -> Ingests:
    """Invoice lines (only days with sales), movements and a stock snapshot: on-hand is rebuilt at ingest."""
    folder.mkdir(parents=True)
    for name, frame in branch_csv_tables(sim).items():
        frame.write_csv(folder / f"{name}.csv")
    return [(folder, "branch-csv", {})]


def _generic(sim: SimResult, folder: Path) -> Ingests:
    """One wide daily file with a store's temperature and a holiday flag, mapped onto sales, then inventory."""
    folder.mkdir(parents=True)
    path = folder / "daily.csv"
    weather = sim.exogenous.select(pl.col("store_id").alias("store"), "date", "temperature")
    holidays = sim.calendar.select("date", pl.lit(1).alias("holiday")).unique()
    wide = wide_table(sim).join(weather, on=["store", "date"], how="left").join(holidays, on="date", how="left")
    wide.with_columns(pl.col("holiday").fill_null(0)).write_csv(path)
    ids = {"date": "date", "store_id": "store", "item_id": "product"}
    sales = load_mapping(
        columns={**ids, "units": "daily_sales", "price": "price", "promo": "promo"},
        exogenous={"temperature": "past_only"},
        calendar={"holiday": "holiday"},
    )
    stock = load_mapping(table="inventory", columns={**ids, "on_hand": "inventory"})
    return [(path, "generic", {"mapping": sales}), (path, "generic", {"mapping": stock})]


def _walmart(sim: SimResult, folder: Path) -> Ingests:
    """train/features/stores: weekly sales value per store and department, dated by the week's Friday.

    Like Kaggle's file: weeks without sales have no row, a few weeks are
    negative (quarantined at ingest), features run 39 weeks past the sales
    with markdowns missing (NA) in the early weeks and CPI missing ahead.
    """
    folder.mkdir(parents=True)
    friday = (pl.col("date") + pl.duration(days=4)).alias("Date")
    holidays = sim.calendar.select("date", pl.lit(True).alias("IsHoliday")).unique()
    rng = np.random.default_rng(1)
    sales = sim.sales.join(holidays, on="date", how="left").with_columns(pl.col("IsHoliday").fill_null(False))
    negative = pl.Series(rng.random(sales.height) < 0.01)
    sales.filter(pl.col("units") > 0).select(
        _number("store_id").alias("Store"),
        _number("item_id").alias("Dept"),
        friday,
        pl.when(negative.filter(sales["units"] > 0))
        .then(-0.1 * pl.col("revenue"))
        .otherwise(pl.col("revenue"))
        .alias("Weekly_Sales"),
        "IsHoliday",
    ).with_columns(pl.col("IsHoliday").cast(pl.String).str.to_uppercase()).write_csv(folder / "train.csv")

    weeks = sim.sales["date"].unique().sort()
    ahead = pl.date_range(weeks.max() + dt.timedelta(weeks=1), weeks.max() + dt.timedelta(weeks=39), "1w", eager=True)
    grid = sim.stores.select("store_id").join(pl.concat([weeks, ahead]).alias("date").to_frame(), how="cross")
    promo = sim.sales.group_by("date", "store_id").agg(pl.col("promo").mean().alias("promo"))
    features = (
        grid.join(sim.exogenous.select("date", "store_id", "temperature", "cpi", "fuel_price"), on=["date", "store_id"])
        .join(holidays, on="date", how="left")
        .join(promo, on=["date", "store_id"], how="left")
        .sort("store_id", "date")
    )
    with_markdowns = pl.col("date") >= weeks[len(weeks) // 2]
    features.select(
        _number("store_id").alias("Store"),
        friday,
        pl.col("temperature").alias("Temperature"),
        pl.col("fuel_price").alias("Fuel_Price"),
        *[
            pl.when(with_markdowns).then(pl.col("promo").fill_null(0) * 1000 * i).alias(f"MarkDown{i}")
            for i in range(1, 6)
        ],
        pl.col("cpi").alias("CPI"),
        pl.when(pl.col("cpi").is_not_null()).then(7.5).alias("Unemployment"),
        pl.col("IsHoliday").fill_null(False).cast(pl.String).str.to_uppercase(),
    ).write_csv(folder / "features.csv", null_value="NA")
    sim.stores.select(
        _number("store_id").alias("Store"), pl.col("type").alias("Type"), pl.col("size").cast(pl.Int64).alias("Size")
    ).write_csv(folder / "stores.csv")
    return [(folder, "walmart", {})]


# Lake name -> (writer, frequency of the chain). Walmart is weekly by nature; the
# canonical layout is also run weekly, the one weekly case that has stock.
LAKES = {
    "canonical": (_canonical, "D"),
    "canonical-weekly": (_canonical, "W"),
    "store-item": (_store_item, "D"),
    "freshretailnet": (_freshretailnet, "D"),
    "branch-csv": (_branch_csv, "D"),
    "generic": (_generic, "D"),
    "walmart": (_walmart, "W"),
}


@dataclass(frozen=True)
class Lake:
    adapter: str
    settings: Settings
    freq: str
    actuals: pl.DataFrame  # the chain's sales, keyed as the adapter keys them

    @property
    def step(self) -> dt.timedelta:
        return dt.timedelta(weeks=1) if self.freq == "W" else dt.timedelta(days=1)

    @property
    def horizon(self) -> int:
        return 4 if self.freq == "W" else 7

    @property
    def cutoff(self) -> dt.date:
        """A cutoff well inside the data, so forecasts can be checked against what was sold."""
        last = self.actuals["date"].max()
        assert isinstance(last, dt.date)
        return last - self.step * (2 * self.horizon)


@pytest.fixture(scope="module")
def chains() -> dict[str, SimResult]:
    return {
        "D": simulate(CHAIN.model_copy(update={"n_days": DAYS})),
        "W": simulate(CHAIN.model_copy(update={"n_days": WEEKS * 7, "freq": "W"})),
    }


@pytest.fixture(scope="module", autouse=True)
def _small_models() -> Iterator[None]:
    """Fewer, faster trees: the jobs build their ForecastConfig from the data's frequency."""
    original = ForecastConfig.for_freq.__func__  # type: ignore[attr-defined]

    def small(cls: type[ForecastConfig], freq: str, **overrides: object) -> ForecastConfig:
        return original(cls, freq, **{"n_origins": 40, "n_estimators": 60, "learning_rate": 0.15, **overrides})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ForecastConfig, "for_freq", classmethod(small))
        yield


@pytest.fixture(scope="module", params=list(LAKES))
def lake(
    request: pytest.FixtureRequest, chains: dict[str, SimResult], tmp_path_factory: pytest.TempPathFactory
) -> Lake:
    writer, freq = LAKES[request.param]
    sim = chains[freq]
    root = tmp_path_factory.mktemp(request.param)
    settings = Settings(workspace=root / "ws")
    for path, source, options in writer(sim, root / "raw"):
        report = run_ingest(get_source(source, **options), path, settings=settings, today=TODAY, now=NOW)
        assert report.total("read") > 0
        # Walmart's negative weeks are the only rows that may be quarantined.
        assert set(report.quarantine_by_rule) <= ({"negative_units"} if source == "walmart" else set())
    adapter = source  # the last ingest's (a lake holds one adapter's data)
    actuals = sim.sales.select("date", "store_id", "item_id", "units")
    if adapter in ("store-item", "freshretailnet", "walmart"):
        actuals = actuals.with_columns(_number("store_id").cast(pl.String), _number("item_id").cast(pl.String))
    if adapter == "freshretailnet":
        actuals = actuals.with_columns(pl.col("units") / 10)
    if adapter == "walmart":
        actuals = sim.sales.select(
            (pl.col("date") + pl.duration(days=4)),
            _number("store_id").cast(pl.String),
            _number("item_id").cast(pl.String),
            pl.col("revenue").alias("units"),
        )
    return Lake(adapter, settings, freq, actuals)


def test_forecast(lake: Lake, tmp_path: Path) -> None:
    out = tmp_path / "forecast.parquet"
    report = run_forecast(lake.settings, cutoff=lake.cutoff, horizon=lake.horizon, out=out)
    frame = pl.read_parquet(out)

    assert (report.rows, report.series, report.model) == (N_SERIES * lake.horizon, N_SERIES, frame["model"][0])
    assert report.model in CANDIDATES
    assert frame.columns == ["date", "store_id", "item_id", "forecast", "p10", "p50", "p90", "model"]
    assert frame.select("date", "store_id", "item_id").is_unique().all()
    dates = [lake.cutoff + lake.step * h for h in range(1, lake.horizon + 1)]
    assert sorted(frame["date"].unique()) == dates
    values = frame.select("forecast", "p10", "p50", "p90")
    assert all(values[c].is_finite().all() and (values[c] >= 0).all() for c in values.columns)
    assert ((frame["p10"] <= frame["p50"]) & (frame["p50"] <= frame["p90"])).all()
    # Sensible: the chain's total over the horizon, within a factor of two of what it sold.
    sold = lake.actuals.filter(pl.col("date").is_in(dates))["units"].sum()
    assert 0.5 * sold <= frame["forecast"].sum() <= 2.0 * sold, (frame["forecast"].sum(), sold)


def test_demand_backtest(lake: Lake, tmp_path: Path) -> None:
    result = run_backtest(lake.settings, folds=2, horizon=lake.horizon)

    overall = result.metrics.filter(pl.col("window") == "all")
    assert set(overall["model"]) == CANDIDATES
    assert result.selected in CANDIDATES and len(result.cutoffs) == 2
    assert overall["wape"].is_finite().all() and overall["mae"].is_finite().all()
    console.backtest_summary(result, task="demand")
    backtest_json(result, tmp_path / "bt.json", task="demand")
    payload = json.loads((tmp_path / "bt.json").read_text())
    assert {m["model"] for m in payload["metrics"]} == CANDIDATES


def test_stockout(lake: Lake, tmp_path: Path) -> None:
    out = tmp_path / "stockout.parquet"
    if lake.adapter in SALES_ONLY:
        with pytest.raises(ShelfcastError, match=NO_STOCK) as error:
            run_stockout(lake.settings, cutoff=lake.cutoff, risk_days=7, min_hours=None, out=out)
        assert "\n" not in str(error.value)
        assert not out.exists()
        return
    report = run_stockout(lake.settings, cutoff=lake.cutoff, risk_days=7, min_hours=None, out=out)
    frame = pl.read_parquet(out)

    # Every series is scored, the slow ones whose last invoice line is days before the cutoff too.
    assert report.rows == frame.height == N_SERIES
    assert frame.select("store_id", "item_id").is_unique().all()
    assert {"risk", "label", "threshold", "rule_score", *REORDER} <= set(frame.columns)
    assert frame["risk"].is_between(0, 1).all() and frame["risk"].is_not_nan().all()
    assert set(frame["label"].unique()) <= {0, 1}
    assert (frame["label"] == (frame["risk"] >= frame["threshold"]).cast(pl.Int8)).all()
    assert report.alerts == frame["label"].sum()
    for column in ("safety_stock", "reorder_point", "order_up_to"):
        assert frame[column].is_finite().all() and (frame[column] >= 0).all(), column
    assert (frame["reorder_point"] <= frame["order_up_to"]).all()
    if lake.adapter == "freshretailnet":
        # Stock-out hours but no on-hand count: no stock position, so no order quantity or demand-vs-stock risk.
        assert frame["order_quantity"].is_null().all() and "quantile_risk" not in frame.columns
    else:
        assert (frame["order_quantity"] >= 0).all() and frame["quantile_risk"].is_between(0, 1).all()
    if lake.adapter in ("branch-csv", "generic"):
        # On hand only: --min-hours would silently mean "on hand reached zero".
        with pytest.raises(ShelfcastError, match="`--min-hours` 4 needs stockout hours, but the inventory has on_hand"):
            run_stockout(lake.settings, cutoff=lake.cutoff, risk_days=7, min_hours=4, out=tmp_path / "hours.parquet")


def test_stockout_backtest(lake: Lake) -> None:
    if lake.adapter in SALES_ONLY:
        with pytest.raises(ShelfcastError, match=NO_STOCK):
            backtest_stockout(lake.settings, folds=2, risk_days=7, min_hours=None)
        return
    result = backtest_stockout(lake.settings, folds=2, risk_days=7, min_hours=None)

    models = {"classifier", "rule"} | (set() if lake.adapter == "freshretailnet" else {"quantile_risk"})
    overall = result.metrics.filter(pl.col("window") == "all")
    assert set(overall["model"]) == models and result.selected in models
    assert (overall["n_rows"] == 2 * N_SERIES).all()
    assert overall["brier"].is_between(0, 1).all()
    console.backtest_summary(result, task="stockout")


@pytest.mark.e2e
def test_walmart_through_the_cli(chains: dict[str, SimResult], tmp_path: Path) -> None:
    """`shelfcast ingest/forecast/stockout` as a user runs them, on weekly Walmart files."""
    _walmart(chains["W"], tmp_path / "walmart")

    def shelfcast(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "shelfcast", *args, "--workspace", "ws"]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False)

    ingest = shelfcast("ingest", "walmart", "--source", "walmart")
    assert ingest.returncode == 0, ingest.stderr
    cutoff = chains["W"].sales["date"].max() + dt.timedelta(days=4) - dt.timedelta(weeks=6)
    forecast = shelfcast("forecast", "--cutoff", str(cutoff), "--horizon", "4", "--out", "fc.parquet")
    assert forecast.returncode == 0, forecast.stderr
    assert f"{N_SERIES * 4} forecasts for {N_SERIES} series, 4 steps (weeks) from {cutoff}" in forecast.stdout
    frame = pl.read_parquet(tmp_path / "fc.parquet")
    assert frame.height == N_SERIES * 4 and frame.select("date", "store_id", "item_id").is_unique().all()
    assert frame["date"].dt.weekday().unique().to_list() == [5]  # Walmart's weeks end on Fridays
    assert ((frame["p10"] <= frame["p50"]) & (frame["p50"] <= frame["p90"])).all()

    stockout = shelfcast("stockout", "--cutoff", str(cutoff), "--out", "so.parquet")
    assert stockout.returncode == 1, stockout.stdout
    assert NO_STOCK in stockout.stderr and "Traceback" not in stockout.stderr
    assert len(stockout.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "so.parquet").exists()
