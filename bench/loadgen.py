"""A bounded HTTP/1.1 load generator for loopback benchmarks (keep-alive connections, raw asyncio streams).

Two modes:

- open loop (`open_loop`): requests are scheduled at a fixed rate; latency is
  measured from each request's scheduled time, so time spent waiting for a
  free connection counts (no coordinated omission);
- closed loop (`closed_loop`): each connection sends its next request as soon
  as the last answer arrives, for a fixed time: the server's throughput.

Written on asyncio streams rather than an HTTP client library so that the
generator spends as little CPU per request as possible on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def post(path: str, body: bytes, *, headers: dict[str, str] | None = None) -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()


@dataclass
class Result:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: int = 0  # connection errors, timeouts

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def errors(self) -> int:
        return self.failures + sum(n for s, n in self.statuses.items() if s != 200)

    @property
    def throughput(self) -> float:
        return (self.ok + self.errors) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """Latency percentile in milliseconds."""
        return float(np.percentile(np.asarray(self.latencies), q) * 1000) if self.latencies else float("nan")

    def summary(self) -> dict[str, float | int]:
        return {
            "requests": self.ok + self.errors,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "throughput_rps": round(self.throughput, 1),
            "p50_ms": round(self.percentile(50), 3),
            "p90_ms": round(self.percentile(90), 3),
            "p99_ms": round(self.percentile(99), 3),
            "max_ms": round(max(self.latencies) * 1000, 3) if self.latencies else float("nan"),
        }


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def call(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        for line in lines[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def _record(conn: _Connection, request: bytes, result: Result, timeout: float) -> _Connection | None:
    """One call; on a failure the connection is dropped (None) and the failure counted."""
    try:
        status = await asyncio.wait_for(conn.call(request), timeout)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
        result.failures += 1
        conn.close()
        return None
    result.statuses[status] = result.statuses.get(status, 0) + 1
    return conn


async def open_loop(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    rate: float,
    seconds: float,
    connections: int = 16,
    timeout: float = 10.0,
) -> Result:
    """`rate` requests per second for `seconds`, cycling through `requests`; latency from the scheduled time."""
    total = int(rate * seconds)
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    result = Result(seconds=seconds)

    async def worker() -> None:
        conn: _Connection | None = await _Connection.open(host, port)
        while (item := await queue.get()) is not None:
            scheduled, request = item
            if conn is None:
                conn = await _Connection.open(host, port)
            conn = await _record(conn, request, result, timeout)
            result.latencies.append(time.perf_counter() - scheduled)
        if conn is not None:
            conn.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    started = time.perf_counter()
    cycle = itertools.cycle(requests)
    for i in range(total):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, next(cycle)))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    result.seconds = time.perf_counter() - started
    return result


async def closed_loop(
    host: str, port: int, requests: Sequence[bytes], *, seconds: float, connections: int = 4, timeout: float = 10.0
) -> Result:
    """Each connection sends back to back for `seconds`: the most the server answers."""
    result = Result(seconds=seconds)
    stop = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        conn: _Connection | None = await _Connection.open(host, port)
        rotated = [*requests[offset:], *requests[:offset]]
        cycle = itertools.cycle(rotated)
        while time.perf_counter() < stop:
            if conn is None:
                conn = await _Connection.open(host, port)
            sent = time.perf_counter()
            conn = await _record(conn, next(cycle), result, timeout)
            result.latencies.append(time.perf_counter() - sent)
        if conn is not None:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(k * 7) for k in range(connections)))
    result.seconds = time.perf_counter() - started
    return result
