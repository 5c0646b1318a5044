"""The domain's small types, in one place: the modelling tasks and the data frequencies."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum


class Task(StrEnum):
    """What a model predicts: demand per series and step, or the risk that a shelf runs empty.

    A `StrEnum`, so a task is also its name: it compares equal to "demand",
    formats as "demand" in paths, JSON, MLflow tags and Polars columns, and
    Typer offers its values as choices.
    """

    DEMAND = "demand"
    STOCKOUT = "stockout"


TASKS: tuple[Task, ...] = tuple(Task)


class PeriodAnchor(StrEnum):
    """Which day of a weekly period its date is: the first (the simulator's Mondays) or the last (Walmart's
    week-ending Fridays). Set by the source adapter, stored in the lake's manifest."""

    START = "start"
    END = "end"


class Freq(StrEnum):
    """The step of a panel: one row per series and day, or per series and week (dated at the week's start or
    end, as the source says: see `PeriodAnchor`)."""

    DAILY = "D"
    WEEKLY = "W"

    @property
    def days(self) -> int:
        return 7 if self is Freq.WEEKLY else 1

    @property
    def step(self) -> dt.timedelta:
        return dt.timedelta(days=self.days)

    @property
    def interval(self) -> str:
        """The step as a Polars duration string."""
        return "1w" if self is Freq.WEEKLY else "1d"

    @property
    def season(self) -> int:
        """Steps in the season the naive baselines repeat: a week of days, a year of weeks."""
        return 52 if self is Freq.WEEKLY else 7

    @property
    def unit(self) -> str:
        """The period one step is, for outputs that count steps: "day" or "week"."""
        return "week" if self is Freq.WEEKLY else "day"

    def periods(self, steps: int) -> str:
        """`steps` in words: "14 days", "1 week"."""
        return f"{steps} {self.unit}{'' if steps == 1 else 's'}"

    @property
    def default_horizon(self) -> int:
        """Steps a model is trained (and backtested) to forecast when none is asked for: four weeks of days,
        a quarter of weeks."""
        return self.steps_in(TRAIN_HORIZON_DAYS[self])

    @property
    def score_horizon(self) -> int:
        """Steps scoring keeps when none is asked for: two weeks, in days or weeks; always within
        `default_horizon`, so a model trained with the defaults scores with the defaults."""
        return self.steps_in(SCORE_HORIZON_DAYS)

    def steps_in(self, days: int) -> int:
        """Steps needed to cover `days` days (at least one)."""
        return days if self is Freq.DAILY else max(1, -(-days // 7))

    def steps_of(self, days: int) -> int:
        """Whole steps in `days` days (rounded down)."""
        return days // self.days


# The default horizons, in days, per frequency: converted to steps by `Freq.steps_in`, in this one place.
TRAIN_HORIZON_DAYS = {Freq.DAILY: 28, Freq.WEEKLY: 91}
SCORE_HORIZON_DAYS = 14
