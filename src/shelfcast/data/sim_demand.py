"""True demand of the simulated chain: prices, promotions, seasonality, noise and drift.

Arrays are day-major: item curves are (days, items), the full panel is
(days, stores, items), so flattening it gives rows sorted by date, store, item.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shelfcast.data.sim_calendar import holiday_log_effect
from shelfcast.data.sim_config import SimConfig
from shelfcast.data.sim_entities import CATEGORIES, Items, Stores

# Monday..Sunday; Friday and Saturday are the big shopping days.
_WEEKLY_BASE = np.array([0.92, 0.86, 0.90, 0.96, 1.14, 1.28, 0.94])
# Hypermarkets get the weekend trips, express stores the weekday top-ups.
_STORE_TYPE_WEEKLY = np.array(
    [
        [0.96, 0.95, 0.96, 0.97, 1.04, 1.12, 1.00],
        [1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00],
        [1.06, 1.06, 1.05, 1.04, 0.98, 0.88, 0.93],
    ]
)
_PROMO_DAYS = (7, 15)  # duration in days, upper bound exclusive
_PROMO_DEPTH = (0.10, 0.35)
_PROMO_EXTRA_LIFT = (1.05, 1.40)  # display and leaflet effect on top of the price cut
_DIP_DAYS = 7
_PANTRY_LOADING = 0.35  # share of the extra lift that is stolen from the following week


@dataclass(frozen=True)
class Demand:
    """Simulated true demand and the information the stores plan with."""

    demand: np.ndarray  # (days, stores * items) int32, uncensored units
    price: np.ndarray  # (days, items) shelf price paid
    promo: np.ndarray  # (days, items) bool
    plan_effect: np.ndarray  # (days, items) calendar effects the planners know in advance
    level: np.ndarray  # (stores, items) units/day before calendar effects, on day 0
    temperature: np.ndarray  # (days, regions) degrees Celsius


def _drift_mask(config: SimConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Days on/after the drift start and the items it touches (all False without drift)."""
    days = np.zeros(config.n_days, dtype=bool)
    items = np.zeros(config.n_items, dtype=bool)
    # Drawn with or without a drift, so both runs share everything before the drift date.
    draws = rng.random(config.n_items)
    first = rng.integers(config.n_items)
    if config.drift is not None:
        days[(config.drift.start - config.start_date).days :] = True
        items = draws < config.drift.share
        items[first] = True  # at least one item drifts
    return days, items


