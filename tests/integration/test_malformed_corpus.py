"""Every malformed input in tests/corpus/malformed gets its exact error or quarantine reason.

The cases and their expectations live in cases.toml next to the files, so the
corpus can grow without touching this test.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from shelfcast.errors import ShelfcastError
from shelfcast.io.lake import Lake
from shelfcast.jobs.ingest import IngestReport

pytestmark = pytest.mark.integration
CORPUS = Path(__file__).parents[1] / "corpus" / "malformed"
CASES: dict[str, dict[str, Any]] = tomllib.loads((CORPUS / "cases.toml").read_text())


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_input(name: str, ingest: Callable[..., IngestReport], workspace: Path) -> None:
    case = CASES[name]
    path = CORPUS / case["path"]
    source = case.get("source", "store-item")
    options = {"delimiter": case["delimiter"]} if "delimiter" in case else {}
    settings = {"duplicates": case["duplicates"]} if "duplicates" in case else {}
    if "error" in case:
        with pytest.raises(ShelfcastError) as err:
            ingest(path, source, settings=settings, **options)
        message = str(err.value)
        assert message.endswith(case["error"]), message
        assert "\n" not in message
        return
    report = ingest(path, source, settings=settings, **options)
    for part in report.parts:
        assert part.read == part.kept + part.quarantined + part.merged
    lake = Lake(workspace)
    quarantine = (
        lake.read("quarantine") if lake.has("quarantine") else pl.DataFrame({"source": [], "line": [], "rule": []})
    )
    if "file" in case:
        quarantine = quarantine.filter(pl.col("source").str.ends_with(case["file"]))
    assert quarantine.select("line", "rule").rows() == [tuple(q) for q in case.get("quarantine", [])]
    assert all(re.search(re.escape(str(path)), s) for s in quarantine["source"].to_list())
    if "kept" in case:
        sales = [p for p in report.parts if p.table == "sales"]
        assert sum(p.kept for p in sales) == case["kept"]
        assert sum(p.merged for p in sales) == case.get("merged", 0)
