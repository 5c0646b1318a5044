"""Mistakes in a user's setup (settings file, workspace path) are one line on stderr, exit 1, and change nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import run_cli, write

from shelfcast.cli import main

pytestmark = pytest.mark.e2e

# Every command with the arguments it needs to get as far as reading its settings.
EVERY_COMMAND = [
    ["ingest", "x.csv", "--source", "store-item"],
    ["validate"],
    ["info"],
    ["quarantine"],
    ["simulate"],
    ["demo"],
    ["backtest"],
    ["forecast", "--out", "f.parquet"],
    ["stockout", "--out", "s.parquet"],
    ["score"],
    ["train"],
    ["models", "list"],
    ["models", "show", "demand"],
    ["models", "promote", "--task", "demand", "--version", "1"],
    ["models", "rollback", "--task", "demand"],
    ["pipeline", "run"],
    ["pipeline", "schedule", "--cron", "0 3 * * *"],
    ["monitor"],
    ["retrain"],
    ["events"],
    ["dashboard"],
]


def one_line_error(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the CLI in-process as its entry point does; the single line it printed on stderr."""
    monkeypatch.setattr(sys, "argv", ["shelfcast", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 1, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    "case",
    [
        (b'workspace = "unclosed\n', "shelfcast.toml: not valid TOML: Illegal character"),
        (b'# caf\xe9\nworkspace = "ws"\n', "shelfcast.toml: not UTF-8 text (byte 0xe9 at line 1)"),
    ],
    ids=["malformed", "latin1"],
)
@pytest.mark.parametrize("args", EVERY_COMMAND, ids=" ".join)
def test_a_broken_settings_file_is_one_line_for_every_command(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    case: tuple[bytes, str],
) -> None:
    content, message = case
    (tmp_path / "shelfcast.toml").write_bytes(content)
    assert message in one_line_error(args, capsys, monkeypatch)


def test_serve_with_a_broken_settings_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "shelfcast.toml").write_bytes(b"[gates\n")
    result = run_cli("serve", "--port", "1", cwd=tmp_path, drop=("SHELFCAST_",), timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: shelfcast.toml: not valid TOML: Expected ']' at the end of a table declaration (at line 1, column 7)"
    ]


def test_a_missing_config_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHELFCAST_CONFIG", str(tmp_path / "typo.toml"))
    line = one_line_error(["info"], capsys, monkeypatch)
    assert line == f"error: SHELFCAST_CONFIG names {tmp_path / 'typo.toml'}, which does not exist; " + (
        "give the path of a TOML file or unset it"
    )


@pytest.mark.parametrize("value", ["notaurl", "http://db.example.com/x"])
def test_a_postgres_url_that_is_none_is_refused_by_the_settings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SHELFCAST_POSTGRES_URL", value)
    line = one_line_error(["score", "--store", "postgres"], capsys, monkeypatch)
    assert line.startswith("error: setting `postgres_url`: not a PostgreSQL connection string; expected")
    assert value not in line


@pytest.mark.parametrize(
    "args",
    [
        ["models", "list"],
        ["models", "show", "demand"],
        ["models", "promote", "--task", "demand", "--version", "1"],
        ["models", "rollback", "--task", "demand"],
        ["info"],
        ["validate"],
        ["quarantine"],
        ["events"],
        ["monitor"],
        ["score"],
        ["train"],
        ["retrain"],
    ],
    ids=" ".join,
)
def test_commands_that_need_a_workspace_never_create_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    line = one_line_error([*args, "-w", "typo"], capsys, monkeypatch)
    assert line.startswith("error: no workspace at typo; pass -w with an existing one")
    assert not (tmp_path / "typo").exists()


def test_ingest_into_a_workspace_that_is_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "x.csv", "date,store,item,sales\n2024-01-01,1,1,1\n")
    write(tmp_path / "ws", "not a folder\n")
    line = one_line_error(["ingest", "x.csv", "--source", "store-item", "-w", "ws"], capsys, monkeypatch)
    assert line == "error: the workspace ws is a file, not a folder; pass -w with a folder"


@pytest.fixture
def read_only_workspace(tmp_path: Path) -> Iterator[Path]:
    """A workspace holding a lake, on a read-only file system (root writes through permission bits, not that)."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    if os.geteuid() != 0:
        ws = mount / "ws"
        ws.mkdir()
        (ws / "lake").mkdir()
        mount.chmod(0o555)
        ws.chmod(0o555)
        yield ws
        ws.chmod(0o755)
        mount.chmod(0o755)
        return
    mounted = shutil.which("mount") and subprocess.run(
        ["mount", "-t", "tmpfs", "tmpfs", str(mount)], capture_output=True, check=False
    )
    if not mounted or mounted.returncode:
        pytest.skip("cannot mount a tmpfs to make a read-only file system")
    try:
        (mount / "ws" / "lake").mkdir(parents=True)
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount / "ws"
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.parametrize(
    "args",
    [["ingest", "x.csv", "--source", "store-item"], ["monitor"], ["score", "--fit"], ["train"], ["demo"]],
    ids=" ".join,
)
def test_a_read_only_workspace_is_refused_before_any_work(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    read_only_workspace: Path,
    args: list[str],
) -> None:
    write(tmp_path / "x.csv", "date,store,item,sales\n2024-01-01,1,1,1\n")
    line = one_line_error([*args, "-w", str(read_only_workspace)], capsys, monkeypatch)
    assert line.startswith(f"error: cannot write in the workspace {read_only_workspace} (")
    assert line.endswith("); pass -w with a folder you can write to")


def test_a_mapping_file_with_an_unknown_section_is_one_line_that_keeps_its_brackets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "x.csv", "Day,Qty\n2024-01-01,1\n")
    write(tmp_path / "map.toml", '[sales]\ndate = "Day"\n')
    line = one_line_error(["ingest", "x.csv", "-s", "generic", "--mapping", "map.toml"], capsys, monkeypatch)
    assert line.startswith("error: mapping file map.toml: unknown section [sales]; expected: ")
    assert "[columns]" in line and "[constants], [exogenous] and [calendar]" in line
