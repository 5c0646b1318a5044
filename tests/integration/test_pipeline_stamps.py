"""The pipeline (as the demo runs it) stamps its predictions when scoring ran, not when the run started."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import NOW, TODAY
from serving import ingest_chain

from shelfcast.data.simulator import SimConfig
from shelfcast.io.stores import open_store
from shelfcast.workflows.pipeline import PipelineRequest, run_directly, run_pipeline

pytestmark = pytest.mark.integration
SMALL = SimConfig(n_stores=2, n_items=2, n_days=120, seed=3, min_base_demand=1.0, max_base_demand=20.0)
LATER = 2.0  # seconds the steps before scoring take here


def test_scored_at_is_when_scoring_ran(tmp_path: Path) -> None:
    settings = ingest_chain(tmp_path, SMALL)

    def slow(name: str, fn: Any, *, io: bool) -> Any:
        if name == "score":
            time.sleep(LATER)
        return run_directly(name, fn, io=io)

    report = run_pipeline(settings, PipelineRequest(tasks=(), monitor=False), today=TODAY, now=NOW, runner=slow)
    assert report.score is not None
    stamps = open_store(settings).read(scored_on=TODAY)["scored_at"].unique()
    assert stamps.len() == 1
    assert stamps[0] >= NOW + dt.timedelta(seconds=LATER)
