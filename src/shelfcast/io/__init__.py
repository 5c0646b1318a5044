"""Adapters to external systems: the Parquet lake and, later, stores and registries."""
