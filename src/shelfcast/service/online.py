"""The request path: every series' stockout features at one origin, encoded once, and predictions on rows of them.

Features come from the same functions as training and batch scoring
(`stockout_features` on the panel as known at the origin), computed for all
series when the service loads, so a request only picks a row of a float32
matrix, patches the values it sent and runs the booster on it: no data
frame per request. A stock count sent with a request moves the on-hand
features through `features.build.on_hand_features`, tested equal to the
batch features.
"""

from __future__ import annotations

import datetime as dt
import reprlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from shelfcast.errors import DataValidationError, UnknownFeatureError, UnknownSeriesError
from shelfcast.features.labels import RULE_THRESHOLD, StockoutDefinition, definition_for, rule_baseline
from shelfcast.features.origin import ON_HAND_FEATURES, on_hand_features, stock_inputs
from shelfcast.features.panel import SERIES, Panel
from shelfcast.models.stockout import StockoutModel, stockout_features_at, window_steps

# Names the reference systems used for an explicit feature payload, and the model's feature each one is. A stock
# count (`inventory`, or `on_hand_now` by name) moves every on-hand feature, exactly as a request's `on_hand` does.
ALIASES: Mapping[str, str] = {
    "price": "price_now",
    "promo": "promo_now",
    "daily_sales": "lag_1",
    "inventory": "on_hand_now",
    "rolling_mean_7": "mean_7",
    "rolling_mean_28": "mean_28",
}
STOCK_COUNT = "on_hand_now"
RECENT_MEAN = "mean_7"  # without ids, what a sent stock count's days of cover divide by


def default_definition(panel: Panel) -> StockoutDefinition:
    """The stockout definition the rule baseline answers with when no model is served (DataValidationError on
    sales-only data)."""
    return definition_for(panel, risk_days=7, min_hours=None)


@dataclass(frozen=True)
class SeriesTable:
    """Every series' features at one origin, encoded for the model, with what a new stock count combines with."""

    origin: dt.date
    index: Mapping[tuple[str, str], int]
    matrix: np.ndarray  # (series, model columns) float32; (series, 0) without a model
    recent_sales: np.ndarray
    safety_stock: np.ndarray  # NaN where unknown
    rule: np.ndarray  # the rule baseline at the origin: 1.0 / 0.0, NaN where it cannot tell
    recent_stockout: np.ndarray  # the rule's "a stockout in the window" half, for a new count


def build_table(
    panel: Panel, model: StockoutModel | None, definition: StockoutDefinition, origin: dt.date
) -> SeriesTable:
    """The table at `origin` from the panel as known then (nothing after the origin is read)."""
    known = panel.as_known_at(origin)
    if model is not None:
        window = window_steps(panel, definition.window)
        features = stockout_features_at(panel, model.spec, origin, window=window)
        keys = features.select(SERIES)
        matrix = model.model.encoder_.transform(features)
    else:
        keys = stock_inputs(known, origin).select(SERIES).sort(SERIES)
        matrix = np.empty((keys.height, 0), dtype=np.float32)
    stock = keys.join(stock_inputs(known, origin), on=list(SERIES), how="left", maintain_order="left")
    rule = _rule(panel, keys, origin, definition, with_stock=True)
    events = _rule(panel, keys, origin, definition, with_stock=False)
    index = {(s, i): n for n, (s, i) in enumerate(keys.iter_rows())}
    return SeriesTable(
        origin=origin,
        index=index,
        matrix=matrix,
        recent_sales=stock["recent_sales"].fill_null(np.nan).to_numpy().astype(np.float64),
        safety_stock=stock["safety_stock"].fill_null(np.nan).to_numpy().astype(np.float64),
        rule=rule,
        recent_stockout=events,
    )


def _rule(
    panel: Panel, keys: pl.DataFrame, origin: dt.date, definition: StockoutDefinition, *, with_stock: bool
) -> np.ndarray:
    source = panel if with_stock or "safety_stock" not in panel.frame.columns else _without(panel, "safety_stock")
    scores = rule_baseline(source, origins=[origin], window=definition.window, definition=definition)
    joined = keys.join(scores.select(*SERIES, "score"), on=list(SERIES), how="left", maintain_order="left")
    return joined["score"].cast(pl.Float64).fill_null(np.nan).to_numpy()


def _without(panel: Panel, column: str) -> Panel:
    return Panel(
        panel.frame.drop(column), panel.freq, panel.known_in_advance, panel.past_only, panel.categorical, panel.extra
    )


@dataclass(frozen=True)
class Scored:
    risk: np.ndarray
    label: np.ndarray
    threshold: float


