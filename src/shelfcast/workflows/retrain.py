"""The retrain workflow: monitor, let the policy decide per task, carry the decision out, and record it.

- retrain: a new challenger on the latest data through the same gates
  (`run_train`); promoted only if it passes;
- roll back: `previous_champion` becomes champion again;
- fall back: with the registry reachable and outside the cooldown, a
  retrain is tried first (a model that passes the gates ends the fallback);
  otherwise the task is put (or kept) in fallback (`monitoring/state.json`,
  with the champion that fell back) and scoring and serving use its rule
  baseline until another version is champion;
- ok: nothing, except that a task in fallback whose champion is now another
  version (or found again after the registry was lost) leaves it.

Promotions and rollbacks made here are dated at the job's `now` (the
registry's `shelfcast.promoted_at`), so a replay counts days in its own time.

Each decision is an event in `monitoring/events.parquet` and tags on the
registered model (`shelfcast.last_decision`, `..._reason`, `..._at`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shelfcast.errors import ShelfcastError, TrackingError
from shelfcast.io.champion import champion_dir
from shelfcast.io.lake import Lake
from shelfcast.io.policy_log import Fallback, PolicyEvent, PolicyState, read_state, record_event, write_state
from shelfcast.io.registry import CHAMPION, PREVIOUS, PROMOTED_AT, Registry, VersionInfo
from shelfcast.jobs.monitor import run_monitor
from shelfcast.jobs.promote import rollback
from shelfcast.monitoring.policy import Decision, Monitored, PolicyConfig, Registered, TaskState, decide
from shelfcast.settings import Settings
from shelfcast.types import TASKS, Task
from shelfcast.workflows.training import run_train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    outcome: str
    new_version: str | None = None


@dataclass(frozen=True)
class RetrainReport:
    outcomes: list[Outcome]
    at: dt.datetime
    notes: list[str] = field(default_factory=list)


def _champion(settings: Settings, task: Task) -> tuple[VersionInfo | None, VersionInfo | None, bool, str | None]:
    """(champion, previous, registry reachable, local copy's version)."""
    local = champion_dir(settings, task) / "version.json"
    local_version = json.loads(local.read_text()).get("version") if local.exists() else None
    try:
        registry = Registry(settings)
        return registry.alias(task, CHAMPION), registry.alias(task, PREVIOUS), True, local_version
    except TrackingError as exc:  # an unreachable or broken registry: the policy decides with what is local
        log.warning("registry unreachable (%s)", exc)
        return None, None, False, local_version


def _days_since(stamp: str | None, now: dt.datetime) -> float | None:
    if not stamp:
        return None
    try:
        when = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return (now - when).total_seconds() / 86400


def task_state(settings: Settings, task: Task, health: Monitored | None, *, now: dt.datetime) -> TaskState:
    """The policy's view of a task: the registry's aliases, the monitoring, the last retrain."""
    champion, previous, reachable, local = _champion(settings, task)
    promoted = champion.tags.get(PROMOTED_AT) if champion is not None else None
    created = (
        dt.datetime.fromtimestamp(champion.created / 1000, dt.UTC).isoformat()
        if champion and champion.created
        else None
    )
    registered = Registered(
        champion=champion.version if champion is not None else (local if not reachable else None),
        previous=previous.version if previous is not None else None,
        reachable=reachable,
        promoted_days_ago=_days_since(promoted or created, now),
        floor_problem=floor_problem(settings, task, champion.tags) if champion is not None else None,
    )
    held = read_state(settings)
    since = _days_since(held.last_retrain(task), now)
    fallback = held.fallback.get(task)
    return TaskState.observe(
        task,
        registered,
        health,
        hours_since_retrain=None if since is None else since * 24,
        fallback=(fallback.reason, fallback.version) if fallback is not None else None,
        not_applicable=not_applicable(settings, task),
    )


def not_applicable(settings: Settings, task: Task) -> str | None:
    """Why the task does not apply to the workspace's data (None: it does): stockout on sales-only data.

    An inventory table holds on_hand or stockout_hours (its schema requires one), the stock signal a stockout
    model learns from, as the pipeline checks before training one.
    """
    if task == Task.STOCKOUT and not Lake(settings.workspace).has("inventory"):
        return "sales-only data: no stock signal to learn or judge stockouts from (ingest an inventory table)"
    return None


def floor_problem(settings: Settings, task: Task, tags: Mapping[str, str]) -> str | None:
    """Why the version (by its gate tags) is below an absolute floor of the settings, or None."""

    def value(name: str) -> float | None:
        try:
            return float(tags[f"gate.{name}"])
        except (KeyError, ValueError):
            return None

    wape, f1 = value("wape"), value("f1")
    floors = settings.gates
    limit = floors.demand_max_wape
    if task == Task.DEMAND and limit is not None and wape is not None and wape > limit:
        return f"wape {wape:.4f} above gate_demand_max_wape={limit:g}"
    if task == Task.STOCKOUT and floors.stockout_min_f1 > 0 and f1 is not None and f1 < floors.stockout_min_f1:
        return f"f1 {f1:.4f} below gate_stockout_min_f1={floors.stockout_min_f1:g}"
    return None


Trainer = Callable[[Settings, Task, Mapping[str, str]], Any]


def _train(settings: Settings, task: Task, tags: Mapping[str, str]) -> Any:
    return run_train(settings, task=task, folds=2, promote=True, tags=tags)


def _tag(settings: Settings, task: Task, decision: Decision, now: dt.datetime) -> None:
    tags = {
        "shelfcast.last_decision": decision.action,
        "shelfcast.last_decision_reason": decision.reason[:5000],
        "shelfcast.last_decision_at": now.isoformat(timespec="seconds"),
    }
    try:
        Registry(settings).tag_model(task, tags)
    except TrackingError as exc:  # the event table has it; a registry that is down cannot take tags
        log.warning("could not tag the %s decision in the registry: %s", task, exc)


def _stamp_promotion(settings: Settings, task: Task, version: str, now: dt.datetime) -> None:
    """Date the promotion at the job's `now` (the registry stamped the wall clock): in a replay they differ.

    The rollback rule counts a champion's days since promotion, so a replay
    must see them in its own time.
    """
    try:
        Registry(settings).tag_version(task, version, {PROMOTED_AT: now.isoformat(timespec="seconds")})
    except TrackingError as exc:  # the registry's own stamp stays
        log.warning("could not date the promotion of %s v%s: %s", task, version, exc)


def _enter_fallback(state: PolicyState, task: Task, reason: str, champion: str | None, now: dt.datetime) -> None:
    """Put (or keep) the task in fallback; a fallback that goes on keeps its start and first reason."""
    ongoing = state.fallback.get(task)
    if ongoing is not None and ongoing.version == champion:
        return
    state.fallback[task] = Fallback(task, reason, now.isoformat(timespec="seconds"), champion)


def _roll_back(settings: Settings, decision: Decision, state: PolicyState) -> Outcome:
    restored, demoted = rollback(settings, decision.task)
    state.fallback.pop(decision.task, None)
    demoted_version = demoted.version if demoted else "?"
    return Outcome(decision, f"restored v{restored.version}, demoted v{demoted_version}", restored.version)


def _retrain(
    settings: Settings,
    decision: Decision,
    state: PolicyState,
    *,
    now: dt.datetime,
    champion: str | None,
    trainer: Trainer,
    trigger: str,
) -> tuple[Outcome, bool]:
    """Train a challenger through the gates: (the outcome, whether it became champion).

    A refused one leaves the champion in place, or, for a fallback, the task in fallback.
    """
    task = decision.task
    tags = {"shelfcast.trigger": trigger, "shelfcast.reasons": decision.reason[:5000]}
    try:
        trained = trainer(settings, task, tags)
    except ShelfcastError as exc:
        trained, failure = None, str(exc)
    state.record_retrain(task, now.isoformat(timespec="seconds"))
    if trained is not None and trained.promotion is not None and trained.promotion.promoted:
        state.fallback.pop(task, None)
        return Outcome(decision, f"v{trained.version} trained and promoted", trained.version), True
    why = failure if trained is None else f"v{trained.version} refused by the gates: {trained.promotion.gate.reason}"
    version = trained.version if trained else None
    if decision.action == "fallback":
        _enter_fallback(state, task, f"{decision.reason}; retrain: {why}", champion, now)
        return Outcome(decision, f"in fallback (retrain: {why})", version), False
    return Outcome(decision, f"champion v{champion} kept ({why})", version), False


def _without_training(decision: Decision, state: PolicyState, *, now: dt.datetime, champion: str | None) -> Outcome:
    """A decision carried out with no model trained or moved: fall back, wait for the registry, or end a fallback."""
    task = decision.task
    if decision.action == "fallback":
        _enter_fallback(state, task, decision.reason, champion, now)
        return Outcome(decision, "in fallback: the rule baseline scores and serves")
    if decision.action == "retrain":
        return Outcome(decision, f"needs a retrain, but the registry is unreachable: v{champion} kept")
    if task in state.fallback and champion is not None:
        state.fallback.pop(task)
        return Outcome(decision, f"fallback ended: champion v{champion} is healthy")
    return Outcome(decision, "nothing to do")


def act(
    settings: Settings,
    decision: Decision,
    *,
    now: dt.datetime,
    registry_ok: bool,
    champion: str | None,
    trainer: Trainer = _train,
    trigger: str = "retrain",
) -> Outcome:
    """Carry a decision out; the outcome says what happened (a refused retrain is an outcome, not an error)."""
    task = decision.task
    state = read_state(settings)
    if decision.action == "not_applicable":
        # Nothing to carry out, count or tag (the registry has no such model); a fallback an older version
        # put the task in is lifted, so scoring and the gauges stop reporting one.
        if state.fallback.pop(task, None) is not None:
            write_state(settings, state)
        log.info("%s: %s", task, decision.reason)
        return Outcome(decision, "nothing to do")
    if decision.action == "rollback":
        outcome, crowned = _roll_back(settings, decision, state), True
    elif decision.action in ("retrain", "fallback") and registry_ok and decision.retry:
        outcome, crowned = _retrain(
            settings, decision, state, now=now, champion=champion, trainer=trainer, trigger=trigger
        )
    else:
        outcome, crowned = _without_training(decision, state, now=now, champion=champion), False
    if crowned and outcome.new_version is not None:
        _stamp_promotion(settings, task, outcome.new_version, now)
    write_state(settings, state)
    record_event(
        settings,
        PolicyEvent(
            at=now,
            task=task,
            action=decision.action,
            reasons=decision.reasons,
            champion_version=champion,
            outcome=outcome.outcome,
            new_version=outcome.new_version,
            trigger=trigger,
        ),
    )
    if registry_ok:
        _tag(settings, task, decision, now)
    log.info("%s: %s -> %s", task, decision.action, outcome.outcome)
    return outcome


def run_policy(
    settings: Settings,
    health: Mapping[Task, Monitored | None],
    *,
    now: dt.datetime,
    tasks: tuple[Task, ...] = TASKS,
    force: bool = False,
    dry_run: bool = False,
    config: PolicyConfig | None = None,
    trainer: Trainer = _train,
    trigger: str = "retrain",
) -> RetrainReport:
    """Decide for each task from its monitoring (`force`: retrain whatever the policy says) and act."""
    outcomes: list[Outcome] = []
    for task in tasks:
        state = task_state(settings, task, health.get(task), now=now)
        decision = decide(state, config or settings.policy)
        if force and decision.action == "ok":
            decision = Decision(task, "retrain", ["asked for (--force)", *decision.reasons])
        if dry_run:
            outcomes.append(Outcome(decision, "dry run: nothing done"))
            continue
        outcomes.append(
            act(
                settings,
                decision,
                now=now,
                registry_ok=state.registry_ok,
                champion=state.champion,
                trainer=trainer,
                trigger=trigger,
            )
        )
    return RetrainReport(outcomes, now)


def act_on_monitoring(
    settings: Settings,
    *,
    now: dt.datetime,
    tasks: tuple[Task, ...] = TASKS,
    force: bool = False,
    dry_run: bool = False,
    lookback_days: int | None = None,
    trainer: Trainer = _train,
    trigger: str = "retrain",
    act: bool = True,
) -> RetrainReport:
    """`shelfcast retrain`: monitor, decide from what was seen, act; the monitoring run is tagged with the decisions.

    `act=False` records the monitoring and decides without acting; `dry_run` also writes nothing at all (no
    monitoring folder, `latest.json` or MLflow run): the workspace and the tracking store stay as they were.
    """
    seen = run_monitor(settings, now=now, lookback_days=lookback_days, write=not dry_run)
    health: dict[Task, Monitored | None] = {t: seen.tasks.get(t) for t in tasks}
    report = run_policy(
        settings,
        health,
        now=now,
        tasks=tasks,
        force=force,
        dry_run=dry_run or not act,
        trainer=trainer,
        trigger=trigger,
    )
    if dry_run:
        return RetrainReport(report.outcomes, now, ["dry run: no monitoring report written", *seen.notes])
    if seen.mlflow_run_id is not None:
        try:
            tags: dict[str, str] = {f"decision.{o.decision.task}": o.decision.action for o in report.outcomes}
            tags |= {f"outcome.{o.decision.task}": o.outcome[:5000] for o in report.outcomes}
            Registry(settings).tag_run(seen.mlflow_run_id, tags)
        except TrackingError as exc:  # the events table has the decisions
            log.warning("could not tag the monitoring run: %s", exc)
    return RetrainReport(report.outcomes, now, [f"monitoring report: {seen.report_path}", *seen.notes])
