"""Replenishment of the simulated chain: a day-by-day loop vectorised over all series.

Each store-item runs a reorder-point / order-up-to policy reviewed daily:
the store forecasts demand as a smoothed level times the calendar effects it
plans with (weekly, yearly, holidays, its own prices and promotions), orders
when the inventory position falls to the reorder point, and receives the
order after the store's lead time, sometimes later (supplier delays). A store
short of an item may get stock from the store with the largest surplus of it.

Order of events within a day: receipts arrive, transfers move stock, sales
happen (censored by stock), the forecast learns from uncensored days, orders
go out. So for every series and day, exactly:
on_hand(d) = on_hand(d-1) + received(d) + transfers_in(d) - transfers_out(d) - sales(d).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shelfcast.data.sim_config import SimConfig

_SMOOTHING = 0.04  # weight of a new uncensored day in the level estimate


@dataclass(frozen=True)
class InventoryPath:
    """Day-major (days, series) results of the replenishment loop, plus the transfers."""

    sales: np.ndarray
    on_hand: np.ndarray
    on_order: np.ndarray
    safety_stock: np.ndarray
    received: np.ndarray
    transfer_day: np.ndarray
    transfer_item: np.ndarray
    transfer_from: np.ndarray
    transfer_to: np.ndarray
    transfer_qty: np.ndarray


@dataclass(frozen=True)
class _Policy:
    """Per-series constants of the replenishment policy."""

    item: np.ndarray
    lead: np.ndarray
    pack: np.ndarray
    dispersion: np.ndarray
    bias: np.ndarray
    cum_effect: np.ndarray  # (days + horizon + 1, items) running sum of planned effects
    z: float
    error_sd: float
    cycle: int


def _cumulative_effect(plan_effect: np.ndarray, horizon: int) -> np.ndarray:
    """Running sum of the planned effects, extended past the last day by repeating its week."""
    tail = plan_effect[-min(7, plan_effect.shape[0]) :]
    reps = -(-horizon // tail.shape[0])
    padded = np.concatenate([plan_effect, np.tile(tail, (reps, 1))[:horizon]])
    cum = np.zeros((padded.shape[0] + 1, padded.shape[1]))
    np.cumsum(padded, axis=0, out=cum[1:])
    return cum


def _targets(policy: _Policy, level: np.ndarray, *, day: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Safety stock, reorder point and order-up-to level after `day` closes."""
    cum, item = policy.cum_effect, policy.item
    first = day + 1  # the first day an order placed tonight must cover
    arrive = first + policy.lead
    rate = level * policy.bias
    lead_demand = rate * (cum[arrive, item] - cum[first, item])
    cycle_demand = rate * (cum[arrive + policy.cycle, item] - cum[arrive, item])
    # Negative-binomial demand over the lead time plus the planners' own forecast error.
    variance = lead_demand + lead_demand**2 / (policy.dispersion * policy.lead) + (policy.error_sd * lead_demand) ** 2
    safety = np.round(policy.z * np.sqrt(variance))
    reorder = np.maximum(np.round(lead_demand + safety), 1.0)
    quantity = np.maximum(np.ceil(cycle_demand / policy.pack), 1.0) * policy.pack
    return safety, reorder, reorder + quantity


@dataclass(slots=True)  # not frozen: `stock.on_hand += x` rebinds the (same, updated) array
class _Stock:
    """Per-series stock carried from day to day; the arrays are updated in place."""

    on_hand: np.ndarray
    on_order: np.ndarray
    arrivals: np.ndarray  # ring buffer (slots, series): units due on the day `day % slots`


@dataclass(frozen=True)
class _History:
    """Day-major (days, series) record of the loop, filled one day at a time."""

    sales: np.ndarray
    on_hand: np.ndarray
    on_order: np.ndarray
    safety: np.ndarray
    received: np.ndarray

    @classmethod
    def empty(cls, n_days: int, n_series: int) -> _History:
        shape = (n_days, n_series)
        return cls(*(np.empty(shape, dtype=np.int32) for _ in range(5)))

    def record(self, day: int, *, sales: np.ndarray, stock: _Stock, safety: np.ndarray, received: np.ndarray) -> None:
        self.sales[day] = sales
        self.on_hand[day] = stock.on_hand
        self.on_order[day] = stock.on_order
        self.safety[day] = safety
        self.received[day] = received


def _policy(
    config: SimConfig,
    *,
    plan_effect: np.ndarray,
    lead_time: np.ndarray,
    pack_size: np.ndarray,
    dispersion: np.ndarray,
    rng: np.random.Generator,
) -> _Policy:
    """Per-series policy constants; series are store-major (store 0's items first)."""
    item = np.tile(np.arange(config.n_items), config.n_stores)
    lead = np.repeat(lead_time, config.n_items)
    return _Policy(
        item=item,
        lead=lead,
        pack=pack_size[item].astype(np.float64),
        dispersion=dispersion[item],
        bias=rng.lognormal(0.0, config.forecast_error_sd, size=item.size),
        cum_effect=_cumulative_effect(plan_effect, int(lead.max()) + config.order_cycle_days + 2),
        z=config.safety_factor,
        error_sd=config.forecast_error_sd,
        cycle=config.order_cycle_days,
    )


