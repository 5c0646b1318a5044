from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from helpers import write

from shelfcast.data.readers import scan_table, sniff_delimiter
from shelfcast.errors import InputFileError


def test_csv_is_read_as_text_with_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "date,units\n2024-01-01,5\n2024-01-02,007\n")
    frame = scan_table(path, required=["date", "units"]).collect()
    assert frame["_line"].to_list() == [2, 3]
    assert frame["units"].to_list() == ["5", "007"]  # text: parsing is validation's job


def test_utf8_bom_is_stripped_from_the_header(tmp_path: Path) -> None:
    path = write(tmp_path / "bom.csv", b"\xef\xbb\xbfdate,units\n2024-01-01,5\n")
    assert "date" in scan_table(path, required=["date"]).collect_schema()


@pytest.mark.parametrize(("header", "expected"), [("a,b,c", ","), ("a;b;c", ";"), ("a\tb", "\t"), ("a|b|c", "|")])
def test_delimiter_is_sniffed_from_the_header(header: str, expected: str) -> None:
    assert sniff_delimiter(header) == expected


def test_wrong_explicit_delimiter_gives_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path / "semi.csv", "date;units\n2024-01-01;5\n")
    with pytest.raises(InputFileError, match=r"semi.csv: missing required column\(s\) date, units.*delimiter ';'"):
        scan_table(path, required=["date", "units"], delimiter=",")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "file is empty"),
        (b"\n\n", "no header row"),
        (b"PK\x03\x04\x00\x00binary", "not a text file"),
        (b"date,store\n2024-01-01,caf\xe9\n", r"not UTF-8 text: byte 0xe9 at line 2"),
    ],
)
def test_unusable_files_are_one_line_errors_naming_the_file(tmp_path: Path, content: bytes, problem: str) -> None:
    path = write(tmp_path / "bad.csv", content)
    with pytest.raises(InputFileError, match=rf"bad.csv: {problem}") as err:
        scan_table(path)
    assert "\n" not in str(err.value)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="file not found"):
        scan_table(tmp_path / "nope.csv")
    with pytest.raises(InputFileError, match="is a folder"):
        scan_table(tmp_path)


def test_missing_required_column_lists_what_was_found(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "day,qty\n2024-01-01,5\n")
    with pytest.raises(InputFileError, match=r"missing required column\(s\) date; found: day, qty"):
        scan_table(path, required=["date"])


def test_duplicate_header_names_are_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "date,units,units\n2024-01-01,5,6\n")
    with pytest.raises(InputFileError, match="duplicate column name"):
        scan_table(path)


def test_ragged_rows_keep_every_value(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "date,units\n2024-01-01,5,extra\n2024-01-02\n2024-01-03,7")
    frame = scan_table(path).collect()
    assert frame["__extra_0"].to_list() == ["extra", None, None]
    assert frame["units"].to_list() == ["5", None, "7"]  # truncated line: the value is missing, not invented


def test_parquet_is_detected_by_content_and_numbered_from_one(tmp_path: Path) -> None:
    pl.DataFrame({"date": ["2024-01-01"], "units": [1.0]}).write_parquet(tmp_path / "x.csv")
    frame = scan_table(tmp_path / "x.csv", required=["units"]).collect()
    assert frame["_line"].to_list() == [1]
    assert frame.schema["units"] == pl.Float64


def test_a_csv_named_parquet_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "x.parquet", "date,units\n")
    with pytest.raises(InputFileError, match="not a Parquet file"):
        scan_table(path)
