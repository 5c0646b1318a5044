"""A champion too short for scoring: the message offers the command that works."""

from __future__ import annotations

from shelfcast.jobs.score import _too_short
from shelfcast.types import Freq


def test_a_shorter_horizon_is_offered_when_the_advice_fits_the_champion() -> None:
    message = _too_short(13, steps=14, least=2, freq=Freq.WEEKLY)
    assert "at most 13 steps (weeks) and scoring needs 14" in message
    assert "`shelfcast score --horizon 13`" in message and "`shelfcast train --task demand --horizon 14`" in message


def test_only_a_retrain_is_offered_when_the_advice_needs_more_than_the_champion_has() -> None:
    # Daily champion of 7 steps; the advice needs lead time (7 days) plus a review week: 14 days.
    message = _too_short(7, steps=14, least=14, freq=Freq.DAILY)
    assert "shelfcast score --horizon" not in message
    assert "14 days at least" in message and "`shelfcast train --task demand --horizon 14`" in message
