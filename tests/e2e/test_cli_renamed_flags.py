"""The flags renamed to one word per concept: the new names work, and the old ones work the same with a notice.

In-process (typer's CliRunner): these check the command line, not the jobs, so a process per case is not needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
import typer
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from shelfcast.cli import app

pytestmark = pytest.mark.e2e

# (command path, extra arguments the command needs, new flag, old flag, value)
RENAMED = [
    (["backtest"], [], "--folds", "--windows", "2"),
    (["backtest"], [], "--risk-days", "--window", "3"),
    (["stockout"], ["--out", "x.parquet"], "--risk-days", "--window", "3"),
    (["train"], [], "--folds", "--windows", "2"),
    (["train"], [], "--risk-days", "--window", "3"),
    (["pipeline", "run"], [], "--folds", "--windows", "2"),
    (["pipeline", "schedule"], ["--cron", "0 3 * * *"], "--folds", "--windows", "2"),
    (["monitor"], [], "--lookback-days", "--window-days", "5"),
    (["retrain"], [], "--lookback-days", "--window-days", "5"),
]


def parsed(path: list[str], args: list[str]) -> dict[str, Any]:
    """The parameter values the command would run with (parsed as Click does, without running it)."""
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return command.make_context(path[-1], args).params


@pytest.mark.parametrize("case", RENAMED, ids=lambda case: f"{' '.join(case[0])} {case[3]}")
def test_old_flag_parses_as_the_new_one_with_a_notice(
    capsys: pytest.CaptureFixture[str], case: tuple[list[str], list[str], str, str, str]
) -> None:
    path, needs, new, old, value = case
    with_new = parsed(path, [*needs, new, value])
    assert capsys.readouterr().err == ""
    with_old = parsed(path, [*needs, old, value])
    assert capsys.readouterr().err == f"note: {old} is deprecated; use {new}\n"
    assert parsed(path, [*needs, f"{old}={value}"]) == with_old == with_new
    assert with_new != parsed(path, needs)  # the value given is used, not the default


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workspace = tmp_path_factory.mktemp("renamed") / "ws"
    made = CliRunner().invoke(
        app, ["demo", "--stores", "2", "--items", "4", "--days", "200", "--no-models", "-w", str(workspace)]
    )
    assert made.exit_code == 0, made.output
    return workspace


def test_stockout_with_window_writes_what_risk_days_writes(lake: Path) -> None:
    frames = []
    for flag in ("--risk-days", "--window"):
        target = lake.parent / f"{flag.strip('-')}.parquet"
        result = CliRunner().invoke(
            app, ["stockout", "--cutoff", "2022-06-01", flag, "3", "--out", str(target), "-w", str(lake)]
        )
        assert result.exit_code == 0, result.output
        assert ("deprecated" in result.stderr) == (flag == "--window"), result.stderr
        frames.append(pl.read_parquet(target))
    assert_frame_equal(frames[0], frames[1])


def test_backtest_with_windows_and_window_prints_what_folds_and_risk_days_print(lake: Path) -> None:
    args = ["backtest", "--task", "stockout", "--horizon", "7", "-w", str(lake)]
    new = CliRunner().invoke(app, [*args, "--folds", "2", "--risk-days", "3"])
    old = CliRunner().invoke(app, [*args, "--windows", "2", "--window", "3"])
    assert new.exit_code == old.exit_code == 0, new.output + old.output
    assert old.stderr.strip().splitlines() == [
        "note: --windows is deprecated; use --folds",
        "note: --window is deprecated; use --risk-days",
    ]
    assert "2 window(s)" in new.stdout and new.stdout == old.stdout


def test_monitor_window_days_is_checked_as_lookback_days() -> None:
    result = CliRunner().invoke(app, ["monitor", "--window-days", "0"])
    assert result.exit_code == 2
    said = " ".join(result.stderr.split())
    assert said.startswith("note: --window-days is deprecated; use --lookback-days")
    assert "Invalid value for '--lookback-days'" in said
