"""What the service holds: the served models with their feature table (one snapshot, swapped whole on reload).

A request reads `state.snapshot` once and uses that object to the end, so a
reload (which builds a new snapshot aside, then assigns it) never mixes two
models in one answer and requests in flight finish on the old one.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from shelfcast.errors import DataValidationError, ModelNotFoundError, ShelfcastError
from shelfcast.features.labels import RULE_BASELINE, StockoutDefinition
from shelfcast.io.champion import Champion, load_champion
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data
from shelfcast.io.model_files import load_stockout
from shelfcast.io.policy_log import in_fallback
from shelfcast.models.data import ModelData
from shelfcast.models.stockout import StockoutModel
from shelfcast.service.live import LiveFeatures
from shelfcast.service.metrics import ServiceMetrics
from shelfcast.service.online import OnlineScorer, build_table, default_definition
from shelfcast.service.predictions import PredictionView
from shelfcast.settings import Settings
from shelfcast.types import Task

log = logging.getLogger(__name__)
ORIGINS_KEPT = 8  # feature tables of other origins (requests with a date) kept in memory


@dataclass(frozen=True)
class Served:
    """A model being served: registry name and version, MLflow run, and whether the registry was reached."""

    task: str
    name: str
    version: str
    run_id: str | None
    from_registry: bool

    @classmethod
    def of(cls, champion: Champion) -> Served:
        return cls(champion.task, champion.name, champion.version, champion.run_id, champion.from_registry)


@dataclass
class Snapshot:
    """Everything one request reads, loaded together."""

    loaded_at: dt.datetime
    data: ModelData
    first_date: dt.date
    last_date: dt.date
    demand: Served | None
    stockout: Served | None
    model: StockoutModel | None
    scorer: OnlineScorer | None  # None: the data has no stock, so no stockout risk at all
    fallback: str | None  # why the rule baseline answers instead of a model
    no_risk: str | None  # why there is no stockout risk at all
    _origins: OrderedDict[dt.date, OnlineScorer] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def stockout_name(self) -> str:
        return self.stockout.name if self.stockout is not None else RULE_BASELINE

    @property
    def stockout_version(self) -> str:
        return self.stockout.version if self.stockout is not None else RULE_BASELINE

    def scorer_at(self, origin: dt.date) -> OnlineScorer:
        """The scorer at another origin than the latest (built once, then kept among the last few used)."""
        assert self.scorer is not None
        if origin == self.scorer.table.origin:
            return self.scorer
        with self._lock:
            found = self._origins.get(origin)
            if found is not None:
                self._origins.move_to_end(origin)
                return found
        definition = self.model.definition if self.model is not None else _definition(self.data)
        scorer = OnlineScorer(build_table(self.data.panel, self.model, definition, origin), self.model)
        with self._lock:
            self._origins[origin] = scorer
            while len(self._origins) > ORIGINS_KEPT:
                self._origins.popitem(last=False)
        return scorer


def _definition(data: ModelData) -> StockoutDefinition:
    return default_definition(data.panel)


def load_snapshot(settings: Settings) -> Snapshot:
    """Data from the lake, the champions (or the rule baseline) and the feature table at the last date."""
    started = time.perf_counter()
    data = load_model_data(Lake(settings.workspace))
    dates = data.panel.frame["date"]
    first, last = dates.min(), dates.max()
    assert isinstance(first, dt.date) and isinstance(last, dt.date)
    demand = _champion(settings, Task.DEMAND)
    stockout: Served | None = None
    model: StockoutModel | None = None
    fallback: str | None = None
    no_risk: str | None = None
    scorer: OnlineScorer | None = None
    try:
        definition = _definition(data)
    except DataValidationError as exc:
        no_risk = f"no stockout risk on this workspace's data: {exc}"
    else:
        held = in_fallback(settings, Task.STOCKOUT)
        try:
            if held is not None:
                raise ModelNotFoundError(
                    f"the monitoring policy put stockout in fallback on {held.since}: {held.reason}"
                )
            champion = load_champion(settings, Task.STOCKOUT)
        except ModelNotFoundError as exc:
            fallback = f"no stockout model ({exc}); answering with the rule baseline"
            log.warning("%s", fallback)
        else:
            model = load_stockout(champion.folder)
            definition = model.definition
            stockout = Served.of(champion)
        scorer = OnlineScorer(build_table(data.panel, model, definition, last), model)
    snapshot = Snapshot(
        loaded_at=dt.datetime.now(dt.UTC),
        data=data,
        first_date=first,
        last_date=last,
        demand=demand,
        stockout=stockout,
        model=model,
        scorer=scorer,
        fallback=fallback,
        no_risk=no_risk,
    )
    log.info(
        "loaded in %.1f s: data %s to %s, stockout %s v%s",
        time.perf_counter() - started,
        first,
        last,
        snapshot.stockout_name,
        snapshot.stockout_version,
    )
    return snapshot


def _champion(settings: Settings, task: Task) -> Served | None:
    try:
        return Served.of(load_champion(settings, task))
    except ModelNotFoundError as exc:
        log.warning("no %s champion: %s", task, exc)
        return None


class ServiceState:
    """The app's state: settings, metrics, the current snapshot (or why there is none), the predictions."""

    def __init__(self, settings: Settings, metrics: ServiceMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.snapshot: Snapshot | None = None
        self.problem: str | None = "not loaded yet"
        self.predictions = PredictionView(settings)
        metrics.watch_scoring_day(lambda: self.predictions.day.scored_on if self.predictions.day else None)
        self.live = LiveFeatures(settings) if settings.live.serve else None
        self._reload_lock = threading.Lock()

    def reload(self) -> Snapshot:
        """Build a new snapshot aside, then swap it in (one assignment); a failure keeps the old one serving."""
        with self._reload_lock:
            try:
                fresh = load_snapshot(self.settings)
            except ShelfcastError as exc:
                self.metrics.reloads.labels(outcome="failed").inc()
                if self.snapshot is None:
                    self.problem = str(exc)
                raise
            self.snapshot = fresh
            self.problem = None
            self.metrics.reloads.labels(outcome="ok").inc()
            models = {}
            if fresh.demand is not None:
                models["demand"] = (fresh.demand.name, fresh.demand.version)
            if fresh.scorer is not None:
                models["stockout"] = (fresh.stockout_name, fresh.stockout_version)
            self.metrics.serving(models, fallback=fresh.fallback is not None)
            return fresh
