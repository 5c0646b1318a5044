"""Why a series is at risk: each feature's push on the stockout model's score, in words a store manager reads.

Contributions come from the boosters themselves (LightGBM `pred_contrib`, XGBoost `pred_contribs`: TreeSHAP),
in the booster's raw log-odds space, where they add up with the bias to the raw margin. The calibrated risk is
an increasing map of that margin, so a feature that pushes the margin up pushes the risk up too (by an amount
the calibration decides). Sentences are built from the row's own values: the same row the risk comes from.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from shelfcast.models.forecaster import GBMForecaster
from shelfcast.models.stockout import StockoutModel

Direction = Literal["up", "down"]
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True)
class Reason:
    """One feature's push on the risk: its value, its contribution (log-odds) and a sentence."""

    feature: str
    value: float | None  # None: missing in the row
    contribution: float
    direction: Direction
    text: str


@dataclass(frozen=True)
class Explanation:
    """The calibrated risk of one row and the features that pushed it up and down most."""

    risk: float
    threshold: float
    base_value: float  # the booster's bias (log-odds): the margin before any feature pushes it
    margin: float  # base_value plus every feature's contribution
    up: list[Reason]  # largest push first
    down: list[Reason]

    @property
    def label(self) -> bool:
        return self.risk >= self.threshold

    @property
    def reasons(self) -> list[Reason]:
        """Every reason kept, strongest first whichever its direction."""
        return sorted([*self.up, *self.down], key=lambda r: -abs(r.contribution))


def _matrix(X: np.ndarray) -> np.ndarray:
    rows = np.asarray(X, dtype=np.float32)
    return rows.reshape(1, -1) if rows.ndim == 1 else rows


def _dmatrix(model: GBMForecaster, X: np.ndarray) -> object:
    import xgboost as xgb

    categorical = model.encoder_.categorical_indices
    types = ["c" if i in categorical else "q" for i in range(X.shape[1])]
    return xgb.DMatrix(X, feature_names=model.encoder_.columns_, feature_types=types, enable_categorical=True)


def contributions(model: GBMForecaster, X: np.ndarray) -> np.ndarray:
    """Per-feature contributions (rows x (features + 1)) in the booster's raw space, the bias in the last column.

    Each row sums to the booster's raw margin (`margin`).
    """
    rows = _matrix(X)
    if model.engine == "lightgbm":
        out = model.model_.predict(rows, pred_contrib=True, num_threads=1)
    else:
        out = model.model_.predict(_dmatrix(model, rows), pred_contribs=True)
    return np.asarray(out, dtype=np.float64).reshape(rows.shape[0], rows.shape[1] + 1)


def margin(model: GBMForecaster, X: np.ndarray) -> np.ndarray:
    """The booster's raw scores (log-odds for a classifier) before its link function."""
    rows = _matrix(X)
    if model.engine == "lightgbm":
        out = model.model_.predict(rows, raw_score=True, num_threads=1)
    else:
        out = model.model_.predict(_dmatrix(model, rows), output_margin=True)
    return np.asarray(out, dtype=np.float64)


def explain(model: StockoutModel, X_row: np.ndarray, *, top: int = 5) -> Explanation:
    """The risk of one encoded row (the booster's encoder's columns) and its `top` pushes up and down."""
    if top < 1:
        raise ValueError(f"`top` must be a positive integer, got {top}")
    row = _matrix(X_row)
    if row.shape != (1, len(model.model.encoder_.columns_)):
        raise ValueError(
            f"`X_row` must be one row of {len(model.model.encoder_.columns_)} encoded features, got shape {row.shape}"
        )
    contrib = contributions(model.model, row)[0]
    columns = model.model.encoder_.columns_
    values = {c: _value(v) for c, v in zip(columns, row[0], strict=True)}
    words = Phrases(values, model.model.encoder_.vocab_, freq=model.spec.freq)
    reasons = [
        Reason(c, values[c], float(w), "up" if w > 0 else "down", words.text(c))
        for c, w in zip(columns, contrib[:-1], strict=True)
        if w != 0
    ]
    up = sorted((r for r in reasons if r.direction == "up"), key=lambda r: -r.contribution)[:top]
    down = sorted((r for r in reasons if r.direction == "down"), key=lambda r: r.contribution)[:top]
    risk = float(model.predict_proba_matrix(row, threads=1)[0])
    return Explanation(risk, model.threshold, float(contrib[-1]), float(contrib.sum()), up, down)


