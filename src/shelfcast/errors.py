"""Every exception shelfcast raises on purpose, for mistakes in a user's input or setup and for systems that fail.

They subclass built-ins so callers can catch them generically; the CLI turns
them into one-line messages and a non-zero exit code, the service turns the
`LookupError` ones into 404 and the `ValueError` ones into 422 (see
`service.app`). Adapters raise their own: `TrackingError` for MLflow,
`StoreError` for prediction stores.
"""

from __future__ import annotations

from pydantic import ValidationError


class ShelfcastError(Exception):
    """Base class for errors that are reported to the user without a traceback."""


class ConfigError(ShelfcastError, ValueError):
    """Settings, options or mappings that cannot be used."""


class InputFileError(ShelfcastError, ValueError):
    """A file that cannot be used at all (missing, empty, not a table, bad encoding)."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class DataValidationError(ShelfcastError, ValueError):
    """Data that breaks a rule of the canonical model as a whole."""


class AmbiguousDateError(DataValidationError):
    """A date column whose format cannot be told apart (day-first vs month-first)."""


class AccountingError(ShelfcastError, RuntimeError):
    """Rows read do not equal rows kept + quarantined + merged: a bug, never ignored."""


class WorkspaceError(ShelfcastError, LookupError):
    """The workspace or one of its tables is missing."""


class LakeError(ShelfcastError, RuntimeError):
    """A lake that cannot be used or written as it is: damaged, half-written, busy with another ingest, disk full."""


class StoreError(ShelfcastError, RuntimeError):
    """A prediction store that cannot be reached or written (the message names where)."""


class SparkError(ShelfcastError, RuntimeError):
    """Apache Spark is not installed, its session cannot start, or a Spark job failed (the message says which)."""


class StreamError(ShelfcastError, RuntimeError):
    """The live path's Redis cannot be reached or used (the message names the URL)."""


class ModelNotFoundError(ShelfcastError, LookupError):
    """No such registered model, version or alias."""


class PromotionError(ShelfcastError, ValueError):
    """A promotion or rollback that cannot be done as asked (refused by the gates, nothing to roll back)."""


class TrackingError(ShelfcastError, RuntimeError):
    """The MLflow tracking server or store cannot be used (the message names the URI)."""


class ModelFormatError(ShelfcastError, ValueError):
    """A model folder that is missing files or was written by an unknown format version."""


class NotFittedError(ShelfcastError, ValueError, AttributeError):
    """`predict` (or `save`) was called before `fit`; both bases, as scikit-learn's, so either catch works."""


class RebacktestError(ShelfcastError, ValueError):
    """The champion's configuration cannot be backtested on the challenger's windows (the message says why)."""


class UnknownSeriesError(ShelfcastError, LookupError):
    """Ids that are not a series of the workspace at the origin."""


class UnknownFeatureError(ShelfcastError, ValueError):
    """A feature name the served model does not have."""


class StackError(ShelfcastError, RuntimeError):
    """A server of `shelfcast stack up` that could not start, stopped, or a stack already running."""


def first_problem(exc: ValidationError) -> tuple[str, str]:
    """(where, message) of a pydantic error's first problem, for one-line user messages."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return where, first["msg"].removeprefix("Value error, ")
