"""The policy: from what monitoring saw and what the registry holds, ok, retrain, roll back or fall back.

Pure: a `TaskState` in, a `Decision` with its reasons out. In order:

0. **not applicable** when the task cannot be learnt from the data (a
   stockout model on sales-only data): nothing is done, counted or held
   (no fallback, no retrain, no cooldown, no alert);
1. **fall back** when no model can be trusted: no champion and no local
   copy of one (the registry is lost or empty), or a champion below the
   absolute floors (`gates.demand_max_wape`, `gates.stockout_min_f1`), which
   only a forced promotion lets through; and **stay** in fallback while the
   champion that fell back is still the champion;
2. **roll back** when the champion was promoted recently (`fresh_days`),
   the previous champion is known, both have been measured live on at
   least `min_rows` rows, and the champion does worse live than the
   previous one by more than `rollback_margin` (a fraction);
3. **fall back** when the demand champion does worse live than the rule
   baseline it would be replaced by: its WAPE is at least
   `fallback_relative` times the seasonal naive's on the same rows, over at
   least `min_live_days` days. Stores are then better served by the naive
   until a retrained model passes the gates;
4. **retrain** when the model's inputs drifted (an alarm on its features)
   or live accuracy fell more than the degradation setting below the
   champion's backtest over at least `min_live_days` days;
5. **ok** otherwise.

A fall back tries a retrain first (a model that passes the gates ends it).
No retrain of a task starts less than `cooldown_hours` after that task's
last one: its challenger met the same data (cooldowns are per task). Drift of the model's outputs alone is
reported, not acted on: seasons and holidays move the forecasts of an
unchanged process (measured on the simulator), and a model that follows
them is doing its job. Live accuracy over a few days is noise: a week of a
noisy series can be 20 % worse than the backtest with nothing wrong, hence
the minimum number of days.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from shelfcast.models.gates import RULES
from shelfcast.types import Task

Action = Literal["ok", "retrain", "rollback", "fallback", "not_applicable"]


class PolicyConfig(BaseModel):
    """When the policy acts: the `policy` section of the settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fresh_days: float = Field(
        14.0, ge=0.0, description="A champion promoted less than this many days ago may be rolled back."
    )
    rollback_margin: float = Field(
        0.1,
        ge=0.0,
        description="Roll back when the fresh champion does worse live than the previous one by more than this "
        "fraction.",
    )
    min_rows: int = Field(
        50, ge=1, description="Live rows each of the champion and the previous one needs before a roll back."
    )
    min_live_days: int = Field(
        14, ge=1, description="Days of live accuracy needed before the policy retrains or falls back on accuracy."
    )
    cooldown_hours: float = Field(
        20.0, ge=0.0, description="No retrain starts less than this many hours after the last one."
    )
    fallback_relative: float = Field(
        1.2,
        gt=1.0,
        description="Fall back to the rule baseline when the demand champion's live WAPE is at least this many "
        "times the seasonal naive's on the same rows.",
    )


class Monitored(Protocol):
    """What the policy reads of a task's monitoring (`monitoring.summary.TaskMonitor` has it)."""

    @property
    def drift_alarm(self) -> bool: ...
    @property
    def drifted_features(self) -> list[str]: ...
    @property
    def prediction_drift_alarm(self) -> bool: ...
    @property
    def degraded(self) -> bool: ...
    @property
    def live_value(self) -> float | None: ...
    @property
    def backtest_value(self) -> float | None: ...
    @property
    def evaluated_rows(self) -> int: ...
    @property
    def evaluated_days(self) -> int: ...
    @property
    def live_by_version(self) -> Mapping[str, float]: ...
    @property
    def rows_by_version(self) -> Mapping[str, int]: ...
    @property
    def live_relative(self) -> float | None: ...
    @property
    def relative_by_version(self) -> Mapping[str, float]: ...


@dataclass(frozen=True)
class Registered:
    """What the registry says of a task's models (or, when it is lost, the local copy of the champion)."""

    champion: str | None  # version
    previous: str | None = None
    reachable: bool = True
    promoted_days_ago: float | None = None  # since the champion's promotion, else its registration
    floor_problem: str | None = None  # why the champion is below an absolute floor; None when it is not