def _promotions(
    config: SimConfig, rng: np.random.Generator, *, drift_days: np.ndarray, drift_items: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Discount depth, extra lift and post-promotion dip (log) per day and item."""
    d, m = config.n_days, config.n_items
    rate = np.full((d, m), config.promo_rate_per_year / 365.0)
    magnitude = 1.0
    if config.drift is not None and config.drift.kind == "promo":
        magnitude = config.drift.magnitude
        rate[np.ix_(drift_days, drift_items)] *= magnitude
    depth = np.zeros((d, m))
    lift = np.ones((d, m))
    dip = np.zeros((d, m))
    starts_d, starts_i = np.nonzero(rng.random((d, m)) < rate)
    order = np.lexsort((starts_d, starts_i))
    busy_until = np.zeros(m, dtype=np.int64)
    durations = rng.integers(*_PROMO_DAYS, size=order.size)
    depths = rng.uniform(*_PROMO_DEPTH, size=order.size)
    lifts = rng.uniform(*_PROMO_EXTRA_LIFT, size=order.size)
    for k, idx in enumerate(order):
        day, item = int(starts_d[idx]), int(starts_i[idx])
        if day < busy_until[item]:
            continue  # one promotion at a time per item
        end = min(day + int(durations[k]), d)
        ev_depth, ev_lift = depths[k], lifts[k]
        if drift_days[day] and drift_items[item]:
            ev_depth = min(ev_depth * magnitude, 0.7)
            ev_lift = 1.0 + (ev_lift - 1.0) * magnitude
        depth[day:end, item] = ev_depth
        lift[day:end, item] = ev_lift
        dip_end = min(end + _DIP_DAYS, d)
        fade = 1.0 - np.arange(dip_end - end) / _DIP_DAYS
        dip[end:dip_end, item] = np.log1p(-min(_PANTRY_LOADING * (ev_lift - 1.0 + ev_depth), 0.5) * fade)
        busy_until[item] = end + 1
    dip[depth > 0] = 0.0  # a new promotion overrides the previous one's dip
    return depth, lift, dip


def _regular_prices(config: SimConfig, items: Items, *, rng: np.random.Generator) -> np.ndarray:
    """Shelf price per day and item before promotions, with occasional price changes."""
    d, m = config.n_days, config.n_items
    change = rng.random((d, m)) < config.price_changes_per_year / 365.0
    change[0] = False
    factor = np.where(change, rng.uniform(0.93, 1.12, size=(d, m)), 1.0)
    raw = items.base_price[None, :] * np.cumprod(factor, axis=0)
    return np.where(np.cumsum(change, axis=0) > 0, np.round(np.ceil(raw * 10) / 10 - 0.01, 2), raw)


def _temperature(config: SimConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Daily temperature per region and its anomaly against the regional climate."""
    d, r = config.n_days, config.n_regions
    doy = _day_of_year(config)
    mean = rng.uniform(12.0, 26.0, size=r)
    amplitude = rng.uniform(5.0, 12.0, size=r)
    climate = mean[None, :] + amplitude[None, :] * np.cos(2 * np.pi * (doy[:, None] - 200) / 365.25)
    shocks = rng.normal(0.0, 2.0, size=(d, r))
    anomaly = np.empty((d, r))
    anomaly[0] = shocks[0]
    for t in range(1, d):  # AR(1): warm spells last a few days
        anomaly[t] = 0.8 * anomaly[t - 1] + shocks[t]
    return np.round(climate + anomaly, 1), anomaly


def _day_of_year(config: SimConfig) -> np.ndarray:
    start = config.start_date
    return (start.timetuple().tm_yday - 1 + np.arange(config.n_days)) % 365.25


def _calendar_effects(
    config: SimConfig, items: Items, *, rng: np.random.Generator, drift_days: np.ndarray, drift_items: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Log of weekly x yearly x holiday effects per day and item: (true, as planned)."""
    n_cat = len(CATEGORIES)
    weekly = _WEEKLY_BASE[None, :] * rng.lognormal(0.0, 0.06, size=(n_cat, 7))
    weekly /= weekly.mean(axis=1, keepdims=True)
    amplitude = np.array([c.yearly_amplitude for c in CATEGORIES]) * rng.uniform(0.8, 1.2, n_cat)
    peak = np.array([c.yearly_peak_doy for c in CATEGORIES]) + rng.integers(-15, 16, n_cat)
    sensitivity = rng.uniform(0.5, 1.5, size=n_cat)
    dow = (config.start_date.weekday() + np.arange(config.n_days)) % 7
    doy = _day_of_year(config)
    cat = items.category
    log_weekly = np.log(weekly[cat][:, dow].T)
    cycle = np.cos(2 * np.pi * (doy[:, None] - peak[cat][None, :]) / 365.25)
    log_yearly = amplitude[cat][None, :] * cycle
    log_holiday = holiday_log_effect(config.start_date, config.n_days)[:, None] * sensitivity[cat][None, :]
    planned = log_weekly + log_yearly + log_holiday
    if config.drift is None or config.drift.kind != "seasonality":
        return planned, planned
    w = config.drift.magnitude
    shifted = np.roll(weekly, 3, axis=1)
    new_weekly = np.log(((1 - w) * weekly + w * shifted)[cat][:, dow].T)
    mask = drift_days[:, None] & drift_items[None, :]
    true = np.where(mask, new_weekly + log_yearly * (1 + w), log_weekly + log_yearly) + log_holiday
    return true, planned


def simulate_demand(config: SimConfig, rng: np.random.Generator, *, items: Items, stores: Stores) -> Demand:
    """Draw the uncensored daily demand of every store-item series."""
    d, n, m = config.n_days, config.n_stores, config.n_items
    drift_rng, season_rng, promo_rng, price_rng, level_rng, weather_rng, noise_rng = rng.spawn(7)
    drift_days, drift_items = _drift_mask(config, drift_rng)
    log_true, log_plan = _calendar_effects(
        config, items, rng=season_rng, drift_days=drift_days, drift_items=drift_items
    )
    depth, extra_lift, log_dip = _promotions(config, promo_rng, drift_days=drift_days, drift_items=drift_items)
    regular = _regular_prices(config, items, rng=price_rng)
    price = np.where(depth > 0, np.round(regular * (1 - depth), 2), np.round(regular, 2))
    log_price = items.elasticity[None, :] * np.log(price / items.base_price[None, :])
    log_promo = np.log(extra_lift) + log_dip
    years = np.arange(d)[:, None] / 365.25
    log_trend = level_rng.normal(0.0, config.trend_sd_per_year, size=m)[None, :] * years
    log_drift = np.zeros((d, m))
    if config.drift is not None and config.drift.kind == "level":
        log_drift[np.ix_(drift_days, drift_items)] = np.log(config.drift.magnitude)
    known = log_price + log_promo
    plan_effect = np.exp(log_plan + known)
    item_curve = np.exp(log_true + known + log_trend + log_drift)

    affinity = level_rng.lognormal(0.0, 0.35, size=(n, m))
    level = items.base_demand[None, :] * stores.multiplier[:, None] * affinity
    temperature, anomaly = _temperature(config, weather_rng)
    dow = (config.start_date.weekday() + np.arange(d)) % 7
    store_weekly = _STORE_TYPE_WEEKLY[stores.store_type][:, dow].T  # (days, stores)

    mean = item_curve[:, None, :] * level[None, :, :]
    mean *= store_weekly[:, :, None]
    beta = np.array([c.temperature_beta for c in CATEGORIES])[items.category]
    sensitive = np.flatnonzero(beta)
    if sensitive.size:
        store_anomaly = anomaly[:, stores.region]  # (days, stores)
        mean[:, :, sensitive] *= np.exp(store_anomaly[:, :, None] * beta[sensitive][None, None, :])
    # Poisson-gamma (negative binomial): slow movers get many zero days, fast ones bursty days.
    shape = np.broadcast_to(items.dispersion[None, None, :], mean.shape)
    mean *= noise_rng.gamma(shape, 1.0 / shape)
    demand = noise_rng.poisson(mean).astype(np.int32).reshape(d, n * m)
    return Demand(demand, price, depth > 0, plan_effect, level, temperature)
