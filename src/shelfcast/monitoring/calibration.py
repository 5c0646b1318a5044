"""Synthetic retail-like feature samples, to measure the drift tests' false alarm rate and power.

Used by the unit tests and `bench/bench_drift.py`: the same draws, so the
figures the benchmark prints are the ones the tests hold the defaults to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import polars as pl

from shelfcast.monitoring.drift import DriftThresholds, Kind, compare

Shift = Literal["none", "level", "variance", "category_mix", "nulls"]
SHIFTS: tuple[Shift, ...] = ("level", "variance", "category_mix", "nulls")
KINDS: dict[str, Kind] = {
    "units_lag_1": "numeric",  # zero-inflated counts
    "mean_28": "numeric",  # positive, skewed
    "price": "numeric",  # a few price points: heavy ties
    "heavy_tail": "numeric",  # Student t with 2 degrees of freedom
    "promo_share": "numeric",  # mostly exactly 0
    "on_hand": "numeric",  # 10 % unknown
    "constant": "numeric",
    "category": "categorical",  # skewed mix over 8 values
    "store_type": "categorical",
}


def retail_sample(rng: np.random.Generator, n: int, *, shift: Shift = "none") -> pl.DataFrame:
    """`n` independent rows of features shaped like retail ones; `shift` changes one aspect of the process."""
    level = 1.6 if shift == "level" else 1.0
    rate = rng.gamma(2.0, 2.0, n) * level
    units = np.where(rng.random(n) < 0.3, 0.0, rng.poisson(rate)).astype(np.float64)
    mean_28 = rng.lognormal(1.0, 0.8, n) * level
    spread = 2.0 if shift == "variance" else 1.0
    heavy = rng.standard_t(2.0, n) * spread
    price = rng.choice([1.99, 2.49, 2.99, 3.49], n, p=[0.4, 0.3, 0.2, 0.1])
    promo = np.where(rng.random(n) < 0.8, 0.0, rng.beta(2.0, 5.0, n))
    on_hand = rng.poisson(20.0, n).astype(np.float64)
    on_hand[rng.random(n) < (0.4 if shift == "nulls" else 0.1)] = np.nan
    mix = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.07, 0.05, 0.03])
    if shift == "category_mix":
        mix = mix[::-1]
    category = rng.choice([f"c{i}" for i in range(8)], n, p=mix)
    store_type = rng.choice(["A", "B", "C"], n, p=[0.5, 0.3, 0.2])
    return pl.DataFrame(
        {
            "units_lag_1": units,
            "mean_28": mean_28,
            "price": price,
            "heavy_tail": heavy,
            "promo_share": promo,
            "on_hand": on_hand,
            "constant": np.ones(n),
            "category": category,
            "store_type": store_type,
        }
    ).with_columns(pl.col("on_hand").fill_nan(None))


def alarm_rate(
    seeds: int,
    *,
    n_reference: int,
    n_current: int,
    shift: Shift = "none",
    thresholds: DriftThresholds | None = None,
    sample: Callable[[np.random.Generator, int, Shift], pl.DataFrame] | None = None,
) -> float:
    """Share of runs (one per seed) with at least one alarm: the false alarm rate when `shift` is none."""
    draw = sample or (lambda rng, n, s: retail_sample(rng, n, shift=s))
    alarms = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        reference = draw(rng, n_reference, "none")
        current = draw(rng, n_current, shift)
        alarms += compare(reference, current, features=KINDS, thresholds=thresholds).alarm
    return alarms / seeds
