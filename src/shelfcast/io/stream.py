"""The Redis Streams adapter of the live path: the events stream, its consumer group and the dead-letter stream.

Keys (with the `live.prefix` setting, default `shelfcast`):

- `{prefix}:events`: the events, one entry per event (fields as `shelfcast.events.encode` writes them), trimmed
  with `XADD MAXLEN ~ live.max_len`; producers wait while the group's lag is above `live.max_lag` (back-pressure),
  so trimming only drops entries every group has read.
- `{prefix}:dead`: the dead letters: `rule`, `field`, `detail`, `entry_id` (the original entry's id), `raw` (the
  original fields as JSON), `consumer`. The online store's apply step writes them (`OnlineStore.apply`), in the
  same atomic step as the acknowledgement.

Delivery is at least once: an entry stays pending in the group until acknowledged, a restarted worker first reads
its own pending entries (`read(..., pending=True)`), and another worker claims entries idle longer than
`live.claim_idle_ms` (`claim_stale`). `retrying` wraps a call so a Redis that goes away (connection refused or
reset, loading after a restart) is retried with backoff instead of failing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from redis.exceptions import BusyLoadingError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shelfcast.errors import StreamError
from shelfcast.redact import redact

log = logging.getLogger(__name__)
T = TypeVar("T")

Entry = tuple[bytes, dict[bytes, bytes] | None]
"""A stream entry as read: its id and fields (None when the entry was trimmed away while pending)."""

TRANSIENT = (RedisConnectionError, RedisTimeoutError, BusyLoadingError)
"""Errors of a Redis that went away or is restarting: retried, never fatal on their own."""


def events_key(prefix: str) -> str:
    return f"{prefix}:events"


def dead_key(prefix: str) -> str:
    return f"{prefix}:dead"


def connect(url: str) -> redis.Redis:
    """A client for `url` that can block on reads (no socket timeout), bytes in and out; a bad URL is a
    `StreamError`. Nothing is sent until first used."""
    try:
        return redis.Redis.from_url(
            url, socket_timeout=None, socket_connect_timeout=5, health_check_interval=30, decode_responses=False
        )
    except ValueError as exc:
        raise StreamError(f"cannot use the Redis URL {redact(url)}: {exc}") from None


def check_reachable(client: redis.Redis, url: str) -> None:
    """A one-line `StreamError` naming the URL when Redis does not answer."""
    try:
        client.ping()
    except (*TRANSIENT, OSError) as exc:
        raise StreamError(f"Redis at {redact(url)} is unreachable: {exc}") from None


@dataclass
class Backoff:
    """Retry with exponential backoff: waits `first`, doubling up to `longest`, for at most `give_up_after`
    seconds in a row (None: forever)."""

    first: float = 0.05
    longest: float = 2.0
    give_up_after: float | None = 300.0


def retrying(
    call: Callable[[], T],
    *,
    what: str,
    url: str = "",
    backoff: Backoff | None = None,
    stop: Callable[[], bool] | None = None,
) -> T:
    """`call()`, retried while Redis is unreachable or loading; after `backoff.give_up_after` seconds (or when
    `stop()` turns true) a `StreamError` naming `what` and the URL."""
    policy = backoff or Backoff()
    wait, started = policy.first, time.monotonic()
    while True:
        try:
            return call()
        except TRANSIENT as exc:
            waited = time.monotonic() - started
            if (policy.give_up_after is not None and waited >= policy.give_up_after) or (stop and stop()):
                raise StreamError(f"Redis at {redact(url)} is unreachable ({what}): {exc}") from None
            log.warning("Redis unavailable while %s (%s); retrying in %.2fs", what, exc, wait)
            time.sleep(wait)
            wait = min(wait * 2, policy.longest)


@dataclass(frozen=True)
class GroupInfo:
    """One consumer group of the events stream: entries not yet read (`lag`, None when Redis cannot tell),
    read but not acknowledged (`pending`), and its consumers with their pending counts."""

    name: str
    lag: int | None
    pending: int
    consumers: dict[str, int]


class EventStream:
    """The events stream of one prefix, and the consumer group `group` reading it.

    Methods talk to Redis once (or once per pipeline) and raise redis-py's errors; callers wrap them in
    `retrying` where a Redis that goes away must not stop them.
    """

    def __init__(self, client: redis.Redis, prefix: str, group: str, *, max_len: int = 1_000_000) -> None:
        self.client = client
        self.prefix = prefix
        self.group = group
        self.max_len = max_len
        self.key = events_key(prefix)
        self.dead = dead_key(prefix)

    # -- producing ---------------------------------------------------------------------------------------------
    def add(self, entries: Sequence[Mapping[str, str]]) -> list[bytes]:
        """Append entries (one pipeline round trip), trimming the stream to about `max_len`; their ids."""
        pipe = self.client.pipeline(transaction=False)
        for fields in entries:
            pipe.xadd(self.key, dict(fields), maxlen=self.max_len, approximate=True)  # type: ignore[arg-type]
        return [bytes(i) for i in pipe.execute()]

    def wait_for_room(self, max_lag: int, *, poll: float = 0.05, stop: Callable[[], bool] | None = None) -> float:
        """Back-pressure: block while the group's lag is above `max_lag`; seconds waited."""
        started = time.monotonic()
        while not (stop and stop()):
            info = self.group_info()
            if info is None or info.lag is None or info.lag <= max_lag:
                break
            time.sleep(poll)
        return time.monotonic() - started

    # -- consuming ---------------------------------------------------------------------------------------------
    def ensure_group(self) -> None:
        """Create the stream and the group (reading from the start) unless they exist."""
        try:
            self.client.xgroup_create(self.key, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, consumer: str, count: int, *, block_ms: int | None = None, pending: bool = False) -> list[Entry]:
        """Up to `count` entries for `consumer`: new ones (`>`, waiting up to `block_ms`), or with `pending` the
        consumer's own delivered but unacknowledged ones, from the oldest (`0`; they count one more delivery)."""
        reply = self.client.xreadgroup(
            self.group, consumer, {self.key: "0" if pending else ">"}, count=count, block=None if pending else block_ms
        )
        return _entries(reply)

    def claim_stale(self, consumer: str, min_idle_ms: int, count: int) -> tuple[list[Entry], list[bytes]]:
        """Entries pending for longer than `min_idle_ms` under any consumer (a dead worker's), now `consumer`'s:
        (claimed entries, ids of pending entries the stream no longer holds, which Redis dropped from the
        pending list)."""
        claimed: list[Entry] = []
        deleted: list[bytes] = []
        start: bytes | str = "0-0"
        while len(claimed) < count:
            reply: Any = self.client.xautoclaim(
                self.key, self.group, consumer, min_idle_time=min_idle_ms, start_id=start, count=count
            )
            start, entries = reply[0], reply[1]
            claimed += [(bytes(i), dict(f) if f is not None else None) for i, f in entries]
            if len(reply) > 2:
                deleted += [bytes(i) for i in reply[2]]
            if start in (b"0-0", "0-0"):
                break
        return claimed, deleted

    def deliveries(self, ids: Iterable[bytes], consumer: str | None = None) -> dict[bytes, int]:
        """How many times each pending entry (of `consumer`, or of anyone) was delivered; entries not pending are
        absent."""
        wanted = sorted(set(ids), key=_id_key)
        if not wanted:
            return {}
        rows: Any = self.client.xpending_range(
            self.key, self.group, min=wanted[0], max=wanted[-1], count=2 * len(wanted) + 100, consumername=consumer
        )
        want = set(wanted)
        out: dict[bytes, int] = {}
        for row in rows:
            mid = bytes(row["message_id"])
            if mid in want:
                out[mid] = int(row["times_delivered"])
        return out

    # -- status ------------------------------------------------------------------------------------------------
    def group_info(self) -> GroupInfo | None:
        """The group's lag and pending counts, None when the stream or the group does not exist."""
        try:
            groups = self.client.xinfo_groups(self.key)
        except ResponseError:
            return None
        for group in groups:
            if _text(group["name"]) == self.group:
                try:
                    consumers = self.client.xinfo_consumers(self.key, self.group)
                except ResponseError:
                    consumers = []
                lag = group.get("lag")
                return GroupInfo(
                    name=self.group,
                    lag=None if lag is None else int(lag),
                    pending=int(group["pending"]),
                    consumers={_text(c["name"]): int(c["pending"]) for c in consumers},
                )
        return None

    def groups(self) -> list[GroupInfo]:
        """Every group reading the stream."""
        try:
            names = [_text(g["name"]) for g in self.client.xinfo_groups(self.key)]
        except ResponseError:
            return []
        out = []
        for name in names:
            info = EventStream(self.client, self.prefix, name).group_info()
            if info is not None:
                out.append(info)
        return out

    def length(self) -> int:
        return int(self.client.xlen(self.key))

    def dead_count(self) -> int:
        return int(self.client.xlen(self.dead))

    def dead_letters(self, count: int = 100) -> list[dict[str, Any]]:
        """The oldest `count` dead letters: rule, field, detail, entry_id, consumer and `raw` (the fields)."""
        out = []
        rows: Any = self.client.xrange(self.dead, count=count)
        for _, fields in rows:
            row = {_text(k): _text(v) for k, v in fields.items()}
            row["raw"] = json.loads(row.get("raw") or "{}")
            out.append(row)
        return out


def raw_json(fields: Mapping[bytes, bytes] | None) -> str:
    """An entry's fields as JSON text (bytes decoded, bad UTF-8 replaced), for a dead letter."""
    if fields is None:
        return "null"
    return json.dumps({_text(k): _text(v) for k, v in fields.items()}, ensure_ascii=False, sort_keys=True)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _id_key(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)


def _entries(reply: Any) -> list[Entry]:
    if not reply:
        return []
    out: list[Entry] = []
    for _stream, entries in reply:
        for entry_id, fields in entries:
            out.append((bytes(entry_id), dict(fields) if fields else None))
    return out
