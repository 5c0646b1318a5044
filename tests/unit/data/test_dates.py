from __future__ import annotations

import pytest

from shelfcast.data.dates import infer_date_format
from shelfcast.errors import AmbiguousDateError, DataValidationError


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["2024-01-05", "2024-12-31"], "%Y-%m-%d"),
        (["2024/01/05"], "%Y/%m/%d"),
        (["2024-01-05 10:30:00", "2024-01-06 00:00:00"], "%Y-%m-%d %H:%M:%S"),
        (["2024-01-05T10:30:00"], "%Y-%m-%dT%H:%M:%S"),
        (["05/01/2024", "25/12/2024"], "%d/%m/%Y"),  # 25 > 12: day-first
        (["01/05/2024", "12/25/2024"], "%m/%d/%Y"),  # 25 > 12: month-first
        (["25.12.2024"], "%d.%m.%Y"),
        (["31/12/2024 18:00"], "%d/%m/%Y %H:%M"),
        (["20240105"], "%Y%m%d"),
        ([" 2024-01-05 ", None, ""], "%Y-%m-%d"),
    ],
)
def test_infers_the_one_format_that_reads_every_value(values: list[str | None], expected: str) -> None:
    assert infer_date_format(values) == expected


def test_ambiguous_day_month_is_an_error_that_asks_for_the_format() -> None:
    with pytest.raises(AmbiguousDateError) as err:
        infer_date_format(["03/04/2024", "05/06/2024", "12/11/2024"], column="Date")
    message = str(err.value)
    assert "'Date'" in message
    assert "--date-format %d/%m/%Y" in message
    assert "--date-format %m/%d/%Y" in message


def test_unrecognised_dates_name_the_column_and_show_examples() -> None:
    with pytest.raises(DataValidationError, match=r"column 'when'.*could not recognise.*yesterday"):
        infer_date_format(["yesterday", "today"], column="when")


def test_empty_column_is_an_error() -> None:
    with pytest.raises(DataValidationError, match="no dates"):
        infer_date_format([None, ""], column="date")


def test_a_minority_of_bad_values_does_not_block_detection() -> None:
    # The bad value is quarantined later by validation, not here.
    assert infer_date_format(["2024-01-05", "2024-01-06", "2024-13-45"]) == "%Y-%m-%d"
