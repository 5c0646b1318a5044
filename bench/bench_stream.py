"""Benchmark of the live path (issue 16): consumer throughput, freshness, online reads, and the peers.

Everything runs against the real Redis (`--redis-url`, default 127.0.0.1:6379 db 0) under a key prefix unique
to the run (`shelfcast-bench-<hex>`, one sub-prefix per part), deleted at the end, failure or not.

1. Throughput: `--events` synthetic events (`shelfcast.events.encode`: per series and day two sales, a stock
   count, a receipt every 7th day, over `--stores` x `--items` series and as many recent days as needed) are
   written to a Parquet file outside the clock; then 1 and then 2 consumer processes (`python -m shelfcast
   stream consume`) wait on the stream and one producer process (`python -m shelfcast stream produce FILE`)
   publishes the file (`live`); then the same with the consumers started once the producer is done
   (`backlog`: their drain rate alone). CPU seconds of each process and of Redis (INFO cpu) are recorded.
   Times are on the Redis clock: an entry id is the Redis time of its XADD, and the store
   stamps `first_ms` / `last_ms` at each apply. "Sustained" is the entries read over first to last apply;
   "end to end" is the events over the first XADD to the last apply (what a producer sees). No loss, no
   duplicates: at the end applied = events, duplicates = dead = pending = 0, and the units summed over every
   series' online history equal the units published.
2. Freshness: one consumer process; a producer process adds events at `--rate` per second (a pipeline every
   10 ms); every `--probe-every`-th event is a probe: a sale of a series no other event touches. This process
   polls the probes' day field (`HGET P:s:SID d:DAY`, the field `series_history` reads) every 2 ms in one
   pipeline ending with `TIME`. Freshness is Redis `TIME` of the first poll that sees the day minus the
   millisecond of the probe's entry id (its XADD, Redis clock): both on Redis's clock, so no two processes'
   clocks are compared; it is an upper bound (up to a poll interval and a round trip late, up to 1 ms early
   from the id's millisecond). The store's `upd` stamp of each probe (Redis `TIME` when its batch started
   applying) gives the apply lag alone.
3. Online reads: `--read-series` series seeded with a full `live.history_days` window of sales and counts
   (`OnlineStore.seed`); per read, round robin over them and interleaved so load hits all alike: a raw
   `HGETALL` with redis-py (the floor), the service's latest-count read (`HMGET loh lss lt upd`), and
   `OnlineStore.series_history` (HGETALL + parsing into the history frame); p50/p99 and the ratios.
4. Feast: its Redis online store cannot be installed beside shelfcast (see `FEAST`); the reason is recorded.
5. `/predict` with live features at `--predict-rate` requests/s (open loop, bench/loadgen.py): measured when
   `--predict-url` names a running `shelfcast serve` whose answers say `source: "live"` (series from the store
   under `--predict-prefix`); otherwise the JSON says why not.

    uv run python bench/bench_stream.py [--events 200000] [--stores 50 --items 40] [--consumers 1,2]
        [--rate 5000 --seconds 10] [--read-series 200 --reads 5000] [--predict-url http://127.0.0.1:8000]
        [--redis-url redis://127.0.0.1:6379/0] [--json PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import math
import os
import platform
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import redis
from rich.console import Console
from rich.table import Table

from shelfcast.events import ReceiptEvent, SaleEvent, StockCountEvent, encode
from shelfcast.io.online_store import OnlineStore, series_id
from shelfcast.io.stream import EventStream, connect

DEFAULT_JSON = Path(__file__).parent / "results" / "stream.json"
TARGET_EPS = 20_000.0
TARGET_FRESH_P99_MS = 1000.0
TARGET_PREDICT_P99_MS = 5.0
GROUP = "shelfcast-online"  # the `live.group` default, which the CLI processes use
PROBE_STORE = "PROBE"
FEAST = (
    "not installable beside shelfcast: every feast[redis] from 0.60 to 0.67 (the newest) requires redis<8, "
    "shelfcast requires redis[hiredis]>=8.1.0 (uv: unsatisfiable); the only feast uv resolves is 0.18.1 "
    "(February 2022), which would change main-environment versions: protobuf 7.36.2 -> 3.20.3, "
    "databricks-sdk 0.156.0 -> 0.67.0, opentelemetry-proto 1.45.2 -> 1.27.0 (mlflow's dependencies). "
    "The lock change was reverted."
)


# -- shared ------------------------------------------------------------------------------------------------------


def _ms(seconds: list[float] | np.ndarray, q: float) -> float:
    values = np.asarray(seconds, dtype=float)
    return float(np.percentile(values, q) * 1000) if values.size else float("nan")


def _cli(*args: str, redis_url: str, prefix: str, workspace: Path) -> list[str]:
    common = ["--redis-url", redis_url, "--prefix", prefix, "--workspace", str(workspace)]
    return [sys.executable, "-m", "shelfcast", "stream", *args, *common]


def _env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200", "OMP_WAIT_POLICY": "PASSIVE"}


def _stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # a worker finishes its batch, then stops
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cleanup(redis_url: str, prefix: str) -> int:
    """Delete every key starting with `prefix` (the run's sub-prefixes included); keys deleted."""
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    return len(keys)


# -- 1. throughput -----------------------------------------------------------------------------------------------


def synthetic_events(total: int, *, stores: int, items: int, last_day: dt.date) -> tuple[pl.DataFrame, float]:
    """`total` events (wire fields as text columns) over `stores` x `items` series, days ending `last_day`, in
    time order; and the units they sell."""
    series = [(f"S{s:03d}", f"I{i:04d}") for s in range(stores) for i in range(items)]
    per_day = 3 + 1 / 7
    days = max(1, math.ceil(total / (len(series) * per_day)))
    first = last_day - dt.timedelta(days=days - 1)
    rows: list[dict[str, str]] = []
    units_sold = 0.0
    n = 0
    for d in range(days):
        day = first + dt.timedelta(days=d)
        for k, (store, item) in enumerate(series):
            if len(rows) >= total:
                break
            base = dict(store_id=store, item_id=item)
            units = float((k + d) % 5)
            events: list[SaleEvent | StockCountEvent | ReceiptEvent] = [
                SaleEvent(
                    event_id=f"e{n}",
                    time=dt.datetime.combine(day, dt.time(10)),
                    units=units,
                    price=2.5,
                    promo=d % 2,
                    **base,
                ),
                SaleEvent(
                    event_id=f"e{n + 1}", time=dt.datetime.combine(day, dt.time(15)), units=1.0, price=2.0, **base
                ),
                StockCountEvent(
                    event_id=f"e{n + 2}",
                    time=dt.datetime.combine(day, dt.time(21)),
                    on_hand=float(20 + k % 7),
                    safety_stock=4.0,
                    **base,
                ),
            ]
            if (d + k) % 7 == 0:
                events.append(
                    ReceiptEvent(event_id=f"e{n + 3}", time=dt.datetime.combine(day, dt.time(8)), quantity=12.0, **base)
                )
            for event in events[: total - len(rows)]:
                rows.append(encode(event))
                if isinstance(event, SaleEvent):
                    units_sold += event.units
            n += 4
    columns = (
        "v",
        "type",
        "event_id",
        "time",
        "store_id",
        "item_id",
        "units",
        "price",
        "promo",
        "on_hand",
        "safety_stock",
        "quantity",
    )
    frame = pl.DataFrame({c: [r.get(c) for r in rows] for c in columns}, schema=dict.fromkeys(columns, pl.String)).drop(
        "v"
    )
    return frame, units_sold


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc; NaN elsewhere or once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _published_rate(log_file: Path) -> float | None:
    """The producer's own events/s, from the line `shelfcast stream produce` prints."""
    match = re.search(r"\(([\d,]+)/s", log_file.read_text(errors="replace")) if log_file.exists() else None
    return float(match.group(1).replace(",", "")) if match else None


def run_throughput(
    redis_url: str,
    prefix: str,
    events_file: Path,
    *,
    events: int,
    units: float,
    consumers: int,
    workspace: Path,
    backlog: bool = False,
    timeout: float = 600.0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """One producer process and `consumers` consumer processes over `events_file`: consumers waiting while the
    producer publishes, or with `backlog` started once the producer is done (their drain rate alone); the
    Redis-clock rates, CPU seconds of each process and of Redis, and the no-loss, no-duplicate checks (see the
    module's doc)."""
    client = connect(redis_url)
    store = OnlineStore(client, prefix)
    stream = EventStream(client, prefix, GROUP)
    stream.ensure_group()  # the consumers wait on it before the producer starts
    logs = workspace / f"logs-{prefix}"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**_env(), "SHELFCAST_LIVE__MAX_LAG": str(events + 1)} if backlog else _env()
    producer: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = []
    cpu: dict[str, float] = {}

    def start_producer() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            _cli("produce", str(events_file), redis_url=redis_url, prefix=prefix, workspace=workspace),
            env=env,
            stdout=(logs / "producer.log").open("wb"),
            stderr=subprocess.STDOUT,
        )

    load = os.getloadavg()[0]
    redis_before, children_before = _redis_cpu(client), _children_cpu()
    try:
        if backlog:
            producer = start_producer()
            if producer.wait(timeout=timeout) != 0:
                raise RuntimeError(f"the producer failed; see {logs}")
            cpu["producer"] = _children_cpu() - children_before
        workers = [
            subprocess.Popen(
                _cli("consume", "--name", f"bench-{k}", redis_url=redis_url, prefix=prefix, workspace=workspace),
                env=env,
                stdout=(logs / f"consumer-{k}.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
            for k in range(consumers)
        ]
        deadline = time.monotonic() + 120
        while not backlog and _readers(stream) < consumers:  # every worker is reading
            if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                raise RuntimeError(f"consumers did not start; see {logs}")
            time.sleep(0.1)
        if producer is None:
            producer = start_producer()
        deadline = time.monotonic() + timeout
        while (stats := store.stats()).read < events:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{stats.read:,} of {events:,} events read after {timeout:.0f} s; see {logs}")
            if producer.poll() not in (None, 0) or any(w.poll() is not None for w in workers):
                raise RuntimeError(f"a producer or consumer failed; see {logs}")
            time.sleep(0.05)
        for k, w in enumerate(workers):
            cpu[f"consumer-{k}"] = _cpu_seconds(w.pid)
        if not backlog:
            producer.wait(timeout=60)
            cpu["producer"] = _children_cpu() - children_before
    finally:
        if producer is not None and producer.poll() is None:
            producer.kill()
            producer.wait()
        for w in workers:
            _stop(w)
    redis_cpu = _redis_cpu(client) - redis_before
    stats = store.stats()
    info = stream.group_info()
    first_add = client.xrange(stream.key, count=1)
    first_add_ms = int(first_add[0][0].split(b"-")[0]) if first_add else None
    online_units = float(store.histories()["units"].sum() or 0.0)
    assert stats.first_ms is not None and stats.last_ms is not None
    sustained = stats.read / max((stats.last_ms - stats.first_ms) / 1000, 1e-3)
    end_to_end = None if first_add_ms is None else events / max((stats.last_ms - first_add_ms) / 1000, 1e-3)
    lossless = (
        stats.applied == events
        and stats.duplicates == 0
        and stats.dead == 0
        and (info is None or info.pending == 0)
        and abs(online_units - units) < 1e-6
    )
    result = {
        "mode": "backlog" if backlog else "live",
        "consumers": consumers,
        "events": events,
        "read": stats.read,
        "applied": stats.applied,
        "duplicates": stats.duplicates,
        "dead": stats.dead,
        "pending": None if info is None else info.pending,
        "units_published": units,
        "units_online": online_units,
        "lossless": lossless,
        "apply_seconds": round((stats.last_ms - stats.first_ms) / 1000, 3),
        "sustained_eps": round(sustained),
        "end_to_end_seconds": None if first_add_ms is None else round((stats.last_ms - first_add_ms) / 1000, 3),
        "end_to_end_eps": None if end_to_end is None else round(end_to_end),
        "producer_eps": _published_rate(logs / "producer.log"),
        "cpu_seconds": {**{k: round(v, 2) for k, v in cpu.items()}, "redis": round(redis_cpu, 2)},
        "load_1min_before": round(load, 2),
    }
    log(json.dumps(result))
    return result


def _children_cpu() -> float:
    """CPU seconds of this process's children waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _readers(stream: EventStream) -> int:
    """Consumers the group knows (a worker joins at its first read)."""
    info = stream.group_info()
    return 0 if info is None else len(info.consumers)


# -- 2. freshness ------------------------------------------------------------------------------------------------


def probe_item(k: int) -> str:
    return f"probe-{k:06d}"


def paced_producer(redis_url: str, prefix: str, *, rate: float, seconds: float, probe_every: int, day: dt.date) -> int:
    """Add events at `rate` per second for `seconds` (a pipeline every 10 ms); every `probe_every`-th is a probe
    sale (store `PROBE`, item `probe-K`), its entry id kept in the hash `P:bench:probes` (K -> id). Events sent."""
    client = connect(redis_url)
    stream = EventStream(client, prefix, GROUP)
    tick = 0.01
    per_tick = rate * tick
    at = dt.datetime.combine(day, dt.time(12))
    sent = probes = 0
    started = time.monotonic()
    total = int(rate * seconds)
    while sent < total:
        due = started + (sent / per_tick) * tick
        if (ahead := due - time.monotonic()) > 0:
            time.sleep(ahead)
        batch: list[dict[str, str]] = []
        probe_at: dict[int, int] = {}
        for _ in range(min(max(1, round(per_tick)), total - sent)):
            if sent % probe_every == 0:
                probe_at[len(batch)] = probes
                event = SaleEvent(
                    event_id=f"p{probes}", time=at, store_id=PROBE_STORE, item_id=probe_item(probes), units=1.0
                )
                probes += 1
            else:
                event = SaleEvent(
                    event_id=f"f{sent}",
                    time=at,
                    store_id=f"S{sent % 50:03d}",
                    item_id=f"I{sent % 997:04d}",
                    units=1.0,
                    price=2.0,
                )
            batch.append(encode(event))
            sent += 1
        ids = stream.add(batch)
        if probe_at:
            client.hset(f"{prefix}:bench:probes", mapping={str(k): ids[i] for i, k in probe_at.items()})
    return sent


def run_freshness(
    redis_url: str,
    prefix: str,
    *,
    rate: float,
    seconds: float,
    probe_every: int,
    workspace: Path,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """One consumer process, one paced producer process, probes polled here (see the module's doc)."""
    client = connect(redis_url)
    stream = EventStream(client, prefix, GROUP)
    stream.ensure_group()
    day = dt.date.today() - dt.timedelta(days=1)
    field = f"d:{day.isoformat()}"
    expected = math.ceil(int(rate * seconds) / probe_every)
    keys = [f"{prefix}:s:{series_id(PROBE_STORE, probe_item(k))}" for k in range(expected)]
    logs = workspace / f"logs-{prefix}"
    logs.mkdir(parents=True, exist_ok=True)
    worker = subprocess.Popen(
        _cli("consume", "--name", "bench-fresh", redis_url=redis_url, prefix=prefix, workspace=workspace),
        env=_env(),
        stdout=(logs / "consumer.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    producer: subprocess.Popen[bytes] | None = None
    seen_ms: dict[int, int] = {}
    load = os.getloadavg()[0]
    try:
        deadline = time.monotonic() + 120
        while _readers(stream) < 1:
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError(f"the consumer did not start; see {logs}")
            time.sleep(0.1)
        command = [
            sys.executable,
            __file__,
            "--role",
            "paced-producer",
            "--redis-url",
            redis_url,
            "--prefix",
            prefix,
            "--rate",
            str(rate),
            "--seconds",
            str(seconds),
            "--probe-every",
            str(probe_every),
            "--day",
            day.isoformat(),
        ]
        producer = subprocess.Popen(
            command, env=_env(), stdout=(logs / "producer.log").open("wb"), stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + seconds + 120
        nxt = 0
        while nxt < expected and time.monotonic() < deadline:
            window = [k for k in range(nxt, min(nxt + 16, expected)) if k not in seen_ms]
            pipe = client.pipeline(transaction=False)
            for k in window:
                pipe.hexists(keys[k], field)
            pipe.time()
            *found, now = pipe.execute()
            now_ms = int(now[0]) * 1000 + int(now[1]) // 1000
            for k, hit in zip(window, found, strict=True):
                if hit:
                    seen_ms[k] = now_ms
            while nxt < expected and nxt in seen_ms:
                nxt += 1
            if producer.poll() not in (None, 0):
                raise RuntimeError(f"the producer failed; see {logs}")
            time.sleep(0.002)
        producer.wait(timeout=60)
    finally:
        if producer is not None and producer.poll() is None:
            producer.kill()
            producer.wait()
        _stop(worker)
    added = {int(k): int(v.split(b"-")[0]) for k, v in client.hgetall(f"{prefix}:bench:probes").items()}
    pipe = client.pipeline(transaction=False)
    for k in range(expected):
        pipe.hget(keys[k], "upd")
    applied_ms = {k: int(v) for k, v in enumerate(pipe.execute()) if v is not None}
    fresh = [(seen_ms[k] - added[k]) / 1000 for k in sorted(seen_ms) if k in added]
    apply_lag = [(applied_ms[k] - added[k]) / 1000 for k in sorted(applied_ms) if k in added]
    stats = OnlineStore(client, prefix).stats()
    result = {
        "rate_eps": rate,
        "seconds": seconds,
        "events": int(rate * seconds),
        "applied": stats.applied,
        "probes": expected,
        "probes_seen": len(fresh),
        "p50_ms": round(_ms(fresh, 50), 1),
        "p99_ms": round(_ms(fresh, 99), 1),
        "max_ms": round(max(fresh) * 1000, 1) if fresh else None,
        "apply_lag_p50_ms": round(_ms(apply_lag, 50), 1),
        "apply_lag_p99_ms": round(_ms(apply_lag, 99), 1),
        "load_1min_before": round(load, 2),
    }
    log(json.dumps(result))
    return result


# -- 3. online reads ---------------------------------------------------------------------------------------------


def run_reads(
    redis_url: str, prefix: str, *, series: int, reads: int, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Seed `series` series with a full history window, then time the three reads (see the module's doc)."""
    client = connect(redis_url)
    store = OnlineStore(client, prefix)
    history = store.history_days
    through = dt.date.today() - dt.timedelta(days=1)
    days = [through - dt.timedelta(days=d) for d in range(history)]
    pairs = [(f"R{s // 20:03d}", f"I{s % 20:04d}") for s in range(series)]
    rows: dict[str, list[Any]] = {"date": [], "store_id": [], "item_id": []}
    for store_id, item_id in pairs:
        for day in days:
            rows["date"].append(day)
            rows["store_id"].append(store_id)
            rows["item_id"].append(item_id)
    keys = pl.DataFrame(rows)
    n = keys.height
    sales = keys.with_columns(units=pl.lit(3.0), price=pl.lit(2.5), promo=pl.lit(0, pl.Int8), revenue=pl.lit(7.5))
    inventory = keys.with_columns(on_hand=(pl.int_range(n) % 30).cast(pl.Float64), safety_stock=pl.lit(4.0))
    store.seed(sales, inventory, through=through)
    hkeys = [f"{prefix}:s:{series_id(s, i)}" for s, i in pairs]
    latest = ("loh", "lss", "lt", "upd")
    ops: dict[str, Callable[[int], Any]] = {
        "hgetall": lambda k: client.hgetall(hkeys[k]),
        "hmget_latest": lambda k: client.hmget(hkeys[k], latest),
        "stock_now": lambda k: store.stock_now([pairs[k]]),
        "series_history": lambda k: store.series_history(*pairs[k]),
        "ping": lambda k: client.ping(),
    }
    timings: dict[str, list[float]] = {name: [] for name in ops}
    load = os.getloadavg()[0]
    for r in range(-min(200, reads), reads):  # the first reads warm up, untimed
        k = r % series
        for name, op in ops.items():
            started = time.perf_counter()
            op(k)
            if r >= 0:
                timings[name].append(time.perf_counter() - started)
    frame = store.series_history(*pairs[0])
    result: dict[str, Any] = {
        "series": series,
        "days_per_series": frame.height,
        "hash_fields": len(client.hkeys(hkeys[0])),
        "reads": reads,
        "load_1min_before": round(load, 2),
    }
    for name, values in timings.items():
        result[name] = {"p50_ms": round(_ms(values, 50), 4), "p99_ms": round(_ms(values, 99), 4)}
    floor = result["hgetall"]
    for name in ("hmget_latest", "stock_now", "series_history", "ping"):
        result[name]["p50_vs_hgetall"] = round(result[name]["p50_ms"] / floor["p50_ms"], 2)
        result[name]["p99_vs_hgetall"] = round(result[name]["p99_ms"] / floor["p99_ms"], 2)
    log(json.dumps(result))
    return result


# -- 4. Feast, 5. /predict live ----------------------------------------------------------------------------------


def feast_peer() -> dict[str, Any]:
    """Feast's `get_online_features` on the same series: not measured, and why (`FEAST`)."""
    return {"measured": False, "reason": FEAST}


def service_live_mode() -> bool:
    """True when the installed service has a live mode (`shelfcast.service.live`)."""
    return importlib.util.find_spec("shelfcast.service.live") is not None


def build_live_workspace(folder: Path, redis_url: str, prefix: str, *, log: Callable[[str], None] = print) -> Path:
    """A demo workspace (10 stores x 50 items x 400 days, models trained) whose last week is streamed into the
    online store under `prefix` by the CLI, as the demo's summary says: seed, produce --from-lake, consume."""
    from shelfcast.io.lake import Lake

    workspace = folder / "ws"
    log("building a demo workspace for /predict (a few minutes) ...")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHELFCAST_", "MLFLOW_"))}
    env |= {"SHELFCAST_REDIS_URL": redis_url, "SHELFCAST_LIVE__PREFIX": prefix}
    shelfcast = [sys.executable, "-m", "shelfcast"]
    demo = [*shelfcast, "demo", "-w", str(workspace), "--stores", "10", "--items", "50", "--days", "400"]
    subprocess.run(demo, check=True, stdout=subprocess.DEVNULL, env=env, cwd=folder)
    last = Lake(workspace).table_info("sales")["date_max"]  # type: ignore[index]
    week = dt.date.fromisoformat(str(last)[:10]) - dt.timedelta(days=7)
    for args in (
        ["seed", "--through", str(week)],
        ["produce", "--from-lake", "--start", str(week + dt.timedelta(days=1))],
        ["consume", "--until-idle"],
    ):
        subprocess.run(
            [*shelfcast, "stream", *args, "-w", str(workspace)], check=True, stdout=subprocess.DEVNULL, env=env
        )
    return workspace


def serve_and_measure(
    workspace: Path, redis_url: str, prefix: str, *, live: bool, rate: float, seconds: float
) -> dict[str, Any]:
    """`shelfcast serve` on `workspace` (live features on or off), `/predict` by ids at `rate` per second."""
    import asyncio
    import socket
    import urllib.request

    sys.path.insert(0, str(Path(__file__).parent))
    from loadgen import open_loop, post

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHELFCAST_", "MLFLOW_", "PROMETHEUS_"))}
    env |= {"SHELFCAST_REDIS_URL": redis_url, "SHELFCAST_LIVE__PREFIX": prefix}
    env |= {"SHELFCAST_LIVE__SERVE": "true" if live else "false", "SHELFCAST_LIVE__REFRESH_SECONDS": "1"}
    log_file = (workspace.parent / f"serve-{'live' if live else 'lake'}.log").open("wb")
    # As bench_serve.py does: the server on one core, this load generator on the other.
    pin = hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
    process = subprocess.Popen(
        [sys.executable, "-m", "shelfcast", "serve", "-w", str(workspace), "--port", str(port)],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        preexec_fn=(lambda: os.sched_setaffinity(0, {0})) if pin else None,  # noqa: PLW1509
    )
    mine = os.sched_getaffinity(0) if pin else None
    base = f"http://127.0.0.1:{port}"
    pairs = OnlineStore(connect(redis_url), prefix).known_series()[:500]
    bodies = [post("/predict", json.dumps({"store_id": s, "item_id": i}).encode()) for s, i in pairs]
    first = json.dumps({"store_id": pairs[0][0], "item_id": pairs[0][1]}).encode()
    try:
        deadline = time.monotonic() + 300
        source = None
        while time.monotonic() < deadline:
            try:
                request = urllib.request.Request(
                    base + "/predict", data=first, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=10) as answer:
                    source = json.loads(answer.read()).get("source")
                if source == ("live" if live else "lake"):
                    break
            except OSError:
                pass
            time.sleep(0.5)
        if source != ("live" if live else "lake"):
            return {"measured": False, "reason": f"the service never answered source={'live' if live else 'lake'}"}
        if mine is not None:
            os.sched_setaffinity(0, {1})
        asyncio.run(open_loop("127.0.0.1", port, bodies, rate=rate, seconds=2.0))  # warm-up
        result = asyncio.run(open_loop("127.0.0.1", port, bodies, rate=rate, seconds=seconds))
        return {"measured": True, "source": source, "rate_rps": rate, "series": len(pairs), **result.summary()}
    finally:
        if mine is not None:
            os.sched_setaffinity(0, mine)
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log_file.close()


def run_predict(
    url: str | None,
    redis_url: str,
    *,
    prefix: str,
    rate: float,
    seconds: float,
    series: int = 500,
    build_in: Path | None = None,
) -> dict[str, Any]:
    """`POST /predict` by ids at `rate` per second (open loop): against `url` (a running service in live mode,
    series of the online store under `prefix`), or, with `build_in`, a demo workspace streamed into the store
    and served twice in the same run, live features on and off (the lake's path, the peer)."""
    if url is None and build_in is not None:
        workspace = build_live_workspace(build_in, redis_url, prefix)
        lake = serve_and_measure(workspace, redis_url, prefix, live=False, rate=rate, seconds=seconds)
        live = serve_and_measure(workspace, redis_url, prefix, live=True, rate=rate, seconds=seconds)
        if live.get("measured") and lake.get("measured"):
            live["lake"] = lake
            live["p99_vs_lake"] = round(live["p99_ms"] / max(lake["p99_ms"], 1e-9), 2)
            return live
        return live if not live.get("measured") else {"measured": False, "reason": str(lake.get("reason"))}
    if url is None:
        why = "service live mode not present" if not service_live_mode() else "no --predict-url given"
        return {"measured": False, "reason": f"not measured: {why}"}
    import urllib.parse
    import urllib.request

    sys.path.insert(0, str(Path(__file__).parent))
    from loadgen import open_loop, post

    pairs = OnlineStore(connect(redis_url), prefix).known_series()[:series]
    if not pairs:
        return {"measured": False, "reason": f"not measured: no series in the online store under {prefix!r}"}
    bodies = [post("/predict", json.dumps({"store_id": s, "item_id": i}).encode()) for s, i in pairs]
    request = urllib.request.Request(
        url.rstrip("/") + "/predict",
        data=json.dumps({"store_id": pairs[0][0], "item_id": pairs[0][1]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        body = json.loads(answer.read())
    source = body.get("source") if isinstance(body, dict) else None
    if source != "live":
        return {"measured": False, "reason": f"not measured: the service answered source={source!r}, not 'live'"}
    parsed = urllib.parse.urlsplit(url)
    import asyncio

    result = asyncio.run(
        open_loop(parsed.hostname or "127.0.0.1", parsed.port or 80, bodies, rate=rate, seconds=seconds)
    )
    return {"measured": True, "rate_rps": rate, "series": len(pairs), **result.summary()}


# -- report ------------------------------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "met" if ok else "missed"


def render(result: dict[str, Any]) -> Table:
    table = Table(title=f"live path: {result['parameters']['events']:,} events, {result['date']}")
    for column in ("measure", "figure", "peer in the same run", "ratio", "target"):
        table.add_column(column, justify="left" if column in ("measure", "peer in the same run") else "right")
    runs = result["throughput"]
    one = {r["mode"]: r["sustained_eps"] for r in runs if r["consumers"] == 1}
    for run in runs:
        ok = run["sustained_eps"] >= TARGET_EPS and run["lossless"]
        base = one.get(run["mode"])
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in run["cpu_seconds"].items())
        when = "consuming while it publishes" if run["mode"] == "live" else "draining a published backlog"
        table.add_row(
            f"throughput, 1 producer + {run['consumers']} consumer(s), {when}",
            f"{run['sustained_eps']:,} ev/s sustained ({run['end_to_end_eps']:,} end to end, producer "
            f"{run['producer_eps'] or 0:,.0f}/s); applied {run['applied']:,} = events, dup {run['duplicates']}, "
            f"dead {run['dead']}; CPU s: {cpu}",
            "1 consumer, same mode" if run["consumers"] != 1 else "-",
            f"{run['sustained_eps'] / base:.2f}x" if base and run["consumers"] != 1 else "-",
            f">= {TARGET_EPS:,.0f}, no loss: {_verdict(ok)}",
        )
    f = result["freshness"]
    if f:
        table.add_row(
            f"freshness at {f['rate_eps']:,.0f} ev/s ({f['probes_seen']} probes)",
            f"p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms (apply lag p99 {f['apply_lag_p99_ms']} ms)",
            "-",
            "-",
            f"p99 <= {TARGET_FRESH_P99_MS:,.0f} ms: {_verdict(f['p99_ms'] <= TARGET_FRESH_P99_MS)}",
        )
    r = result["reads"]
    if r:
        floor = r["hgetall"]
        for name, label in (
            ("hmget_latest", "HMGET loh lss lt upd"),
            ("stock_now", "stock_now (the service's read per request)"),
            ("series_history", "series_history"),
        ):
            table.add_row(
                f"read: {label} ({r['days_per_series']} days)",
                f"p50 {r[name]['p50_ms']:.3f} ms, p99 {r[name]['p99_ms']:.3f} ms",
                f"raw HGETALL: p50 {floor['p50_ms']:.3f}, p99 {floor['p99_ms']:.3f} ms",
                f"{r[name]['p50_vs_hgetall']:.2f}x / {r[name]['p99_vs_hgetall']:.2f}x",
                "-",
            )
    table.add_row("Feast get_online_features", "not measured", "-", "-", "-")
    p = result["predict"]
    if p.get("measured"):
        ok = p["p99_ms"] <= TARGET_PREDICT_P99_MS and p["errors"] == 0
        figure = f"p50 {p['p50_ms']} ms, p99 {p['p99_ms']} ms, {p['errors']} errors"
        lake = p.get("lake")
        table.add_row(
            f"/predict live at {p['rate_rps']:.0f} req/s ({p['series']} series)",
            figure,
            f"lake features: p50 {lake['p50_ms']} ms, p99 {lake['p99_ms']} ms" if lake else "-",
            f"{p['p99_vs_lake']:.2f}x p99" if lake else "-",
            f"p99 <= {TARGET_PREDICT_P99_MS} ms: {_verdict(ok)}",
        )
    else:
        table.add_row("/predict live", p["reason"], "-", "-", "-")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--events", type=int, default=200_000, help="Events of each throughput run.")
    parser.add_argument("--stores", type=int, default=50)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--consumers", default="1,2", help="Consumer process counts, comma-separated.")
    parser.add_argument("--rate", type=float, default=5000.0, help="Freshness: producer's events per second.")
    parser.add_argument("--seconds", type=float, default=10.0, help="Freshness: length of the paced run.")
    parser.add_argument("--probe-every", type=int, default=100, help="Freshness: one event in this many is a probe.")
    parser.add_argument("--read-series", type=int, default=200)
    parser.add_argument("--reads", type=int, default=5000, help="Timed reads of each kind.")
    parser.add_argument("--predict-url", help="A running `shelfcast serve` in live mode (else not measured).")
    parser.add_argument("--predict-prefix", default="shelfcast", help="The service's `live.prefix`.")
    parser.add_argument(
        "--no-predict", action="store_true", help="Skip /predict (else a demo workspace is built and served)."
    )
    parser.add_argument("--predict-rate", type=float, default=300.0)
    parser.add_argument("--predict-seconds", type=float, default=20.0)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--role", default="bench", choices=("bench", "paced-producer"), help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--day", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "paced-producer":
        sent = paced_producer(
            args.redis_url,
            args.prefix,
            rate=args.rate,
            seconds=args.seconds,
            probe_every=args.probe_every,
            day=dt.date.fromisoformat(args.day),
        )
        print(f"sent {sent}")
        return

    counts = [int(c) for c in args.consumers.split(",") if c.strip()]
    top = f"shelfcast-bench-{uuid.uuid4().hex[:10]}"
    client = redis.Redis.from_url(args.redis_url)
    result: dict[str, Any] = {
        "benchmark": "stream",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "usable": len(os.sched_getaffinity(0)),
            "redis": client.info("server")["redis_version"],
            "load_1min_before": round(os.getloadavg()[0], 2),
        },
        "parameters": {k: v for k, v in vars(args).items() if k not in ("json", "role", "prefix", "day")},
        "targets": {
            "events_per_second": TARGET_EPS,
            "freshness_p99_ms": TARGET_FRESH_P99_MS,
            "predict_p99_ms": TARGET_PREDICT_P99_MS,
        },
        "throughput": [],
        "freshness": None,
        "reads": None,
    }
    result["parameters"]["redis_url"] = "redis://127.0.0.1:6379/0" if "@" not in args.redis_url else "(redacted)"
    try:
        with tempfile.TemporaryDirectory(prefix="shelfcast-bench-stream-") as tmp:
            folder = Path(tmp)
            frame, units = synthetic_events(
                args.events, stores=args.stores, items=args.items, last_day=dt.date.today() - dt.timedelta(days=1)
            )
            events_file = folder / "events.parquet"
            frame.write_parquet(events_file)
            for backlog in (False, True):
                for n in counts:
                    sub = f"{top}-{'b' if backlog else 'c'}{n}"
                    result["throughput"].append(
                        run_throughput(
                            args.redis_url,
                            sub,
                            events_file,
                            events=frame.height,
                            units=units,
                            consumers=n,
                            workspace=folder,
                            backlog=backlog,
                        )
                    )
                    cleanup(args.redis_url, sub)
            result["freshness"] = run_freshness(
                args.redis_url,
                f"{top}-fresh",
                rate=args.rate,
                seconds=args.seconds,
                probe_every=args.probe_every,
                workspace=folder,
            )
            result["reads"] = run_reads(args.redis_url, f"{top}-read", series=args.read_series, reads=args.reads)
    finally:
        cleanup(args.redis_url, top)
    result["feast"] = feast_peer()
    if args.predict_url is None and not args.no_predict:
        with tempfile.TemporaryDirectory() as where:
            try:
                result["predict"] = run_predict(
                    None,
                    args.redis_url,
                    prefix=f"{top}-predict",
                    rate=args.predict_rate,
                    seconds=args.predict_seconds,
                    build_in=Path(where),
                )
            finally:
                cleanup(args.redis_url, f"{top}-predict")
    else:
        result["predict"] = run_predict(
            args.predict_url,
            args.redis_url,
            prefix=args.predict_prefix,
            rate=args.predict_rate,
            seconds=args.predict_seconds,
        )
        if args.no_predict:
            result["predict"] = {"measured": False, "reason": "not measured: --no-predict"}
    result["machine"]["load_1min_after"] = round(os.getloadavg()[0], 2)
    Console(width=200).print(render(result))
    print(
        f"load average (1 min): {result['machine']['load_1min_before']} before, "
        f"{result['machine']['load_1min_after']} after; Feast: {FEAST}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
