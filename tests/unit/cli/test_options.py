"""The old flag names: rewritten to the new ones only where a command has the new one, with one notice each."""

from __future__ import annotations

import pytest

from shelfcast.cli.options import renamed_args

OWN = {"--risk-days", "--folds", "--task", "-w", "--workspace"}


def test_old_names_become_new_ones_with_one_notice_per_name(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--window", "3", "--windows=2", "--task", "stockout", "--window=4"]
    assert renamed_args(args, OWN) == ["--risk-days", "3", "--folds=2", "--task", "stockout", "--risk-days=4"]
    assert capsys.readouterr().err.splitlines() == [
        "note: --window is deprecated; use --risk-days",
        "note: --windows is deprecated; use --folds",
    ]


def test_new_names_values_and_what_follows_double_dash_are_left_alone(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--risk-days", "3", "--json", "--window.json", "--", "--window", "3"]
    assert renamed_args(args, OWN) == args
    assert capsys.readouterr().err == ""


def test_a_command_without_the_new_flag_keeps_the_old_token(capsys: pytest.CaptureFixture[str]) -> None:
    # Click then reports `--window-days` itself as unknown, instead of a flag the user never typed.
    assert renamed_args(["--window-days", "5"], OWN) == ["--window-days", "5"]
    assert capsys.readouterr().err == ""


def test_quiet_rewrites_without_notice(capsys: pytest.CaptureFixture[str]) -> None:
    assert renamed_args(["--window", "3"], OWN, quiet=True) == ["--risk-days", "3"]
    assert capsys.readouterr().err == ""
