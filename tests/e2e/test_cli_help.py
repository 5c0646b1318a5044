"""Every command's --help as a user reads it, and `shelfcast --version`."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from shelfcast.cli import app

pytestmark = pytest.mark.e2e


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    # `Any`: Typer vendors Click, so its commands are not the `click` package's classes.
    yield path, command
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


@pytest.mark.parametrize("width", [80, 200])
@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "shelfcast" for p, _ in COMMANDS])
def test_help_texts_lose_nothing_to_markup(path: tuple[str, ...], command: Any, width: int) -> None:
    # Rich reads `[default 28]` in a help text as a style tag and drops it, leaving "steps ahead ." behind.
    for param in command.params:
        assert "[" not in (getattr(param, "help", None) or ""), (path, param.name)
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=width, env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    assert " ." not in result.output, result.output


def test_the_default_shown_for_an_option_without_one() -> None:
    result = CliRunner().invoke(app, ["train", "--help"], terminal_width=200, env={"COLUMNS": "200"})
    text = " ".join(result.output.split())
    assert "demand: steps ahead. [default: (28 days / 13 weeks)]" in text
    assert "Workspace folder; else env SHELFCAST_WORKSPACE. [default: (./.shelfcast)]" in text


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag: str) -> None:
    result = CliRunner().invoke(app, [flag])
    assert result.exit_code == 0, result.output
    assert result.output == f"shelfcast {version('shelfcast')}\n"
