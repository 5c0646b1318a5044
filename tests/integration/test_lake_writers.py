"""Writers of one workspace as real processes: two ingests at once, kill -9, SIGTERM, a full disk (issue 14)."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from helpers import run_cli

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.errors import LakeError
from shelfcast.io.lake import IN_PROGRESS, Lake
from shelfcast.io.lake_check import verify
from shelfcast.io.model_data import load_model_data
from shelfcast.io.workspace_lock import lock_path, workspace_lock

pytestmark = pytest.mark.integration
CHAIN = SimConfig(n_stores=4, n_items=20, n_days=730, seed=3)


@pytest.fixture(scope="module")
def halves(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pl.DataFrame]:
    """The chain's sales and inventory split by store into two canonical folders (a, b), and all its sales."""
    root = tmp_path_factory.mktemp("chain")
    sim = simulate(CHAIN)
    tables = sim.tables()
    stores = sorted(tables["sales"]["store_id"].unique().to_list())
    folders = []
    for half, chosen in (("a", stores[:2]), ("b", stores[2:])):
        folder = root / f"raw-{half}"
        folder.mkdir()
        for name, frame in tables.items():
            kept = frame.filter(pl.col("store_id").is_in(chosen)) if name in ("sales", "inventory") else frame
            kept.write_parquet(folder / f"{name}.parquet")
        (folder / "exogenous_roles.json").write_text(json.dumps(sim.exogenous_roles))
        folders.append(folder)
    return folders[0], folders[1], tables["sales"]


def _ingest(folder: Path, workspace: Path, *, env: dict[str, str] | None = None, **popen: Any) -> subprocess.Popen[str]:
    options: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **popen}
    return subprocess.Popen(
        [sys.executable, "-m", "shelfcast", "ingest", str(folder), "--source", "canonical", "-w", str(workspace)],
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        **options,
    )


def _wait_for(condition: Callable[[], bool], process: subprocess.Popen[str], *, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _leftovers(workspace: Path) -> list[Path]:
    return [*workspace.rglob("*.tmp"), *(workspace / "tmp").glob("ingest-*")]


def _lines(stderr: str) -> list[str]:
    """What a user reads on stderr (Rich may end a progress display with an empty line)."""
    return [line for line in stderr.splitlines() if line.strip()]


def _validate(workspace: Path) -> subprocess.CompletedProcess[str]:
    return run_cli("validate", "-w", str(workspace), cwd=workspace.parent, columns=300)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], pl.DataFrame]:
    """Five years of sales of four stores, one canonical folder per store, and all the sales."""
    root = tmp_path_factory.mktemp("stores")
    tables = simulate(SimConfig(n_stores=4, n_items=5, n_days=1826, seed=5, start_date="2019-01-01")).tables()
    folders = []
    for store in sorted(tables["stores"]["store_id"].to_list()):
        folder = root / store
        folder.mkdir()
        tables["sales"].filter(pl.col("store_id") == store).write_parquet(folder / "sales.parquet")
        for master in ("stores", "items"):
            tables[master].write_parquet(folder / f"{master}.parquet")
        folders.append(folder)
    return folders, tables["sales"]


def test_concurrent_ingests_into_one_workspace_keep_every_row(
    tmp_path: Path, stores: tuple[list[Path], pl.DataFrame]
) -> None:
    """Issue 14: ingests of different stores whose writes overlapped lost whole months of each other (or died on
    the other's `<month>.parquet.tmp`), and the manifest agreed with the damaged files. Four at once lost rows in
    4 runs of 5 before the workspace lock."""
    folders, sales = stores
    workspace = tmp_path / "ws"
    processes = [_ingest(folder, workspace) for folder in folders]
    results = [p.communicate(timeout=900) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0, 0], results
    lake = Lake(workspace)
    key = ["store_id", "item_id", "date"]
    assert lake.read("sales").select(key).sort(key).equals(sales.select(key).sort(key))
    assert lake.manifest()["tables"]["sales"]["rows"] == sales.height
    assert len(lake.manifest()["ingests"]) == 4
    assert verify(lake, deep=True) == []
    assert not _leftovers(workspace)
    # Those that waited said so, in one line naming a pid of the others.
    pids = {f"(pid {p.pid})" for p in processes}
    waited = [line for _, err in results for line in _lines(err) if "another ingest is running" in line]
    assert waited and all(any(pid in line for pid in pids) for line in waited)