def _receive(stock: _Stock, day: int) -> np.ndarray:
    """Book the orders due today into on hand; returns the units received per series."""
    slot = day % stock.arrivals.shape[0]
    received: np.ndarray = stock.arrivals[slot].copy()
    stock.arrivals[slot] = 0
    stock.on_hand += received
    stock.on_order -= received
    return received


def _transfer(
    stock: _Stock, config: SimConfig, *, safety: np.ndarray, upto: np.ndarray, day: int, rng: np.random.Generator
) -> tuple[np.ndarray, ...] | None:
    """Per item, move stock from the store with the largest surplus to the one most short.

    Returns the transfers made (day, item, from store, to store, quantity), or None.
    """
    n_stores, n_items = config.n_stores, config.n_items
    cols = np.arange(n_items)
    # Short: below safety stock; surplus: above what the policy would now order up to.
    need = (safety - stock.on_hand).reshape(n_stores, n_items)
    surplus = (stock.on_hand - upto).reshape(n_stores, n_items)
    to_store = need.argmax(axis=0)
    from_store = surplus.argmax(axis=0)
    qty = np.minimum(need[to_store, cols], surplus[from_store, cols]).astype(np.int64)
    move = (qty > 0) & (rng.random(n_items) < config.transfer_prob)
    if not move.any():
        return None
    moved = cols[move]
    src = from_store[move] * n_items + moved
    dst = to_store[move] * n_items + moved
    stock.on_hand[src] -= qty[move]
    stock.on_hand[dst] += qty[move]
    return (np.full(moved.size, day), moved, from_store[move], to_store[move], qty[move])


def _learn(policy: _Policy, estimate: np.ndarray, *, sales: np.ndarray, on_hand: np.ndarray, day: int) -> None:
    """Update the demand level in place from today's sales, on the days that did not run out."""
    # Only days that ended with stock show true demand; stocked-out days would bias it down.
    seen = on_hand > 0
    item = policy.item[seen]
    effect = policy.cum_effect[day + 1, item] - policy.cum_effect[day, item]
    observed = sales[seen] / effect
    estimate[seen] += _SMOOTHING * (observed - estimate[seen])


def _order(
    stock: _Stock,
    policy: _Policy,
    config: SimConfig,
    *,
    reorder: np.ndarray,
    upto: np.ndarray,
    day: int,
    rng: np.random.Generator,
) -> None:
    """Order up to `upto` in whole packs where the position fell to the reorder point; some arrive late."""
    position = stock.on_hand + stock.on_order
    orders = np.flatnonzero(position <= reorder)
    if not orders.size:
        return
    pack = policy.pack[orders]
    qty = (np.ceil((upto[orders] - position[orders]) / pack) * pack).astype(np.int64)
    max_delay = config.max_supplier_delay_days
    delay = np.where(
        rng.random(orders.size) < config.supplier_delay_prob,
        rng.integers(1, max_delay + 1, size=orders.size) if max_delay else 0,
        0,
    )
    slots = stock.arrivals.shape[0]
    stock.arrivals[(day + policy.lead[orders] + delay) % slots, orders] += qty
    stock.on_order[orders] += qty


def simulate_inventory(
    config: SimConfig,
    demand: np.ndarray,
    *,
    plan_effect: np.ndarray,
    level: np.ndarray,
    lead_time: np.ndarray,
    pack_size: np.ndarray,
    dispersion: np.ndarray,
    rng: np.random.Generator,
) -> InventoryPath:
    """Run the replenishment loop over `demand` (days, series) and return the stock path."""
    n_days, n_series = int(demand.shape[0]), int(demand.shape[1])
    policy = _policy(
        config, plan_effect=plan_effect, lead_time=lead_time, pack_size=pack_size, dispersion=dispersion, rng=rng
    )
    estimate = level.reshape(-1).astype(np.float64)
    safety, reorder, upto = _targets(policy, estimate, day=-1)
    stock = _Stock(
        on_hand=(reorder + np.floor(rng.random(n_series) * (upto - reorder))).astype(np.int64),
        on_order=np.zeros(n_series, dtype=np.int64),
        arrivals=np.zeros((int(policy.lead.max()) + config.max_supplier_delay_days + 1, n_series), dtype=np.int64),
    )
    history = _History.empty(n_days, n_series)
    transfers: list[tuple[np.ndarray, ...]] = []
    can_transfer = config.transfer_prob > 0 and config.n_stores > 1

    for day in range(n_days):
        received = _receive(stock, day)
        if can_transfer:
            moved = _transfer(stock, config, safety=safety, upto=upto, day=day, rng=rng)
            if moved is not None:
                transfers.append(moved)
        sales = np.minimum(demand[day], stock.on_hand)
        stock.on_hand -= sales
        _learn(policy, estimate, sales=sales, on_hand=stock.on_hand, day=day)
        safety, reorder, upto = _targets(policy, estimate, day=day)
        _order(stock, policy, config, reorder=reorder, upto=upto, day=day, rng=rng)
        history.record(day, sales=sales, stock=stock, safety=safety, received=received)

    parts = [np.concatenate(p) for p in zip(*transfers, strict=True)] if transfers else [np.empty(0, np.int64)] * 5
    return InventoryPath(history.sales, history.on_hand, history.on_order, history.safety, history.received, *parts)
