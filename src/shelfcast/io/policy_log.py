"""The decisions of the monitoring policy, as events, and the fallback state that scoring and serving obey.

Every decision (ok, retrain, rollback, fallback) is appended to
`<workspace>/monitoring/events.parquet` with its reasons and outcome, and
tagged on the registered model (`shelfcast.last_decision*`). A task in
fallback is listed in `<workspace>/monitoring/state.json`: until a healthy
model is promoted again, `shelfcast score` and `shelfcast serve` answer for
it with the rule baseline and say so.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from shelfcast.settings import Settings
from shelfcast.types import Task

log = logging.getLogger(__name__)
EVENT_SCHEMA = pl.Schema(
    {
        "at": pl.Datetime("us", "UTC"),
        "task": pl.String(),
        "action": pl.String(),
        "reasons": pl.String(),
        "champion_version": pl.String(),
        "outcome": pl.String(),
        "new_version": pl.String(),
        "trigger": pl.String(),
    }
)


def monitoring_dir(settings: Settings) -> Path:
    return settings.workspace / "monitoring"


@dataclass(frozen=True)
class PolicyEvent:
    at: dt.datetime
    task: Task
    action: str
    reasons: list[str]
    champion_version: str | None
    outcome: str
    new_version: str | None = None
    trigger: str = "retrain"  # what asked: `retrain`, `monitor`, the pipeline


def record_event(settings: Settings, event: PolicyEvent) -> Path:
    """Append the event to the workspace's table (rewritten atomically: a reader never sees half of it)."""
    path = monitoring_dir(settings) / "events.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    row = asdict(event) | {"reasons": "; ".join(event.reasons), "at": event.at.astimezone(dt.UTC)}
    new = pl.DataFrame([row], schema=EVENT_SCHEMA)
    frame = pl.concat([read_events(settings), new]) if path.exists() else new
    tmp = path.with_name(".events.parquet.tmp")
    frame.write_parquet(tmp)
    os.replace(tmp, path)
    return path


def read_events(settings: Settings) -> pl.DataFrame:
    path = monitoring_dir(settings) / "events.parquet"
    return pl.read_parquet(path) if path.exists() else pl.DataFrame(schema=EVENT_SCHEMA)


@dataclass(frozen=True)
class Fallback:
    task: Task
    reason: str
    since: str
    version: str | None = None  # the champion when the task fell back (None: there was none)


@dataclass
class PolicyState:
    """Tasks in fallback, the last retrain of each task (the cooldowns) and of any (the service's gauges)."""

    fallback: dict[str, Fallback] = field(default_factory=dict)
    last_retrain_at: str | None = None
    retrains: int = 0
    retrained_at: dict[str, str] = field(default_factory=dict)  # task -> its last retrain

    def to_json(self) -> dict[str, Any]:
        return {
            "fallback": {t: asdict(f) for t, f in self.fallback.items()},
            "last_retrain_at": self.last_retrain_at,
            "retrains": self.retrains,
            "retrained_at": self.retrained_at,
        }

    def record_retrain(self, task: Task, at: str) -> None:
        self.retrained_at[task] = at
        self.last_retrain_at = at
        self.retrains += 1

    def last_retrain(self, task: Task) -> str | None:
        """When `task` last retrained; a state file from before per-task cooldowns holds only the shared stamp."""
        if self.retrained_at:
            return self.retrained_at.get(task)
        return self.last_retrain_at


def read_state(settings: Settings) -> PolicyState:
    path = monitoring_dir(settings) / "state.json"
    if not path.exists():
        return PolicyState()
    try:
        raw = json.loads(path.read_text())
        return PolicyState(
            fallback={t: Fallback(**f) for t, f in raw.get("fallback", {}).items()},
            last_retrain_at=raw.get("last_retrain_at"),
            retrains=int(raw.get("retrains", 0)),
            retrained_at={str(t): str(at) for t, at in (raw.get("retrained_at") or {}).items()},
        )
    except (ValueError, TypeError) as exc:
        # A broken file must not stop scoring or serving: say so, and trust the models.
        log.warning("ignoring %s: %s", path, exc)
        return PolicyState()


def write_state(settings: Settings, state: PolicyState) -> None:
    path = monitoring_dir(settings) / "state.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".state.json.tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2) + "\n")
    os.replace(tmp, path)


def in_fallback(settings: Settings, task: Task) -> Fallback | None:
    """The task's fallback, if the policy put it in one."""
    return read_state(settings).fallback.get(task)