def _median(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """NaN-ignoring median; NaN, without a warning, where every value is missing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median: np.ndarray = np.nanmedian(values, axis=axis).astype(values.dtype)
    return median


class OnlineScorer:
    """Rows of a `SeriesTable`, patched with what requests sent, scored by the model or the rule baseline."""

    def __init__(self, table: SeriesTable, model: StockoutModel | None) -> None:
        self.table = table
        self.model = model
        self.columns: list[str] = list(model.model.encoder_.columns_) if model is not None else []
        self.position = {c: k for k, c in enumerate(self.columns)}
        categorical = set(model.model.encoder_.vocab_) if model is not None else set()
        # What an explicit payload may set: the numeric features (ids and hashed columns come from the ids).
        self.settable = sorted(c for c in self.columns if c not in categorical)
        self._on_hand = {c: self.position[c] for c in ON_HAND_FEATURES if c in self.position}
        # Without ids, the features a payload does not send are a typical series' (the median over every series at
        # the origin; categories unknown): a row of missing values is one the model never saw in training.
        self._typical = _median(table.matrix, axis=0) if self.columns else np.empty(0, dtype=np.float32)
        self._typical[[self.position[c] for c in categorical]] = np.nan
        self._typical_recent = float(_median(table.recent_sales))
        self._typical_safety = float(_median(table.safety_stock))

    def rows(self, keys: Sequence[tuple[str, str]], *, positions: Sequence[int] | None = None) -> np.ndarray:
        """Row numbers of the series; UnknownSeriesError names the first unknown one and, with `positions` (the
        keys' rows in a batch request), where it and the others are."""
        index = self.table.index
        found = [index.get(k, -1) for k in keys]
        missing = [n for n, k in enumerate(found) if k < 0]
        if missing:
            store, item = keys[missing[0]]
            at = [positions[n] for n in missing] if positions is not None else []
            where = f"row {at[0]}: " if at else ""
            others = f" (and rows {reprlib.repr(at[1:])})" if len(at) > 1 else ""
            raise UnknownSeriesError(
                f"{where}unknown series store_id={store!r} item_id={item!r} on {self.table.origin}{others}: "
                f"not in the workspace's data ({len(index)} series; GET /stockout/alerts lists them)"
            )
        return np.asarray(found, dtype=np.int64)

    def resolve(self, name: str) -> int:
        column = ALIASES.get(name, name)
        if column not in self.settable:
            raise UnknownFeatureError(
                f"unknown feature {name!r}; the served model takes {reprlib.repr(self.settable)} "
                f"(aliases: {', '.join(f'{a}={c}' for a, c in ALIASES.items() if c in self.settable)}; "
                "GET /models lists them all)"
            )
        return self.position[column]

    def matrix(
        self,
        rows: np.ndarray | None,
        *,
        count: int,
        on_hand: np.ndarray | None = None,
        features: Sequence[Mapping[str, float] | None] | None = None,
    ) -> np.ndarray:
        """Model rows: the series' rows (or a typical series' without ids), with counts and explicit values applied.

        A stock count, sent as `on_hand` or as the feature `inventory` (`on_hand_now`), moves every on-hand
        feature the same way; a value sent for one of those by name then overrides what the count gave.
        """
        if rows is not None:
            X = self.table.matrix[rows].copy()
            recent = self.table.recent_sales[rows].copy()
            safety = self.table.safety_stock[rows]
        else:
            X = np.repeat(self._typical[None, :], count, axis=0)
            recent = np.full(count, self._typical_recent)
            safety = np.full(count, self._typical_safety)
        counts = np.full(count, np.nan) if on_hand is None else np.asarray(on_hand, dtype=np.float64).copy()
        explicit: list[tuple[int, int, float]] = []
        for n, values in enumerate(features or ()):
            for name, value in (values or {}).items():
                col = self.resolve(name)
                if self.columns[col] == STOCK_COUNT:
                    counts[n] = value
                    continue
                if rows is None and self.columns[col] == RECENT_MEAN:
                    recent[n] = value
                explicit.append((n, col, value))
        given = ~np.isnan(counts)
        if given.any() and self._on_hand:
            moved = on_hand_features(counts, recent, safety)
            for name, col in self._on_hand.items():
                X[given, col] = moved[name][given].astype(np.float32)
        for n, col, value in explicit:
            X[n, col] = value
        rows_out: np.ndarray = X
        return rows_out

    @staticmethod
    def stock_counts(on_hand: Sequence[float | None], features: Sequence[Mapping[str, float] | None]) -> np.ndarray:
        """Each request's stock count (`on_hand`, or the feature `inventory` / `on_hand_now`), NaN where none."""
        counts = np.array([np.nan if c is None else c for c in on_hand], dtype=np.float64)
        for n, values in enumerate(features):
            for name, value in (values or {}).items():
                if ALIASES.get(name, name) == STOCK_COUNT:
                    counts[n] = value
        return counts

    def score(self, X: np.ndarray) -> Scored:
        """The model's calibrated risk and label for model rows (one thread: the service scales by workers)."""
        if self.model is None:
            raise RuntimeError("no model: use `rule`")
        risk = self.model.predict_proba_matrix(X, threads=1)
        return Scored(risk, risk >= self.model.threshold, self.model.threshold)

    def rule(self, rows: np.ndarray, on_hand: np.ndarray | None = None) -> Scored:
        """The rule baseline: a stockout in the last window, or on hand below safety stock (a sent count wins)."""
        score = self.table.rule[rows].copy()
        if on_hand is not None:
            given = ~np.isnan(on_hand)
            below = on_hand < self.table.safety_stock[rows]  # False where the safety stock is unknown
            events = self.table.recent_stockout[rows]
            score[given] = np.where((events[given] == 1) | below[given], 1.0, 0.0)
        if np.isnan(score).any():
            raise DataValidationError("the rule baseline cannot tell: the series has no stock data in its last window")
        return Scored(score, score >= RULE_THRESHOLD, RULE_THRESHOLD)