@dataclass(frozen=True)
class TaskState:
    """What the policy knows about one task."""

    task: Task
    champion: str | None  # version, from the registry or the local copy
    registry_ok: bool = True
    floor_problem: str | None = None  # why the champion is below an absolute floor; None when it is not
    previous: str | None = None
    promoted_days_ago: float | None = None
    drift_alarm: bool = False
    drifted: list[str] = field(default_factory=list)
    prediction_drift: bool = False
    degraded: bool = False
    metric: str = ""
    higher_is_better: bool = False
    live: float | None = None  # the champion's live metric
    backtest: float | None = None
    previous_live: float | None = None
    live_rows: int = 0
    live_days: int = 0
    previous_rows: int = 0
    hours_since_retrain: float | None = None
    live_relative: float | None = None  # demand: the champion's live WAPE over the seasonal naive's, same rows
    fallback: str | None = None  # why the task is in fallback now (None: it is not)
    fallback_version: str | None = None  # the champion when it fell back
    not_applicable: str | None = None  # why the task does not apply to this data (None: it does)

    @classmethod
    def observe(
        cls,
        task: Task,
        registered: Registered,
        health: Monitored | None,
        *,
        hours_since_retrain: float | None = None,
        fallback: tuple[str, str | None] | None = None,
        not_applicable: str | None = None,
    ) -> TaskState:
        """The state from the registry, the monitoring (None: not monitored), the last retrain and the fallback
        the task is in (its reason and the champion that fell back)."""
        rule = RULES[task]
        seen = cls(
            task=task,
            champion=registered.champion,
            registry_ok=registered.reachable,
            floor_problem=registered.floor_problem,
            previous=registered.previous,
            promoted_days_ago=registered.promoted_days_ago,
            metric=rule.metric,
            higher_is_better=rule.higher_is_better,
            hours_since_retrain=hours_since_retrain,
            fallback=fallback[0] if fallback else None,
            fallback_version=fallback[1] if fallback else None,
            not_applicable=not_applicable,
        )
        if health is None:
            return seen
        prev = registered.previous
        live_by, live, metric = health.live_by_version, health.live_value, rule.metric
        if health.live_relative is not None and prev in health.relative_by_version:
            # Versions that served at different times compare fairly only against the naive on their own rows.
            live_by, live, metric = health.relative_by_version, health.live_relative, f"{rule.metric} / seasonal naive"
        return replace(
            seen,
            drift_alarm=health.drift_alarm,
            drifted=list(health.drifted_features),
            prediction_drift=health.prediction_drift_alarm,
            degraded=health.degraded,
            metric=metric,
            live=live,
            backtest=health.backtest_value,
            previous_live=live_by.get(prev) if prev else None,
            live_rows=health.evaluated_rows,
            live_days=health.evaluated_days,
            previous_rows=health.rows_by_version.get(prev, 0) if prev else 0,
            live_relative=health.live_relative,
        )


@dataclass(frozen=True)
class Decision:
    task: Task
    action: Action
    reasons: list[str]
    retry: bool = True  # a fallback tries a retrain first (False within the cooldown)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def _worse(a: float, b: float, *, higher_is_better: bool, margin: float) -> bool:
    """`a` worse than `b` by more than `margin`, a fraction of `b`."""
    slack = abs(b) * margin
    return a < b - slack if higher_is_better else a > b + slack


def _cooling(state: TaskState, config: PolicyConfig) -> str | None:
    if state.hours_since_retrain is not None and state.hours_since_retrain < config.cooldown_hours:
        return f"a retrain ran {state.hours_since_retrain:.1f} h ago (cooldown {config.cooldown_hours:g} h)"
    return None


def _fallback(state: TaskState, config: PolicyConfig, reasons: list[str]) -> Decision:
    held = _cooling(state, config)
    return Decision(state.task, "fallback", reasons + ([f"no retrain: {held}"] if held else []), retry=held is None)


def _not_applicable(state: TaskState, config: PolicyConfig) -> Decision | None:
    """Rule 0: a task the data cannot support is left alone (no fallback, no retrain, no cooldown)."""
    if state.not_applicable is None:
        return None
    return Decision(state.task, "not_applicable", [f"not applicable: {state.not_applicable}"], retry=False)