def _value(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


def _num(v: float) -> str:
    """A value as a manager reads it: whole numbers bare, others to one decimal, large ones with separators."""
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if float(v).is_integer():
        return f"{int(v)}"
    return f"{v:.1f}"


def _plural(n: float, word: str) -> str:
    return f"{_num(n)} {word}" + ("" if n == 1 else "s")


class Phrases:
    """Sentences for the features of one row; `values` holds every feature of the row (None where missing)."""

    def __init__(
        self, values: Mapping[str, float | None], vocab: Mapping[str, Mapping[str, int]], *, freq: str
    ) -> None:
        self.values = values
        self.labels = {c: {code: name for name, code in codes.items()} for c, codes in vocab.items()}
        self.unit = "week" if freq == "W" else "day"
        self.days = 7 if freq == "W" else 1

    def text(self, feature: str) -> str:
        value = self.values.get(feature)
        for prefix, make in self._rules():
            if feature == prefix or (prefix.endswith("_") and feature.startswith(prefix)):
                said = make(feature, value)
                if said is not None:
                    return said
        return f"{feature} = {'unknown' if value is None else _num(value)}"

    def _rules(self) -> list[tuple[str, Callable[[str, float | None], str | None]]]:
        return [
            ("store_id", lambda f, v: self._own(v, "store")),
            ("item_id", lambda f, v: self._own(v, "item")),
            ("hash_store_id", lambda f, v: "this store's own history"),
            ("hash_item_id", lambda f, v: "this item's own history"),
            (
                "cross_",
                lambda f, v: (
                    "this " + " x ".join(p.removesuffix("_id") for p in f[6:].split("_id_")) + "'s own history"
                ),
            ),
            ("mean_", self._mean),
            ("lag_", self._lag),
            ("std_", lambda f, v: self._window(f, v, "sales swung by about {v} units a {unit} over the last {span}")),
            ("min_", lambda f, v: self._window(f, v, "sold at least {v} units a {unit} over the last {span}")),
            ("max_", lambda f, v: self._window(f, v, "sold at most {v} units a {unit} over the last {span}")),
            ("zero_share_", self._zero_share),
            (
                "ewm_",
                lambda f, v: None if v is None else f"recent sales about {_num(v)} a {self.unit} (latest weigh most)",
            ),
            (
                "expanding_mean",
                lambda f, v: None if v is None else f"sold {_num(v)} a {self.unit} over its whole history",
            ),
            ("age", lambda f, v: None if v is None else f"{self._span(int(v) + 1)} of history"),
            ("price_now", self._price),
            ("price_mean_28", lambda f, v: None if v is None else f"usual price {v:.2f} (4-week average)"),
            ("promo_now", lambda f, v: None if v is None else ("on promotion" if v > 0 else "not on promotion")),
            ("promo_share_28", lambda f, v: None if v is None else f"on promotion {v:.0%} of the last 4 weeks"),
            ("steps_since_promo", lambda f, v: self._since(v, "promotion")),
            ("on_hand_now", lambda f, v: None if v is None else f"{_plural(v, 'unit')} on hand"),
            ("days_of_cover", self._cover),
            ("on_hand_minus_safety", self._safety),
            ("stockout_hours_now", self._hours_now),
            ("steps_since_stockout", lambda f, v: self._since(v, "stockout")),
            ("steps_since_full_stockout", lambda f, v: self._since(v, "full-day stockout")),
            ("stockout_hours_mean_", self._hours_mean),
            ("stockout_days_", lambda f, v: self._count(f, v, "stockout")),
            ("full_stockout_days_", lambda f, v: self._count(f, v, "full-day stockout")),
            ("stockout_hour_now", self._hour_now),
            ("stockout_hour_7", lambda f, v: None if v is None else f"ran out at hour {_num(v)} on average lately"),
            ("past_", lambda f, v: None if v is None else f"{f[5:].replace('_', ' ')} {_num(v)} on the latest day"),
            ("o_weekday", self._weekday),
            ("o_month", lambda f, v: None if v is None or not 1 <= v <= 12 else f"the season ({_MONTHS[int(v) - 1]})"),
            ("w_mean_promo", lambda f, v: None if v is None else f"promotion planned on {v:.0%} of the coming days"),
            ("w_max_promo", self._planned_promo),
            ("w_max_", lambda f, v: None if v is None else f"{f[6:].replace('_', ' ')} up to {_num(v)} planned ahead"),
            ("w_mean_", lambda f, v: None if v is None else f"{f[7:].replace('_', ' ')} {_num(v)} planned ahead"),
            *[(c, self._category) for c in self.labels],
        ]

    def _span(self, steps: int) -> str:
        days = steps * self.days
        if days in {364, 365}:
            return "year"
        if days % 7 == 0 and days >= 14:
            return f"{days // 7} weeks"
        return _plural(steps, self.unit)

    @staticmethod
    def _own(value: float | None, what: str) -> str:
        # A null code: an id the model never saw in training, so it has no history of its own there.
        article = "an" if what[0] in "aeiou" else "a"
        return f"this {what}'s own history" if value is not None else f"{article} {what} new to the model"

    def _planned_promo(self, feature: str, value: float | None) -> str | None:
        if value is None:
            return None
        return "a promotion planned in the coming days" if value > 0 else "no promotion planned in the coming days"

    def _length(self, steps: int) -> str:
        """A span as an adjective: "4-week", "1-year"."""
        span = self._span(steps)
        if span == "year":
            return "1-year"
        count, unit = span.split(" ")
        return f"{count}-{unit.removesuffix('s')}"

    def _steps(self, feature: str) -> int | None:
        tail = feature.rsplit("_", 1)[-1]
        return int(tail) if tail.isdigit() else None

    def _window(self, feature: str, value: float | None, template: str) -> str | None:
        steps = self._steps(feature)
        if value is None or steps is None:
            return None
        return template.format(v=_num(value), unit=self.unit, span=self._span(steps))

    def _mean(self, feature: str, value: float | None) -> str | None:
        steps = self._steps(feature)
        if value is None or steps is None:
            return None
        longer = sorted(
            (s, v)
            for c, v in self.values.items()
            if c.startswith("mean_") and (s := self._steps(c)) and s > steps and v
        )
        said = f"sold {_num(value)} a {self.unit} over the last {self._span(steps)}"
        if not longer:
            return said
        steps_long, usual = longer[0]
        assert usual is not None
        if value == 0:
            return f"no sales over the last {self._span(steps)} ({self._length(steps_long)} average {_num(usual)})"
        change = value / usual - 1
        if abs(change) < 0.05:
            return f"{said}, in line with its {self._length(steps_long)} average"
        way = "above" if change > 0 else "below"
        usual_said = f"{_num(value)} vs {_num(usual)} a {self.unit}"
        return f"sold {abs(change):.0%} {way} its {self._length(steps_long)} average ({usual_said})"

    def _lag(self, feature: str, value: float | None) -> str | None:
        k = self._steps(feature)
        if value is None or k is None:
            return None
        if k == 1:
            when = f"on the latest {self.unit}"
        elif k == 2:
            when = f"the {self.unit} before"
        elif self.unit == "day" and (k - 1) % 7 == 0:
            when = f"{_plural((k - 1) // 7, 'week')} before the latest day"
        else:
            when = f"{_plural(k - 1, self.unit)} before the latest"
        return f"sold {_plural(value, 'unit')} {when}"

    def _zero_share(self, feature: str, value: float | None) -> str | None:
        steps = self._steps(feature)
        if value is None or steps is None:
            return None
        return f"no sales on {value:.0%} of the last {self._span(steps)}"

    def _price(self, feature: str, value: float | None) -> str | None:
        usual = self.values.get("price_mean_28")
        if value is None:
            return None
        if not usual:
            return f"price {value:.2f}"
        change = value / usual - 1
        if abs(change) < 0.02:
            return f"price at its usual level ({value:.2f})"
        way = "above" if change > 0 else "below"
        return f"price {abs(change):.0%} {way} its usual ({value:.2f} vs {usual:.2f})"

    def _since(self, value: float | None, event: str) -> str:
        if value is None:
            return f"no {event} on record"
        if value == 0:
            return f"a {event} on the latest {self.unit}"
        return f"last {event} {_plural(value, self.unit)} ago"

    def _cover(self, feature: str, value: float | None) -> str:
        if value is None:
            return "stock cover unknown (no stock count)"
        return (
            f"stock covers {_num(value)} days of sales"
            if self.unit == "day"
            else f"stock covers {_num(value)} weeks of sales"
        )

    def _safety(self, feature: str, value: float | None) -> str | None:
        if value is None:
            return None
        if value == 0:
            return "stock exactly at safety stock"
        way = "above" if value > 0 else "below"
        return f"stock {_plural(abs(value), 'unit')} {way} safety stock"

    def _hours_now(self, feature: str, value: float | None) -> str | None:
        if value is None:
            return None
        return (
            "in stock all of the latest day"
            if value == 0
            else f"out of stock {_plural(value, 'hour')} on the latest day"
        )

    def _hours_mean(self, feature: str, value: float | None) -> str | None:
        return self._window(feature, value, "out of stock {v} hours a {unit} on average over the last {span}")

    def _count(self, feature: str, value: float | None, event: str) -> str | None:
        steps = self._steps(feature)
        if value is None or steps is None:
            return None
        return f"{_plural(value, event)} in the last {self._span(steps)}"

    def _hour_now(self, feature: str, value: float | None) -> str | None:
        if value is None:
            return None
        return (
            "did not run out on the latest day" if value >= 24 else f"ran out at hour {_num(value)} on the latest day"
        )

    def _weekday(self, feature: str, value: float | None) -> str | None:
        if value is None or not 1 <= value <= 7:
            return None
        starts = _WEEKDAYS[int(value) % 7]  # the risk window opens the day after the origin
        return (
            f"weekend ahead (the coming days start on {starts})"
            if int(value) in (5, 6)
            else f"the coming days start on {starts}"
        )

    def _category(self, feature: str, value: float | None) -> str:
        name = self.labels.get(feature, {}).get(int(value)) if value is not None else None
        return f"its {feature.replace('_', ' ')} ({name})" if name is not None else f"its {feature.replace('_', ' ')}"
