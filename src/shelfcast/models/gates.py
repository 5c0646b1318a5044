"""Promotion gates: may a challenger replace the champion? Pure: scores in, a verdict with its reasons out.

Scores are given per backtest window, keyed by the window's cutoff date, so
that a challenger and the champion are only compared on the windows both
were scored on. The challenger must beat the best baseline of its own run
(same windows by construction), must not be worse than the champion by more
than `tolerance` (a fraction of the champion's score), and must meet the
absolute floors. When the data has grown since the champion was trained, its
scores may come from its configuration re-backtested on the challenger's
windows (`champion_rebacktested`); the reasons say so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from shelfcast.models.baselines import BASELINES
from shelfcast.types import Task

# cutoff (ISO date) -> metric -> value
WindowScores = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class GateRule:
    """The primary metric of a task, its direction, and the baselines a model must beat."""

    metric: str
    higher_is_better: bool
    baselines: tuple[str, ...]


RULES: dict[Task, GateRule] = {
    Task.DEMAND: GateRule("wape", higher_is_better=False, baselines=tuple(BASELINES)),
    # The quantile risk needs a demand forecast and stock; the rule is the baseline every chain has.
    Task.STOCKOUT: GateRule("pr_auc", higher_is_better=True, baselines=("rule",)),
}


class GateFloors(BaseModel):
    """Absolute limits and the tolerance against the champion: the `gates` section of the settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tolerance: float = Field(
        0.0, ge=0.0, description="How much worse than the champion (a fraction of its score) a challenger may be."
    )
    demand_max_wape: float | None = Field(
        None, gt=0.0, description="Floor: demand models with a backtest WAPE above this are refused (none: no floor)."
    )
    stockout_min_f1: float = Field(
        0.0, ge=0.0, le=1.0, description="Floor: stockout models with a backtest F1 below this are refused (e.g. 0.7)."
    )


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: list[str]
    values: dict[str, float] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


@dataclass(frozen=True)
class PromotionReport:
    """What the gates said of a version and whether it became champion (`cache`: its local copy)."""

    task: Task
    version: str
    gate: GateResult
    promoted: bool
    previous: str | None
    cache: Path | None


def mean_over(scores: WindowScores, metric: str, windows: list[str] | None = None) -> float:
    """Mean of a metric over the given windows (default: all); nan windows are left out, nan if none is left."""
    keys = sorted(scores) if windows is None else windows
    values = [scores[w][metric] for w in keys if w in scores and metric in scores[w]]
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def _better(a: float, b: float, rule: GateRule) -> bool:
    return a > b if rule.higher_is_better else a < b


def _within(challenger: float, champion: float, rule: GateRule, tolerance: float) -> bool:
    """Not worse than the champion by more than `tolerance`, a fraction of the champion's score."""
    slack = abs(champion) * tolerance
    return challenger >= champion - slack if rule.higher_is_better else challenger <= champion + slack


def evaluate_gates(
    task: Task,
    *,
    challenger: WindowScores,
    baselines: Mapping[str, WindowScores],
    champion: WindowScores | None,
    floors: GateFloors,
    champion_rebacktested: bool = False,
    champion_as_served: bool = False,
) -> GateResult:
    """Every gate of `task`; the result passes only when all of them do.

    `champion_rebacktested`: the champion's scores are its configuration
    re-backtested on the challenger's windows, not those of its own run;
    `champion_as_served`: they are the fitted champion's own forecasts from
    the challenger's cutoffs (it was trained before them).
    """
    rule = RULES[task]
    score = mean_over(challenger, rule.metric)
    values: dict[str, float] = {rule.metric: score}
    if math.isnan(score):
        return GateResult(False, [f"the challenger has no {rule.metric} on any backtest window"], values)
    how = "re-backtested" if champion_rebacktested else "as served" if champion_as_served else None
    verdicts = [
        _baseline_gate(rule, score, challenger, baselines, values),
        _champion_gate(rule, challenger, champion, floors.tolerance, values, how=how),
        *_floor_gates(task, score, challenger, floors, values),
    ]
    return GateResult(all(ok for ok, _ in verdicts), [r for _, r in verdicts if r], values)


# A gate's verdict: passed, and the reason to show (None: nothing to say).
Verdict = tuple[bool, str | None]


def _baseline_gate(
    rule: GateRule,
    score: float,
    challenger: WindowScores,
    baselines: Mapping[str, WindowScores],
    values: dict[str, float],
) -> Verdict:
    """The challenger beats the best baseline of its own run, on the same windows."""
    m = rule.metric
    known = {b: mean_over(s, m, sorted(challenger)) for b, s in baselines.items() if b in rule.baselines}
    known = {b: v for b, v in known.items() if not math.isnan(v)}
    if not known:
        return True, f"no baseline has a {m} to compare with"
    best = max(known, key=known.__getitem__) if rule.higher_is_better else min(known, key=known.__getitem__)
    values[f"{m}.best_baseline"] = known[best]
    if _better(score, known[best], rule):
        return True, f"{m} {score:.4f} beats the best baseline {best} ({known[best]:.4f})"
    return False, f"{m} {score:.4f} does not beat the best baseline {best} ({known[best]:.4f})"


def _champion_gate(
    rule: GateRule,
    challenger: WindowScores,
    champion: WindowScores | None,
    tolerance: float,
    values: dict[str, float],
    *,
    how: str | None,
) -> Verdict:
    """Not worse than the champion by more than the tolerance, on the windows both were scored on."""
    if champion is None:
        return True, None
    shared = sorted(set(challenger) & set(champion))
    if not shared:
        # Different data: no window in common, so no fair comparison with the champion.
        return True, "the champion was scored on other backtest windows; not compared"
    m = rule.metric
    mine, theirs = mean_over(challenger, m, shared), mean_over(champion, m, shared)
    values[f"{m}.champion"] = theirs
    values["windows_shared"] = float(len(shared))
    where = f"on {len(shared)} shared window(s)"
    if how == "re-backtested":
        values["champion_rebacktested"] = 1.0
        where += " (the champion re-backtested on the challenger's windows)"
    elif how == "as served":
        values["champion_as_served"] = 1.0
        where += " (the champion as served, forecasting from the challenger's cutoffs)"
    if math.isnan(theirs) or _within(mine, theirs, rule, tolerance):
        return True, f"{m} {mine:.4f} vs champion {theirs:.4f} {where}"
    return False, f"{m} {mine:.4f} is worse than the champion's {theirs:.4f} {where} (tolerance {tolerance:g})"


def _floor_gates(
    task: Task, score: float, challenger: WindowScores, floors: GateFloors, values: dict[str, float]
) -> list[Verdict]:
    """The absolute floors of the task's settings."""
    if task == Task.DEMAND:
        if floors.demand_max_wape is not None and score > floors.demand_max_wape:
            return [(False, f"wape {score:.4f} is above the floor gate_demand_max_wape={floors.demand_max_wape:g}")]
        return []
    f1 = mean_over(challenger, "f1")
    values["f1"] = f1
    if floors.stockout_min_f1 > 0 and (math.isnan(f1) or f1 < floors.stockout_min_f1):
        return [(False, f"f1 {f1:.4f} is below the floor gate_stockout_min_f1={floors.stockout_min_f1:g}")]
    return []
