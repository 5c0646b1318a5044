"""Prediction stores: Parquet + DuckDB in the workspace (default), PostgreSQL, Delta Lake."""

from __future__ import annotations

from shelfcast.io.stores.base import PredictionStore
from shelfcast.io.stores.schema import PREDICTION_COLUMNS, PREDICTION_KEY, PREDICTION_SCHEMA, validate_predictions
from shelfcast.settings import Settings

__all__ = [
    "PREDICTION_COLUMNS",
    "PREDICTION_KEY",
    "PREDICTION_SCHEMA",
    "PredictionStore",
    "open_store",
    "validate_predictions",
]


def open_store(settings: Settings, kind: str | None = None) -> PredictionStore:
    """The store chosen in settings (or `kind`), configured from settings."""
    kind = kind or settings.prediction_store
    if kind == "parquet":
        from shelfcast.io.stores.parquet import ParquetStore

        return ParquetStore(settings.workspace / "predictions")
    if kind == "postgres":
        from shelfcast.io.stores.postgres import PostgresStore

        return PostgresStore(settings.postgres_url, table=settings.prediction_table)
    if kind == "delta":
        from shelfcast.io.stores.delta import DeltaStore

        return DeltaStore(settings.workspace / "delta")
    from shelfcast.errors import ConfigError

    raise ConfigError(f"`prediction_store` must be parquet, postgres or delta, got {kind!r}")
