"""Request and response models of the service (pydantic v2).

Requests are strict where a lax parse would hide a client's bug: ids must
be strings and numbers numbers (no "12" for 12, no 12 for "S012"), unknown
fields, NaN and infinities are refused. Dates are ISO strings.

Names are the package's: the forecast origin is `cutoff`, the stockout
horizon `risk_days`. A request field renamed since the first API (`date`,
now `cutoff`) is still accepted under its old name (`RENAMED`); the route
then flags the answer as deprecated (see `routes_predict`), and a request
giving both names is refused with a 422 naming them.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

SeriesId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128)]
FeatureName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
MAX_STOCK = 1e12
StockCount = Annotated[float, Field(strict=True, ge=0, le=MAX_STOCK, description="Units on hand now.")]
# The model's inputs are float32: a larger value would overflow to infinity.
FLOAT32_MAX = 3.4028234663852886e38
# Features that are stock, sales or prices, so never negative: the aliases and the model's names for them.
NON_NEGATIVE = re.compile(
    r"(inventory|on_hand_now|days_of_cover|daily_sales|rolling_mean_\d+|price|price_now|price_mean_\d+"
    r"|lag_\d+|(mean|min|max|std)_\d+|ewm_.+|expanding_mean)"
)
STOCK_NAMES = ("inventory", "on_hand_now")


# Deprecated request field -> its name now.
RENAMED: dict[str, str] = {"date": "cutoff"}


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class PredictRequest(_Request):
    """Stockout risk for one store x item: by ids (features from the workspace), by explicit features, or both."""

    store_id: SeriesId | None = Field(None, description="Store key, as in the workspace's data.", examples=["S001"])
    item_id: SeriesId | None = Field(None, description="Item key, as in the workspace's data.", examples=["I0001"])
    cutoff: dt.date | None = Field(
        None,
        validation_alias=AliasChoices("cutoff", "date"),
        description="Forecast origin, the start of the risk window: features use the data up to the end of this "
        "day (default: the latest date of the data). `date` is accepted as a deprecated name.",
    )
    on_hand: StockCount | None = Field(
        None, description="A current stock count; it replaces the workspace's in the on-hand features."
    )
    features: dict[FeatureName, Number] | None = Field(
        None,
        max_length=500,
        description="Feature values that override (with ids) or make up (without ids) the model row; "
        "GET /models lists the names. Aliases: price, promo, daily_sales, inventory, rolling_mean_7, rolling_mean_28; "
        "`inventory` is a stock count and moves the on-hand features as `on_hand` does. Without ids, the features "
        "not sent are a typical series' (the median over every series). Stock, sales and prices must not be "
        "negative; values must fit float32.",
    )

    _old_names: tuple[str, ...] = PrivateAttr(default=())

    @property
    def old_names(self) -> tuple[str, ...]:
        """The deprecated field names this request used (`RENAMED`)."""
        return self._old_names

    @model_validator(mode="wrap")
    @classmethod
    def _renamed(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        old = tuple(name for name in RENAMED if isinstance(data, dict) and name in data)
        both = [name for name in old if RENAMED[name] in data]
        if both:
            new = RENAMED[both[0]]
            raise ValueError(f"give `{new}` or its deprecated name `{both[0]}`, not both")
        request = handler(data)
        if old:  # not when `data` was already a request (its own flags stay)
            request._old_names = old
        return request

    @field_validator("features")
    @classmethod
    def _values(cls, features: dict[str, float] | None) -> dict[str, float] | None:
        """Each problem at its own place (`features.inventory`): negative stock or sales, beyond float32."""
        problems: list[InitErrorDetails] = []
        for name, value in (features or {}).items():
            if abs(value) > FLOAT32_MAX:
                error = PydanticCustomError(
                    "float32_range", "{value} is beyond the model's float32 range (+-3.4e38)", {"value": value}
                )
            elif value < 0 and NON_NEGATIVE.fullmatch(name):
                error = PydanticCustomError(
                    "negative", "must not be negative (stock, sales and prices are not), got {value}", {"value": value}
                )
            elif name in STOCK_NAMES and value > MAX_STOCK:
                error = PydanticCustomError(
                    "too_large",
                    "over {limit} units on hand, got {value}",
                    {"limit": f"{MAX_STOCK:.0e}", "value": value},
                )
            else:
                continue
            problems.append(InitErrorDetails(type=error, loc=(name,), input=value))
        if problems:
            raise ValidationError.from_exception_data("features", problems)
        return features

    @model_validator(mode="after")
    def _check(self) -> Self:
        stock = [name for name in STOCK_NAMES if name in (self.features or {})]
        if self.on_hand is not None and stock:
            raise ValueError(f"give the stock count once: `on_hand` or `features.{stock[0]}`, not both")
        if (self.store_id is None) != (self.item_id is None):
            raise ValueError("give both `store_id` and `item_id`, or neither (with `features`)")
        if self.store_id is None:
            if not self.features:
                raise ValueError("give `store_id` and `item_id`, or an explicit `features` payload")
            if self.on_hand is not None or self.cutoff is not None:
                raise ValueError("`on_hand` and `date` need `store_id` and `item_id`; without ids, use `features`")
        return self


class PredictBatchRequest(_Request):
    rows: list[PredictRequest] = Field(min_length=1, description="Up to `serve.max_batch` rows (a setting).")


class Prediction(BaseModel):
    store_id: str | None
    item_id: str | None
    cutoff: dt.date = Field(description="Forecast origin: the risk uses the data up to the end of this day.")
    date: dt.date = Field(deprecated="the same as `cutoff`, its name in the first API")
    risk_days: int = Field(description="Days after the cutoff the risk is about.")
    risk: float = Field(description="Probability of a stockout in the window (0 or 1 from the rule baseline).")
    label: bool = Field(description="Alert: risk >= threshold.")
    threshold: float
    model_name: str
    model_version: str = Field(description="Registry version, or `rule-baseline` when no model is available.")
    fallback: bool = Field(description="True when the rule baseline answered instead of a model.")
    source: Literal["live", "lake"] = Field(
        "lake",
        description="Where the features came from: `live` (the online store's days and today's stock count, "
        "setting `live.serve`) or `lake` (the workspace's ingested data).",
    )
    features_as_of: dt.datetime | None = Field(
        None, description="Live features: the last update of the online store (or of this series) they include."
    )
    stale: bool = Field(
        False,
        description="True when live features are configured but could not be used (Redis unreachable, the store "
        "stale or not built yet): the lake's features answered.",
    )


class ExplainReason(BaseModel):
    """One feature's push on the risk."""

    feature: str = Field(description="The model's feature name (GET /models lists them).")
    value: float | None = Field(description="Its value in the series' row; null where missing.")
    contribution: float = Field(description="Its push on the model's score, in log-odds (TreeSHAP).")
    direction: Literal["up", "down"]
    text: str = Field(
        description="The push in words, from the row's values.", examples=["2 stockouts in the last 7 days"]
    )


