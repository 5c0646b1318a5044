"""Prometheus metrics of the service, in a registry of its own (one per app, so tests can build several).

With several workers (`shelfcast serve --workers N`), `PROMETHEUS_MULTIPROC_DIR`
is set by the CLI before they start: each worker writes its values there and
`/metrics` adds them up across workers.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

# Sub-millisecond buckets: the prediction routes answer in about a millisecond.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
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
            return generate_latest(combined)
        return generate_latest(self.registry)
