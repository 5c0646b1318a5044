"""The prediction store protocol every backend follows, and the StoreError its backends' failures become."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import polars as pl

from shelfcast.errors import StoreError
from shelfcast.redact import redact


class PredictionStore(Protocol):
    """Writes one scoring day's predictions, replacing that day; reads them back."""

    @property
    def location(self) -> str:
        """Where the predictions go, for messages (a folder, a table, a URL)."""
        ...

    def check(self) -> None:
        """Fail early (StoreError) when the store cannot be written, before any model runs."""
        ...

    def write(self, predictions: pl.DataFrame, *, scored_on: dt.date) -> int:
        """Replace the predictions of `scored_on` with these rows atomically; returns the rows written."""
        ...

    def read(self, *, scored_on: dt.date | None = None) -> pl.DataFrame:
        """The stored predictions (of one scoring day, or all), in schema order, sorted by key."""
        ...

    def latest_day(self) -> dt.date | None:
        """The latest scoring day stored (None when empty), without reading the rows; StoreError if unreachable."""
        ...


class _Located(Protocol):
    @property
    def location(self) -> str: ...


_S = TypeVar("_S", bound=_Located)
_P = ParamSpec("_P")
_R = TypeVar("_R")
_Method = Callable[Concatenate[_S, _P], _R]


def store_errors(*errors: type[Exception]) -> Callable[[_Method[_S, _P, _R]], _Method[_S, _P, _R]]:
    """A store method whose backend failures (`errors`) are raised as StoreError naming the store.

    Callers (the score job, the service's refresh and /ready) then catch
    StoreError, not every exception; a frame refused by the schema check stays
    a DataValidationError.
    """

    def wrap(method: _Method[_S, _P, _R]) -> _Method[_S, _P, _R]:
        @wraps(method)
        def guarded(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return method(self, *args, **kwargs)
            except errors as exc:
                lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
                reason = lines[0][:300] if lines else type(exc).__name__
                raise StoreError(f"{self.location}: {redact(reason)}") from exc

        return guarded

    return wrap
