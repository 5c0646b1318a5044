"""Replaying a simulated chain through operations: facts arrive step by step, scoring and the policy follow."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from serving import train_both

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.io.lake import Lake
from shelfcast.io.policy_log import read_events
from shelfcast.io.stores import open_store
from shelfcast.settings import Settings
from shelfcast.workflows.replay import ingest_until, replay

pytestmark = pytest.mark.integration
CHAIN = SimConfig(n_stores=2, n_items=4, n_days=290, seed=4, min_base_demand=1.0, max_base_demand=30.0)


def test_replay_ingests_scores_and_asks_the_policy_each_step(tmp_path: Path) -> None:
    sim = simulate(CHAIN)
    tables = sim.tables()
    start = CHAIN.start_date + dt.timedelta(days=260)
    settings = Settings(workspace=tmp_path / "ws")
    ingest_until(settings, tables, sim.exogenous_roles, after=None, until=start)
    assert Lake(settings.workspace).read("sales")["date"].max() == start
    train_both(settings)
    seen: list[dt.datetime] = []

    def quiet(s: Settings, now: dt.datetime) -> dict[str, None]:
        seen.append(now)
        return {}

    steps = replay(settings, tables, sim.exogenous_roles, start=start, end=start + dt.timedelta(days=21), monitor=quiet)
    assert [s.day for s in steps] == [start + dt.timedelta(days=d) for d in (7, 14, 21)]
    assert [n.date() for n in seen] == [s.day for s in steps]
    assert Lake(settings.workspace).read("sales")["date"].max() == start + dt.timedelta(days=21)
    days = open_store(settings).read()["scored_on"].unique().sort().to_list()
    assert days == [start, *[s.day for s in steps]]
    # The FAST stockout champion was forced past its gates; no floor is set, so nothing is in fallback.
    assert all(set(s.actions.values()) == {"ok"} for s in steps), [s.outcomes for s in steps]
    assert read_events(settings).height == 2 * len(steps)
