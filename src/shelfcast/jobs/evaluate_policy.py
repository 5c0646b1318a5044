"""Job: replay a simulated chain's last weeks under shelfcast's reorder advice, the chain's rule and a classic (s, S).

The chain is simulated, so its true (uncensored) demand is known. The
replay covers `days` days ending early enough that every forecast window
lies inside the simulation. shelfcast's forecaster
(`quantile_forecast.forecast_with_quantiles`, fitted on the sales the chain
recorded up to the cutoff) is refitted every `refit_days` days; the classic
policy re-estimates its moving average every day from the same recorded
sales; the chain's rule is fixed at the start. Every policy starts from the
chain's stock at the start, faces the same demand and the same supplier
delays, and is measured after a warm-up of the longest lead time plus a
review period.

With `calibrate`, shelfcast's lead-time demand is calibrated conformally:
one more forecast, issued a refit before the first replayed day, gives the
first refit earlier lead-time sums to score against the recorded sales;
each refit uses the scores of every review day whose sums its cutoff knew,
within quartiles of sales velocity (`policy_levels.calibrated_z`).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shelfcast.data.simulator import SimConfig, SimResult, simulate
from shelfcast.errors import ConfigError
from shelfcast.features.panel import SERIES
from shelfcast.models.backtest import Progress
from shelfcast.models.data import model_data
from shelfcast.models.policy_eval import Chain, Levels, policy_figures, replay
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
from shelfcast.models.quantile_forecast import forecast_with_quantiles
from shelfcast.models.replenish import DEFAULT_REVIEW_PERIOD_DAYS

logger = logging.getLogger(__name__)

SHELFCAST, CLASSIC, CHAIN = "shelfcast", "moving_average", "chain_rule"
POLICIES = (SHELFCAST, CLASSIC, CHAIN)
CALIBRATION_GROUPS = 4  # quartiles of sales velocity, calibrated apart
CLASSIC_BEYOND = (0.995, 0.999, 0.9999)  # the classic's extra settings for the comparison at equal service
SWEEP = tuple(round(0.90 + 0.01 * k, 2) for k in range(10))


class PolicyEvalConfig(BaseModel):
    """How the replay runs: its length, the refits, the review period and the service settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service_level: float = Field(0.95, description="The service setting the target is judged at.")
    sweep: tuple[float, ...] = SWEEP
    days: int = Field(112, ge=28, le=730, description="Days replayed (a warm-up included).")
    refit_days: int = Field(28, ge=0, description="Days between refits of the forecaster; 0: fit once.")
    review_days: int = Field(DEFAULT_REVIEW_PERIOD_DAYS, ge=1, le=28)
    window: int = Field(28, ge=2, le=365, description="Days of sales in the classic moving average.")
    buffer_days: float = Field(2.0, ge=0.0, le=30.0, description="The chain rule's cover beyond the lead time.")
    seed: int = Field(0, ge=0, description="Seed of the supplier delays.")
    calibrate: bool = Field(True, description="Calibrate the lead-time demand on the previous refit's sums.")

    @field_validator("service_level")
    @classmethod
    def _service(cls, value: float) -> float:
        if not 0.5 < value < 1.0:
            raise ValueError(f"must be in (0.5, 1), e.g. 0.95 for 95 %, got {value}")
        return value

    @field_validator("sweep")
    @classmethod
    def _sweep(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        bad = [v for v in value if not 0.5 < v < 1.0]
        if bad or not value:
            raise ValueError(f"service settings must be in (0.5, 1), got {list(value)}")
        return tuple(sorted(set(value)))


@dataclass(frozen=True)
class PolicyEvalReport:
    """Figures per policy at the service setting (`rows`), the trade-off curve, and how the replay ran."""

    rows: list[dict[str, Any]]
    curve: list[dict[str, Any]]
    target: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"policies": self.rows, "curve": self.curve, "target": self.target, "meta": self.meta}


