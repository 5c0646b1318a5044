"""Prometheus metrics of the service, in a registry of its own (one per app, so tests can build several).

With several workers (`shelfcast serve --workers N`), `PROMETHEUS_MULTIPROC_DIR`
is set by the CLI before they start: each worker writes its values there and
`/metrics` adds them up across workers.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# Sub-millisecond buckets: the prediction routes answer in about a millisecond.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class MonitoringCollector(Collector):
    """Gauges read from the workspace's monitoring files at each scrape: what `shelfcast monitor` and
    `shelfcast retrain` last found and did (they run as other processes, so the files are the link)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _read(self, name: str) -> dict[str, Any]:
        path = self.folder / name
        try:
            data = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring %s: %s", path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def collect(self) -> Iterator[Metric]:
        state = self._read("state.json")
        retrains = GaugeMetricFamily("shelfcast_retrains", "Retrains run by the monitoring policy.")
        retrains.add_metric([], float(state.get("retrains", 0)))
        yield retrains
        last = GaugeMetricFamily(
            "shelfcast_last_retrain_timestamp_seconds", "When the policy last retrained (Unix time; 0 if never)."
        )
        stamp = state.get("last_retrain_at")
        try:
            last.add_metric([], dt.datetime.fromisoformat(stamp).timestamp() if stamp else 0.0)
        except (TypeError, ValueError):
            last.add_metric([], 0.0)
        yield last
        fallback = GaugeMetricFamily(
            "shelfcast_task_fallback", "1 while the policy holds the task on its rule baseline.", labels=["task"]
        )
        held = state.get("fallback", {}) or {}
        for task in ("demand", "stockout"):
            fallback.add_metric([task], 1.0 if task in held else 0.0)
        yield fallback
        yield from monitoring_gauges(self._read("latest.json"))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def monitoring_gauges(latest: dict[str, Any]) -> Iterator[Metric]:
    """Drift scores and live accuracy from the newest monitoring summary (`latest.json`; none before the first)."""
    tasks = latest.get("tasks")
    if not isinstance(tasks, dict):
        return
    when = GaugeMetricFamily("shelfcast_monitoring_timestamp_seconds", "When monitoring last ran (Unix time).")
    try:
        when.add_metric([], dt.datetime.fromisoformat(str(latest.get("created_at"))).timestamp())
        yield when
    except ValueError:
        pass
    alarm = GaugeMetricFamily("shelfcast_drift_alarm", "1 when a feature of the champion drifted.", labels=["task"])
    effect = GaugeMetricFamily(
        "shelfcast_feature_drift",
        "Drift effect per feature (PSI, or JS distance for categoricals).",
        labels=["task", "feature"],
    )
    outputs = GaugeMetricFamily("shelfcast_prediction_drift", "PSI of the champion's predictions.", labels=["task"])
    live = GaugeMetricFamily("shelfcast_live_accuracy", "The champion's live metric.", labels=["task", "metric"])
    backtest = GaugeMetricFamily(
        "shelfcast_backtest_accuracy", "The champion's backtest metric.", labels=["task", "metric"]
    )
    relative = GaugeMetricFamily(
        "shelfcast_live_relative_wape",
        "Live WAPE over the seasonal naive's on the same rows (demand).",
        labels=["task"],
    )
    degraded = GaugeMetricFamily("shelfcast_accuracy_degraded", "1 when live accuracy is degraded.", labels=["task"])
    for task, seen in tasks.items():
        if not isinstance(seen, dict) or seen.get("model_version") is None:
            continue
        alarm.add_metric([task], 1.0 if seen.get("drift_alarm") else 0.0)
        degraded.add_metric([task], 1.0 if seen.get("degraded") else 0.0)
        for feature, stats in (seen.get("features") or {}).items():
            value = _number(stats.get("effect")) if isinstance(stats, dict) else None
            if value is not None:
                effect.add_metric([task, feature], value)
        drift = seen.get("prediction_drift")
        if isinstance(drift, dict) and (value := _number(drift.get("effect"))) is not None:
            outputs.add_metric([task], value)
        metric = str(seen.get("live_metric") or "")
        if (value := _number(seen.get("live_value"))) is not None:
            live.add_metric([task, metric], value)
        if (value := _number(seen.get("backtest_value"))) is not None:
            backtest.add_metric([task, metric], value)
        if (value := _number(seen.get("live_relative"))) is not None:
            relative.add_metric([task], value)
    yield from (alarm, effect, outputs, live, backtest, relative, degraded)


class ScoringDayCollector(Collector):
    """The scoring day the service answers from, read from its prediction view at each scrape: a day that stops
    moving on means `shelfcast score` stopped running (the stale-predictions alert)."""

    def __init__(self, day_of: Callable[[], dt.date | None]) -> None:
        self.day_of = day_of

    def collect(self) -> Iterator[Metric]:
        day = self.day_of()
        gauge = GaugeMetricFamily(
            "shelfcast_last_scoring_day_timestamp_seconds",
            "The scoring day the service answers from, 00:00 UTC as Unix time (0 before any).",
        )
        midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp() if day is not None else 0.0
        gauge.add_metric([], midnight)
        yield gauge


class ServiceMetrics:
    def __init__(self, monitoring: Path | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.monitoring = MonitoringCollector(monitoring) if monitoring is not None else None
        if self.monitoring is not None:
            self.registry.register(self.monitoring)
        self.scoring_day: ScoringDayCollector | None = None
        r = self.registry
        self.requests = Counter(
            "shelfcast_requests",
            "Requests answered, by route and status code.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "shelfcast_request_seconds", "Time to answer, by route.", ["route"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.errors = Counter(
            "shelfcast_request_errors",
            "Requests answered with an error, by route and kind (client 4xx or server 5xx).",
            ["route", "kind"],
            registry=r,
        )
        self.predictions = Counter(
            "shelfcast_predictions",
            "Stockout predictions served, by label and model version.",
            ["label", "model_version"],
            registry=r,
        )
        self.fallbacks = Counter(
            "shelfcast_fallbacks",
            "Predictions answered by the rule baseline because no model was available.",
            ["reason"],
            registry=r,
        )
        self.model_info = Gauge(
            "shelfcast_model_info",
            "The model versions being served (value 1), by task.",
            ["task", "name", "version"],
            registry=r,
            multiprocess_mode="liveall",
        )
        self.on_fallback = Gauge(
            "shelfcast_serving_fallback",
            "1 while stockout risk comes from the rule baseline, else 0.",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.reloads = Counter("shelfcast_model_reloads", "Model reloads, by outcome.", ["outcome"], registry=r)
        self.live_fallbacks = Counter(
            "shelfcast_live_fallbacks",
            "Predictions answered from the lake's features while live features were configured, by reason "
            "(building, unreachable, stale, unusable).",
            ["reason"],
            registry=r,
        )

    def watch_scoring_day(self, day_of: Callable[[], dt.date | None]) -> None:
        """Export the scoring day `day_of()` returns at each scrape."""
        self.scoring_day = ScoringDayCollector(day_of)
        self.registry.register(self.scoring_day)

    def serving(self, models: dict[str, tuple[str, str]], *, fallback: bool) -> None:
        """Record what is served now: {task: (name, version)}."""
        self.model_info.clear()
        for task, (name, version) in models.items():
            self.model_info.labels(task=task, name=name, version=version).set(1)
        self.on_fallback.set(1 if fallback else 0)

    def exposition(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            combined = CollectorRegistry()
            MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
            for own in (self.monitoring, self.scoring_day):
                if own is not None:
                    combined.register(own)
            return generate_latest(combined)
        return generate_latest(self.registry)