def test_an_ingest_gives_up_on_a_busy_workspace_with_one_line(
    tmp_path: Path, halves: tuple[Path, Path, pl.DataFrame]
) -> None:
    workspace = tmp_path / "ws"
    with workspace_lock(workspace, timeout=0):
        result = run_cli(
            "ingest", str(halves[0]), "-s", "canonical", "-w", str(workspace), cwd=tmp_path,
            env={"SHELFCAST_LOCK_TIMEOUT": "0"}, columns=300,
        )  # fmt: skip
    assert result.returncode == 1
    assert len(_lines(result.stderr)) == 1, result.stderr
    assert "another ingest is running in this workspace since 20" in result.stderr
    assert f"(pid {os.getpid()})" in result.stderr and "gave up after 0 s" in result.stderr
    assert not Lake(workspace).tables()


def test_a_killed_ingest_neither_blocks_nor_hides_and_the_next_one_repairs(
    tmp_path: Path, halves: tuple[Path, Path, pl.DataFrame]
) -> None:
    """kill -9 mid-write: the lock goes with the process, the half-written lake is reported by validate, info and
    the models, and the next ingest cleans the orphans and leaves a lake that validates."""
    a, b, sales = halves
    workspace = tmp_path / "ws"
    assert _ingest(a, workspace).wait(timeout=600) == 0
    victim = _ingest(b, workspace)
    _wait_for((workspace / "lake" / IN_PROGRESS).exists, victim)
    victim.kill()
    victim.wait(timeout=60)
    assert json.loads(lock_path(workspace).read_text())["pid"] == victim.pid  # its lock file is still there

    validate = _validate(workspace)
    assert validate.returncode == 1
    assert "was interrupted while writing the lake" in validate.stderr
    info = run_cli("info", "-w", str(workspace), cwd=tmp_path, columns=300)
    assert "was interrupted" in info.stderr
    with pytest.raises(
        LakeError,
        match=r"no model uses .* do not match its manifest: an ingest .* was interrupted.*re-run `shelfcast ingest`",
    ):
        load_model_data(Lake(workspace))

    again = _ingest(b, workspace, env={"SHELFCAST_LOCK_TIMEOUT": "30"})
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert "another ingest is running" not in err and "was interrupted" in err
    assert not _leftovers(workspace) and not (workspace / "lake" / IN_PROGRESS).exists()
    assert _validate(workspace).returncode == 0
    assert Lake(workspace).read("sales").height == sales.height


def test_sigterm_stops_an_ingest_cleanly(tmp_path: Path, halves: tuple[Path, Path, pl.DataFrame]) -> None:
    """Issue 14: a SIGTERM'd ingest left its scratch folder (workspace/tmp/ingest-*) for good."""
    a, b, _ = halves
    workspace = tmp_path / "ws"
    assert _ingest(a, workspace).wait(timeout=600) == 0
    before = Lake(workspace).manifest()["tables"]["sales"]["content_hash"]
    victim = _ingest(b, workspace)
    _wait_for(lambda: any((workspace / "tmp").glob("ingest-*")), victim)
    victim.send_signal(signal.SIGTERM)
    _, err = victim.communicate(timeout=120)
    assert victim.returncode == 1
    assert len(_lines(err)) == 1 and "ingest interrupted" in err, err
    assert not _leftovers(workspace)
    assert _validate(workspace).returncode == 0
    assert Lake(workspace).manifest()["tables"]["sales"]["content_hash"] == before


