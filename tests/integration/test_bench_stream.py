"""bench/bench_stream.py's parts run on a tiny input against the real Redis, so the benchmark cannot rot."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import redis
from helpers import REDIS_URL, require_redis

pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_stream.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_stream", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_stream"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def prefix(bench: ModuleType) -> Iterator[str]:
    """A unique prefix on the shared Redis; every key under it is deleted afterwards, and none may be left."""
    require_redis(REDIS_URL)
    name = f"shelfcast-test-bench-{uuid.uuid4().hex[:10]}"
    yield name
    bench.cleanup(REDIS_URL, name)


def test_the_benchmark_parts_run_on_a_tiny_input(bench: ModuleType, prefix: str, tmp_path: Path) -> None:
    frame, units = bench.synthetic_events(400, stores=2, items=3, last_day=dt.date.today() - dt.timedelta(days=1))
    assert frame.height == 400 and units > 0
    events_file = tmp_path / "events.parquet"
    frame.write_parquet(events_file)
    quiet = lambda _line: None  # noqa: E731

    live = bench.run_throughput(
        REDIS_URL, f"{prefix}-c", events_file, events=400, units=units, consumers=2, workspace=tmp_path, log=quiet
    )
    assert live["lossless"] and live["applied"] == 400 and live["duplicates"] == 0 and live["pending"] == 0
    assert live["sustained_eps"] > 0 and set(live["cpu_seconds"]) == {"consumer-0", "consumer-1", "producer", "redis"}
    drained = bench.run_throughput(
        REDIS_URL,
        f"{prefix}-b",
        events_file,
        events=400,
        units=units,
        consumers=1,
        workspace=tmp_path,
        backlog=True,
        log=quiet,
    )
    assert drained["lossless"] and drained["mode"] == "backlog" and drained["producer_eps"]

    fresh = bench.run_freshness(
        REDIS_URL, f"{prefix}-f", rate=400, seconds=0.5, probe_every=20, workspace=tmp_path, log=quiet
    )
    assert fresh["probes_seen"] == fresh["probes"] == 10 and fresh["applied"] == 200
    assert 0 <= fresh["p50_ms"] <= fresh["p99_ms"] < 10_000

    reads = bench.run_reads(REDIS_URL, f"{prefix}-r", series=3, reads=20, log=quiet)
    assert reads["days_per_series"] > 300 and reads["hgetall"]["p50_ms"] > 0
    assert reads["series_history"]["p50_vs_hgetall"] > 0

    predict = bench.run_predict(None, REDIS_URL, prefix=prefix, rate=300, seconds=1)
    assert predict["measured"] is False and predict["reason"].startswith("not measured:")
    assert bench.feast_peer()["measured"] is False

    result = {
        "date": "today",
        "parameters": {"events": 400},
        "throughput": [live, drained],
        "freshness": fresh,
        "reads": reads,
        "predict": predict,
    }
    assert bench.render(result).row_count == 8  # two throughput rows, freshness, three reads, Feast, /predict
    client = redis.Redis.from_url(REDIS_URL)
    assert bench.cleanup(REDIS_URL, prefix) > 0
    assert not list(client.scan_iter(match=f"{prefix}*", count=1000))
