"""The prediction stores against the real systems: PostgreSQL on 127.0.0.1:5432 (database `test`), Parquet
read with DuckDB, and Delta Lake tables.

Each PostgreSQL test works in its own schema, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import psycopg
import pytest
from prediction_rows import SCORED_ON, prediction_rows

from shelfcast.errors import DataValidationError, StoreError
from shelfcast.io.stores import postgres as pg
from shelfcast.io.stores.delta import DeltaStore
from shelfcast.io.stores.parquet import ParquetStore
from shelfcast.io.stores.postgres import PostgresStore

pytestmark = pytest.mark.integration

URL = os.environ.get("SHELFCAST_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
NEXT_DAY = SCORED_ON + dt.timedelta(days=1)


@pytest.fixture
def pg_store(postgres_table: str) -> PostgresStore:
    """A store on a fresh table of the real PostgreSQL (see conftest: skipped, or failed on CI, when it is down)."""
    return PostgresStore(URL, table=postgres_table)


def _count(store: PostgresStore) -> int:
    """Rows as another connection sees them."""
    with psycopg.connect(URL) as conn:
        row = conn.execute(f"SELECT count(*) FROM {store.schema}.{store.table}").fetchone()
    assert row is not None
    return int(row[0])


def test_postgres_write_and_read_back(pg_store: PostgresStore) -> None:
    rows = prediction_rows(stock=False)
    assert pg_store.write(rows, scored_on=SCORED_ON) == rows.height
    assert pg_store.read(scored_on=SCORED_ON).equals(rows)
    assert pg_store.read(scored_on=NEXT_DAY).is_empty()


def test_postgres_rerun_of_a_day_replaces_it(pg_store: PostgresStore) -> None:
    pg_store.write(prediction_rows(), scored_on=SCORED_ON)
    pg_store.write(prediction_rows(scored_on=NEXT_DAY), scored_on=NEXT_DAY)
    pg_store.write(prediction_rows(forecast=9.0), scored_on=SCORED_ON)
    assert _count(pg_store) == 2 * prediction_rows().height
    assert pg_store.read(scored_on=SCORED_ON).equals(prediction_rows(forecast=9.0))
    # The other day is untouched.
    assert pg_store.read(scored_on=NEXT_DAY).equals(prediction_rows(scored_on=NEXT_DAY))
    # A re-run with fewer series leaves none of the old day's rows behind.
    pg_store.write(prediction_rows(series=1), scored_on=SCORED_ON)
    assert pg_store.read(scored_on=SCORED_ON).equals(prediction_rows(series=1))


def test_postgres_failure_after_the_swap_leaves_the_previous_day_intact(
    pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = prediction_rows()
    pg_store.write(before, scored_on=SCORED_ON)
    seen_meanwhile: list[int] = []
    swap = pg.swap_day

    def swap_then_fail(*args: object, **kwargs: object) -> None:
        swap(*args, **kwargs)  # type: ignore[arg-type]
        # Deleted and re-inserted inside the transaction: another connection still sees the old day.
        seen_meanwhile.append(_count(pg_store))
        seen_meanwhile.append(_forecast_sum(pg_store))
        raise RuntimeError("injected failure between the upsert and the commit")

    monkeypatch.setattr(pg, "swap_day", swap_then_fail)
    with pytest.raises(RuntimeError, match="injected"):
        pg_store.write(prediction_rows(forecast=9.0, series=5), scored_on=SCORED_ON)
    assert seen_meanwhile == [before.height, int(before["forecast"].sum())]
    assert pg_store.read(scored_on=SCORED_ON).equals(before)


def _forecast_sum(store: PostgresStore) -> int:
    with psycopg.connect(URL) as conn:
        row = conn.execute(f"SELECT sum(forecast) FROM {store.schema}.{store.table}").fetchone()
    assert row is not None
    return int(row[0])


def test_postgres_bad_row_in_the_copy_leaves_the_previous_day_intact(pg_store: PostgresStore) -> None:
    before = prediction_rows()
    pg_store.write(before, scored_on=SCORED_ON)
    # Past the frame check (called directly): the second half breaks the NOT NULL of forecast in the COPY.
    bad = prediction_rows(forecast=9.0, series=4).with_columns(
        pl.when(pl.int_range(pl.len()) >= 4).then(None).otherwise(pl.col("forecast")).alias("forecast")
    )
    with pg_store.connect() as conn, pytest.raises(psycopg.errors.NotNullViolation):
        pg.replace_day(conn, pg_store._target, bad, scored_on=SCORED_ON)
    assert _count(pg_store) == before.height
    assert pg_store.read(scored_on=SCORED_ON).equals(before)


def test_postgres_invalid_frame_is_refused_before_the_database(pg_store: PostgresStore) -> None:
    pg_store.write(prediction_rows(), scored_on=SCORED_ON)
    with pytest.raises(DataValidationError, match="`p90`"):
        pg_store.write(prediction_rows().with_columns(pl.lit(-2.0).alias("p90")), scored_on=SCORED_ON)
    assert pg_store.read(scored_on=SCORED_ON).equals(prediction_rows())


def test_postgres_unreachable_names_the_url() -> None:
    store = PostgresStore("postgresql://user:pw@127.0.0.1:1/nowhere")
    with pytest.raises(StoreError, match=r"PostgreSQL at postgresql://user:\*\*\*@127.0.0.1:1/nowhere is unreachable"):
        store.write(prediction_rows(), scored_on=SCORED_ON)


def test_parquet_partition_replace_and_duckdb_query(tmp_path: Path) -> None:
    store = ParquetStore(tmp_path / "predictions")
    assert store.read().is_empty()
    store.write(prediction_rows(), scored_on=SCORED_ON)
    store.write(prediction_rows(scored_on=NEXT_DAY), scored_on=NEXT_DAY)
    store.write(prediction_rows(forecast=9.0, series=2), scored_on=SCORED_ON)
    assert sorted(p.parent.name for p in (tmp_path / "predictions").rglob("*.parquet")) == [
        "scored_on=2026-11-23",
        "scored_on=2026-11-24",
    ]
    assert not list((tmp_path / "predictions").rglob("*.tmp"))
    assert store.read(scored_on=SCORED_ON).equals(prediction_rows(forecast=9.0, series=2))
    assert store.read().height == prediction_rows(series=2).height + prediction_rows().height
    by_day = store.query(
        "SELECT scored_on, count(*) AS n, sum(forecast) AS total FROM predictions GROUP BY 1 ORDER BY 1"
    )
    assert by_day.to_dicts() == [
        {"scored_on": SCORED_ON, "n": 4, "total": 38.0},
        {"scored_on": NEXT_DAY, "n": 6, "total": 36.0},
    ]


def test_delta_replace_where_and_time_travel(tmp_path: Path) -> None:
    store = DeltaStore(tmp_path / "delta")
    store.write(prediction_rows(), scored_on=SCORED_ON)
    store.write(prediction_rows(scored_on=NEXT_DAY), scored_on=NEXT_DAY)
    store.write(prediction_rows(forecast=9.0), scored_on=SCORED_ON)
    assert store.version() == 2
    assert store.read(scored_on=SCORED_ON).equals(prediction_rows(forecast=9.0))
    assert store.read(scored_on=NEXT_DAY).equals(prediction_rows(scored_on=NEXT_DAY))
    assert store.read().height == 2 * prediction_rows().height
    # Time travel: version 1 still holds the first run of the day.
    assert store.read(scored_on=SCORED_ON, version=1).equals(prediction_rows())
    assert (tmp_path / "delta" / "predictions" / "scored_on=2026-11-23").is_dir()


def test_postgres_table_from_an_older_schema_is_named_not_half_written(pg_store: PostgresStore) -> None:
    with psycopg.connect(URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {pg_store.schema}")
        conn.execute(f"CREATE TABLE {pg_store.schema}.{pg_store.table} (scored_on date, store_id text)")
    with pytest.raises(StoreError, match=r"exists without column\(s\) scored_at, item_id, .*stockout_model_version"):
        pg_store.write(prediction_rows(stock=True), scored_on=SCORED_ON)
    assert _count(pg_store) == 0


def test_every_store_knows_its_latest_scoring_day(tmp_path: Path, pg_store: PostgresStore) -> None:
    """What the service polls to notice a new scoring: None when empty, then the newest day written."""
    stores = [ParquetStore(tmp_path / "parquet"), DeltaStore(tmp_path / "delta"), pg_store]
    for store in stores:
        assert store.latest_day() is None, store.location
        store.write(prediction_rows(scored_on=NEXT_DAY), scored_on=NEXT_DAY)
        store.write(prediction_rows(), scored_on=SCORED_ON)
        assert store.latest_day() == max(SCORED_ON, NEXT_DAY), store.location
    (tmp_path / "parquet" / "scored_on=not-a-day").mkdir()  # a stray folder is not a scoring day
    assert stores[0].latest_day() == max(SCORED_ON, NEXT_DAY)
    with pytest.raises(StoreError, match="unreachable"):
        PostgresStore("postgresql://127.0.0.1:1/test").latest_day()


def test_parquet_same_day_writes_at_once_all_succeed(tmp_path: Path) -> None:
    """Issue 14: every writer used `.part.parquet.tmp`, so 1 of 40 aligned same-day writes failed (one writer
    renamed or truncated another's file). With unique names each write succeeds and the day holds one of them."""
    store = ParquetStore(tmp_path / "predictions")
    frames = [prediction_rows(forecast=1.0 + i, series=10, horizon=60) for i in range(40)]
    barrier = threading.Barrier(8)

    def write(frame: pl.DataFrame) -> int:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=5)
        return store.write(frame, scored_on=SCORED_ON)

    with ThreadPoolExecutor(max_workers=8) as pool:
        written = list(pool.map(write, frames))
    assert written == [frames[0].height] * 40
    assert any(store.read(scored_on=SCORED_ON).equals(f) for f in frames)
    assert not list((tmp_path / "predictions").rglob("*.tmp"))


