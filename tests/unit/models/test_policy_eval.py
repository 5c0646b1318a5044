"""The policy replay: perfect foresight never stocks out, zero lead time needs no safety stock, stock balances daily."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.features.panel import SERIES
from shelfcast.models.policy_eval import Chain, Levels, cycle_service, policy_figures, replay
from shelfcast.models.policy_levels import (
    advice,
    calibrated_z,
    chain_rule,
    lead_time_scores,
    lead_time_stats,
    moving_average,
    safety_factor,
    span_sums,
    velocity_groups,
)

DAYS, REVIEW = 84, 7
START = dt.date(2022, 1, 3)


@pytest.fixture(scope="module")
def sim() -> tuple[pl.DataFrame, np.ndarray]:
    """A small simulated chain's series and true demand (days, series), series sorted by store then item."""
    result = simulate(SimConfig(n_stores=2, n_items=6, n_days=DAYS + 40, seed=4))
    truth = result.truth.sort("store_id", "item_id", "date")
    keys = truth.select(SERIES).unique(maintain_order=True)
    demand = truth["demand"].to_numpy().reshape(keys.height, -1).T
    return keys, demand


def chain(demand: np.ndarray, lead: np.ndarray, *, on_hand: np.ndarray, delay: np.ndarray | None = None) -> Chain:
    days, series = demand.shape
    return Chain(
        demand=demand.astype(np.float64),
        lead_time=lead,
        delay=np.zeros((days, series), dtype=np.int64) if delay is None else delay,
        pack=np.ones(series, dtype=np.int64),
        on_hand=on_hand.astype(np.float64),
    )


def ahead(demand: np.ndarray, lead: np.ndarray, extra: int = 0) -> np.ndarray:
    """Demand over the days d + 1 .. d + L + extra, per day d and series (the chain's known future)."""
    days = demand.shape[0]
    cum = np.vstack([np.zeros((1, demand.shape[1])), np.cumsum(demand, axis=0)])
    out = np.empty(demand.shape)
    for n, span in enumerate(lead + extra):
        end = np.minimum(np.arange(days) + 1 + span, days)
        out[:, n] = cum[end, n] - cum[np.arange(days) + 1, n]
    return out


def perfect_forecast(keys: pl.DataFrame, demand: np.ndarray, issued: dt.date) -> pl.DataFrame:
    """A forecast that knows the demand: mean = p10 = p90 = the true demand, from the day after `issued`."""
    days = demand.shape[0]
    dates = [issued + dt.timedelta(days=k) for k in range(days)]
    frame = keys.join(pl.DataFrame({"date": dates}), how="cross").with_columns(
        pl.Series("forecast", demand.T.reshape(-1).astype(np.float64))
    )
    return frame.with_columns(pl.col("forecast").alias("p10"), pl.col("forecast").alias("p90"), issued=pl.lit(issued))


def advised(keys: pl.DataFrame, demand: np.ndarray, lead: np.ndarray, days: int) -> Levels:
    """shelfcast's advice from a perfect forecast, through `replenish` as the job computes it."""
    forecast = perfect_forecast(keys, demand, START)
    lead_frame = keys.with_columns(pl.Series("lead_time_days", lead))
    dates = [START + dt.timedelta(days=k) for k in range(days)]
    stats = lead_time_stats(forecast, keys=keys, dates=dates, lead_time=lead_frame, review_days=REVIEW)
    return advice(stats, service_level=0.95, review_days=REVIEW, days=days, series=keys.height)


def test_perfect_foresight_never_stocks_out(sim: tuple[pl.DataFrame, np.ndarray]) -> None:
    keys, demand = sim
    lead = np.array([1, 2, 3, 4, 5, 6] * 2)
    days = DAYS
    start = demand[: int(lead.max()) + 1].sum(axis=0)
    # The bare policy: reorder at the next L days' demand, order up to L + R days.
    bare = Levels(ahead(demand, lead)[:days], ahead(demand, lead, REVIEW)[:days])
    run = replay(chain(demand[:days], lead, on_hand=start), bare)
    assert run.lost.sum() == 0
    # shelfcast's advice computed from a forecast that is the demand.
    run = replay(chain(demand[:days], lead, on_hand=start), advised(keys, demand, lead, days))
    assert run.lost.sum() == 0
    assert policy_figures(chain(demand[:days], lead, on_hand=start), run)["cycle_service_level"] == 1.0


