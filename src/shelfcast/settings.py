"""Settings shared by the CLI, jobs and (later) the service.

Precedence, highest first: explicit arguments, environment variables
`SHELFCAST_*`, the TOML file (`./shelfcast.toml`, or the path in
`SHELFCAST_CONFIG`), then the defaults below.
"""

from __future__ import annotations

import datetime as dt
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DuplicatePolicy = Literal["sum", "reject"]
PredictionStoreKind = Literal["parquet", "postgres", "delta"]
CONFIG_ENV = "SHELFCAST_CONFIG"
DEFAULT_CONFIG_FILE = "shelfcast.toml"


class Settings(BaseSettings):
    """Everything a user may configure; see the README's Configuration section."""

    model_config = SettingsConfigDict(env_prefix="SHELFCAST_", extra="forbid", frozen=True)

    workspace: Path = Field(Path(".shelfcast"), description="Folder holding the lake and all outputs.")
    min_date: dt.date = Field(dt.date(1990, 1, 1), description="Earliest date accepted in any table.")
    max_date: dt.date = Field(dt.date(2100, 12, 31), description="Latest date accepted in any table.")
    future_days: int = Field(
        1, ge=0, description="Facts (sales, inventory, movements) may be at most this many days after today."
    )
    duplicates: DuplicatePolicy = Field(
        "sum", description="Rows of an additive table (sales, movements) sharing a key: sum them or reject them."
    )
    lead_time_days: int = Field(7, ge=0, description="Supplier lead time used for reorder advice when none is known.")
    service_level: float = Field(0.95, gt=0.5, lt=1.0, description="Target cycle service level for safety stock.")
    mlflow_tracking_uri: str | None = Field(None, description="MLflow server; default: SQLite in the workspace.")
    postgres_url: str = Field("postgresql://127.0.0.1:5432/test", description="PostgreSQL prediction store.")
    prediction_store: PredictionStoreKind = Field(
        "parquet", description="Where `shelfcast score` writes: workspace Parquet, PostgreSQL or Delta Lake."
    )
    prediction_table: str = Field("predictions", description="PostgreSQL predictions table, TABLE or SCHEMA.TABLE.")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis for live sales and online features.")
    prefect_api_url: str | None = Field(None, description="Prefect server for schedules.")
    gate_tolerance: float = Field(
        0.0, ge=0.0, description="Promotion: how much worse than the champion (a fraction of its score) a model may be."
    )
    gate_demand_max_wape: float | None = Field(
        None, gt=0.0, description="Promotion floor: demand models with a backtest WAPE above this are refused."
    )
    api_key: SecretStr | None = Field(
        None, description="Key for the service's /admin routes (header X-API-Key); unset: they answer 403."
    )
    serve_max_batch: int = Field(1000, gt=0, le=100_000, description="Rows a /predict/batch request may hold.")
    serve_max_body_bytes: int = Field(
        1_048_576, gt=0, description="Largest request body the service reads; bigger ones get 413."
    )
    serve_refresh_seconds: float = Field(
        30.0, gt=0, description="How often the service looks for a newer scoring day in the prediction store."
    )
    gate_stockout_min_f1: float = Field(
        0.0, ge=0.0, le=1.0, description="Promotion floor: stockout models with a backtest F1 below this are refused."
    )
    drift_psi_threshold: float = Field(
        0.2, gt=0.0, description="Drift: a numeric feature alarms only with a PSI at least this (and a significant KS)."
    )
    drift_js_threshold: float = Field(
        0.1,
        gt=0.0,
        le=1.0,
        description="Drift: a categorical feature alarms only with a Jensen-Shannon distance (base 2) at least this.",
    )
    drift_alpha: float = Field(
        0.05,
        gt=0.0,
        lt=1.0,
        description="Drift: family-wise significance level, Bonferroni-corrected over the features tested.",
    )
    monitor_window_days: int = Field(
        28, ge=7, description="Days of origins in the monitoring window (and in the reference saved with a model)."
    )
    accuracy_degradation: float = Field(
        0.2, gt=0.0, description="Live accuracy alert: worse than the champion's backtest by more than this fraction."
    )
    monitor_evidently: bool = Field(
        False,
        description="Monitoring also writes Evidently's data drift report per task (needs the `reports` extra; "
        "several MB and seconds each).",
    )
    policy_min_live_days: int = Field(
        14, ge=1, description="Policy: days of live accuracy needed before it retrains or falls back on accuracy."
    )
    policy_cooldown_hours: float = Field(
        20.0, ge=0.0, description="Policy: no retrain starts less than this many hours after the last one."
    )
    policy_fresh_days: float = Field(
        14.0, ge=0.0, description="Policy: a champion promoted less than this many days ago may be rolled back."
    )
    policy_rollback_margin: float = Field(
        0.1, ge=0.0, description="Policy: roll back when the fresh champion does worse live by more than this fraction."
    )
    policy_fallback_relative: float = Field(
        1.2,
        gt=1.0,
        description="Policy: fall back to the rule baseline when the demand champion's live WAPE is at least this many "
        "times the seasonal naive's on the same rows.",
    )

    @model_validator(mode="after")
    def _check_dates(self) -> Settings:
        if self.min_date >= self.max_date:
            raise ValueError(f"`min_date` ({self.min_date}) must be before `max_date` ({self.max_date})")
        return self

    @property
    def lake_dir(self) -> Path:
        return self.workspace / "lake"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get(CONFIG_ENV, DEFAULT_CONFIG_FILE))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests call `get_settings.cache_clear()` to re-read."""
    return Settings()