def _matrix(frame: pl.DataFrame, column: str, keys: pl.DataFrame, dates: list[dt.date]) -> np.ndarray:
    """(dates, series) values of `column`, series in the order of `keys` (0 where a row is missing)."""
    grid = keys.join(pl.DataFrame({"date": dates}), how="cross")
    joined = grid.join(frame.select(*SERIES, "date", column), on=[*SERIES, "date"], how="left", maintain_order="left")
    values = joined[column].fill_null(0.0).cast(pl.Float64).to_numpy()
    return values.reshape(keys.height, len(dates)).T.copy()


def _dates(first: dt.date, count: int) -> list[dt.date]:
    return [first + dt.timedelta(days=k) for k in range(count)]


def _chain(result: SimResult, keys: pl.DataFrame, dates: list[dt.date], *, seed: int) -> Chain:
    """True demand, lead times, packs, the stock at the start and the supplier delays drawn as the simulator does."""
    sim = result.config
    demand = _matrix(result.truth, "demand", keys, dates)
    lead = keys.join(result.stores.select("store_id", "lead_time_days"), on="store_id", how="left")
    pack = keys.join(result.items.select("item_id", "pack_size"), on="item_id", how="left")
    before = [dates[0] - dt.timedelta(days=1)]
    stock = (
        _matrix(result.inventory, "on_hand", keys, before)[0] + _matrix(result.inventory, "on_order", keys, before)[0]
    )
    rng = np.random.default_rng(seed)
    late = rng.random(demand.shape) < sim.supplier_delay_prob
    size = rng.integers(1, sim.max_supplier_delay_days + 1, size=demand.shape) if sim.max_supplier_delay_days else 0
    return Chain(
        demand=demand,
        lead_time=lead["lead_time_days"].to_numpy().astype(np.int64),
        delay=np.where(late, size, 0).astype(np.int64),
        pack=pack["pack_size"].to_numpy().astype(np.int64),
        on_hand=stock,
    )


def _forecasts(
    result: SimResult, *, refits: list[dt.date], horizon: int, progress: Progress | None
) -> tuple[pl.DataFrame, list[str]]:
    """shelfcast's forecasts with quantiles from each refit cutoff, tagged with the cutoff (`issued`)."""
    data = model_data(result.tables(), freq="D", exogenous_roles=dict(result.exogenous_roles))
    frames, models = [], []
    for k, cutoff in enumerate(refits):
        if progress:
            progress(f"forecast from {cutoff} ({k + 1}/{len(refits)})", k, len(refits))
        made = forecast_with_quantiles(data, cutoff=cutoff, horizon=horizon)
        models.append(str(made["model"][0]))
        frames.append(
            made.select(*SERIES, "date", "forecast", "p10", "p90").with_columns(pl.lit(cutoff).alias("issued"))
        )
    return pl.concat(frames), models


def _cover(config: PolicyEvalConfig) -> int:
    """Days after the lead time an order must cover: ordered after a review day's sales, it must last until the next
    review's order arrives, which is before the day L + R opens, so L + R - 1 days in all."""
    return config.review_days - 1


def _scores(
    result: SimResult,
    stats: pl.DataFrame,
    *,
    keys: pl.DataFrame,
    dates: list[dt.date],
    lead: np.ndarray,
    config: PolicyEvalConfig,
    tail: int,
) -> np.ndarray:
    """Standardised errors of every review day's lead-time sums against the sales the chain recorded."""
    sales = _matrix(result.sales, "units", keys, _dates(dates[0], len(dates) + tail))
    actual_lt = span_sums(sales, lead)[: len(dates)]
    actual_ltr = span_sums(sales, lead, _cover(config))[: len(dates)]
    return lead_time_scores(stats, actual_lt, actual_ltr)