def test_zero_lead_time_needs_no_safety_stock(sim: tuple[pl.DataFrame, np.ndarray]) -> None:
    keys, demand = sim
    zero = np.zeros(keys.height, dtype=np.int64)
    levels = advised(keys, demand, zero, DAYS)
    # No stock kept for a lead time: the reorder point (the lead time's demand plus its safety stock) is zero ...
    review = np.arange(DAYS) % REVIEW == 0
    assert (levels.reorder_point[~review] == 0).all()
    # ... and yet nothing is lost: each review's order covers exactly the days until the next one arrives.
    run = replay(chain(demand[:DAYS], zero, on_hand=demand[0]), levels)
    assert run.lost.sum() == 0
    # The same advice on a chain whose orders take 3 days loses sales: a lead time needs stock of its own.
    late = replay(chain(demand[:DAYS], zero + 3, on_hand=demand[0]), levels)
    assert late.lost.sum() > 0


def test_inventory_balance_every_day(sim: tuple[pl.DataFrame, np.ndarray]) -> None:
    _, demand = sim
    series = demand.shape[1]
    rng = np.random.default_rng(1)
    lead = rng.integers(1, 6, size=series)
    delay = np.where(rng.random(demand[:DAYS].shape) < 0.2, rng.integers(1, 4, size=demand[:DAYS].shape), 0)
    known = chain(demand[:DAYS], lead, on_hand=np.full(series, 5.0), delay=delay)
    known = Chain(known.demand, known.lead_time, known.delay, rng.integers(1, 7, size=series), known.on_hand)
    levels = moving_average(
        np.vstack([demand[:28], demand[:DAYS]]).astype(np.float64),
        lead_time=lead,
        safety_factor=safety_factor(0.9),
        review_days=REVIEW,
    )
    run = replay(known, levels)
    assert np.allclose(run.on_hand_start + run.received - run.sales, run.on_hand_end)
    assert np.allclose(run.on_hand_start[1:], run.on_hand_end[:-1])
    assert np.allclose(run.sales + run.lost, known.demand)
    assert (run.on_hand_end >= 0).all() and (run.sales >= 0).all()
    # Every unit ordered in time arrives: orders are whole packs, received = ordered minus what is still on its way.
    assert np.allclose(run.ordered % known.pack, 0)
    assert run.received.sum() <= run.ordered.sum()


def test_supplier_delay_holds_an_order_back() -> None:
    demand = np.zeros((10, 1))
    delay = np.zeros((10, 1), dtype=np.int64)
    delay[0, 0] = 2
    run = replay(
        chain(demand, np.array([3]), on_hand=np.zeros(1), delay=delay),
        Levels(np.zeros((10, 1)), np.full((10, 1), 4.0)),
    )
    # Ordered after day 0 closes, due before day 3 opens, two days late: received on day 5.
    assert run.ordered[0, 0] == 4 and np.flatnonzero(run.received[:, 0]).tolist() == [5]


def test_cycle_service_counts_cycles_between_receipts() -> None:
    received = np.array([[1.0], [0.0], [1.0], [0.0], [1.0], [0.0], [1.0]])
    lost = np.array([[0.0], [0.0], [0.0], [2.0], [0.0], [0.0], [0.0]])
    zeros = np.zeros_like(received)
    from shelfcast.models.policy_eval import Replay

    run = Replay(zeros, received, zeros, lost, zeros, zeros)
    assert cycle_service(run) == (2, 3)
    assert cycle_service(run, first_day=3) == (1, 1)


