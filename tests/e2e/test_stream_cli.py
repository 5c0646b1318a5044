"""`shelfcast stream ...` as a user runs it: a file of events produced, consumed and reported; SIGTERM stops a
worker cleanly; mistakes and an unreachable Redis are one line naming the problem."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import redis
from helpers import REDIS_URL, run_cli, write
from serving import free_port

from shelfcast.cli import main

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

EVENTS = """type,event_id,time,store_id,item_id,units,price,promo,on_hand,quantity
sale,s1,2026-11-20T10:00:00,S1,I1,2,1.5,0,,
sale,s2,2026-11-20T11:00:00,S1,I1,1,1.5,1,,
sale,s1,2026-11-20T10:00:00,S1,I1,2,1.5,0,,
stock,c1,2026-11-20T20:00:00,S1,I1,,,,7,
receipt,r1,2026-11-20T08:00:00,S1,I1,,,,,5
sale,bad,2026-11-20T12:00:00,S1,I1,-3,,,,
"""


def test_produce_a_file_consume_and_status(tmp_path: Path, prefix: str) -> None:
    events = write(tmp_path / "events.csv", EVENTS)
    env = {"SHELFCAST_REDIS_URL": REDIS_URL, "SHELFCAST_LIVE__PREFIX": prefix}
    produced = run_cli("stream", "produce", str(events), cwd=tmp_path, env=env, columns=200)
    assert produced.returncode == 0, produced.stderr
    assert f"published 6 events to {prefix}:events" in produced.stdout
    consumed = run_cli("stream", "consume", "--until-idle", "--name", "w1", cwd=tmp_path, env=env, columns=200)
    assert consumed.returncode == 0, consumed.stderr
    assert "w1: read 6 = applied 4 + duplicates 1 + dead 1 (negative_units 1)" in consumed.stdout
    assert "stopped: idle" in consumed.stdout
    status = run_cli("stream", "status", cwd=tmp_path, env=env, columns=200)
    assert status.returncode == 0, status.stderr
    text = " ".join(status.stdout.split())
    assert "read 6 = applied 4 + duplicates 1 + dead 1" in text
    assert "dead letters in the stream 1" in text
    assert "negative_units (units < 0 (got -3))" in text


def test_sigterm_stops_a_worker_cleanly(tmp_path: Path, prefix: str) -> None:
    events = write(tmp_path / "events.csv", EVENTS)
    env = {**os.environ, "SHELFCAST_REDIS_URL": REDIS_URL, "SHELFCAST_LIVE__PREFIX": prefix, "COLUMNS": "200"}
    assert run_cli("stream", "produce", str(events), cwd=tmp_path, env=env).returncode == 0
    worker = subprocess.Popen(
        [sys.executable, "-m", "shelfcast", "stream", "consume", "--name", "w"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = redis.Redis.from_url(REDIS_URL)
    deadline = time.monotonic() + 60
    while int(client.hget(f"{prefix}:stats", "read") or 0) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.send_signal(signal.SIGTERM)
    out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert "read 6 = applied 4" in " ".join(out.split()) and "stopped: signal" in out
    assert client.xpending(f"{prefix}:events", "shelfcast-online")["pending"] == 0


def one_line_error(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(sys, "argv", ["shelfcast", "stream", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 1, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["status", "--redis-url", "redis://127.0.0.1:1/0"], "Redis at redis://127.0.0.1:1/0 is unreachable"),
        (["consume", "--redis-url", "redis://127.0.0.1:1/0"], "Redis at redis://127.0.0.1:1/0 is unreachable"),
        (["status", "--redis-url", "http://x"], "cannot use the Redis URL http://x"),
        (["produce"], "give a FILE of events or --from-lake (one of them)"),
        (["produce", "missing.csv"], "missing.csv: no such file"),
        (["produce", "--from-lake", "--speed", "0"], "`--speed` must be > 0, got 0.0"),
        (["seed", "--through", "soon"], "no workspace at"),
    ],
)
def test_mistakes_are_one_line(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert expected in one_line_error(args, capsys, monkeypatch)


def test_consume_with_compaction_then_compact_and_status(tmp_path: Path, prefix: str) -> None:
    events = write(tmp_path / "events.csv", EVENTS + "sale,next,2026-11-21T09:00:00,S1,I1,1,,,,\n")
    env = {"SHELFCAST_REDIS_URL": REDIS_URL, "SHELFCAST_LIVE__PREFIX": prefix}
    assert run_cli("stream", "produce", str(events), cwd=tmp_path, env=env).returncode == 0
    consumed = run_cli("stream", "consume", "--until-idle", "--compact-every", "0", cwd=tmp_path, env=env, columns=250)
    assert consumed.returncode == 0, consumed.stderr
    text = " ".join(consumed.stdout.split())
    assert "compaction: 1 day written (2026-11-20..2026-11-20): sales 1 rows / 1 days" in text
    assert "inventory 1 rows / 1 days, movements 1 rows / 1 days; quarantined 0" in text
    again = run_cli("stream", "compact", cwd=tmp_path, env=env, columns=250)
    assert again.returncode == 0, again.stderr
    assert "nothing written: every closed day 2026-11-20..2026-11-20 is in the lake already" in again.stdout
    status = run_cli("stream", "status", cwd=tmp_path, env=env, columns=250)
    assert "compacted through 2026-11-20" in status.stdout
    info = run_cli("info", cwd=tmp_path, env=env, columns=250)
    assert info.returncode == 0, info.stderr


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_worker_serves_the_stream_metrics_prometheus_reads(tmp_path: Path, prefix: str) -> None:
    """`consume --metrics-port`: the group's lag and pending, the dead letters and the events by outcome, from
    Redis at each scrape (the values `stream status` shows); stopped with the worker."""
    events = write(tmp_path / "events.csv", EVENTS)
    env = {**os.environ, "SHELFCAST_REDIS_URL": REDIS_URL, "SHELFCAST_LIVE__PREFIX": prefix, "COLUMNS": "200"}
    assert run_cli("stream", "produce", str(events), cwd=tmp_path, env=env).returncode == 0
    port = free_port()
    worker = subprocess.Popen(
        [sys.executable, "-m", "shelfcast", "stream", "consume", "--name", "w", "--metrics-port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline, seen = time.monotonic() + 120, {}
        while time.monotonic() < deadline:
            try:
                seen = _scrape(port)
            except OSError:  # not listening yet
                seen = {}
            if seen.get(("shelfcast_stream_events_total", (("outcome", "applied"),))) == 4:
                break
            time.sleep(0.2)
        group = (("group", "shelfcast-online"),)
        assert seen.get(("shelfcast_stream_redis_up", ())) == 1, seen
        assert seen[("shelfcast_stream_events_total", (("outcome", "applied"),))] == 4
        assert seen[("shelfcast_stream_events_total", (("outcome", "duplicate"),))] == 1
        assert seen[("shelfcast_stream_events_total", (("outcome", "dead"),))] == 1
        assert seen[("shelfcast_stream_dead_letters", ())] == 1
        assert seen[("shelfcast_stream_length", ())] == 6
        assert seen[("shelfcast_stream_lag", group)] == 0 and seen[("shelfcast_stream_pending", group)] == 0
        assert seen[("shelfcast_stream_last_applied_timestamp_seconds", ())] > 1.7e9
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    with pytest.raises(OSError):
        _scrape(port)  # the endpoint went with the worker


def test_a_metrics_port_in_use_is_one_line(tmp_path: Path, prefix: str) -> None:
    env = {"SHELFCAST_REDIS_URL": REDIS_URL, "SHELFCAST_LIVE__PREFIX": prefix}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli("stream", "consume", "--until-idle", "--metrics-port", str(port), cwd=tmp_path, env=env)
    assert done.returncode != 0
    assert f"cannot serve the stream metrics on 127.0.0.1:{port}" in done.stderr and "Traceback" not in done.stderr


def test_stream_metrics_without_redis_say_so_instead_of_failing_the_scrape() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from shelfcast.jobs.stream_metrics import StreamCollector
    from shelfcast.settings import Settings

    registry = CollectorRegistry(auto_describe=False)
    registry.register(StreamCollector(Settings(redis_url="redis://127.0.0.1:1/0")))
    text = generate_latest(registry).decode()
    assert "shelfcast_stream_redis_up 0.0" in text and "shelfcast_stream_lag" not in text
