"""Small helpers for tests (importable because pytest puts tests/ on the path)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shelfcast.settings import Settings

TODAY = dt.date(2026, 11, 23)
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
REDIS_URL = os.environ.get("SHELFCAST_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_URL = os.environ.get("SHELFCAST_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")


def require_postgres(url: str = PG_URL) -> None:
    """Skip when PostgreSQL does not answer, with the reason, except on CI (`CI=true`), where it must."""
    import psycopg
    import pytest

    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL at {url} is unreachable: {exc}")


def require_redis(url: str = REDIS_URL) -> None:
    """Skip when Redis does not answer, with the reason, except on CI (`CI=true`), where it must."""
    import pytest
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.exceptions.ConnectionError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"Redis at {url} is unreachable: {exc}")


def redis_prefix(tag: str = "test", url: str = REDIS_URL) -> Iterator[str]:
    """For a fixture: a key prefix unique to the test on the shared Redis; every key starting with it (its
    `-ref` and other derived prefixes too) is deleted afterwards, failure or not."""
    import uuid

    import redis

    require_redis(url)
    name = f"shelfcast-{tag}-{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(match=f"{name}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])


def write(path: Path, text: str | bytes) -> Path:
    """Write a fixture file (bytes kept exactly), creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def run_cli(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    drop: tuple[str, ...] = (),
    columns: int | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    """`python -m shelfcast ARGS` as a user runs it: this environment without the variables starting with `drop`,
    plus `env`, and a terminal `columns` wide (so Rich does not fold names and paths).

    The timeout only catches a command that hangs: on a shared 2-core machine the demo took 19 minutes under
    load (90 s idle), so it is set for a loaded machine, not an idle one."""
    base = {k: v for k, v in os.environ.items() if not (drop and k.startswith(drop))}
    width = {"COLUMNS": str(columns)} if columns else {}
    return subprocess.run(
        [sys.executable, "-m", "shelfcast", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**base, **width, **(env or {})},
    )


def write_chain(folder: Path, *, stores: int = 2, items: int = 4, days: int = 200, seed: int = 3) -> Path:
    """A simulated chain's tables as canonical Parquet files (and their exogenous roles) in `folder`, for
    `shelfcast ingest FOLDER` (the default: a tiny chain, quick to train)."""
    import json

    from shelfcast.data.simulator import SimConfig, simulate

    folder.mkdir(parents=True, exist_ok=True)
    sim = simulate(SimConfig(n_stores=stores, n_items=items, n_days=days, seed=seed))
    for name, frame in sim.tables().items():
        frame.write_parquet(folder / f"{name}.parquet")
    (folder / "exogenous_roles.json").write_text(json.dumps(sim.exogenous_roles))
    return folder


def live_settings(workspace: Path, prefix: str, url: str = REDIS_URL, **live: Any) -> Settings:
    """Settings for the live path under `prefix`, with short waits so tests run quickly."""
    from shelfcast.settings import Settings

    return Settings(
        workspace=workspace,
        redis_url=url,
        live={"prefix": prefix, "block_ms": 50, "claim_idle_ms": 300, "batch_size": 100, **live},
    )
