"""Exceptions for mistakes in a user's input or setup.

They subclass built-ins so callers can catch them generically; the CLI turns
them into one-line messages and a non-zero exit code.
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


class StoreError(ShelfcastError, RuntimeError):
    """A prediction store that cannot be reached or written (the message names where)."""


class ModelNotFoundError(ShelfcastError, LookupError):
    """No such registered model, version or alias."""


class PromotionError(ShelfcastError, ValueError):
    """A promotion or rollback that cannot be done as asked (refused by the gates, nothing to roll back)."""


class TrackingError(ShelfcastError, RuntimeError):
    """The MLflow tracking server or store cannot be used (the message names the URI)."""


def first_problem(exc: ValidationError) -> tuple[str, str]:
    """(where, message) of a pydantic error's first problem, for one-line user messages."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return where, first["msg"].removeprefix("Value error, ")
