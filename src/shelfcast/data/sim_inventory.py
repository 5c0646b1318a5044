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
    n_stores, n_items = config.n_stores, config.n_items
    item = np.tile(np.arange(n_items), n_stores)
    lead = np.repeat(lead_time, n_items)
    max_delay = config.max_supplier_delay_days
    policy = _Policy(
        item=item,
        lead=lead,
        pack=pack_size[item].astype(np.float64),
        dispersion=dispersion[item],
        bias=rng.lognormal(0.0, config.forecast_error_sd, size=n_series),
        cum_effect=_cumulative_effect(plan_effect, int(lead.max()) + config.order_cycle_days + 2),
        z=config.safety_factor,
        error_sd=config.forecast_error_sd,
        cycle=config.order_cycle_days,
    )
    estimate = level.reshape(-1).astype(np.float64)
    safety, reorder, upto = _targets(policy, estimate, day=-1)
    on_hand = (reorder + np.floor(rng.random(n_series) * (upto - reorder))).astype(np.int64)
    on_order = np.zeros(n_series, dtype=np.int64)
    ring_size = int(lead.max()) + max_delay + 1
    ring = np.zeros((ring_size, n_series), dtype=np.int64)

    shape = (n_days, n_series)
    out_sales = np.empty(shape, dtype=np.int32)
    out_on_hand = np.empty(shape, dtype=np.int32)
    out_on_order = np.empty(shape, dtype=np.int32)
    out_safety = np.empty(shape, dtype=np.int32)
    out_received = np.empty(shape, dtype=np.int32)
    transfers: list[tuple[np.ndarray, ...]] = []
    cols = np.arange(n_items)

    for day in range(n_days):
        slot = day % ring_size
        received = ring[slot].copy()
        ring[slot] = 0
        on_hand += received
        on_order -= received

        if config.transfer_prob > 0 and n_stores > 1:
            # Short: below safety stock; surplus: above what the policy would now order up to.
            need = (safety - on_hand).reshape(n_stores, n_items)
            surplus = (on_hand - upto).reshape(n_stores, n_items)
            to_store = need.argmax(axis=0)
            from_store = surplus.argmax(axis=0)
            qty = np.minimum(need[to_store, cols], surplus[from_store, cols]).astype(np.int64)
            move = (qty > 0) & (rng.random(n_items) < config.transfer_prob)
            if move.any():
                moved = cols[move]
                src = from_store[move] * n_items + moved
                dst = to_store[move] * n_items + moved
                on_hand[src] -= qty[move]
                on_hand[dst] += qty[move]
                transfers.append((np.full(moved.size, day), moved, from_store[move], to_store[move], qty[move]))

        sales = np.minimum(demand[day], on_hand)
        on_hand -= sales
        # Only days that ended with stock show true demand; stocked-out days would bias it down.
        seen = on_hand > 0
        effect = policy.cum_effect[day + 1, item[seen]] - policy.cum_effect[day, item[seen]]
        observed = sales[seen] / effect
        estimate[seen] += _SMOOTHING * (observed - estimate[seen])

        safety, reorder, upto = _targets(policy, estimate, day=day)
        position = on_hand + on_order
        orders = np.flatnonzero(position <= reorder)
        if orders.size:
            pack = policy.pack[orders]
            qty_o = (np.ceil((upto[orders] - position[orders]) / pack) * pack).astype(np.int64)
            delay = np.where(
                rng.random(orders.size) < config.supplier_delay_prob,
                rng.integers(1, max_delay + 1, size=orders.size) if max_delay else 0,
                0,
            )
            ring[(day + lead[orders] + delay) % ring_size, orders] += qty_o
            on_order[orders] += qty_o

        out_sales[day] = sales
        out_on_hand[day] = on_hand
        out_on_order[day] = on_order
        out_safety[day] = safety
        out_received[day] = received

    parts = [np.concatenate(p) for p in zip(*transfers, strict=True)] if transfers else [np.empty(0, np.int64)] * 5
    return InventoryPath(out_sales, out_on_hand, out_on_order, out_safety, out_received, *parts)