def _calibration(
    scores: np.ndarray, rate: np.ndarray, service_level: float, *, days: int, step: int, before: int, tail: int
) -> np.ndarray:
    """(days, 2, series) calibrated z per replayed day, from the review days whose sums its refit already knew.

    Within quartiles of the series' recorded daily sales up to the refit (`rate`: cumulative sums, one row a day).
    """
    z = np.empty((days, 2, scores.shape[2]))
    for start in range(0, days, step):
        known = max(before + start - tail + 1, 1)  # review days e with e + L + R <= the refit's cutoff
        groups = velocity_groups(rate[before + start], CALIBRATION_GROUPS)
        z[start : start + step] = calibrated_z(scores[:, :known], service_level, groups=groups)[None]
    return z


def _row(policy: str, setting: float | None, figures: dict[str, float]) -> dict[str, Any]:
    return {"policy": policy, "service_setting": setting, **figures}


def _interpolate(curve: list[dict[str, Any]], x_key: str, y_key: str, x: float) -> float | None:
    """y at x along a curve sorted by x (None outside its range)."""
    points = sorted((p[x_key], p[y_key]) for p in curve)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    if not xs or x < xs[0] or x > xs[-1]:
        return None
    return float(np.interp(x, xs, ys))


def _target(
    rows: list[dict[str, Any]], classic: list[dict[str, Any]], service_level: float, curve: list[dict[str, Any]]
) -> dict[str, Any]:
    """The target: shelfcast within 2 points of its setting, with less stock than the classic at that service (or
    more service at that stock); `classic` is the classic policy's curve, swept past 99 % so it can reach it."""
    ours = next(r for r in rows if r["policy"] == SHELFCAST)
    realised, stock = ours["cycle_service_level"], ours["avg_on_hand"]
    classic_stock = _interpolate(classic, "cycle_service_level", "avg_on_hand", realised)
    classic_service = _interpolate(classic, "avg_on_hand", "cycle_service_level", stock)
    best = max(classic, key=lambda r: r["cycle_service_level"])
    # Less stock at the same service, or the classic never reaching this service even with more stock than ours.
    leaner = (classic_stock is not None and stock < classic_stock) or (
        best["cycle_service_level"] < realised and best["avg_on_hand"] >= stock
    )
    better = classic_service is not None and realised > classic_service
    classic_fill = _interpolate(classic, "avg_on_hand", "fill_rate", stock)
    ahead = [
        r["cycle_service_level"] > at
        for r in curve
        if r["policy"] == SHELFCAST
        and (at := _interpolate(classic, "avg_on_hand", "cycle_service_level", r["avg_on_hand"])) is not None
    ]
    within = abs(realised - service_level) <= 0.02
    return {
        "service_setting": service_level,
        "realised_cycle_service": realised,
        "within_2_points": within,
        "avg_on_hand": stock,
        "classic_avg_on_hand_at_same_service": classic_stock,
        "classic_service_at_same_stock": classic_service,
        "fill_rate": ours["fill_rate"],
        "classic_fill_rate_at_same_stock": classic_fill,
        "classic_best": {k: best[k] for k in ("service_setting", "cycle_service_level", "avg_on_hand", "fill_rate")},
        "stock_saving": None if classic_stock is None else 1.0 - stock / classic_stock,
        "curve_points_ahead_at_same_stock": f"{sum(ahead)}/{len(ahead)}",
        "met": bool(within and (leaner or better)),
    }


