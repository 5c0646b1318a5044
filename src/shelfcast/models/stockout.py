"""Stockout risk for the next days: a calibrated classifier, a risk from demand vs stock, and the rule.

The classifier learns from (series, origin) rows whose label window closed
before the cutoff. The most recent of those origins are held out: a first
model, fitted without them, scores them out of time and a centred isotonic map
learnt on those scores calibrates the probabilities. The final model, refitted
on every origin, is read through the same map after its scores are matched onto
the first model's, quantile by quantile, on the cutoff's rows (features only).
The alert threshold is then the one that maximises the F1 expected from the
cutoff's calibrated probabilities, so it follows the stockout rate the model
expects now rather than where F1 happened to peak on the held-out weeks. No
step looks at a label after the cutoff.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Literal, get_args

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from shelfcast.errors import DataValidationError
from shelfcast.features.build import add_hashed, attribute_features, hashed_columns
from shelfcast.features.labels import StockoutDefinition, stockout_labels
from shelfcast.features.origin import origin_features, origin_features_at
from shelfcast.features.panel import SERIES, Panel
from shelfcast.features.spec import FeatureSpec
from shelfcast.models.checkpoint import Checkpoints
from shelfcast.models.classification import (
    base_rate_threshold,
    best_threshold,
    centered_isotonic,
    expected_f1_threshold,
    half_f1_threshold,
)
from shelfcast.models.forecaster import Engine, GBMForecaster
from shelfcast.types import Freq

log = logging.getLogger(__name__)
Calibration = Literal["isotonic", "centered"]
ThresholdMethod = Literal["holdout_f1", "half_f1", "expected_f1", "base_rate", "origin_median"]
ORIGIN = "origin"
_NORMAL = NormalDist()


class StockoutConfig(BaseModel):
    """How the stockout classifier is trained."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: Engine = "lightgbm"
    n_origins: int = Field(42, gt=1, description="Training origins (one per step) before the cutoff.")
    holdout_origins: int = Field(7, gt=0, description="Latest origins kept for calibration and the threshold.")
    max_rows: int = Field(
        1_200_000, gt=0, description="Training rows kept (sampled); more rows measurably help rare-event recall."
    )
    n_estimators: int = Field(300, gt=0)
    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(31, gt=1)
    minority_weighting: float = Field(0.2, gt=0, lt=0.5, description="Re-weight classes when positives are rarer.")
    reweight: bool = Field(True, description="Re-weight rare positives (else rely on calibration alone).")
    refit_all: bool = Field(
        True, description="After calibrating on the held-out origins, refit on every origin (the latest matter most)."
    )
    calibration: Calibration = Field(
        "centered",
        description="isotonic: the held-out staircase applied to the final model as is; centered: block centres "
        "joined (keeps the model's order), the final model's scores first mapped onto the held-out model's.",
    )
    threshold: ThresholdMethod = Field(
        "expected_f1", description="How the alert threshold is chosen (see choose_threshold)."
    )
    seed: int = 0


def window_steps(panel: Panel, days: int) -> int:
    """Panel steps that cover `days` days: the days themselves, or whole weeks (at least one) on weekly data."""
    return Freq(panel.freq).steps_in(days)


def _window_features(panel: Panel, spec: FeatureSpec, origins: pl.DataFrame, window: int) -> pl.DataFrame:
    """Known-in-advance columns summarised over the label window (planned promotions, discounts, holidays)."""
    known = [c for c in spec.exogenous_known if c in panel.frame.columns]
    if spec.future_price_promo and "promo" in panel.frame.columns:
        known.append("promo")
    if not known:
        return origins
    step = panel.step
    rows = origins.with_columns(
        pl.date_ranges(pl.col(ORIGIN) + step, pl.col(ORIGIN) + step * window, interval=f"{step.days}d").alias("date")
    ).explode("date")
    values = panel.frame.select(*SERIES, "date", *known)
    summary = (
        rows.join(values, on=[*SERIES, "date"], how="left")
        .group_by(*SERIES, ORIGIN)
        .agg(
            [pl.col(c).cast(pl.Float64).mean().alias(f"w_mean_{c}") for c in known]
            + [pl.col(c).cast(pl.Float64).max().alias(f"w_max_{c}") for c in known]
        )
    )
    return origins.join(summary, on=[*SERIES, ORIGIN], how="left")


