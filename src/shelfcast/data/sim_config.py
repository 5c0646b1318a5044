"""Configuration of the retail-chain simulator (frozen, strict pydantic models)."""

from __future__ import annotations

import datetime as dt
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

DriftKind = Literal["level", "promo", "seasonality"]
Freq = Literal["D", "W"]


class DriftSpec(BaseModel):
    """A change of the demand process from `start` on, for monitoring tests.

    `magnitude` means, by `kind`:
    - "level": demand is multiplied by `magnitude` (1.3 = +30 %).
    - "promo": promotions start `magnitude` times as often, their discount is
      multiplied by `magnitude` (capped at 70 %) and their extra in-store lift
      grows by the same factor.
    - "seasonality": the weekly profile is blended towards one whose peak is
      three days later (weight `magnitude`, at most 1) and the yearly
      amplitude grows by a factor 1 + `magnitude`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: DriftKind
    start: dt.date
    magnitude: float = Field(gt=0.0, le=10.0)
    share: float = Field(default=1.0, gt=0.0, le=1.0, description="Fraction of items affected.")

    @model_validator(mode="after")
    def _check_magnitude(self) -> Self:
        if self.kind == "seasonality" and self.magnitude > 1.0:
            raise ValueError(f"`magnitude` must be in (0, 1] for seasonality drift, got {self.magnitude}")
        return self


class SimConfig(BaseModel):
    """Everything that determines a simulated chain; the same config gives identical frames.

    The chain is always simulated daily; `freq="W"` then aggregates to weeks
    dated by their Monday (see `sim_weekly` for how each column aggregates).
    `safety_factor` is the z of the stores' safety stock: the default 0.75
    leaves about 3 % of store-item-days with some stockout, 0 about 8 %, 2 under 1 %.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(default=0, ge=0)
    n_stores: int = Field(default=10, gt=0, le=999)
    n_items: int = Field(default=50, gt=0, le=99_999)
    n_days: int = Field(default=730, gt=0, le=20_000)
    start_date: dt.date = dt.date(2022, 1, 3)
    freq: Freq = "D"
    n_regions: int = Field(default=4, gt=0, le=8)

    # Demand.
    min_base_demand: float = Field(default=0.05, gt=0.0, description="Slowest item, units/day.")
    max_base_demand: float = Field(default=150.0, gt=0.0, description="Fastest item, units/day.")
    trend_sd_per_year: float = Field(default=0.08, ge=0.0, le=1.0, description="Spread of item growth rates.")
    promo_rate_per_year: float = Field(default=6.0, ge=0.0, le=52.0, description="Promotions per item and year.")
    price_changes_per_year: float = Field(default=1.0, ge=0.0, le=52.0, description="Regular price changes per item.")

    # Replenishment.
    safety_factor: float = Field(default=0.75, ge=0.0, le=5.0, description="z of the safety stock.")
    order_cycle_days: int = Field(default=7, gt=0, le=90, description="Days of demand one order covers.")
    min_lead_time_days: int = Field(default=2, gt=0, le=30)
    max_lead_time_days: int = Field(default=6, gt=0, le=30)
    supplier_delay_prob: float = Field(default=0.03, ge=0.0, le=1.0, description="Share of orders that arrive late.")
    max_supplier_delay_days: int = Field(default=5, ge=0, le=30)
    forecast_error_sd: float = Field(
        default=0.15, ge=0.0, le=2.0, description="Log-sd of each series' persistent forecast bias."
    )
    transfer_prob: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Chance a possible transfer (short store, surplus store) happens."
    )

    drift: DriftSpec | None = None

    @model_validator(mode="after")
    def _check_ranges(self) -> Self:
        if self.max_base_demand < self.min_base_demand:
            raise ValueError(
                f"`max_base_demand` must be >= `min_base_demand` ({self.min_base_demand}), got {self.max_base_demand}"
            )
        if self.max_lead_time_days < self.min_lead_time_days:
            raise ValueError(
                f"`max_lead_time_days` must be >= `min_lead_time_days` ({self.min_lead_time_days}), "
                f"got {self.max_lead_time_days}"
            )
        if self.drift is not None and not self.start_date <= self.drift.start <= self.end_date:
            raise ValueError(
                f"`drift.start` must fall within {self.start_date}..{self.end_date}, got {self.drift.start}"
            )
        return self

    @property
    def end_date(self) -> dt.date:
        """Last simulated day."""
        return self.start_date + dt.timedelta(days=self.n_days - 1)

    @property
    def n_series(self) -> int:
        """Number of store-item series."""
        return self.n_stores * self.n_items
