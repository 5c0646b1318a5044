"""Stockout risk for the next days: a calibrated classifier, a risk from demand vs stock, and the rule.

The classifier learns from (series, origin) rows whose label window closed
before the cutoff. The most recent of those origins are held out: they
calibrate the probabilities (isotonic) and choose the alert threshold, so
neither ever looks at the period being predicted.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from shelfcast.errors import DataValidationError
from shelfcast.features.build import add_hashed, attribute_features, hashed_columns
from shelfcast.features.labels import StockoutDefinition, stockout_labels
from shelfcast.features.origin import origin_features
from shelfcast.features.panel import SERIES, Panel
from shelfcast.features.spec import FeatureSpec
from shelfcast.models.checkpoint import Checkpoints
from shelfcast.models.classification import best_threshold
from shelfcast.models.forecaster import Engine, GBMForecaster
from shelfcast.types import Freq

log = logging.getLogger(__name__)
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
    known = panel.until(cutoff)
    window = window_steps(panel, definition.window)
    last_origin = cutoff - known.step * window
    origins = [last_origin - known.step * k for k in range(config.n_origins)]
    labels = stockout_labels(known, origins=origins, definition=definition).drop_nulls("label")
    if labels.is_empty():
        raise DataValidationError(f"no complete {definition.window}-day label windows before the cutoff {cutoff}")
    features = stockout_features(known, spec, origins, window=window).join(
        labels.select(*SERIES, ORIGIN, "label"), on=[*SERIES, ORIGIN], how="inner"
    )
    holdout_from = sorted(set(origins))[-config.holdout_origins]
    train = features.filter(pl.col(ORIGIN) < holdout_from)
    hold = features.filter(pl.col(ORIGIN) >= holdout_from)
    if train.is_empty() or hold.is_empty():
        raise DataValidationError("too few origins to train and calibrate; give more history or fewer holdout origins")
    if train.height > config.max_rows:
        train = train.sample(n=config.max_rows, seed=config.seed)
    y = train["label"].to_numpy().astype(np.float64)
    rate = float(y.mean())
    weight = None
    if config.reweight and 0 < rate < config.minority_weighting:
        # Rare positives: weight them up to balance the classes the booster sees.
        weight = np.where(y == 1, (1 - rate) / rate, 1.0)
    categorical = [c for c in [*spec.categorical, *hashed_columns(spec)] if c in train.columns]
    last_fit = None if config.refit_all else checkpoints
    booster = _classifier(config, categorical, last_fit).fit(train.drop("label"), y, weight=weight)
    model = StockoutModel(spec, config, definition, booster, np.array([0.0, 1.0]), np.array([0.0, 1.0]), 0.5, rate)
    raw = model.raw_scores(hold.drop("label"))
    truth = hold["label"].to_numpy().astype(np.float64)
    model.calibration_x, model.calibration_y = _isotonic(raw, truth)
    calibrated = model.predict_proba(hold.drop("label"))
    threshold = best_threshold(truth, calibrated)
    model.threshold = 0.5 if np.isnan(threshold) else float(threshold)
    if config.refit_all:
        full = features if features.height <= config.max_rows else features.sample(n=config.max_rows, seed=config.seed)
        y_all = full["label"].to_numpy().astype(np.float64)
        w_all = np.where(y_all == 1, (1 - rate) / rate, 1.0) if weight is not None else None
        model.model = _classifier(config, categorical, checkpoints).fit(full.drop("label"), y_all, weight=w_all)
    log.info(
        "stockout model: %d training rows, %.1f%% positives, threshold %.3f", train.height, 100 * rate, model.threshold
    )
    return model


def _classifier(config: StockoutConfig, categorical: list[str], checkpoints: Checkpoints | None) -> GBMForecaster:
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
