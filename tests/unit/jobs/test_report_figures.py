"""The figures `validate`, `train` and `score` write with `--json` (the metrics files of dvc.yaml): what each holds."""

from __future__ import annotations

import datetime as dt
import json

from shelfcast.data.tables import GapReport
from shelfcast.io.tracking import LoggedRun
from shelfcast.jobs.score import ScoreReport
from shelfcast.jobs.train import TrainReport
from shelfcast.jobs.validate import TableCheck, ValidationReport
from shelfcast.models.gates import GateResult, PromotionReport
from shelfcast.types import Freq, Task


def test_validation_figures_count_rows_kept_and_quarantined_and_problems_per_table() -> None:
    report = ValidationReport(
        [
            TableCheck("sales", 1600, [], GapReport(8, 1, 3, "")),
            TableCheck("items", 4, ["2 row(s) share a key (item_id)"]),
        ],
        quarantine_rows=5,
        lake_problems=["sales/2024-01.parquet differs from the manifest"],
    )
    figures = report.to_dict()
    assert figures == {
        "ok": False,
        "rows": 1604,
        "quarantined": 5,
        "problems": 2,
        "tables": {
            "sales": {"rows": 1600, "problems": 0, "series_with_gaps": 1, "missing_periods": 3},
            "items": {"rows": 4, "problems": 1},
        },
    }
    assert json.loads(json.dumps(figures)) == figures


def test_train_figures_hold_the_version_the_verdict_and_every_models_backtest() -> None:
    gate = GateResult(False, ["wape 0.45 does not beat the best baseline seasonal_naive (0.40)"], {"wape": 0.45})
    backtest = {"gbm": {"wape": 0.44, "mae": 3.1}, "seasonal_naive": {"wape": 0.41, "mae": 2.9}}
    report = TrainReport(
        Task.DEMAND,
        LoggedRun("r7", "1", "models:/m/3", "sqlite:///x.db"),
        "3",
        "gbm",
        {"wape": 0.44},
        PromotionReport(Task.DEMAND, "3", gate, False, None, None),
        1.0,
        backtest=backtest,
    )
    figures = report.to_dict()
    assert figures == {
        "task": "demand",
        "version": "3",
        "run_id": "r7",
        "candidate": "gbm",
        "promoted": False,
        "gates": {"passed": False, "reason": gate.reason, "mean_of_windows": {"wape": 0.45}},
        "backtest": backtest,
    }
    ungated = TrainReport(Task.STOCKOUT, report.run, "1", "classifier", {}, None, 1.0).to_dict()
    assert ungated["promoted"] is False and ungated["gates"] is None and ungated["backtest"] == {}


def test_score_figures_say_what_was_scored_and_with_which_models() -> None:
    report = ScoreReport(
        store="parquet",
        location="/ws/predictions",
        rows=28,
        series=2,
        cutoff=dt.date(2024, 3, 31),
        scored_on=dt.date(2024, 4, 1),
        horizon=2,
        model_name="shelfcast-demand",
        model_version="4",
        run_id="r9",
        stockout_version="rule-baseline",
        alerts=1,
        note="no stockout champion",
        model_seconds=1.0,
        write_seconds=0.1,
        freq=Freq.WEEKLY,
    )
    figures = report.to_dict()
    assert figures["rows"] == 28 and figures["horizon"] == 2 and figures["unit"] == "week"
    assert figures["cutoff"] == "2024-03-31" and figures["scored_on"] == "2024-04-01"
    assert figures["model_version"] == "4" and figures["stockout_version"] == "rule-baseline"
    assert "seconds" not in json.dumps(figures)  # the same scoring gives the same figures
