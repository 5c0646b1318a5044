"""Spark scoring's staging folders: one left by a driver killed with -9 is removed by the next scoring; one whose
driver still runs (another scoring at the same time) is kept. No Spark needed: the folders are plain files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shelfcast.io.spark.write import sweep_staging


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_folders_of_dead_drivers_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    dead = staging / f"scores-2026-12-03-{_dead_pid()}-0123abcd"
    live = staging / f"scores-2026-12-03-{os.getpid()}-4567cdef"
    other = staging / "notes"  # not a scoring's folder: left alone
    for folder in (dead, live, other):
        folder.mkdir(parents=True)
        (folder / "part-00000.parquet").write_bytes(b"rows")
    assert sweep_staging(staging) == [dead]
    assert not dead.exists() and live.exists() and other.exists()
    assert sweep_staging(tmp_path / "none") == []  # no staging folder yet: nothing to do
