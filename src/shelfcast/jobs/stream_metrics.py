"""Prometheus metrics of the live stream, for `shelfcast stream consume --metrics-port PORT`.

Read from Redis at each scrape (the stream, its consumer group, the
dead-letter stream and the online store's counters), so every consumer of
a group shows the same group-wide values and a scrape is never stale; a
Redis that does not answer gives `shelfcast_stream_redis_up 0` (and
nothing else) rather than a failed scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import redis
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shelfcast.errors import StreamError
from shelfcast.jobs.stream import Live, open_live
from shelfcast.settings import Settings

log = logging.getLogger(__name__)


class StreamCollector(Collector):
    """The stream's gauges and the online store's event counters, from Redis at each scrape."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._live: Live | None = None

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("shelfcast_stream_redis_up", "1 when this scrape read the stream from Redis.")
        try:
            self._live = self._live or open_live(self.settings, check=False)
            metrics = list(_stream_metrics(self._live))
        except (redis.RedisError, OSError, StreamError) as exc:
            log.warning("stream metrics: %s", exc)
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        yield from metrics


def _stream_metrics(live: Live) -> Iterator[Metric]:
    length = GaugeMetricFamily("shelfcast_stream_length", "Entries in the events stream (trimmed at live.max_len).")
    length.add_metric([], float(live.stream.length()))
    yield length
    lag = GaugeMetricFamily("shelfcast_stream_lag", "Entries the consumer group has not read yet.", labels=["group"])
    pending = GaugeMetricFamily(
        "shelfcast_stream_pending",
        "Entries read by a consumer of the group and not yet acknowledged.",
        labels=["group"],
    )
    for group in live.stream.groups():
        if group.lag is not None:
            lag.add_metric([group.name], float(group.lag))
        pending.add_metric([group.name], float(group.pending))
    yield lag
    yield pending
    dead = GaugeMetricFamily("shelfcast_stream_dead_letters", "Entries in the dead-letter stream.")
    dead.add_metric([], float(live.stream.dead_count()))
    yield dead
    stats = live.store.stats()
    events = CounterMetricFamily(
        "shelfcast_stream_events",
        "Entries the consumers handled, by outcome (applied, duplicate, dead), since the store was created.",
        labels=["outcome"],
    )
    events.add_metric(["applied"], float(stats.applied))
    events.add_metric(["duplicate"], float(stats.duplicates))
    events.add_metric(["dead"], float(stats.dead))
    yield events
    meta = live.store.meta()
    applied = GaugeMetricFamily(
        "shelfcast_stream_last_applied_timestamp_seconds",
        "When the online store last applied an event (Redis clock, Unix time; 0 if never).",
    )
    applied.add_metric([], meta.last_applied_at.timestamp() if meta.last_applied_at else 0.0)
    yield applied


def serve_stream_metrics(settings: Settings, *, port: int, host: str) -> None:
    """Serve `/metrics` of the stream on `host:port` from a daemon thread (it ends with the process)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StreamCollector(settings))
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise StreamError(f"cannot serve the stream metrics on {host}:{port}: {exc.strerror or exc}") from exc
    log.info("stream metrics on http://%s:%d/metrics", host, port)