def run_evaluate_policy(
    sim: SimConfig, config: PolicyEvalConfig, *, progress: Progress | None = None
) -> PolicyEvalReport:
    """Simulate the chain, forecast, and replay every policy on the same days (see the module docstring)."""
    started = time.perf_counter()
    # The last forecast window (the longest lead time plus a review period) must end within the simulation.
    tail = sim.max_lead_time_days + config.review_days
    first = sim.end_date - dt.timedelta(days=tail + config.days - 1)
    if (first - sim.start_date).days < max(config.window, 120):
        raise ConfigError(
            f"the chain's {sim.n_days} days leave too little history before a replay of {config.days} days; "
            "simulate more days or replay fewer"
        )
    result = simulate(sim)
    keys = result.stores.select("store_id").join(result.items.select("item_id"), how="cross").sort(SERIES)
    dates = _dates(first, config.days)
    chain = _chain(result, keys, dates, seed=config.seed)
    warmup = tail

    step = config.refit_days or config.days
    refits = dates[::step]
    # Calibration needs a forecast whose lead-time sums are known before the first review: one issued a refit earlier.
    before = step if config.calibrate else 0
    issued = _dates(first - dt.timedelta(days=before), before)[:1] + refits
    forecasts, chosen = _forecasts(result, refits=issued, horizon=step + tail, progress=progress)
    lead_frame = keys.with_columns(pl.Series("lead_time_days", chain.lead_time))
    span = _dates(first - dt.timedelta(days=before), before + config.days)
    stats = lead_time_stats(forecasts, keys=keys, dates=span, lead_time=lead_frame, review_days=_cover(config))
    z_days = None
    if config.calibrate:
        scores = _scores(result, stats, keys=keys, dates=span, lead=chain.lead_time, config=config, tail=tail)
        rate = np.cumsum(_matrix(result.sales, "units", keys, span), axis=0)
    stats = stats.filter(pl.col("day") >= before).with_columns(pl.col("day") - before)
    history = _matrix(result.sales, "units", keys, _dates(first - dt.timedelta(days=config.window), config.window))
    recorded = np.vstack([history, _matrix(result.sales, "units", keys, dates)])

    def measure(levels: Levels) -> dict[str, float]:
        return policy_figures(chain, replay(chain, levels), first_day=warmup)

    curve: list[dict[str, Any]] = []
    settings = sorted({*config.sweep, config.service_level})
    at_target: dict[str, dict[str, Any]] = {}
    for k, setting in enumerate(settings):
        if progress:
            progress(f"replaying at {setting:.0%}", k, len(settings))
        if config.calibrate:
            z_days = _calibration(scores, rate, setting, days=chain.days, step=step, before=before, tail=tail)
        ours = advice(
            stats,
            service_level=setting,
            review_days=config.review_days,
            days=chain.days,
            series=chain.series,
            z=z_days,
            cover_days=_cover(config),
        )
        classic = moving_average(
            recorded,
            lead_time=chain.lead_time,
            safety_factor=safety_factor(setting),
            review_days=config.review_days,
            window=config.window,
        )
        for name, levels in ((SHELFCAST, ours), (CLASSIC, classic)):
            row = _row(name, setting, measure(levels))
            if setting in config.sweep:
                curve.append(row)
            if setting == config.service_level:
                at_target[name] = row
    classic_curve = [r for r in curve if r["policy"] == CLASSIC]
    for setting in CLASSIC_BEYOND:  # the classic's safety factor further, until it may reach shelfcast's service
        classic = moving_average(
            recorded,
            lead_time=chain.lead_time,
            safety_factor=safety_factor(setting),
            review_days=config.review_days,
            window=config.window,
        )
        classic_curve.append(_row(CLASSIC, setting, measure(classic)))
    average = history.mean(axis=0)
    rule = chain_rule(
        average,
        lead_time=chain.lead_time,
        days=chain.days,
        buffer_days=config.buffer_days,
        review_days=config.review_days,
    )
    at_target[CHAIN] = _row(CHAIN, None, measure(rule))
    rows = [at_target[p] for p in POLICIES]
    meta = {
        "chain": sim.model_dump(mode="json"),
        "config": config.model_dump(mode="json"),
        "first_date": dates[0].isoformat(),
        "last_date": dates[-1].isoformat(),
        "measured_from": dates[warmup].isoformat(),
        "series": chain.series,
        "refits": [d.isoformat() for d in issued],
        "calibration_forecast": issued[0].isoformat() if config.calibrate else None,
        "models": chosen,
        "seconds": round(time.perf_counter() - started, 1),
    }
    logger.info("policy replay of %d series over %d days in %.1f s", chain.series, chain.days, meta["seconds"])
    target = _target(rows, classic_curve, config.service_level, curve)
    return PolicyEvalReport(rows, curve, target, {**meta, "classic_beyond": classic_curve[-len(CLASSIC_BEYOND) :]})
