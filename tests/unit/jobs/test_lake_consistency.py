"""The lake's files against its manifest: validate, info and the models see a half-written or changed lake (issue
14: `validate` said "all ok" on a lake an ingest had left half-written, and the models read it anyway)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from helpers import write

from shelfcast.errors import LakeError
from shelfcast.io.lake import IN_PROGRESS, Lake
from shelfcast.io.lake_check import verify
from shelfcast.io.model_data import load_model_data
from shelfcast.io.workspace_lock import holder, workspace_lock
from shelfcast.jobs.ingest import IngestReport
from shelfcast.jobs.validate import run_validate

Ingest = Callable[..., IngestReport]
DEAD_PID = 2**22 + 1  # above the default pid_max: never a live process


@pytest.fixture
def lake(tmp_path: Path, ingest: Ingest, workspace: Path) -> Lake:
    """Two months of sales for two series, ingested."""
    rows = [f"2024-{m:02d}-{d:02d},{s},1,{d % 4}" for m in (1, 2) for d in range(1, 29) for s in (1, 2)]
    ingest(write(tmp_path / "train.csv", "date,store,item,sales\n" + "\n".join(rows) + "\n"))
    lake = Lake(workspace)
    assert verify(lake, deep=True) == [] and run_validate(lake).ok
    return lake


def test_validate_reports_an_interrupted_ingest_and_the_models_refuse(lake: Lake) -> None:
    """What a kill -9 mid-write leaves: the marker and a month the manifest does not describe."""
    month = lake.path("sales") / "2024-02.parquet"
    partial = pl.read_parquet(month).head(10)
    partial.write_parquet(month)
    marker = {"pid": DEAD_PID, "host": "here", "source": "store-item", "path": "train.csv", "started": "2026-01-01"}
    (lake.root / IN_PROGRESS).write_text(json.dumps(marker))
    report = run_validate(lake)
    assert not report.ok
    assert any(
        "an ingest (store-item train.csv, started 2026-01-01" in p and "interrupted" in p for p in report.lake_problems
    )
    assert any("2024-02.parquet: 10 rows, the manifest says 56" in p for p in report.lake_problems)
    with pytest.raises(LakeError, match=r"no model uses .*: an ingest .* interrupted .*\(and 1 more"):
        load_model_data(lake)


def test_validate_compares_every_file_with_the_manifest(lake: Lake) -> None:
    sales = lake.path("sales")
    shutil.copy(sales / "2024-01.parquet", sales / "2024-03.parquet")  # a file the manifest does not know
    (sales / "2024-02.parquet").unlink()  # a file the manifest knows, lost
    january = pl.read_parquet(sales / "2024-01.parquet")
    january.with_columns(pl.col("units") + 1).write_parquet(sales / "2024-01.parquet")  # same rows, new values
    problems = run_validate(lake).lake_problems
    assert any("2024-03.parquet: a file the manifest does not know" in p for p in problems)
    assert any("2024-02.parquet: in the manifest but missing" in p for p in problems)
    assert any("2024-01.parquet: its rows differ from the manifest's (content hash)" in p for p in problems)
    with pytest.raises(LakeError, match="re-run `shelfcast ingest`"):
        load_model_data(lake)


def test_a_table_the_manifest_does_not_know_and_a_lost_one(lake: Lake) -> None:
    shutil.copytree(lake.path("sales"), lake.path("inventory"))
    pl.read_parquet(lake.path("sales") / "2024-01.parquet").rename({"units": "on_hand"}).write_parquet(
        lake.path("inventory") / "2024-01.parquet"
    )
    lake.path("items").unlink()
    problems = verify(lake)
    assert any("manifest does not know table 'inventory'" in p for p in problems)
    assert any("table 'items' is in the manifest but its files are missing" in p for p in problems)


def test_a_corrupt_month_is_a_problem_not_a_crash(lake: Lake) -> None:
    month = lake.path("sales") / "2024-01.parquet"
    month.write_bytes(month.read_bytes()[:100])
    report = run_validate(lake)
    assert not report.ok
    assert any("2024-01.parquet cannot be read" in p for c in report.checks for p in c.problems)
    assert any("2024-01.parquet: cannot be read" in p for p in report.lake_problems)


def test_a_truncated_manifest_is_a_lake_error(lake: Lake) -> None:
    manifest = lake.root / "manifest.json"
    manifest.write_text(manifest.read_text()[:200])
    for read in (lake.manifest, lambda: run_validate(lake), lambda: load_model_data(lake)):
        with pytest.raises(LakeError, match=r"manifest.json is damaged .*re-run `shelfcast ingest`"):
            read()


def test_the_lock_says_who_holds_it_and_times_out(workspace: Path) -> None:
    assert holder(workspace) is None
    with workspace_lock(workspace, timeout=0):
        busy = holder(workspace)
        assert busy is not None and busy.pid is not None and "another ingest is running" in busy.line()
        with (
            pytest.raises(LakeError, match=r"since .* \(pid \d+\); gave up after 0.3 s"),
            workspace_lock(workspace, timeout=0.3),
        ):
            pass
    assert holder(workspace) is None


def test_validate_while_an_ingest_writes_is_one_line(lake: Lake) -> None:
    with workspace_lock(lake.workspace, timeout=0), pytest.raises(LakeError, match=r"^an ingest is running .*"):
        run_validate(lake)


def test_an_unwritable_workspace_is_a_lake_error(tmp_path: Path) -> None:
    file = write(tmp_path / "not-a-folder", "x")
    with (
        pytest.raises(LakeError, match=r"cannot write the workspace .*not-a-folder .*writable folder"),
        workspace_lock(file, timeout=0),
    ):
        pass