def _untrusted(state: TaskState, config: PolicyConfig) -> Decision | None:
    """Rule 1: no model can be trusted (none at all, one below a floor, or the one that fell back)."""
    if state.champion is None:
        where = "the registry is unreachable" if not state.registry_ok else "the registry has none"
        return _fallback(state, config, [f"no {state.task} champion: {where} and there is no local copy"])
    if state.floor_problem is not None:
        return _fallback(state, config, [f"champion v{state.champion} is below a floor: {state.floor_problem}"])
    if state.fallback is not None and state.fallback_version == state.champion:
        return _fallback(state, config, [f"still in fallback, champion v{state.champion} unchanged ({state.fallback})"])
    return None


def _rollback(state: TaskState, config: PolicyConfig) -> Decision | None:
    """Rule 2: a fresh champion measured worse live than the previous one, both on enough rows."""
    fresh = state.promoted_days_ago is not None and state.promoted_days_ago <= config.fresh_days
    if not (
        fresh
        and state.previous is not None
        and state.live is not None
        and state.previous_live is not None
        and state.live_rows >= config.min_rows
        and state.previous_rows >= config.min_rows
        and _worse(
            state.live, state.previous_live, higher_is_better=state.higher_is_better, margin=config.rollback_margin
        )
    ):
        return None
    return Decision(
        state.task,
        "rollback",
        [
            f"champion v{state.champion}, promoted {state.promoted_days_ago:.1f} days ago, has live "
            f"{state.metric} {state.live:.4f} against {state.previous_live:.4f} for v{state.previous} "
            f"(margin {config.rollback_margin:g})"
        ],
    )


def _worse_than_naive(state: TaskState, config: PolicyConfig) -> Decision | None:
    """Rule 3: the demand champion does worse live than the seasonal naive that would replace it."""
    if (
        state.live_relative is None
        or state.live_relative < config.fallback_relative
        or state.live_days < config.min_live_days
    ):
        return None
    return _fallback(
        state,
        config,
        [
            f"champion v{state.champion} does worse live than the rule baseline: its WAPE is "
            f"{state.live_relative:.2f} times the seasonal naive's on the same rows over {state.live_days} days "
            f"(fallback at {config.fallback_relative:g})"
        ],
    )


def _retrain_or_ok(state: TaskState, config: PolicyConfig) -> Decision:
    """Rules 4 and 5: retrain on drift or lasting degradation (outside the cooldown), else ok."""
    reasons: list[str] = []
    notes: list[str] = []
    if state.drift_alarm:
        shown = ", ".join(state.drifted[:5]) + (" ..." if len(state.drifted) > 5 else "")
        reasons.append(f"data drift on {len(state.drifted)} feature(s): {shown}")
    if state.degraded and state.live is not None and state.backtest is not None:
        measured = f"live {state.metric} {state.live:.4f} against the backtest's {state.backtest:.4f}"
        if state.live_days >= config.min_live_days:
            reasons.append(f"{measured} over {state.live_days} days ({state.live_rows} rows)")
        else:
            notes.append(f"{measured} over only {state.live_days} days (acted on from {config.min_live_days})")
    if state.prediction_drift:
        notes.append("the model's predictions drifted (reported; not acted on alone)")
    if not reasons:
        head = [f"champion v{state.champion} is healthy"]
        if not state.registry_ok:
            head.append("the registry is unreachable: the local copy serves")
        return Decision(state.task, "ok", [*head, *notes])
    held = _cooling(state, config)
    if held is not None:
        return Decision(state.task, "ok", [*reasons, *notes, held])
    return Decision(state.task, "retrain", [*reasons, *notes])


def decide(state: TaskState, config: PolicyConfig | None = None) -> Decision:
    """The first rule of the module's list that applies to the task."""
    config = config or PolicyConfig()
    for rule in (_not_applicable, _untrusted, _rollback, _worse_than_naive):
        decision = rule(state, config)
        if decision is not None:
            return decision
    return _retrain_or_ok(state, config)
