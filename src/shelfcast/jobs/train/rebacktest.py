"""The champion scored again on a challenger's windows, for the gates.

The gates compare a challenger with the champion on the backtest windows both
were scored on. Once new days are ingested, a challenger's cutoffs move on
and share no window with the champion's run. The champion is then scored on
the challenger's data and windows, and its scores are logged in the
challenger's run as the model `champion` (see `jobs.promote.check_gates`):

- **as served** (demand) when it was trained on data up to the first of
  those cutoffs or earlier: the very model that serves forecasts from each
  window's cutoff, not refitted. This is the question a retrain asks (is
  the new fit better than the model in place?), and after a change in
  demand the answer differs from a refit of the same configuration;
- **refitted** otherwise (and for stockout models): its configuration, read
  back from the params its run logged, is backtested on the windows.

No leakage: a model scored as served has seen no day after the first cutoff
(`models.backtest.score_fitted` checks), and forecasts from data known at
each cutoff; a refitted configuration goes through the same backtest
functions as the challenger (`backtest_demand`, `backtest_risk`), which fit
each window on the data known at its cutoff and score the days after it.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import polars as pl
from pydantic import BaseModel, ValidationError

from shelfcast.errors import RebacktestError
from shelfcast.features.labels import StockoutDefinition
from shelfcast.io.champion import NATIVE
from shelfcast.io.model_files import load_forecaster
from shelfcast.io.registry import CHAMPION, Registry
from shelfcast.io.tracking import AS_SERVED, CANDIDATE_PARAM, CHAMPION_MODEL, REFITTED, run_cutoffs
from shelfcast.models.backtest import MODEL, RECURSIVE, BacktestConfig, Progress, backtest_demand, cutoffs, score_fitted
from shelfcast.models.data import ModelData
from shelfcast.models.risk import StockoutBacktest
from shelfcast.models.selection import SelectionConfig
from shelfcast.models.stockout import StockoutConfig
from shelfcast.models.train import ForecastConfig
from shelfcast.types import Task

log = logging.getLogger(__name__)
# The demand forecast config a stockout run used (for its `quantile_risk` model), as params with this prefix.
FORECAST_PREFIX = "forecast."
DEFINITION_PREFIX = "definition."
_Config = TypeVar("_Config", bound=BaseModel)
# The champion's run params -> (the cutoffs it was scored on, its per-window and overall metric rows).
Rerun = Callable[[Mapping[str, str]], tuple[list[dt.date], pl.DataFrame]]


# The champion's native model folder -> its scores as served on the challenger's windows, or None when it was
# trained past the first of them (it must then be refitted).
AsServed = Callable[[Path], tuple[list[dt.date], pl.DataFrame] | None]


@dataclass(frozen=True)
class ChampionRerun:
    """The champion's scores on the challenger's windows, as rows of the model `champion`, and how they were made."""

    version: str
    run_id: str
    metrics: pl.DataFrame
    how: str = REFITTED  # AS_SERVED or REFITTED


def config_from_params(cls: type[_Config], params: Mapping[str, str], prefix: str = "") -> _Config:
    """A config rebuilt from a run's params (`str` of every field, `prefix` + name); every field must be there.

    A field missing (a run logged by an older version) is an error rather than
    its default: the champion must not be replaced by a guess of it.
    """
    names = list(cls.model_fields)
    missing = [prefix + n for n in names if prefix + n not in params]
    if missing:
        raise RebacktestError(f"its run has no param {', '.join(missing)} (logged by an older shelfcast?)")
    values = {n: None if params[prefix + n] == "None" else params[prefix + n] for n in names}
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{prefix}{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise RebacktestError(f"its params do not make a {cls.__name__} ({problems})") from None


def demand_rerun(data: ModelData, *, folds: int, horizon: int, selection: SelectionConfig | None = None) -> Rerun:
    """The champion's ForecastConfig, with the strategy its backtest chose, on the challenger's data and windows.

    Scored as the candidate its run served (the GBM, the blend or a baseline), where the rerun has it.
    """

    def rerun(params: Mapping[str, str]) -> tuple[list[dt.date], pl.DataFrame]:
        config = config_from_params(ForecastConfig, params)
        if config.strategy == "auto":
            raise RebacktestError("its run logged no chosen strategy (direct or recursive)")
        backtest = BacktestConfig(folds=folds, horizon=horizon)
        # Each window is fitted on the panel known at its cutoff, as the challenger's were: no later day leaks in.
        result = backtest_demand(data.panel, data.spec, config, backtest, calendar=data.calendar, selection=selection)
        name = RECURSIVE if config.strategy == "recursive" else MODEL
        served = params.get(CANDIDATE_PARAM)
        if served is not None and served in set(result.metrics["model"].to_list()):
            name = served
        return result.cutoffs, result.metrics.filter(pl.col("model") == name)

    return rerun


def demand_as_served(data: ModelData, *, folds: int, horizon: int) -> AsServed:
    """The champion's fitted forecaster, as it serves, on the challenger's windows (None if trained past them)."""

    def score(folder: Path) -> tuple[list[dt.date], pl.DataFrame] | None:
        model = load_forecaster(folder)
        backtest = BacktestConfig(folds=folds, horizon=horizon)
        first = cutoffs(data.last_date, backtest, data.panel.step)[0]
        if model.cutoff > first or (not model.recursive and horizon > model.horizon):
            return None
        return score_fitted(model, data.panel, backtest, name=MODEL, calendar=data.calendar)

    return score


def stockout_rerun(
    backtest: Callable[[StockoutConfig], StockoutBacktest], *, risk_days: int, min_hours: float | None
) -> Rerun:
    """The champion's StockoutConfig on the challenger's data and windows, for the same stockout definition.

    `backtest(config)` runs the challenger's backtest with the champion's config
    (`backtest_risk` without the quantile risk, or its Spark twin). The demand
    forecast config it used (`forecast.*`) is not needed: it only feeds the
    `quantile_risk` model, never the classifier's scores.
    """

    def rerun(params: Mapping[str, str]) -> tuple[list[dt.date], pl.DataFrame]:
        config = config_from_params(StockoutConfig, params)
        definition = config_from_params(StockoutDefinition, params, DEFINITION_PREFIX)
        if (definition.window, definition.min_hours) != (risk_days, min_hours):
            raise RebacktestError(
                f"it predicts another stockout (window {definition.window} days, min_hours {definition.min_hours}) "
                f"than the challenger (window {risk_days} days, min_hours {min_hours})"
            )
        # Each window is fitted on the panel known at its cutoff, as the challenger's were: no later day leaks in.
        result = backtest(config)
        return result.cutoffs, result.metrics.filter(pl.col("model") == "classifier")

    return rerun


def rebacktest_champion(
    registry: Registry,
    task: Task,
    cutoffs: list[dt.date],
    rerun: Rerun,
    *,
    as_served: AsServed | None = None,
    progress: Progress | None = None,
) -> ChampionRerun | None:
    """The champion's scores on `cutoffs` (the challenger's windows) when its own run shares none of them.

    As served when `as_served` can score it (see the module), else refitted.
    None when there is no champion, when its run shares a window with the
    challenger (the gates compare on those), or when it cannot be scored
    again: a warning then says why, and the gates will not compare with the
    champion. A training run never fails here.
    """
    which = f"the {task} champion"
    try:
        champion = registry.alias(task, CHAMPION)
        if champion is None:
            return None
        which = f"the {task} champion v{champion.version}"
        params = registry.run(champion.run_id).data.params
        if run_cutoffs(params) & {c.isoformat() for c in cutoffs}:
            return None
        if progress:
            progress(f"score champion v{champion.version} on the new windows", 2, 3)
        how, served = REFITTED, None
        if as_served is not None:
            with tempfile.TemporaryDirectory(prefix="shelfcast-champion-") as tmp:
                folder = registry.download(task, CHAMPION, Path(tmp) / "champion")
                served = as_served(folder / NATIVE)
        if served is not None:
            how, (theirs, rows) = AS_SERVED, served
            log.info("scored %s champion v%s as served on cutoffs %s", task, champion.version, cutoffs)
        else:
            log.info("re-backtesting %s champion v%s on cutoffs %s", task, champion.version, cutoffs)
            theirs, rows = rerun(params)
        if theirs != cutoffs:
            raise RebacktestError(f"its backtest cutoffs {theirs} are not the challenger's {cutoffs}")
    # Broad on purpose: re-running another configuration's backtest can fail in any way (old params, data that
    # changed shape, the registry), and the comparison is worth a warning, never a failed training run.
    except Exception as exc:
        log.warning(
            "%s could not be re-backtested on the challenger's windows (%s); "
            "the gates will not compare the challenger with it",
            which,
            exc,
        )
        return None
    metrics = rows.with_columns(pl.lit(CHAMPION_MODEL).alias("model"))
    return ChampionRerun(champion.version, champion.run_id, metrics, how)
