"""What the commands share: the workspace and cutoff options, settings from option values, the task option, the
flags renamed to one word per concept (their old names still work, with a notice), and one-line errors."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from typer.core import TyperCommand

import shelfcast.cli.output as out
from shelfcast.errors import ConfigError, ShelfcastError, WorkspaceError, first_problem
from shelfcast.redact import RedactingFilter, redact
from shelfcast.settings import Engine, Settings
from shelfcast.threads import decided
from shelfcast.types import Task

M = TypeVar("M", bound=BaseModel)

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace", "-w", help="Workspace folder; else env SHELFCAST_WORKSPACE.", show_default="./.shelfcast"
    ),
]
CutoffOpt = Annotated[str | None, typer.Option(help="Last date known, YYYY-MM-DD.", show_default="the last date")]
EngineOpt = Annotated[
    Engine | None,
    typer.Option(
        help="local (this process) or spark (Apache Spark at the setting spark.master; needs the `spark` extra).",
        show_default="spark when the setting spark.enabled is on, else local",
    ),
]


def engine_of(cfg: Settings, option: Engine | None) -> Engine:
    """The engine a command runs on: the option, else spark when `spark.enabled`; Spark checked before any work."""
    engine: Engine = option or ("spark" if cfg.spark.enabled else "local")
    if engine == "spark":
        from shelfcast.io.spark.session import require_pyspark

        require_pyspark()
    return engine


VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log each step; show tracebacks.")]

# Old flag -> its one-word-per-concept name. The old names stay accepted for now; each use prints a notice.
RENAMED_FLAGS = {
    "--window": "--risk-days",  # the stockout horizon
    "--windows": "--folds",  # backtest folds
    "--window-days": "--lookback-days",  # the monitoring lookback
}

_state: dict[str, bool] = {"verbose": False}


def settings(**overrides: Any) -> Settings:
    """Settings from env/TOML with command-line overrides; a bad value is a one-line error."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        where, message = first_problem(exc)
        raise ConfigError(f"setting `{where or 'settings'}`: {message}") from None


def existing_workspace(cfg: Settings) -> Settings:
    """For commands that only read: the workspace must be there, as they never create one."""
    path = cfg.workspace
    if not path.exists():
        raise WorkspaceError(
            f"no workspace at {path}; pass -w with an existing one, or make one with `shelfcast ingest` "
            "(or `shelfcast demo`)"
        )
    if not path.is_dir():
        raise WorkspaceError(f"the workspace {path} is a file, not a folder; pass -w with a folder")
    return cfg


def registry_settings(workspace: Path | None) -> Settings:
    """Settings for commands that read the registry: one kept in the workspace (no MLflow server configured, as
    `io.tracking` decides) needs the workspace to exist, as reading never creates it."""
    cfg = settings(workspace=workspace)
    if not (cfg.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")):
        existing_workspace(cfg)
    return cfg


def writable_workspace(cfg: Settings, *, create: bool = False) -> Settings:
    """For commands that write: the workspace (made when `create`, else it must exist) must take new files.

    Checked before any work, so a long fit does not end in a write that fails.
    """
    path = cfg.workspace
    if not create:
        existing_workspace(cfg)
    if path.exists() and not path.is_dir():
        raise WorkspaceError(f"the workspace {path} is a file, not a folder; pass -w with a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        # Writing a file is the only test that holds for root, read-only mounts and ACLs alike.
        with tempfile.TemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise WorkspaceError(
            f"cannot write in the workspace {path} ({reason.lower()}); pass -w with a folder you can write to"
        ) from None
    return cfg


def model(cls: type[M], data: dict[str, Any]) -> M:
    """A pydantic model from option values; the first problem becomes a one-line error."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        where, message = first_problem(exc)
        raise ConfigError(f"`{where}`: {message}") from None


def parse_task(value: str) -> Task:
    """The value of `--task`: demand or stockout."""
    try:
        return Task(value)
    except ValueError:
        raise ConfigError(f"`--task` must be {' or '.join(Task)}, got {value!r}") from None


def now() -> dt.datetime:
    return dt.datetime.now().astimezone()


class RenamedFlags(TyperCommand):
    """A command that also takes the old names of its renamed flags (`RENAMED_FLAGS`), as if given the new ones.

    Old names are rewritten before Click parses, so they behave exactly like the new ones (values, checks, errors);
    each old name used prints one notice on stderr. Use with `@app.command(cls=RenamedFlags)`.
    """

    # `ctx: Any`: Typer vendors Click, and the Context class this method is declared with is private to Typer.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        own = {name for param in self.params for name in param.opts}
        return super().parse_args(ctx, renamed_args(args, own, quiet=ctx.resilient_parsing))


def renamed_args(args: list[str], own: set[str], *, quiet: bool = False) -> list[str]:
    """`args` with every old flag name (`--window 7` or `--window=7`) replaced by its new one, where the command has
    the new name and not the old; everything after `--` is left alone. Notices are skipped when `quiet`."""
    rewritten: list[str] = []
    noted: set[str] = set()
    for i, arg in enumerate(args):
        if arg == "--":
            return rewritten + args[i:]
        name, equals, value = arg.partition("=")
        new = RENAMED_FLAGS.get(name)
        if new is None or new not in own or name in own:
            rewritten.append(arg)
            continue
        if not quiet and name not in noted:
            out.note(f"{name} is deprecated; use {new}")
            noted.add(name)
        rewritten.append(new + equals + value)
    return rewritten


def set_verbose(verbose: bool) -> None:
    """Log each step on stderr (else warnings only) and, on an error, show its traceback.

    Without it, MLflow keeps its notes to itself (type hints, dataset sources, pip's version, its download bars):
    its errors reach the user as shelfcast's one-line errors, and `-v` shows everything. Environment variables, as
    MLflow is not imported yet (it is slow to import; most commands never need it); a user's own setting wins.
    """
    _state["verbose"] = verbose
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:  # no password in any log line, whoever wrote it
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    plan = decided()
    if plan is not None:
        logging.getLogger("shelfcast.threads").info("%s", plan.describe())
    if not verbose:
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        warnings.filterwarnings("ignore", module="mlflow")


def quiet_mlflow() -> None:
    """Without -v, also MLflow's prints ("Successfully registered model ..."), which no log level governs.

    Call it in commands that load MLflow anyway (it imports MLflow's pyfunc), before they import the rest. MLflow
    switches its output back on, and puts a warnings filter of its own in front, while its modules load, so they
    are loaded first.
    """
    if _state["verbose"]:
        return
    # MLflow warns as the model class is defined, under a filter of its own that beats ours: its words go nowhere.
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.filterwarnings("ignore", module="mlflow")
        from mlflow.utils.logging_utils import disable_logging

        import shelfcast.io.pyfunc  # noqa: F401
    disable_logging()  # type: ignore[no-untyped-call]
    warnings.filterwarnings("ignore", module="mlflow")


def run_app(app: typer.Typer) -> None:
    """Run the CLI: user mistakes become one line on stderr and exit code 1."""
    try:
        app()
    except ShelfcastError as exc:
        if _state["verbose"]:
            raise
        out.error(redact(str(exc)))
        sys.exit(1)
    except KeyboardInterrupt:
        out.error("interrupted")
        sys.exit(130)
