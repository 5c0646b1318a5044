"""Promotion, rollback and training killed (kill -9) mid-way: the aliases stay a consistent pair and the next
run repairs them; a run whose process died is marked FAILED by the next command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import NOW, TODAY, write_chain

from shelfcast.io.registry import CHAMPION, MODEL_NAMES, MOVE_TAG, PREVIOUS, ROLLED_BACK, Registry
from shelfcast.io.tracking import experiment_id
from shelfcast.settings import Settings
from shelfcast.types import Task

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NAME = MODEL_NAMES[Task.DEMAND]


def make_versions(settings: Settings, count: int) -> Registry:
    """`count` registered demand versions, each from a run with a tiny stand-in model folder (no training)."""
    registry = Registry(settings)
    exp = experiment_id(settings, Task.DEMAND)
    registry.client.create_registered_model(NAME)
    for _ in range(count):
        run = registry.client.create_run(exp)
        registry.client.log_param(run.info.run_id, "model.candidate", "gbm")
        registry.client.log_text(run.info.run_id, "stand-in", "model/native.txt")
        registry.client.set_terminated(run.info.run_id)
        registry.client.create_model_version(NAME, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    return registry


def pair(registry: Registry) -> tuple[str | None, str | None]:
    aliases = registry._aliases(Task.DEMAND)
    return aliases.get(CHAMPION), aliases.get(PREVIOUS)


def pending_move(registry: Registry) -> bool:
    return MOVE_TAG in (registry.client.get_registered_model(NAME).tags or {})


def kill_at(point: str, *args: str, cwd: Path, sig: signal.Signals = signal.SIGKILL) -> None:
    """`shelfcast ARGS`, paused at crash point `point`, then sent `sig` there (SIGKILL by default)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "shelfcast", *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SHELFCAST_TEST_PAUSE_AT": point},
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 300
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line.strip())
            if line.strip() == f"shelfcast-test-pause: {point}":
                proc.send_signal(sig)
                break
            assert time.monotonic() < deadline, seen
        else:
            pytest.fail(f"never reached {point}: {seen}")
        proc.wait(timeout=120)
    finally:
        proc.kill()
        proc.wait(timeout=60)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(workspace=tmp_path / "ws")


def promoted(settings: Settings) -> Registry:
    """v1, v2, v3; v2 the champion, v1 the previous champion."""
    registry = make_versions(settings, 3)
    registry.promote(Task.DEMAND, "1")
    registry.promote(Task.DEMAND, "2")
    assert pair(registry) == ("2", "1")
    return registry


@pytest.mark.parametrize(
    ("point", "killed", "repaired"),
    [
        ("move written", ("2", "1"), ("2", "1")),  # nothing moved yet: undone
        ("champion moved", ("3", "1"), ("3", "2")),  # the champion moved: finished
        ("previous moved", ("3", "2"), ("3", "2")),
    ],
)
def test_a_promotion_killed_between_alias_moves_leaves_a_pair_the_next_run_repairs(
    settings: Settings, point: str, killed: tuple[str, str], repaired: tuple[str, str]
) -> None:
    registry = promoted(settings)
    args = ("models", "promote", "--task", "demand", "--version", "3", "--force", "-w", str(settings.workspace))
    kill_at(point, *args, cwd=settings.workspace.parent)
    assert pair(registry) == killed
    assert pending_move(registry)
    assert registry.repair(Task.DEMAND) is not None
    assert pair(registry) == repaired and not pending_move(registry)


def test_promoting_the_previous_champion_never_puts_both_aliases_on_it(settings: Settings) -> None:
    registry = promoted(settings)
    args = ("models", "promote", "--task", "demand", "--version", "1", "--force", "-w", str(settings.workspace))
    kill_at("champion moved", *args, cwd=settings.workspace.parent)
    assert pair(registry) == ("1", None)
    registry.repair(Task.DEMAND)
    assert pair(registry) == ("1", "2")


def test_a_rollback_killed_mid_way_is_undone_or_finished_by_the_next_command(settings: Settings) -> None:
    registry = promoted(settings)
    ws = str(settings.workspace)
    kill_at("previous cleared", "models", "rollback", "--task", "demand", "-w", ws, cwd=settings.workspace.parent)
    assert pair(registry) == ("2", None)  # the rollback target is kept in the move's record
    # The next command (a rollback again) first undoes the interrupted one, then rolls back to v1.
    again = subprocess.run(
        [sys.executable, "-m", "shelfcast", "models", "rollback", "--task", "demand", "-w", ws],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert "v1 is the champion again" in again.stdout
    assert pair(registry) == ("1", None) and not pending_move(registry)
    assert registry.version(Task.DEMAND, "2").tags.get(ROLLED_BACK) == "true"
    assert ROLLED_BACK not in registry.version(Task.DEMAND, "1").tags


def test_rollback_refuses_a_previous_champion_that_is_the_champion_itself(settings: Settings) -> None:
    """The state an interrupted promotion of an older shelfcast left: both aliases on v2."""
    from shelfcast.errors import PromotionError

    registry = make_versions(settings, 2)
    registry.client.set_registered_model_alias(NAME, CHAMPION, "2")
    registry.client.set_registered_model_alias(NAME, PREVIOUS, "2")
    with pytest.raises(PromotionError, match="nothing to roll back to"):
        registry.rollback(Task.DEMAND)
    assert pair(registry) == ("2", None)
    assert ROLLED_BACK not in registry.version(Task.DEMAND, "2").tags


def test_models_list_shows_each_versions_aliases(settings: Settings) -> None:
    registry = promoted(settings)
    registry.client.set_registered_model_alias(NAME, "challenger", "3")
    aliases = {v.version: v.aliases for v in registry.versions(Task.DEMAND)}
    assert aliases == {"1": [PREVIOUS], "2": [CHAMPION], "3": ["challenger"]}
    listed = subprocess.run(
        [sys.executable, "-m", "shelfcast", "models", "list", "-w", str(settings.workspace)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert listed.returncode == 0, listed.stderr
    cells = [[c.strip() for c in line.split("│")] for line in listed.stdout.splitlines() if NAME in line]
    rows = {row[2]: row[3] for row in cells}
    assert rows == {"1": PREVIOUS, "2": CHAMPION, "3": "challenger"}


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_training_run_killed_mid_way_is_marked_failed(tmp_path: Path, sig: signal.Signals) -> None:
    """SIGTERM: the run ends FAILED as the process stops; kill -9: the next command finds it and marks it FAILED."""
    from shelfcast.data.sources import get_source
    from shelfcast.jobs.ingest import run_ingest

    raw = write_chain(tmp_path / "raw")
    settings = Settings(workspace=tmp_path / "ws")
    run_ingest(get_source("canonical"), raw, settings=settings, today=TODAY, now=NOW)
    ws = str(settings.workspace)
    train = ("train", "--task", "demand", "--folds", "2", "--horizon", "7", "-w", ws)
    kill_at("run started", *train, cwd=tmp_path, sig=sig)
    registry = Registry(settings)
    exp = experiment_id(settings, Task.DEMAND)
    (run,) = registry.client.search_runs([exp])
    assert run.info.status == ("RUNNING" if sig == signal.SIGKILL else "FAILED")
    listed = subprocess.run(
        [sys.executable, "-m", "shelfcast", "models", "list", "-w", ws],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert registry.client.get_run(run.info.run_id).info.status == "FAILED"
