"""Training and prediction of the demand forecaster, on a panel known up to a cutoff.

The model predicts demand relative to each series' level at the origin (its
mean over the longest window), from features scaled by the same level: the
shape of a week or a season is then learnt once, from every series at
once, whatever their size. Training rows are (series, origin, horizon)
triples whose target falls on or before the cutoff.

Two multi-step strategies: *direct* (one model over every horizon 1..H,
each forecast made from the cutoff) and *recursive* (a one-step model fed
its own forecasts, see `shelfcast.models.recursive`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field

from shelfcast.errors import DataValidationError
from shelfcast.features.build import build_features, hashed_columns, phase_features
from shelfcast.features.frames import HORIZON, ORIGIN, TARGET, model_rows
from shelfcast.features.origin import demand, origin_features
from shelfcast.features.panel import SERIES, Panel
from shelfcast.features.spec import FeatureSpec
from shelfcast.models.baselines import BASELINES
from shelfcast.models.checkpoint import Checkpoints
from shelfcast.models.forecaster import BoosterParams, GBMForecaster
from shelfcast.models.recursive import recursive_forecast

log = logging.getLogger(__name__)
# Business knowledge the model must respect whatever the data says: a planned
# promotion never lowers demand, a higher price relative to usual never raises it.
MONOTONE = {"t_promo": 1, "t_relative_price": -1}
Strategy = Literal["direct", "recursive", "auto"]
_Y_PREFIXES = ("lag_", "mean_", "std_", "min_", "max_", "ewm_", "expanding_mean", "season_mean_", "year_ago")


class ForecastConfig(BoosterParams):
    """How the forecaster is trained (the feature spec says what it sees).

    `strategy` says how forecasts reach several steps ahead: "direct" (one
    model over horizons 1..H), "recursive" (a one-step model fed its own
    forecasts), or "auto" (the default): the backtest scores both and the
    better one is used. Neither wins everywhere: recursion uses the freshest
    lags at every step but compounds its errors; direct makes each horizon
    its own target but sees no recent lag at long horizons. Both cost about
    the same to train, so trying both costs one more fit per backtest window
    (about twice the GBM time), worth it for a choice made on the data
    rather than guessed. `fit_forecaster` fits the recursive model for
    "recursive" and the direct one otherwise; `candidates` fits both for "auto".
    The booster's own settings (engine, objective, size, seed) and their
    defaults come from `BoosterParams`.
    """

    target: Literal["ratio", "raw"] = "ratio"
    n_origins: int = Field(104, gt=0, description="Training origins, counted back from the cutoff.")
    origin_stride: int = Field(7, gt=0, description="Steps between training origins.")
    max_rows: int = Field(300_000, gt=0, description="Training rows kept (sampled) for speed.")
    weight: Literal["none", "level"] = Field(
        "level", description="Weight training rows by the series level, so slow movers' noise does not dominate."
    )
    strategy: Strategy = "auto"

    @classmethod
    def for_freq(cls, freq: str, **overrides: object) -> ForecastConfig:
        base: dict[str, object] = {"origin_stride": 1, "n_origins": 104} if freq == "W" else {}
        return cls.model_validate({**base, **overrides})


# A forecast is at most this many times the largest period its series had in the longest window. A tree ensemble
# with a log link (Poisson, Tweedie) can extrapolate far past anything it learnt from: on Walmart's third 2011
# window one department's forecasts were 18,640 times its level.
CAP = 3.0


def history_max(features: pl.DataFrame, spec: FeatureSpec) -> np.ndarray | None:
    """The largest period each row's series had, over the longest window the rows have (NaN: unknown)."""
    columns = [f"max_{w}" for w in sorted(spec.windows, reverse=True) if f"max_{w}" in features.columns]
    if not columns:
        return None
    top: np.ndarray = features.select(pl.coalesce(columns).cast(pl.Float64)).to_series().fill_null(np.nan).to_numpy()
    return top


