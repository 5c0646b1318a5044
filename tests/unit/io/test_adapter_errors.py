"""Adapters raise their own error types: TrackingError for MLflow, StoreError for prediction stores."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from shelfcast.errors import (
    DataValidationError,
    ModelFormatError,
    NotFittedError,
    RebacktestError,
    ShelfcastError,
    StoreError,
    TrackingError,
    UnknownFeatureError,
    UnknownSeriesError,
)
from shelfcast.io.stores.parquet import PART, ParquetStore
from shelfcast.io.tracking import mlflow_errors, redact
from shelfcast.service.predictions import PredictionView
from shelfcast.settings import Settings

DAY = dt.date(2024, 3, 1)


def test_every_error_is_a_shelfcast_error_with_the_right_builtin() -> None:
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)
    for error in (ModelFormatError, RebacktestError, UnknownFeatureError):
        assert issubclass(error, ShelfcastError) and issubclass(error, ValueError)
    assert issubclass(UnknownSeriesError, ShelfcastError) and issubclass(UnknownSeriesError, LookupError)
    assert issubclass(NotFittedError, ShelfcastError)


def test_mlflow_failures_become_a_tracking_error_naming_the_uri_without_its_password() -> None:
    from mlflow.exceptions import MlflowException

    assert redact("http://user:pw@host:5000") == "http://user:***@host:5000"
    assert redact("sqlite:///tmp/x.db") == "sqlite:///tmp/x.db"
    for failure in (MlflowException("API request failed\nwith a long trace"), ConnectionRefusedError(111, "refused")):
        expected = pytest.raises(TrackingError, match=r"^MLflow at http://user:\*\*\*@host:5000: ")
        with expected as caught, mlflow_errors("http://user:pw@host:5000"):
            raise failure
        assert "\n" not in str(caught.value) and caught.value.__cause__ is failure


def test_a_bug_inside_an_mlflow_call_is_not_taken_for_an_unreachable_registry() -> None:
    with pytest.raises(KeyError), mlflow_errors("sqlite:///x.db"):
        raise KeyError("a bug")


def _damaged(root: Path) -> ParquetStore:
    store = ParquetStore(root)
    store.partition(DAY).parent.mkdir(parents=True)
    store.partition(DAY).write_bytes(b"PAR1 not really parquet")
    return store


def test_a_damaged_parquet_store_raises_a_store_error_naming_it(tmp_path: Path) -> None:
    store = _damaged(tmp_path / "predictions")
    with pytest.raises(StoreError, match=rf"^{tmp_path / 'predictions'}: "):
        store.read(scored_on=DAY)
    assert store.latest_day() == DAY  # the day is in the path: no file is read


def test_a_frame_refused_by_the_schema_stays_a_data_validation_error(tmp_path: Path) -> None:
    import polars as pl

    with pytest.raises(DataValidationError):
        ParquetStore(tmp_path).write(pl.DataFrame({"store_id": ["S1"]}), scored_on=DAY)
    assert not (tmp_path / f"scored_on={DAY}" / PART).exists()


def test_the_service_view_reports_a_damaged_store_and_does_not_raise(tmp_path: Path) -> None:
    store = _damaged(tmp_path / "predictions")
    view = PredictionView(Settings(workspace=tmp_path), store=store)
    assert view.refresh() is False
    assert view.day is None and view.problem is not None and "prediction store" in view.problem
