"""`shelfcast monitor` as a user runs it: after a tiny demo, and its one-line errors."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest
from helpers import run_cli

from shelfcast.monitoring.summary import SUMMARY_KEYS

pytestmark = pytest.mark.e2e


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd, env=env, columns=220)


def test_monitor_after_the_demo(tmp_path: Path) -> None:
    demo = run("demo", "--stores", "2", "--items", "3", "--days", "300", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    result = run("monitor", "--fail-on-alert", cwd=tmp_path)
    # Nothing new since training: the current window is the reference window, and no actuals follow the scoring.
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no alert" in result.stdout and "report:" in result.stdout
    assert "has its actuals yet" in result.stdout
    latest = json.loads((tmp_path / ".shelfcast" / "monitoring" / "latest.json").read_text())
    assert tuple(latest) == SUMMARY_KEYS and latest["alert"] is False
    assert latest["tasks"]["demand"]["model_version"] is not None
    assert latest["tasks"]["demand"]["features"]
    # One report from the demo's own monitoring step, one from this command.
    assert len(list((tmp_path / ".shelfcast" / "monitoring").glob("*/report.html"))) == 2

    # Evidently's reports on request (installed by `make test`; without the extra, the command says so).
    evidently = run("monitor", "--evidently", cwd=tmp_path)
    assert evidently.returncode == 0, evidently.stderr
    if importlib.util.find_spec("evidently"):
        # One per task with a champion (this tiny demo's stockout model is refused by its gates).
        assert "Evidently: " in evidently.stdout and "evidently_demand.html" in evidently.stdout
    else:
        assert "Evidently is not installed" in " ".join(evidently.stdout.split())

    # The policy on the same workspace: nothing drifted, so nothing to do; --dry-run changes nothing either way.
    dry = run("retrain", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    said = " ".join(dry.stdout.split())
    assert "dry run: nothing done" in said and "demand" in said and "stockout" in said
    decided = run("retrain", "--task", "demand", cwd=tmp_path)
    assert decided.returncode == 0, decided.stderr
    assert "champion v1 is healthy" in " ".join(decided.stdout.split())
    events = run("events", cwd=tmp_path)
    assert events.returncode == 0 and "nothing to do" in events.stdout and "retrains so far: 0" in events.stdout


def test_monitor_mistakes_are_one_line(tmp_path: Path) -> None:
    empty = run("monitor", "-w", str(tmp_path / "nothing"), cwd=tmp_path)
    assert empty.returncode == 1 and "Traceback" not in empty.stderr
    assert "no workspace at" in empty.stderr and len(empty.stderr.strip().splitlines()) == 1
    bad = run("monitor", "--lookback-days", "0", cwd=tmp_path)
    assert bad.returncode == 2 and "lookback-days" in bad.stderr
    task = run("retrain", "--task", "prices", cwd=tmp_path)
    assert task.returncode == 1 and "`--task` must be demand, stockout or all, got 'prices'" in task.stderr
    # A policy setting out of range, from the environment: named, in one line, before anything runs.
    for name, value in (("SHELFCAST_POLICY_FALLBACK_RELATIVE", "0.8"), ("SHELFCAST_POLICY_MIN_LIVE_DAYS", "two")):
        bad_setting = run("retrain", "--dry-run", cwd=tmp_path, **{name: value})
        assert bad_setting.returncode == 1 and "Traceback" not in bad_setting.stderr, bad_setting.stderr
        said = bad_setting.stderr.strip()
        assert len(said.splitlines()) == 1 and name.removeprefix("SHELFCAST_").lower() in said, said
