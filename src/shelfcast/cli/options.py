"""What the commands share: the workspace and cutoff options, settings from option values, the task option, and
one-line errors."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError

import shelfcast.cli.output as out
from shelfcast.errors import ConfigError, ShelfcastError, first_problem
from shelfcast.models.gates import Task
from shelfcast.settings import Settings

M = TypeVar("M", bound=BaseModel)

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="Workspace folder [env SHELFCAST_WORKSPACE; default ./.shelfcast]"),
]
CutoffOpt = Annotated[str | None, typer.Option(help="Last date known, YYYY-MM-DD [default: the last date].")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log each step; show tracebacks.")]

_state: dict[str, bool] = {"verbose": False}


def settings(**overrides: Any) -> Settings:
    """Settings from env/TOML with command-line overrides; a bad value is a one-line error."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        where, message = first_problem(exc)
        raise ConfigError(f"setting `{where or 'settings'}`: {message}") from None


def model(cls: type[M], data: dict[str, Any]) -> M:
    """A pydantic model from option values; the first problem becomes a one-line error."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        where, message = first_problem(exc)
        raise ConfigError(f"`{where}`: {message}") from None


def parse_task(value: str) -> Task:
    """The value of `--task`: demand or stockout."""
    if value not in ("demand", "stockout"):
        raise ConfigError(f"`--task` must be demand or stockout, got {value!r}")
    return value  # type: ignore[return-value]


def now() -> dt.datetime:
    return dt.datetime.now().astimezone()


def set_verbose(verbose: bool) -> None:
    """Log each step on stderr (else warnings only) and, on an error, show its traceback."""
    _state["verbose"] = verbose
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def run_app(app: typer.Typer) -> None:
    """Run the CLI: user mistakes become one line on stderr and exit code 1."""
    try:
        app()
    except ShelfcastError as exc:
        if _state["verbose"]:
            raise
        out.error(str(exc))
        sys.exit(1)
    except KeyboardInterrupt:
        out.error("interrupted")
        sys.exit(130)
