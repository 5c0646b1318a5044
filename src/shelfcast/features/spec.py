"""The feature spec: everything needed to rebuild a model's features, stored with the model."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Censoring = Literal["none", "mask", "impute"]


class FeatureSpec(BaseModel):
    """Which features to compute; defaults follow the data's frequency (see `for_freq`).

    Lags and rolling windows count steps of the panel (days or weeks). Features
    at the *origin* (the forecast cutoff) use only rows up to the origin;
    features at the *target* period use only the calendar and columns known in
    advance.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = 1
    freq: Literal["D", "W"] = "D"
    season: int = Field(7, gt=1, description="Steps in the main seasonal cycle (7 days, or 52 weeks).")
    year: int = Field(364, gt=1, description="Steps in a year that keep the weekday (364 days, 52 weeks).")
    lags: tuple[int, ...] = (1, 2, 3, 7, 14, 28)
    windows: tuple[int, ...] = (7, 28, 91, 364)
    ewm_alphas: tuple[float, ...] = (0.05, 0.2)
    seasonal_profiles: tuple[int, ...] = (1, 4, 13, 52)
    calendar: bool = True
    events: bool = True
    price_promo: bool = True
    # Whether price and promo of the target period are known (a promotion plan).
    # Off by default: at forecast time nobody has them unless they are supplied.
    future_price_promo: bool = False
    inventory: bool = True
    exogenous_known: tuple[str, ...] = ()
    exogenous_past: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ("store_id", "item_id")
    hash_buckets: int | None = Field(None, gt=1, description="Hash ids into this many buckets (high cardinality).")
    crosses: tuple[tuple[str, str], ...] = ()
    censoring: Censoring = "impute"

    @model_validator(mode="after")
    def _check(self) -> FeatureSpec:
        for name in ("lags", "windows", "seasonal_profiles"):
            values = getattr(self, name)
            if any(v < 1 for v in values):
                raise ValueError(f"`{name}` must hold positive step counts, got {values}")
        if any(not 0 < a < 1 for a in self.ewm_alphas):
            raise ValueError(f"`ewm_alphas` must lie in (0, 1), got {self.ewm_alphas}")
        return self

    @classmethod
    def for_freq(cls, freq: str, **overrides: object) -> FeatureSpec:
        """Sensible defaults for daily or weekly data."""
        if freq == "W":
            base: dict[str, object] = {
                "freq": "W",
                "season": 52,
                "year": 52,
                "lags": (1, 2, 3, 4, 8, 13, 26, 52),
                "windows": (4, 13, 26, 52),
                "ewm_alphas": (0.1, 0.3),
                "seasonal_profiles": (1, 2, 3),
            }
        else:
            base = {"freq": "D"}
        return cls.model_validate({**base, **overrides})

    @property
    def history_needed(self) -> int:
        """Steps of history the widest feature looks back over."""
        return max([*self.lags, *self.windows, self.year + 1, self.season * max(self.seasonal_profiles, default=1)])
