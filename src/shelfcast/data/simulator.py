"""A seeded retail-chain simulator producing the canonical tables plus the true demand.

Pure: no I/O, no clock, no globals; the same `SimConfig` gives identical frames.
The pieces live in `sim_*` modules: entities (items, stores), calendar
(holidays), demand (prices, promotions, seasonality, noise, drift), inventory
(the replenishment loop), frames (canonical tables) and weekly (aggregation).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import polars as pl

from shelfcast.data import sim_weekly
from shelfcast.data.sim_calendar import calendar_frame
from shelfcast.data.sim_config import DriftKind, DriftSpec, Freq, SimConfig
from shelfcast.data.sim_demand import simulate_demand
from shelfcast.data.sim_entities import make_items, make_stores
from shelfcast.data.sim_frames import (
    EXOGENOUS_COLUMNS,
    exogenous_frame,
    fact_frames,
    movements_frame,
    panel_keys,
)
from shelfcast.data.sim_inventory import simulate_inventory
from shelfcast.schemas import ExogenousRole, TableName

__all__ = ["DriftKind", "DriftSpec", "Freq", "SimConfig", "SimResult", "simulate"]

logger = logging.getLogger(__name__)

# Observed weather and prices: known only up to the forecast origin.
EXOGENOUS_ROLES: dict[str, ExogenousRole] = {c: "past_only" for c in EXOGENOUS_COLUMNS}


@dataclass(frozen=True)
class SimResult:
    """The simulated chain: the seven canonical tables, the true demand and a summary.

    `stockout_rate` is the share of store-item-days with any stockout hours,
    `censored_rate` the share whose demand exceeded the stock, `fill_rate`
    units sold over units demanded (all measured on the daily simulation).
    """

    config: SimConfig
    sales: pl.DataFrame
    inventory: pl.DataFrame
    movements: pl.DataFrame
    calendar: pl.DataFrame
    exogenous: pl.DataFrame
    items: pl.DataFrame
    stores: pl.DataFrame
    truth: pl.DataFrame
    exogenous_roles: dict[str, ExogenousRole]
    stockout_rate: float
    censored_rate: float
    fill_rate: float

    def tables(self) -> dict[TableName, pl.DataFrame]:
        """The canonical tables by name."""
        return {
            "sales": self.sales,
            "inventory": self.inventory,
            "movements": self.movements,
            "calendar": self.calendar,
            "exogenous": self.exogenous,
            "items": self.items,
            "stores": self.stores,
        }

    def summary(self) -> dict[str, float | int]:
        """Row counts and service figures, for reports."""
        counts: dict[str, float | int] = {name: frame.height for name, frame in self.tables().items()}
        counts["truth"] = self.truth.height
        return {
            **counts,
            "stockout_rate": self.stockout_rate,
            "censored_rate": self.censored_rate,
            "fill_rate": self.fill_rate,
        }


def simulate(config: SimConfig) -> SimResult:
    """Simulate the chain described by `config`."""
    # Independent streams, so e.g. a drift does not reshuffle the items or the stores.
    items_rng, stores_rng, demand_rng, stock_rng, exo_rng = np.random.default_rng(config.seed).spawn(5)
    items = make_items(config, items_rng)
    stores = make_stores(config, stores_rng)
    demand = simulate_demand(config, demand_rng, items=items, stores=stores)
    logger.debug("simulated demand for %d series over %d days", config.n_series, config.n_days)
    path = simulate_inventory(
        config,
        demand.demand,
        plan_effect=demand.plan_effect,
        level=demand.level,
        lead_time=stores.lead_time,
        pack_size=items.pack_size,
        dispersion=items.dispersion,
        rng=stock_rng,
    )
    total_demand = float(demand.demand.sum(dtype=np.int64))
    lost = demand.demand - path.sales
    available = path.on_hand.astype(np.int64) + path.sales
    stockout_rate = float(((available == 0) | (lost > 0)).mean())
    censored_rate = float((lost > 0).mean())
    fill_rate = float(path.sales.sum(dtype=np.int64)) / total_demand if total_demand else 1.0
    del lost, available

    store_ids = stores.frame["store_id"]
    item_ids = items.frame["item_id"]
    keys = panel_keys(config, store_ids=store_ids, item_ids=item_ids)
    sales, inventory, truth = fact_frames(
        config, path, keys=keys, demand=demand.demand, price=demand.price, promo=demand.promo
    )
    movements = movements_frame(config, path, store_ids=store_ids, item_ids=item_ids)
    calendar = calendar_frame(config.start_date, config.n_days)
    exogenous = exogenous_frame(
        config, exo_rng, temperature=demand.temperature, region=stores.region, store_ids=store_ids
    )
    if config.freq == "W":
        sales = sim_weekly.weekly_sales(sales)
        inventory = sim_weekly.weekly_inventory(inventory)
        truth = sim_weekly.weekly_truth(truth)
        movements = sim_weekly.weekly_movements(movements)
        calendar = sim_weekly.weekly_calendar(calendar)
        exogenous = sim_weekly.weekly_exogenous(exogenous)
    logger.info(
        "simulated %d stores x %d items x %d days: stockout rate %.3f, fill rate %.3f",
        config.n_stores,
        config.n_items,
        config.n_days,
        stockout_rate,
        fill_rate,
    )
    return SimResult(
        config=config,
        sales=sales,
        inventory=inventory,
        movements=movements,
        calendar=calendar,
        exogenous=exogenous,
        items=items.frame,
        stores=stores.frame,
        truth=truth,
        exogenous_roles=dict(EXOGENOUS_ROLES),
        stockout_rate=stockout_rate,
        censored_rate=censored_rate,
        fill_rate=fill_rate,
    )
