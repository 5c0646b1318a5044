"""`write_json`, behind the commands' `--json` figures: strict JSON, written whole, and a one-line error naming a path
it cannot write."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pytest

from shelfcast.errors import ConfigError
from shelfcast.io.files import write_json


def test_writes_strict_json_with_nan_and_infinities_as_null_in_new_folders(tmp_path: Path) -> None:
    path = tmp_path / "metrics" / "train.json"
    payload = {"wape": math.nan, "models": {"gbm": {"mase": math.inf}}, "cutoffs": [dt.date(2024, 1, 31)], "ok": True}
    assert write_json(payload, path) == path
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"wape": None, "models": {"gbm": {"mase": None}}, "cutoffs": ["2024-01-31"], "ok": True}
    assert [p.name for p in path.parent.iterdir()] == ["train.json"]  # no temporary file left


def test_a_path_it_cannot_write_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    with pytest.raises(ConfigError, match=r"^cannot write .*metrics \(is a directory\)$"):
        write_json({"rows": 1}, folder)
    assert list(tmp_path.rglob("*.tmp")) == []
