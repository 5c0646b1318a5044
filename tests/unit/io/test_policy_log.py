"""The policy's event table and health state in the workspace: appended, read back, robust to a broken file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from shelfcast.io.policy_log import (
    Fallback,
    PolicyEvent,
    PolicyState,
    read_events,
    read_state,
    record_event,
    write_state,
)
from shelfcast.settings import Settings

AT = dt.datetime(2026, 11, 24, 3, 0, tzinfo=dt.UTC)


def test_events_are_appended_in_order(tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws")
    assert read_events(settings).is_empty()
    record_event(
        settings,
        PolicyEvent(AT, "demand", "retrain", ["drift on lag_1", "degraded"], "3", "v4 trained and promoted", "4"),
    )
    record_event(settings, PolicyEvent(AT + dt.timedelta(days=1), "stockout", "ok", ["healthy"], "2", "nothing to do"))
    events = read_events(settings)
    assert events["action"].to_list() == ["retrain", "ok"]
    assert events["reasons"][0] == "drift on lag_1; degraded" and events["new_version"].to_list() == ["4", None]
    assert events["at"].dtype.time_zone == "UTC"  # type: ignore[attr-defined]


def test_state_round_trips_and_a_broken_file_is_ignored(tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws")
    assert read_state(settings) == PolicyState()
    held = PolicyState(fallback={"demand": Fallback("demand", "no champion", "2026-11-24")}, retrains=2)
    write_state(settings, held)
    assert read_state(settings) == held
    (tmp_path / "ws" / "monitoring" / "state.json").write_text('{"fallback": {"demand": {"oops": 1}}}')
    assert read_state(settings) == PolicyState()  # logged and ignored: scoring and serving trust the models