def level_column(spec: FeatureSpec) -> str:
    return f"mean_{max(spec.windows)}"


def _level(features: pl.DataFrame, spec: FeatureSpec, longest: int | None = None) -> pl.Expr:
    """The series level: the longest-window mean, falling back on shorter windows, then the expanding mean.

    A young series has no long-window mean yet; without the fallback its level
    would be the 0.1 floor and its ratio target sales / 0.1. `longest` caps
    the windows (see `level_window`); None: every window.
    """
    windows = [w for w in sorted(spec.windows, reverse=True) if longest is None or w <= longest]
    chain = [f"mean_{w}" for w in windows] + ["expanding_mean"]
    return pl.coalesce([pl.col(c) for c in chain if c in features.columns]).fill_null(0.0) + 0.1


def level_window(features: pl.DataFrame, spec: FeatureSpec, panel: Panel) -> int:
    """The longest window that is full (the series had that much history) on most training rows (0: none).

    The level must mean the same in training and when forecasting. Window
    means are taken over what history there is, so with a year of data the
    "52-week" mean of most training rows covers a few weeks while the
    forecast's covers the whole year, summer included: on seasonal series
    different numbers, and ratios learnt on one applied to the other (on
    Walmart's first year: forecasts 27 times a series' largest week). The
    level uses the longest window most training rows had whole.
    """
    if features.is_empty() or ORIGIN not in features.columns:
        return max(spec.windows)
    starts = panel.frame.group_by(SERIES).agg(pl.col("date").min().alias("__start"))
    steps = (
        features.select(*SERIES, ORIGIN)
        .join(starts, on=list(SERIES), how="left")
        .select(history_steps(panel.step.days, start="__start"))["steps"]
    )
    return full_window({w: float((steps >= w).mean()) for w in spec.windows}, spec)  # type: ignore[arg-type]


