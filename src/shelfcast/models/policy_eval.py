"""Replay of a chain's days under a reorder policy, on known true demand: lost sales, stock and orders.

Pure: numpy arrays in, arrays and figures out. The timeline is the
simulator's (`data.sim_inventory`): each day, receipts due arrive before the
shop opens, sales happen (censored by stock: demand beyond it is lost, never
backordered), then the policy reviews the inventory position (on hand + on
order) and, where it is at or below the day's reorder point, orders up to
the day's order-up-to level in whole packs. An order placed after day d
closes arrives before day d + L + delay opens (L = 0: before day d + 1
opens, like L = 1). With one review a day, the demand an order must cover
before the next one can arrive is the next L days: the span `replenish`
sums for the reorder point.

For every series and day, exactly: on_hand_end = on_hand_start + received - sales,
where on_hand_start is the previous day's end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Arrays are day-major: (days, series).


@dataclass(frozen=True)
class Chain:
    """What the replay needs to know about the chain: true demand and how orders arrive.

    `delay[d, n]` is the supplier delay (days) of an order series n places on
    day d; drawn once, so every policy replayed on the chain meets the same
    delays. `on_hand` is the stock at the start of day 0.
    """

    demand: np.ndarray
    lead_time: np.ndarray
    delay: np.ndarray
    pack: np.ndarray
    on_hand: np.ndarray

    def __post_init__(self) -> None:
        days, series = self.demand.shape
        if self.delay.shape != (days, series):
            raise ValueError(f"`delay` must have the shape of `demand` {(days, series)}, got {self.delay.shape}")
        for name in ("lead_time", "pack", "on_hand"):
            shape = getattr(self, name).shape
            if shape != (series,):
                raise ValueError(f"`{name}` must have one value per series ({series}), got shape {shape}")
        if (self.demand < 0).any() or (self.lead_time < 0).any() or (self.delay < 0).any():
            raise ValueError("demand, lead times and delays must be >= 0")
        if (self.pack < 1).any():
            raise ValueError("pack sizes must be >= 1")

    @property
    def days(self) -> int:
        return int(self.demand.shape[0])

    @property
    def series(self) -> int:
        return int(self.demand.shape[1])


@dataclass(frozen=True)
class Levels:
    """A policy as the reorder point and order-up-to level it uses at each day's review (days, series)."""

    reorder_point: np.ndarray
    order_up_to: np.ndarray


@dataclass(frozen=True)
class Replay:
    """Day by day (days, series): stock at the start, receipts, sales, lost sales, stock at the end, orders."""

    on_hand_start: np.ndarray
    received: np.ndarray
    sales: np.ndarray
    lost: np.ndarray
    on_hand_end: np.ndarray
    ordered: np.ndarray


def replay(chain: Chain, levels: Levels) -> Replay:
    """Run the chain's days under `levels` (see the module docstring for the order of events)."""
    days, series = chain.days, chain.series
    for name in ("reorder_point", "order_up_to"):
        shape = getattr(levels, name).shape
        if shape != (days, series):
            raise ValueError(f"`{name}` must have the shape of the demand {(days, series)}, got {shape}")
    lead = np.maximum(chain.lead_time.astype(np.int64), 1)  # L = 0 arrives before the next day opens, as L = 1
    pack = chain.pack.astype(np.float64)
    horizon = days + int(lead.max()) + int(chain.delay.max(initial=0)) + 1
    arrivals = np.zeros((horizon, series), dtype=np.float64)
    on_hand = chain.on_hand.astype(np.float64).copy()
    on_order = np.zeros(series)
    record = {k: np.zeros((days, series)) for k in ("start", "received", "sales", "lost", "end", "ordered")}
    cols = np.arange(series)
    for day in range(days):
        record["start"][day] = on_hand
        received = arrivals[day]
        on_hand = on_hand + received
        on_order = on_order - received
        sales = np.minimum(chain.demand[day], on_hand)
        on_hand = on_hand - sales
        position = on_hand + on_order
        short = levels.order_up_to[day] - position
        order = (position <= levels.reorder_point[day]) & (short > 0)
        qty = np.where(order, np.ceil(np.where(order, short, 0.0) / pack) * pack, 0.0)
        arrivals[day + lead + chain.delay[day], cols] += qty
        on_order = on_order + qty
        record["received"][day] = received
        record["sales"][day] = sales
        record["lost"][day] = chain.demand[day] - sales
        record["end"][day] = on_hand
        record["ordered"][day] = qty
    return Replay(
        record["start"], record["received"], record["sales"], record["lost"], record["end"], record["ordered"]
    )


def cycle_service(replay_: Replay, *, first_day: int = 0) -> tuple[int, int]:
    """(cycles without lost sales, cycles) over replenishment cycles that start on or after `first_day`.

    A cycle runs from one receipt to the day before the next one (a series'
    last, unfinished cycle is not counted); it is served when no sale was lost in it.
    """
    served = total = 0
    receipts = replay_.received > 0
    lost = np.vstack([np.zeros((1, replay_.lost.shape[1])), np.cumsum(replay_.lost, axis=0)])
    for n in range(receipts.shape[1]):
        days = np.flatnonzero(receipts[:, n])
        days = days[days >= first_day]
        if days.size < 2:
            continue
        lost_in = lost[days[1:], n] - lost[days[:-1], n]
        served += int((lost_in <= 0).sum())
        total += int(lost_in.size)
    return served, total


def policy_figures(chain: Chain, replay_: Replay, *, first_day: int = 0) -> dict[str, float]:
    """Service, lost sales, stock and orders of a replay, measured from `first_day` on (a warm-up is left out).

    `cycle_service_level`: share of replenishment cycles with no lost sale;
    `fill_rate`: units sold over units demanded; `in_stock_rate`: share of
    series-days with no lost sale; `avg_on_hand`: mean units on hand per
    series at the end of a day; `days_of_cover`: the chain's average stock
    over its average daily demand; `orders`: orders placed.
    """
    window = slice(first_day, None)
    demand = float(chain.demand[window].sum())
    sold = float(replay_.sales[window].sum())
    lost = float(replay_.lost[window].sum())
    served, cycles = cycle_service(replay_, first_day=first_day)
    days = chain.days - first_day
    stock = float(replay_.on_hand_end[window].sum()) / days
    daily_demand = demand / days
    return {
        "cycle_service_level": served / cycles if cycles else float("nan"),
        "cycles": float(cycles),
        "fill_rate": sold / demand if demand else 1.0,
        "in_stock_rate": float((replay_.lost[window] <= 0).mean()),
        "lost_units": lost,
        "lost_share": lost / demand if demand else 0.0,
        "avg_on_hand": stock / chain.series,
        "days_of_cover": stock / daily_demand if daily_demand else float("nan"),
        "orders": float((replay_.ordered[window] > 0).sum()),
        "demand_units": demand,
    }
