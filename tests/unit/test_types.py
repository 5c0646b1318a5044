import datetime as dt
import json

import polars as pl
import pytest

from shelfcast.types import TASKS, Freq, Task


def test_a_task_is_its_name_in_comparisons_paths_json_and_frames(tmp_path) -> None:
    assert Task.DEMAND == "demand"
    assert Task("stockout") is Task.STOCKOUT
    assert TASKS == (Task.DEMAND, Task.STOCKOUT)
    assert (tmp_path / Task.DEMAND).name == "demand"
    assert json.dumps({"task": Task.STOCKOUT}) == '{"task": "stockout"}'
    assert pl.DataFrame({"x": [1]}).with_columns(pl.lit(Task.DEMAND).alias("task"))["task"].to_list() == ["demand"]
    with pytest.raises(ValueError, match="'sales'"):
        Task("sales")


@pytest.mark.parametrize(
    ("freq", "step", "season", "horizon", "interval"),
    [(Freq.DAILY, 1, 7, 28, "1d"), (Freq.WEEKLY, 7, 52, 13, "1w")],
)
def test_freq_helpers(freq: Freq, step: int, season: int, horizon: int, interval: str) -> None:
    assert freq.step == dt.timedelta(days=step)
    assert freq.season == season
    assert freq.default_horizon == horizon
    assert freq.interval == interval


def test_steps_cover_days_on_weekly_data_with_at_least_one_step() -> None:
    assert Freq.DAILY.steps_in(10) == 10
    assert [Freq.WEEKLY.steps_in(d) for d in (1, 7, 8, 14)] == [1, 1, 2, 2]
    assert Freq.WEEKLY.steps_of(13) == 1


def test_default_horizons_come_from_days_and_scoring_fits_within_training() -> None:
    assert (Freq.DAILY.score_horizon, Freq.WEEKLY.score_horizon) == (14, 2)
    for freq in Freq:
        assert freq.score_horizon <= freq.default_horizon
    assert (Freq.WEEKLY.periods(1), Freq.WEEKLY.periods(13), Freq.DAILY.periods(14)) == (
        "1 week",
        "13 weeks",
        "14 days",
    )