def test_parquet_full_disk_is_a_store_error_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    """Issue 14: ENOSPC left `.tmp` files on the full disk. A file-size limit (EFBIG) stands in for a full disk."""
    script = f"""
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
sys.path.insert(0, {str(Path(__file__).parents[1])!r})
from pathlib import Path
from prediction_rows import SCORED_ON, prediction_rows
from shelfcast.errors import StoreError
from shelfcast.io.stores.parquet import ParquetStore
rows = prediction_rows(series=10, horizon=60)
resource.setrlimit(resource.RLIMIT_FSIZE, (4_000, 4_000))
try:
    ParquetStore(Path({str(tmp_path / "predictions")!r})).write(rows, scored_on=SCORED_ON)
except StoreError as exc:
    print(exc)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "no space left" in result.stdout and "scored_on=2026-11-23" in result.stdout, result.stdout
    assert not list((tmp_path / "predictions").rglob("*.tmp"))


def test_a_scorer_killed_mid_write_leaves_nothing_the_next_write_keeps(tmp_path: Path) -> None:
    """A writer killed (kill -9) between creating its temporary file and renaming it left the file for good; the
    next write of the day removes it, and never a live writer's file."""
    script = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).parents[1])!r})
from pathlib import Path
from prediction_rows import SCORED_ON, prediction_rows
from shelfcast.io.stores.parquet import ParquetStore
rows = prediction_rows(series=10, horizon=60)

def stall(self, tmp, **kwargs):
    print(tmp, flush=True)
    time.sleep(600)

import polars as pl
pl.DataFrame.write_parquet = stall  # the write hangs once its temporary file exists
ParquetStore(Path({str(tmp_path / "predictions")!r})).write(rows, scored_on=SCORED_ON)
"""
    victim = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert victim.stdout is not None
    left = Path(victim.stdout.readline().strip())
    victim.kill()
    victim.wait(timeout=30)
    assert left.exists() and left.name.endswith(".tmp")
    live = left.parent / f".part.parquet.{os.getpid()}.abc123.tmp"  # a writer still at work: this process
    live.touch()
    store = ParquetStore(tmp_path / "predictions")
    store.write(prediction_rows(series=10, horizon=60), scored_on=SCORED_ON)
    assert not left.exists() and live.exists()
    assert store.read(scored_on=SCORED_ON).height == 10 * 60