class ExplainResponse(BaseModel):
    """Why a series is at risk: the served model's risk and the features that pushed it up and down most."""

    store_id: str
    item_id: str
    cutoff: dt.date = Field(description="Forecast origin: the latest date of the data.")
    risk_days: int
    risk: float = Field(description="The calibrated risk, as POST /predict gives it for the series (lake features).")
    label: bool
    threshold: float
    base_value: float = Field(description="The model's score before any feature pushes it, in log-odds.")
    model_name: str
    model_version: str
    reasons: list[ExplainReason] = Field(description="Strongest push first, whichever its direction.")


class LiveTotals(BaseModel):
    units: float
    revenue: float


class LiveSeries(BaseModel):
    """One series as the online store holds it now, with the live features `/predict` scores it on."""

    store_id: str
    item_id: str
    cutoff: dt.date = Field(description="The live origin: the last closed day the features are computed at.")
    features_as_of: dt.datetime = Field(description="The last update of the online store the features include.")
    today: LiveTotals = Field(description="Units and revenue of the store's latest day so far.")
    week: LiveTotals = Field(description="From the Monday of that day's week.")
    month: LiveTotals = Field(description="From the 1st of that day's month.")
    last_on_hand: float | None = Field(description="The latest stock count.")
    last_count: str | None = Field(description="When it was taken (as sent) and its event id, `<time>|<id>`.")
    on_hand_now: float | None = Field(
        description="The latest count, less the units sold after it, plus the units received after it."
    )
    events_after_count: int = Field(description="Sales and receipts after the latest count.")
    updated_at: dt.datetime | None = Field(description="The series' last update in the online store.")
    features: dict[str, float | None] = Field(
        description="The model's inputs for this series (today's count applied); null where unknown."
    )