def test_classic_and_chain_rule_levels() -> None:
    # Two days of history, then two replayed days: each review uses the two days up to and including its own.
    sales = np.array([[2.0], [4.0], [6.0], [6.0]])
    levels = moving_average(sales, lead_time=np.array([4]), safety_factor=1.0, review_days=7, window=2)
    # Windows [4, 6] and [6, 6]: means 5 and 6, sample sd sqrt(2) and 0.
    assert levels.reorder_point[:, 0] == pytest.approx([5 * 4 + 2**0.5 * 2, 6 * 4])
    assert levels.order_up_to[0, 0] == pytest.approx(5 * 11 + 2**0.5 * 11**0.5)
    rule = chain_rule(np.array([2.0]), lead_time=np.array([3]), days=4, buffer_days=2, review_days=7)
    assert rule.reorder_point[:, 0].tolist() == [10.0] * 4 and rule.order_up_to[0, 0] == 24.0


def test_bad_shapes_and_values_are_refused() -> None:
    with pytest.raises(ValueError, match="`lead_time` must have one value per series"):
        chain(np.zeros((3, 2)), np.array([1]), on_hand=np.zeros(2))
    with pytest.raises(ValueError, match="must be in \\(0, 1\\)"):
        safety_factor(1.0)
    with pytest.raises(ValueError, match="`reorder_point` must have the shape"):
        replay(chain(np.zeros((3, 1)), np.array([1]), on_hand=np.zeros(1)), Levels(np.zeros((2, 1)), np.zeros((3, 1))))


def test_calibration_scores_the_lead_time_sums() -> None:
    values = np.arange(1.0, 7.0)[:, None]  # 1..6
    sums = span_sums(values, np.array([2]), extra=1)
    # Day 0: days 1..3 -> 2 + 3 + 4; the last days are cut at the end.
    assert sums[:, 0].tolist() == [9.0, 12.0, 15.0, 11.0, 6.0, 0.0]
    keys = pl.DataFrame({"store_id": ["S"], "item_id": ["I"]})
    stats = pl.DataFrame(
        {"store_id": ["S"] * 3, "item_id": ["I"] * 3, "day": [0, 1, 2]},
        schema_overrides={"day": pl.Int32},
    ).with_columns(
        lead_time_days=pl.lit(3),
        lt_mean=pl.lit(10.0),
        lt_std=pl.Series([2.0, 2.0, 0.0]),
        ltr_mean=pl.lit(20.0),
        ltr_std=pl.lit(5.0),
    )
    scores = lead_time_scores(stats, np.array([[12.0], [8.0], [11.0]]), np.array([[20.0], [30.0], [15.0]]))
    assert scores[0, :, 0].tolist() == [1.0, -1.0, np.inf]
    assert scores[1, :, 0].tolist() == [0.0, 2.0, -1.0]
    assert calibrated_z(scores, 0.5)[:, 0].tolist() == [1.0, 0.0]
    # Calibrated z replaces the normal quantile: the reorder point is mean + z * std.
    levels = advice(
        keys.join(stats, on=list(SERIES)),
        service_level=0.9,
        review_days=7,
        days=3,
        series=1,
        z=np.array([[[1.0], [2.0]]] * 3),
        first_review=5,
    )
    assert levels.reorder_point[:, 0].tolist() == pytest.approx([12.0, 12.0, 10.0])
    assert levels.order_up_to[:, 0].tolist() == pytest.approx([30.0, 30.0, 30.0])


def test_calibration_by_velocity_group() -> None:
    # Two slow series whose sums sit at their mean, two fast ones that run 2 sd over: each group gets its own z.
    scores = np.zeros((2, 10, 4))
    scores[:, :, 2:] = 2.0
    groups = velocity_groups(np.array([1.0, 2.0, 50.0, 60.0]), 2)
    assert groups.tolist() == [0, 0, 1, 1]
    assert calibrated_z(scores, 0.95, groups=groups)[0].tolist() == [0.0, 0.0, 2.0, 2.0]
    assert calibrated_z(scores, 0.95)[0].tolist() == [2.0] * 4