def stockout_features(
    panel: Panel, spec: FeatureSpec, origins: list[dt.date], *, window: int, table: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Features of (series, origin) rows: the origin features plus the window's planned columns."""
    table = origin_features(panel, spec) if table is None else table
    wanted = pl.DataFrame({ORIGIN: origins}, schema={ORIGIN: pl.Date})
    rows = table.rename({"date": ORIGIN}).join(wanted, on=ORIGIN, how="semi")
    rows = rows.with_columns(pl.col(ORIGIN).dt.weekday().alias("o_weekday"), pl.col(ORIGIN).dt.month().alias("o_month"))
    rows = rows.join(attribute_features(panel, spec), on=list(SERIES), how="left")
    return add_hashed(_window_features(panel, spec, rows, window), spec).sort(*SERIES, ORIGIN)


def stockout_features_at(panel: Panel, spec: FeatureSpec, origin: dt.date, *, window: int) -> pl.DataFrame:
    """Every series' features at one origin from the panel as known then: the rows the service scores and explains."""
    known = panel.as_known_at(origin)
    table = origin_features_at(known, spec, origin)
    return stockout_features(known, spec, [origin], window=window, table=table)


@dataclass(frozen=True)
class Holdout:
    """What the calibration and the threshold are chosen from (kept on the fitted model, not saved).

    `raw`/`label`/`origin`: the first model's raw scores on the held-out origins (out of time for it) and their
    labels. `current_first`/`current_final`: both models' raw scores on the cutoff's own rows (features only,
    no labels), which map the final model's scores onto the first model's before its calibration applies.
    """

    raw: np.ndarray
    label: np.ndarray
    origin: np.ndarray
    current_first: np.ndarray
    current_final: np.ndarray


@dataclass
class StockoutModel:
    """A fitted classifier, its calibration and the threshold chosen on held-out origins."""

    spec: FeatureSpec
    config: StockoutConfig
    definition: StockoutDefinition
    model: GBMForecaster
    calibration_x: np.ndarray
    calibration_y: np.ndarray
    threshold: float
    positive_rate: float
    holdout: Holdout | None = field(default=None, repr=False, compare=False)

    def raw_scores(self, features: pl.DataFrame) -> np.ndarray:
        """The booster's probabilities before calibration (skewed by the class weights)."""
        return self.model.predict(features)

    def predict_proba(self, features: pl.DataFrame) -> np.ndarray:
        """Calibrated probabilities (isotonic map learnt on the held-out origins)."""
        return self.calibrate(self.raw_scores(features))

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        return np.asarray(np.interp(raw, self.calibration_x, self.calibration_y), dtype=np.float64)

    def predict_proba_matrix(self, X: np.ndarray, *, threads: int | None = None) -> np.ndarray:
        """`predict_proba` for rows already encoded by the booster's encoder (the service's path)."""
        return self.calibrate(self.model.predict_matrix(X, threads=threads))


def _isotonic(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(scores, labels)
    return np.asarray(iso.X_thresholds_, dtype=np.float64), np.asarray(iso.y_thresholds_, dtype=np.float64)


@dataclass(frozen=True)
class StockoutPlan:
    """The origins a fit at `cutoff` learns from, the first held-out one, and the label window in panel steps."""

    cutoff: dt.date
    origins: list[dt.date]
    holdout_from: dt.date
    window: int


def stockout_plan(freq: str, config: StockoutConfig, definition: StockoutDefinition, cutoff: dt.date) -> StockoutPlan:
    """Origins whose label windows end on or before `cutoff`, latest first; the same for every group of series."""
    step = Freq(freq).step
    window = Freq(freq).steps_in(definition.window)
    last_origin = cutoff - step * window
    origins = [last_origin - step * k for k in range(config.n_origins)]
    return StockoutPlan(cutoff, origins, sorted(set(origins))[-config.holdout_origins], window)


def stockout_rows(panel: Panel, spec: FeatureSpec, definition: StockoutDefinition, plan: StockoutPlan) -> pl.DataFrame:
    """The rows a classifier fit at `plan.cutoff` sees, from the panel known then, sorted by series and origin:
    the labelled origins' features with `label`, and the cutoff's own rows (features only, `label` null).

    Per series: a group of series gives its part of the whole data's rows (the Spark engine builds them so).
    """
    known = panel.until(plan.cutoff)
    labels = stockout_labels(known, origins=plan.origins, definition=definition).drop_nulls("label")
    table = stockout_features(known, spec, [*plan.origins, plan.cutoff], window=plan.window)
    labelled = table.join(labels.select(*SERIES, ORIGIN, "label"), on=[*SERIES, ORIGIN], how="left")
    return labelled.filter(pl.col("label").is_not_null() | (pl.col(ORIGIN) == plan.cutoff))


def class_weight(config: StockoutConfig, rate: float) -> float | None:
    """The weight of a positive row (negatives weigh 1) when positives are rare, else None (no weights)."""
    if config.reweight and 0 < rate < config.minority_weighting:
        return (1 - rate) / rate
    return None


def fit_stockout(
    panel: Panel,
    spec: FeatureSpec,
    config: StockoutConfig,
    definition: StockoutDefinition,
    *,
    cutoff: dt.date,
    checkpoints: Checkpoints | None = None,
) -> StockoutModel:
    """Train on origins whose label windows end on or before `cutoff`; calibrate on the latest of them.

    With `checkpoints`, the final fit saves a checkpoint every 50 rounds and resumes from one.
    """
    plan = stockout_plan(panel.freq, config, definition, cutoff)
    rows = stockout_rows(panel, spec, definition, plan)
    current = rows.filter(pl.col(ORIGIN) == cutoff).drop("label")
    features = rows.filter(pl.col("label").is_not_null())
    if features.is_empty():
        raise DataValidationError(f"no complete {definition.window}-day label windows before the cutoff {cutoff}")
    train = features.filter(pl.col(ORIGIN) < plan.holdout_from)
    hold = features.filter(pl.col(ORIGIN) >= plan.holdout_from)
    if train.is_empty() or hold.is_empty():
        raise DataValidationError("too few origins to train and calibrate; give more history or fewer holdout origins")
    if train.height > config.max_rows:
        train = train.sample(n=config.max_rows, seed=config.seed)
    y = train["label"].to_numpy().astype(np.float64)
    rate = float(y.mean())
    positive = class_weight(config, rate)
    weight = None if positive is None else np.where(y == 1, positive, 1.0)
    categorical = [c for c in [*spec.categorical, *hashed_columns(spec)] if c in train.columns]
    last_fit = None if config.refit_all else checkpoints
    first = stockout_classifier(config, categorical, last_fit).fit(train.drop("label"), y, weight=weight)
    raw = first.predict(hold.drop("label"))
    current_first = first.predict(current) if current.height else np.empty(0)
    final = first
    if config.refit_all:
        full = features if features.height <= config.max_rows else features.sample(n=config.max_rows, seed=config.seed)
        y_all = full["label"].to_numpy().astype(np.float64)
        w_all = None if positive is None else np.where(y_all == 1, positive, 1.0)
        final = stockout_classifier(config, categorical, checkpoints).fit(full.drop("label"), y_all, weight=w_all)
    holdout = Holdout(
        raw=raw,
        label=hold["label"].to_numpy().astype(np.float64),
        origin=hold[ORIGIN].to_physical().to_numpy(),
        current_first=current_first,
        current_final=final.predict(current) if final is not first and current.height else current_first,
    )
    model = calibrated(spec, config, definition, final=final, holdout=holdout, rate=rate)
    log.info(
        "stockout model: %d training rows, %.1f%% positives, threshold %.3f (%s)",
        train.height,
        100 * rate,
        model.threshold,
        config.threshold,
    )
    return model


def calibrated(
    spec: FeatureSpec,
    config: StockoutConfig,
    definition: StockoutDefinition,
    *,
    final: GBMForecaster,
    holdout: Holdout,
    rate: float,
) -> StockoutModel:
    """The fitted classifier with its calibration map and alert threshold, chosen from the held-out scores."""
    calibration_x, calibration_y = calibration_map(holdout, config.calibration)
    probs = np.interp(holdout.raw, *calibration_map(holdout, config.calibration, matched=False))
    # No row at the cutoff itself (a cutoff past the data): the latest held-out origin stands in for it.
    current = (
        np.interp(holdout.current_final, calibration_x, calibration_y)
        if holdout.current_final.size
        else probs[holdout.origin == holdout.origin.max()]
    )
    threshold = choose_threshold(probs, holdout.label, holdout.origin, method=config.threshold, current=current)
    return StockoutModel(spec, config, definition, final, calibration_x, calibration_y, threshold, rate, holdout)


def calibration_map(holdout: Holdout, method: Calibration, *, matched: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Knots (x, y) mapping the final model's raw scores to probabilities, learnt on the held-out origins.

    `matched=False` gives the map for the first model's own scores (what the threshold is chosen on).
    """
    if method == "isotonic":
        return _isotonic(holdout.raw, holdout.label)
    # The booster's scores are probabilities: anchoring the map at 0 and 1 keeps the rows beyond the end
    # blocks' centres in their order instead of tying them at the end values.
    x, y = _anchored(*centered_isotonic(holdout.raw, holdout.label))
    if not matched or holdout.current_final is holdout.current_first or not holdout.current_final.size:
        return x, y
    # The refit saw more (and later) origins than the held-out model: match the two models' scores on the
    # cutoff's rows quantile by quantile, so the held-out calibration reads the final scores on its own scale.
    grid = np.linspace(0, 1, 201)
    final_q, first_q = _anchored(
        np.maximum.accumulate(np.quantile(holdout.current_final, grid)),
        np.maximum.accumulate(np.quantile(holdout.current_first, grid)),
    )
    knots = np.unique(np.concatenate([final_q, np.interp(x, first_q, final_q)]))
    return knots, np.interp(np.interp(knots, final_q, first_q), x, y)


def _anchored(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots with (0, 0) and (1, 1) added where they extend the map (x and y in [0, 1], increasing)."""
    if x[0] > 0 and y[0] > 0:
        x, y = np.r_[0.0, x], np.r_[0.0, y]
    if x[-1] < 1 and y[-1] < 1:
        x, y = np.r_[x, 1.0], np.r_[y, 1.0]
    return x, y


def choose_threshold(
    probability: np.ndarray,
    label: np.ndarray,
    origin: np.ndarray,
    *,
    method: ThresholdMethod,
    current: np.ndarray | None = None,
) -> float:
    """The alert threshold from calibrated held-out probabilities, their labels and origins; 0.5 without positives.

    holdout_f1: where F1 peaks on the pooled held-out rows. half_f1: half the best pooled F1 (the optimum for
    calibrated probabilities; the peak's value is stable where its place is not). origin_median: the median of
    each held-out origin's own peak. expected_f1 / base_rate: from `current` (the cutoff's calibrated
    probabilities, no labels), the threshold maximising expected F1, or alerting as many rows as stockouts expected.
    """
    if method in ("expected_f1", "base_rate"):
        if current is None or not current.size:
            raise ValueError(f"threshold {method!r} needs the cutoff's probabilities (`current`)")
        t = expected_f1_threshold(current) if method == "expected_f1" else base_rate_threshold(current)
    elif method == "holdout_f1":
        t = best_threshold(label, probability)
    elif method == "half_f1":
        t = half_f1_threshold(label, probability)
    elif method == "origin_median":
        each = [best_threshold(label[origin == o], probability[origin == o]) for o in np.unique(origin)]
        t = float(np.nanmedian(each)) if not all(np.isnan(each)) else math.nan
    else:
        raise ValueError(f"`method` must be one of {', '.join(get_args(ThresholdMethod))}, got {method!r}")
    return 0.5 if math.isnan(t) else float(t)


def stockout_classifier(
    config: StockoutConfig, categorical: list[str], checkpoints: Checkpoints | None = None
) -> GBMForecaster:
    """The booster a stockout fit trains (before its rows are seen)."""
    return GBMForecaster(
        engine=config.engine,
        objective="binary",
        n_estimators=config.n_estimators,
        learning_rate=config.learning_rate,
        num_leaves=config.num_leaves,
        categorical=categorical,
        checkpoints=checkpoints,
        seed=config.seed,
    )


def quantile_risk(forecast: pl.DataFrame, stock: pl.DataFrame, *, window: int) -> pl.DataFrame:
    """P(demand over the next `window` periods exceeds the stock on hand), from p10/p50/p90 forecasts.

    Demand over the window is taken as normal with mean = sum of p50 and
    variance = sum of per-period variances ((p90 - p10) / 2.563)^2.
    """
    z = 2 * _NORMAL.inv_cdf(0.9)
    agg = (
        forecast.filter(pl.col("h") <= window)
        .group_by(SERIES)
        .agg(pl.col("p50").sum().alias("mu"), (((pl.col("p90") - pl.col("p10")) / z) ** 2).sum().sqrt().alias("sd"))
        .join(stock.select(*SERIES, "on_hand"), on=list(SERIES), how="inner")
    )
    gap = (pl.col("on_hand") - pl.col("mu")) / pl.max_horizontal(pl.col("sd"), pl.lit(1e-6))
    risk = gap.map_batches(lambda s: pl.Series(1.0 - np.vectorize(_NORMAL.cdf)(s.to_numpy())), return_dtype=pl.Float64)
    return agg.with_columns(risk.alias("risk")).select(*SERIES, "risk")