class PredictBatchResponse(BaseModel):
    predictions: list[Prediction]


class ForecastPoint(BaseModel):
    date: dt.date
    horizon: int
    forecast: float
    p10: float
    p50: float
    p90: float


class ForecastResponse(BaseModel):
    store_id: str
    item_id: str
    scored_on: dt.date
    scored_at: dt.datetime
    model_name: str
    model_version: str
    points: list[ForecastPoint]


class ShelfAdvice(BaseModel):
    """One store x item from the latest scoring: its risk and what to order."""

    store_id: str
    item_id: str
    stockout_risk: float | None
    stockout_label: bool | None
    threshold: float | None
    forecast_7: float = Field(description="Forecast demand over the next 7 periods.")
    safety_stock: float | None
    reorder_point: float | None
    order_up_to: float | None
    order_quantity: float | None


class AlertsResponse(BaseModel):
    scored_on: dt.date
    store_id: str | None
    min_risk: float | None
    count: int
    stockout_model_version: str | None
    alerts: list[ShelfAdvice]


class ReorderResponse(BaseModel):
    scored_on: dt.date
    store_id: str
    count: int
    lines: list[ShelfAdvice]
    note: str | None = Field(None, description="Why no line has an order quantity, when none has.")


class VersionOut(BaseModel):
    version: str
    run_id: str
    aliases: list[str]
    gate: dict[str, str] = Field(description="The promotion gates' verdict and metrics (version tags gate.*).")


class ServedOut(BaseModel):
    name: str
    version: str
    run_id: str | None
    from_registry: bool = Field(description="False: the registry did not answer and the local copy is served.")


class TaskModels(BaseModel):
    served: ServedOut | None
    champion: VersionOut | None = None
    challenger: VersionOut | None = None
    previous_champion: VersionOut | None = None


class ModelsResponse(BaseModel):
    registry: str
    registry_error: str | None = None
    fallback: str | None = Field(None, description="Why the rule baseline answers stockout risk, when it does.")
    demand: TaskModels
    stockout: TaskModels
    features: list[str] = Field(description="Feature names an explicit /predict payload may set.")
    loaded_at: dt.datetime


class ReloadResponse(BaseModel):
    demand_version: str | None
    stockout_version: str
    fallback: str | None
    loaded_at: dt.datetime
    predictions_of: dt.date | None


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    data: str
    stockout_model: str
    predictions: str


class ErrorItem(BaseModel):
    loc: list[str | int] = Field(description="Where: `body`, `query`, `path` or `header`, then the field's path.")
    msg: str
    type: str | None


class Problem(BaseModel):
    """An error answer."""

    detail: str = Field(description="What is wrong and where, and what to do.")


class ValidationProblem(Problem):
    """A request the service refuses (422)."""

    errors: list[ErrorItem] | None = Field(
        None, description="Every problem found when the request does not match the schema; `detail` is the first."
    )


def problem(description: str) -> dict[str, Any]:
    """An error response for the OpenAPI schema: `{"detail": "..."}`."""
    return {"model": Problem, "description": description}


# Errors every route may answer (`create_app` documents them on each).
ERRORS: dict[int | str, dict[str, Any]] = {
    400: problem("A malformed request: a Content-Length header that is not a count, a body that is not UTF-8."),
    422: {
        "model": ValidationProblem,
        "description": "A request the service refuses: `detail` is `where: what`, `errors` lists every problem "
        "the schema check found (unknown fields and query parameters included).",
    },
    500: problem("An unexpected failure: `detail` names an error id to find in the server log."),
}
