"""`shelfcast evaluate-policy`: bad option values are one line on stderr and exit 1, before any simulation."""

from __future__ import annotations

import sys

import pytest

from shelfcast.cli import main

pytestmark = pytest.mark.e2e


def one_line_error(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(sys, "argv", ["shelfcast", "evaluate-policy", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 1, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--service", "1.5"], "`--service`: must be in (0.5, 1), e.g. 0.95 for 95 %, got 1.5"),
        (["--service", "0"], "`--service`: must be in (0.5, 1)"),
        (["--service", "-0.2"], "`--service`: must be in (0.5, 1)"),
        (["--sweep", "0.9,high"], "`--sweep` must be service settings separated by commas"),
        (["--sweep", ","], "`--sweep` needs at least one service setting"),
        (["--sweep", "0.9,1.2"], "`--sweep`: service settings must be in (0.5, 1), got [0.9, 1.2]"),
        (["--replay-days", "5"], "`--replay-days`: Input should be greater than or equal to 28 (got 5)"),
        (["--refit-days", "-1"], "`--refit-days`: Input should be greater than or equal to 0"),
        (["--review-days", "0"], "`--review-days`: Input should be greater than or equal to 1"),
        (["--stores", "0"], "`--stores`: Input should be greater than 0 (got 0)"),
        (["--days", "100"], "the chain's 100 days leave too little history before a replay of 112 days"),
    ],
)
def test_bad_values_are_one_line(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert expected in one_line_error(args, capsys, monkeypatch)


def test_help_lists_the_command(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["shelfcast", "--help"])
    with pytest.raises(SystemExit):
        main()
    assert "evaluate-policy" in capsys.readouterr().out