def test_orphans_of_dead_ingests_are_cleaned_on_start(tmp_path: Path, halves: tuple[Path, Path, pl.DataFrame]) -> None:
    workspace = tmp_path / "ws"
    orphan = workspace / "tmp" / "ingest-deadbeef" / "clean"
    orphan.mkdir(parents=True)
    (orphan / "part-0.parquet").write_bytes(b"x" * 1000)
    for half_written in ("2022-01.parquet.tmp", ".2022-02.parquet.k3j4.tmp"):  # earlier versions' names, and ours
        (workspace / "lake" / "sales").mkdir(parents=True, exist_ok=True)
        (workspace / "lake" / "sales" / half_written).write_bytes(b"PAR1")
    assert _ingest(halves[0], workspace).wait(timeout=600) == 0
    assert not _leftovers(workspace)


def _limit_file_size(limit: int) -> Callable[[], None]:
    def apply() -> None:
        # Ignored signals stay ignored across exec: writes past the limit then fail with EFBIG, as on a full disk.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_is_one_line_and_leaves_no_temporary_files(
    tmp_path: Path, halves: tuple[Path, Path, pl.DataFrame]
) -> None:
    workspace = tmp_path / "ws"
    process = _ingest(halves[0], workspace, preexec_fn=_limit_file_size(60_000))
    _, err = process.communicate(timeout=600)
    assert process.returncode == 1
    assert len(_lines(err)) == 1 and "no space left" in err and str(workspace) in err, err
    assert not _leftovers(workspace)


def test_damaged_manifest_is_one_line_for_info_validate_and_score(
    tmp_path: Path, halves: tuple[Path, Path, pl.DataFrame]
) -> None:
    workspace = tmp_path / "ws"
    assert _ingest(halves[0], workspace).wait(timeout=600) == 0
    manifest = workspace / "lake" / "manifest.json"
    manifest.write_text(manifest.read_text()[:500])
    for command in ("info", "validate", "score"):
        result = run_cli(command, "-w", str(workspace), cwd=tmp_path, columns=300)
        assert result.returncode == 1, (command, result.stderr)
        assert len(_lines(result.stderr)) == 1, (command, result.stderr)
        assert "manifest.json is damaged" in result.stderr and "re-run `shelfcast ingest`" in result.stderr
    # As the message says, a re-run of the ingest rebuilds it.
    assert _ingest(halves[0], workspace).wait(timeout=600) == 0
    assert _validate(workspace).returncode == 0


def test_a_corrupt_month_is_reported_by_validate(tmp_path: Path, halves: tuple[Path, Path, pl.DataFrame]) -> None:
    """Issue 14: `validate` itself crashed on a damaged month file."""
    workspace = tmp_path / "ws"
    assert _ingest(halves[0], workspace).wait(timeout=600) == 0
    month = workspace / "lake" / "sales" / "2022-03.parquet"
    month.write_bytes(month.read_bytes()[:300])
    result = _validate(workspace)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "2022-03.parquet cannot be read" in result.stdout + result.stderr


def test_a_waiting_ingest_says_so_and_then_runs(tmp_path: Path, halves: tuple[Path, Path, pl.DataFrame]) -> None:
    workspace = tmp_path / "ws"
    log = tmp_path / "stderr.txt"
    with workspace_lock(workspace, timeout=0), log.open("w") as stderr:
        waiting = _ingest(halves[0], workspace, stderr=stderr)
        _wait_for(lambda: "waiting up to 600 s" in log.read_text(), waiting)
    assert waiting.wait(timeout=600) == 0, log.read_text()
    assert "another ingest is running in this workspace since 20" in log.read_text()
    assert f"(pid {os.getpid()}); waiting up to 600 s" in log.read_text()
    assert verify(Lake(workspace)) == []
