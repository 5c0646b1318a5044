"""`shelfcast train`'s summary: each figure of the backtest says what it is."""

from __future__ import annotations

from shelfcast.cli import output as out
from shelfcast.io.tracking import LoggedRun
from shelfcast.jobs.train import TrainReport
from shelfcast.models.gates import GateResult, PromotionReport
from shelfcast.types import Task


def test_the_pooled_and_the_gates_wape_are_labelled() -> None:
    gate = GateResult(True, ["wape 0.1083 beats the best baseline seasonal_naive (0.2000)"], {"wape": 0.1083})
    report = TrainReport(
        Task.DEMAND,
        LoggedRun("r1", "1", "models:/m/1", "sqlite:///x.db"),
        "1",
        "gbm",
        {"wape": 0.1071},
        PromotionReport(Task.DEMAND, "1", gate, True, None, None),
        1.0,
    )
    width, out.console.width = out.console.width, 200
    try:
        with out.console.capture() as captured:
            out.train_summary(report)
    finally:
        out.console.width = width
    lines = captured.get().splitlines()
    pooled = [line for line in lines if "0.1071" in line]
    averaged = [line for line in lines if "0.1083" in line and "gates compare" in line]
    assert len(pooled) == 1 and "windows pooled" in pooled[0]
    assert len(averaged) == 1 and "mean of the windows" in averaged[0]