def history_steps(step_days: int, *, start: str) -> pl.Expr:
    """Steps of history a row's series had at its origin (its first period at `start` counts as one)."""
    return ((pl.col(ORIGIN) - pl.col(start)).dt.total_days() // step_days + 1).alias("steps")


def full_window(shares: Mapping[int, float], spec: FeatureSpec) -> int:
    """The longest window whose share of training rows with that much history is at least `FULL_WINDOWS` (0: none).

    `shares` maps each window of the spec to that share; `level_window` counts
    it on a frame, a distributed engine with one aggregate over its rows.
    """
    for w in sorted(spec.windows, reverse=True):
        if shares.get(w, 0.0) >= FULL_WINDOWS:
            return w
    return 0


def _scaled(
    features: pl.DataFrame, spec: FeatureSpec, config: ForecastConfig, longest: int | None = None
) -> tuple[pl.DataFrame, np.ndarray]:
    """Features divided by the series level (ratio target), and the level itself."""
    if config.target == "raw":
        return features, np.ones(features.height)
    level = _level(features, spec, longest)
    level_col = level_column(spec)
    divided = [c for c in features.columns if c.startswith(_Y_PREFIXES) and c != level_col]
    scaled = features.with_columns([(pl.col(c) / level).alias(c) for c in divided])
    return scaled, features.select(level).to_series().to_numpy()


@dataclass
class TrainedForecaster:
    """A fitted forecaster with everything needed to predict again (spec, config, cutoff)."""

    spec: FeatureSpec
    config: ForecastConfig
    model: GBMForecaster
    cutoff: dt.date
    horizon: int
    # What the selection chose to serve, when not the GBM alone: (baseline, the GBM's weight).
    # ("seasonal_naive", 0.6) is the blend, (b, 0.0) the baseline b alone.
    mix: tuple[str, float] | None = None
    # The longest window behind the series level (`level_window`); None: every window (models saved before it).
    level_window: int | None = None

    def predict(
        self,
        panel: Panel,
        *,
        calendar: pl.DataFrame | None = None,
        origin: dt.date | None = None,
        horizon: int | None = None,
    ) -> pl.DataFrame:
        """Forecasts from `origin` (default: the training cutoff) for 1..horizon steps ahead.

        With a `mix`, what the selection chose: the GBM's forecast weighed
        with a baseline's (the baseline alone at weight 0).
        """
        origin = origin or self.cutoff
        steps = horizon or self.horizon
        if self.mix is not None and self.mix[1] <= 0.0:
            return self._baseline(panel, origin, steps)
        if self.recursive:
            gbm = recursive_forecast(panel, self.spec, self.score, origin=origin, horizon=steps, calendar=calendar)
        else:
            features = self.feature_rows(panel, calendar=calendar, origin=origin, horizon=steps)
            gbm = features.select(*SERIES, pl.col(TARGET).alias("date"), HORIZON).with_columns(
                pl.Series("forecast", self.score(features))
            )
        if self.mix is None:
            return gbm
        weight = self.mix[1]
        base = self._baseline(panel, origin, steps).select(*SERIES, "date", pl.col("forecast").alias("__base"))
        return (
            gbm.join(base, on=[*SERIES, "date"], how="left")
            .with_columns(
                (pl.col("forecast") * weight + pl.col("__base").fill_null(pl.col("forecast")) * (1 - weight)).alias(
                    "forecast"
                )
            )
            .drop("__base")
        )

    def _baseline(self, panel: Panel, origin: dt.date, steps: int) -> pl.DataFrame:
        assert self.mix is not None
        forecast = BASELINES[self.mix[0]](panel, cutoff=origin, horizon=steps)
        h = ((pl.col("date") - pl.lit(origin)).dt.total_days() // panel.step.days).cast(pl.Int32)
        return forecast.select(*SERIES, "date", h.alias(HORIZON), "forecast")

    @property
    def served(self) -> str:
        """What users get from this model: the GBM, the blend or a baseline (as the backtest names them)."""
        gbm = "gbm_recursive" if self.recursive else "gbm"
        if self.mix is None:
            return gbm
        return self.mix[0] if self.mix[1] <= 0.0 else f"blend_gbm_{self.mix[0]}"

    def feature_rows(
        self,
        panel: Panel,
        *,
        calendar: pl.DataFrame | None = None,
        origin: dt.date | None = None,
        horizon: int | None = None,
    ) -> pl.DataFrame:
        """The feature rows `score` takes, from `origin` (default: the cutoff); one step for a recursive model."""
        origin = origin or self.cutoff
        steps = 1 if self.recursive else horizon or self.horizon
        known = panel.as_known_at(origin)
        rows = model_rows(known, self.spec, [origin], list(range(1, steps + 1)))
        return build_features(known, self.spec, rows, calendar=calendar)

    @property
    def recursive(self) -> bool:
        return self.config.strategy == "recursive"

    def score(self, features: pl.DataFrame) -> np.ndarray:
        """Forecasts in units for built feature rows, at most `CAP` times the series' largest known period."""
        scaled, level = _scaled(features, self.spec, self.config, self.level_window)
        forecast: np.ndarray = np.clip(self.model.predict(scaled) * level, 0.0, None)
        top = history_max(features, self.spec)
        if top is not None:
            forecast = np.minimum(forecast, np.where(np.isnan(top), np.inf, CAP * top))
        return forecast


def training_frame(
    panel: Panel,
    spec: FeatureSpec,
    config: ForecastConfig,
    *,
    cutoff: dt.date,
    horizon: int,
    calendar: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """(features, target, level) for training rows whose targets fall on or before `cutoff`.

    The recursive strategy trains on one-step rows only, from an origin every
    step over the same span of history the direct strategy samples every
    `origin_stride` steps (so it has as many rows, up to `max_rows`). Direct
    origins share the cutoff's phase in the stride (its weekday, for 7 days).
    """
    known = panel.until(cutoff)
    first = known.frame["date"].min()
    assert isinstance(first, dt.date)
    origins, horizons = training_origins(config, cutoff=cutoff, first=first, horizon=horizon, step=known.step)
    rows = model_rows(known, spec, origins, horizons).filter(pl.col(TARGET) <= cutoff)
    if rows.height > config.max_rows:
        rows = rows.sample(n=config.max_rows, seed=config.seed)
    features = training_features(known, spec, rows, calendar=calendar)
    return scale_training(features, spec, config, level_window(features, spec, known))


def scale_training(
    features: pl.DataFrame, spec: FeatureSpec, config: ForecastConfig, window: int | None
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """(scaled features, target / level, level) of `training_features` rows, the level over windows up to `window`."""
    target = features[TARGET_COLUMN].to_numpy()
    scaled, level = _scaled(features.drop(TARGET_COLUMN), spec, config, window)
    return scaled, target / level, level


TARGET_COLUMN = "__target"


def training_origins(
    config: ForecastConfig, *, cutoff: dt.date, first: dt.date, horizon: int, step: dt.timedelta
) -> tuple[list[dt.date], list[int]]:
    """The training origins (newest first) and horizons for data from `first` (over every series) to `cutoff`."""
    if config.strategy == "recursive":
        stride, count, horizons = 1, config.n_origins * config.origin_stride, [1]
    else:
        stride, count, horizons = config.origin_stride, config.n_origins, list(range(1, horizon + 1))
    # Origins go back from the cutoff by whole strides, so with a stride of 7
    # days every training origin falls on the forecast origin's weekday (the
    # cutoff's): lags and the horizon then mean the same in training as when
    # forecasting. The origin at the cutoff itself has no target yet.
    origins = [o for o in (cutoff - step * (stride * (k + 1)) for k in range(count)) if o >= first]
    if not origins:
        raise DataValidationError(f"no history before the cutoff {cutoff} to train on")
    return origins, horizons


KEEP_RESOLUTION = 1_000_000  # of the hash test that samples training rows


def keep_share(
    firsts: Mapping[dt.date, int],
    origins: Sequence[dt.date],
    horizons: Sequence[int],
    *,
    cutoff: dt.date,
    step: dt.timedelta,
    max_rows: int,
) -> float:
    """The share of training rows to keep so about `max_rows` remain, counted from how many series start on each
    date (`firsts`): a series has a row per origin on or after its start and horizon whose target is known."""
    total = 0
    for origin in origins:
        alive = sum(count for first, count in firsts.items() if first <= origin)
        total += alive * sum(1 for h in horizons if origin + step * h <= cutoff)
    if total == 0:
        raise DataValidationError(f"no history before the cutoff {cutoff} to train on")
    return min(1.0, max_rows / total)


def sampled_training_rows(
    known: Panel,
    spec: FeatureSpec,
    origins: Sequence[dt.date],
    horizons: Sequence[int],
    *,
    cutoff: dt.date,
    keep: float,
    seed: int,
    calendar: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """`training_features` of the direct strategy's rows at `cutoff`, `keep` of them drawn by a seeded hash of
    each row's key: the same rows whichever group of series or process builds them (the Spark engine's sample)."""
    rows = model_rows(known, spec, list(origins), list(horizons)).filter(pl.col(TARGET) <= cutoff)
    if keep < 1.0:
        draw = pl.struct(*SERIES, ORIGIN, HORIZON).hash(seed=seed) % KEEP_RESOLUTION
        rows = rows.filter(draw < int(keep * KEEP_RESOLUTION))
    return training_features(known, spec, rows, calendar=calendar)


def training_features(
    known: Panel, spec: FeatureSpec, rows: pl.DataFrame, *, calendar: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Features of training `rows` with their demand at the target (`TARGET_COLUMN`), rows without one dropped.

    With `censoring="mask"`, days with a stockout under-state demand: they are left out of the targets.
    """
    features = build_features(
        known,
        spec,
        rows,
        calendar=calendar,
        origin_table=origin_features(known, spec),
        phase_table=phase_features(known, spec),
    )
    targets = known.frame.select(*SERIES, pl.col("date").alias(TARGET), demand(known, spec).alias(TARGET_COLUMN))
    if spec.censoring == "mask" and "stockout_hours" in known.frame.columns:
        targets = targets.with_columns(
            pl.when(known.frame["stockout_hours"].fill_null(0.0) > 0)
            .then(None)
            .otherwise(pl.col(TARGET_COLUMN))
            .alias(TARGET_COLUMN)
        )
    return features.join(targets, on=[*SERIES, TARGET], how="inner").filter(pl.col(TARGET_COLUMN).is_not_null())


# A history feature (a lag, a window statistic, year-ago) known on fewer training rows than this is left out.
MIN_KNOWN = 0.25
# The level's window must be whole on at least this share of the training rows.
FULL_WINDOWS = 0.5


def rarely_known(features: pl.DataFrame) -> list[str]:
    """History features null on most training rows: those that need more history than most origins had.

    With a short history a long window (the 52-week mean) exists only at the
    last origins, for their few horizons; at the forecast origin it exists on
    every row. Trees would send every forecast to leaves fitted on that sliver
    (on Walmart's first year: forecasts 27 times a series' largest week), so
    such a feature is not learnt from until most training rows know it. The
    model's encoder keeps the columns it was fitted on, so forecasts ignore it too.
    """
    if features.is_empty():
        return []
    known = features.select([pl.col(c).is_not_null().mean().alias(c) for c in history_columns(features.columns)])
    return rarely_known_from({c: known[c][0] or 0.0 for c in known.columns})


def history_columns(columns: Sequence[str]) -> list[str]:
    """The columns computed from the series' own past demand (lags, window statistics, profiles, year-ago)."""
    return [c for c in columns if c.startswith(_Y_PREFIXES)]


def rarely_known_from(known: Mapping[str, float]) -> list[str]:
    """The history columns known (not null) on fewer than `MIN_KNOWN` of the rows, from each one's known share."""
    return [c for c, share in known.items() if share < MIN_KNOWN]


def fit_forecaster(
    panel: Panel,
    spec: FeatureSpec,
    config: ForecastConfig,
    *,
    cutoff: dt.date,
    horizon: int,
    calendar: pl.DataFrame | None = None,
    checkpoints: Checkpoints | None = None,
) -> TrainedForecaster:
    """Train on everything known at `cutoff` to forecast `horizon` steps ahead (checkpointing if a folder is given).

    Fits the one-step recursive model when `config.strategy` is "recursive",
    the direct model otherwise ("auto" is resolved by the backtest, in `candidates`).
    """
    if horizon < 1:
        raise ValueError(f"`horizon` must be a positive integer, got {horizon}")
    features, target, level = training_frame(panel, spec, config, cutoff=cutoff, horizon=horizon, calendar=calendar)
    rare = rarely_known(features)
    if rare:
        log.info("left out of training, known on fewer than %.0f%% of its rows: %s", MIN_KNOWN * 100, ", ".join(rare))
        features = features.drop(rare)
    log.info("training on %d rows x %d features", features.height, features.width)
    model = GBMForecaster(
        engine=config.engine,
        objective=config.objective,
        n_estimators=config.n_estimators,
        learning_rate=config.learning_rate,
        num_leaves=config.num_leaves,
        categorical=[c for c in [*spec.categorical, *hashed_columns(spec)] if c in features.columns],
        monotone=MONOTONE,
        checkpoints=checkpoints,
        seed=config.seed,
    ).fit(features, target, weight=level if config.weight == "level" else None)
    window = level_window(features, spec, panel.until(cutoff))
    return TrainedForecaster(spec, config, model, cutoff, horizon, level_window=window)
