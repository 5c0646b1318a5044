"""Property: whatever mix of good, bad and duplicate rows a file holds, nothing is lost or counted twice."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
from helpers import NOW, TODAY
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shelfcast.data.sources import get_source
from shelfcast.io.lake import Lake
from shelfcast.jobs.ingest import run_ingest
from shelfcast.settings import Settings

GOOD_UNITS = st.integers(min_value=0, max_value=50).map(str)
BAD_UNITS = st.sampled_from(["-1", "abc", "", "nan", "1e999x", "inf"])
DATES = st.sampled_from(["2024-01-30", "2024-01-31", "2024-02-01", "2024-13-01", ""])
ROW = st.tuples(DATES, st.sampled_from(["1", "2", ""]), st.sampled_from(["7", "8"]), st.one_of(GOOD_UNITS, BAD_UNITS))


def _is_valid(date: str, store: str, units: str) -> bool:
    return date not in ("", "2024-13-01") and store != "" and units.isdigit()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(ROW, min_size=1, max_size=40), policy=st.sampled_from(["sum", "reject"]))
def test_every_row_is_accounted_for_exactly_once(tmp_path: Path, rows: list[tuple[str, ...]], policy: str) -> None:
    # One valid row anchors the date format: a column with no recognisable date
    # at all is a file-level error (asking for --date-format), tested elsewhere.
    rows = [("2024-01-30", "1", "7", "1"), *rows]
    folder = tmp_path / "case"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    csv = folder / "train.csv"
    csv.write_text("date,store,item,sales\n" + "".join(",".join(r) + "\n" for r in rows))
    settings_ = Settings(workspace=folder / "ws", duplicates=policy)  # type: ignore[arg-type]
    report = run_ingest(get_source("store-item"), csv, settings=settings_, today=TODAY, now=NOW)

    (part,) = report.parts
    assert part.read == len(rows)
    assert part.read == part.kept + part.quarantined + part.merged
    lake = Lake(folder / "ws")
    quarantine = lake.read("quarantine") if lake.has("quarantine") else pl.DataFrame(schema={"line": pl.Int64})
    assert quarantine["line"].n_unique() == quarantine.height == part.quarantined  # nobody quarantined twice

    valid = [(d, s, i, int(u)) for d, s, i, u in rows if _is_valid(d, s, u)]
    empty = pl.DataFrame(schema={"date": pl.Date, "units": pl.Float64})
    stored = lake.read("sales") if lake.has("sales") else empty
    invalid_lines = {n + 2 for n, (d, s, _, u) in enumerate(rows) if not _is_valid(d, s, u)}
    assert invalid_lines <= set(quarantine["line"].to_list())
    if policy == "sum":
        # Merging adds duplicates up: the stored total is the total of the valid rows.
        assert stored["units"].sum() == sum(u for *_, u in valid)
        assert stored.height == len({(d, s, i) for d, s, i, _ in valid})
    else:
        counts: dict[tuple[str, str, str], int] = {}
        for d, s, i, _ in valid:
            counts[(d, s, i)] = counts.get((d, s, i), 0) + 1
        assert stored.height == sum(1 for n in counts.values() if n == 1)
        assert part.merged == 0
    if stored.height:
        assert stored["date"].min() >= dt.date(2024, 1, 30)  # type: ignore[operator]
