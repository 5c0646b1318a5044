"""The monitoring HTML page says what was measured, and plots every drifted feature readably."""

from __future__ import annotations

import base64
import datetime as dt
import re
import struct
from pathlib import Path

import numpy as np
import polars as pl

from shelfcast.io.monitor_report import write_html
from shelfcast.monitoring.drift import FeatureDrift
from shelfcast.monitoring.summary import MonitorReport, TaskMonitor
from shelfcast.types import Task

AT = dt.datetime(2026, 11, 24, 3, 0, tzinfo=dt.UTC)


def _feature(name: str, *, effect: float, alarm: bool) -> FeatureDrift:
    return FeatureDrift(name, "numeric", effect, effect, 0.1, None, 0.001, 500, 500, 400.0, 0.0, 0.0, alarm)


def _page(tmp_path: Path, monitor: TaskMonitor, windows: dict[Task, tuple[pl.DataFrame, pl.DataFrame]]) -> str:
    report = MonitorReport(
        created_at=AT,
        window_days=28,
        data_last_date=AT.date(),
        tasks={Task.DEMAND: monitor},
        folder=tmp_path,
        summary_path=tmp_path / "drift_summary.json",
        report_path=tmp_path / "report.html",
        latest_path=tmp_path / "latest.json",
        mlflow_run_id=None,
        windows=windows,
    )
    return write_html(report, report.report_path).read_text()


def test_no_live_rows_is_not_measured_yet_and_the_backtest_is_not_shown_as_live(tmp_path: Path) -> None:
    monitor = TaskMonitor(Task.DEMAND, "ok", model_version="3", live_metric="wape", backtest_value=0.3071)
    page = _page(tmp_path, monitor, {})
    assert "within tolerance" not in page
    assert 'live accuracy <span class="note">not measured yet</span>' in page
    live_table = page.split("<h3>Live accuracy (wape)</h3>")[1].split("</table>")[0]
    assert "<tr><td>v3</td><td>not measured yet</td><td>0</td><td>0.3071</td></tr>" in live_table


def test_measured_live_accuracy_within_tolerance_is_said_so(tmp_path: Path) -> None:
    monitor = TaskMonitor(
        Task.DEMAND,
        "ok",
        model_version="3",
        live_metric="wape",
        live_value=0.31,
        backtest_value=0.30,
        evaluated_rows=120,
        evaluated_days=14,
        live_by_version={"3": 0.31},
        rows_by_version={"3": 120},
    )
    page = _page(tmp_path, monitor, {})
    assert '<span class="ok">within tolerance</span>' in page
    assert "<tr><td>v3</td><td>0.31</td><td>120</td><td>0.3</td></tr>" in page


def test_every_drifted_feature_gets_a_readable_plot(tmp_path: Path) -> None:
    names = [f"f{i:02d}" for i in range(30)]
    features = [_feature(n, effect=1.0 - i / 100, alarm=i < 25) for i, n in enumerate(names)]
    rng = np.random.default_rng(0)
    reference = pl.DataFrame({n: rng.normal(0, 1, 300) for n in [*names, "prediction"]})
    current = pl.DataFrame({n: rng.normal(1, 1, 300) for n in [*names, "prediction"]})
    monitor = TaskMonitor(
        Task.DEMAND,
        "ok",
        model_version="3",
        drift_alarm=True,
        drifted_features=names[:25],
        features=features,
        live_metric="wape",
    )
    page = _page(tmp_path, monitor, {Task.DEMAND: (reference, current)})
    alarm_rows = re.findall(r'<tr class="alarm">(.*?)</tr>', page)
    assert len(alarm_rows) == 25
    assert all("<img" in row for row in alarm_rows)
    for encoded in re.findall(r'src="data:image/png;base64,([^"]+)"', page):
        width, height = struct.unpack(">II", base64.b64decode(encoded)[16:24])
        assert width >= 500 and height >= 250  # was 230 x 115 px with 6-point legends
