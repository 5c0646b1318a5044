"""Holidays of the simulated chain: their dates and their effect on demand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from shelfcast.schemas import CALENDAR


def easter_sunday(year: int) -> dt.date:
    """Easter Sunday of a Gregorian year (anonymous Gregorian computus)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def black_friday(year: int) -> dt.date:
    """The day after the fourth Thursday of November."""
    first = dt.date(year, 11, 1)
    first_thursday = first + dt.timedelta(days=(3 - first.weekday()) % 7)
    return first_thursday + dt.timedelta(days=22)


@dataclass(frozen=True)
class Holiday:
    """A yearly event: its date rule, its effect on the day and the ramp before it."""

    name: str
    date_of: Callable[[int], dt.date]
    day_multiplier: float
    lead_days: int = 0
    lead_peak: float = 1.0


# Multipliers are for an average category; each category scales them in log space.
# Shops close or run short hours on Christmas Day, New Year's Day and Easter Sunday.
HOLIDAYS: tuple[Holiday, ...] = (
    Holiday("New Year's Day", lambda y: dt.date(y, 1, 1), 0.55),
    Holiday("Valentine's Day", lambda y: dt.date(y, 2, 14), 1.15, 3, 1.1),
    Holiday("Good Friday", lambda y: easter_sunday(y) - dt.timedelta(days=2), 0.9),
    Holiday("Easter Sunday", easter_sunday, 0.5, 6, 1.3),
    Holiday("Black Friday", black_friday, 1.8, 2, 1.15),
    Holiday("Christmas Eve", lambda y: dt.date(y, 12, 24), 1.5),
    Holiday("Christmas Day", lambda y: dt.date(y, 12, 25), 0.25, 14, 1.45),
    Holiday("New Year's Eve", lambda y: dt.date(y, 12, 31), 1.35, 3, 1.2),
)


def holiday_dates(start: dt.date, end: dt.date) -> list[tuple[dt.date, Holiday]]:
    """Holidays falling between `start` and `end` (inclusive), sorted by date and name."""
    found = [
        (day, holiday)
        for year in range(start.year, end.year + 1)
        for holiday in HOLIDAYS
        if start <= (day := holiday.date_of(year)) <= end
    ]
    return sorted(found, key=lambda pair: (pair[0], pair[1].name))


def holiday_log_effect(start: dt.date, n_days: int) -> np.ndarray:
    """Log demand multiplier per day from holidays and their lead-up ramps."""
    effect = np.zeros(n_days)
    end = start + dt.timedelta(days=n_days - 1)
    # A holiday just after the horizon still ramps demand up inside it.
    for day, holiday in holiday_dates(start, end + dt.timedelta(days=31)):
        pos = (day - start).days
        if 0 <= pos < n_days:
            effect[pos] += np.log(holiday.day_multiplier)
        for k in range(1, holiday.lead_days + 1):
            # Linear ramp: strongest on the eve, fading out `lead_days` before.
            if 0 <= pos - k < n_days:
                weight = 1.0 - (k - 1) / holiday.lead_days
                effect[pos - k] += np.log1p((holiday.lead_peak - 1.0) * weight)
    return effect


def calendar_frame(start: dt.date, n_days: int) -> pl.DataFrame:
    """The canonical calendar table of the holidays in the simulated range."""
    end = start + dt.timedelta(days=n_days - 1)
    found = holiday_dates(start, end)
    return pl.DataFrame(
        {
            "date": [day for day, _ in found],
            "event": [holiday.name for _, holiday in found],
            "store_id": [None] * len(found),
            "region": [None] * len(found),
            "kind": ["holiday"] * len(found),
            "transferred": [False] * len(found),
        },
        schema=CALENDAR.dtypes(),
    )
