"""The promote job: gate a registered version against the baselines and the champion, move the aliases,
roll back (the local copy of the champion follows: `io.champion`)."""

from __future__ import annotations

import logging

from shelfcast.errors import PromotionError
from shelfcast.io.champion import champion_dir, champions_root
from shelfcast.io.registry import CHAMPION, Registry, VersionInfo
from shelfcast.io.tracking import (
    AS_SERVED,
    CANDIDATE_PARAM,
    CHAMPION_HOW_PARAM,
    CHAMPION_MODEL,
    CHAMPION_RUN_PARAM,
    CHAMPION_VERSION_PARAM,
    REFITTED,
    models_in,
    window_scores,
)
from shelfcast.models.gates import RULES, GateResult, PromotionReport, WindowScores, evaluate_gates
from shelfcast.settings import Settings
from shelfcast.types import Task

log = logging.getLogger(__name__)


def run_scores(registry: Registry, task: Task, run_id: str) -> tuple[WindowScores, dict[str, WindowScores]]:
    """(the registered model's scores, each baseline's scores) per backtest window, read back from the run."""
    run = registry.run(run_id)
    metrics, params = run.data.metrics, run.data.params
    rule = RULES[task]
    candidate = params.get(CANDIDATE_PARAM)
    if candidate is None:
        raise PromotionError(f"run {run_id} has no `{CANDIDATE_PARAM}` param; was it logged by `shelfcast train`?")
    mine: WindowScores = window_scores(metrics, params, model=candidate, names=(rule.metric, "f1"))
    baselines: dict[str, WindowScores] = {
        b: window_scores(metrics, params, model=b, names=(rule.metric,))
        for b in models_in(metrics, rule.metric)
        if b in rule.baselines
    }
    return mine, baselines


def rebacktested_scores(
    registry: Registry, task: Task, run_id: str, champion: VersionInfo
) -> tuple[WindowScores, str] | None:
    """The champion's scores on the windows of run `run_id`, if that run scored this very champion, and how."""
    run = registry.run(run_id)
    metrics, params = run.data.metrics, run.data.params
    if params.get(CHAMPION_VERSION_PARAM) != champion.version:
        return None
    if params.get(CHAMPION_RUN_PARAM, champion.run_id) != champion.run_id:
        return None
    scores: WindowScores = window_scores(metrics, params, model=CHAMPION_MODEL, names=(RULES[task].metric,))
    return (scores, params.get(CHAMPION_HOW_PARAM, REFITTED)) if scores else None


def check_gates(settings: Settings, registry: Registry, task: Task, version: str) -> GateResult:
    """The gates' verdict on `version`, also stored as its tags.

    The champion's scores come from its own run when it shares a backtest
    window with the challenger's; else (the data grew since it was trained)
    from the challenger's run, which scored the current champion on its
    windows (as served, or its configuration refitted: `jobs.train.rebacktest`);
    else it is not compared.
    """
    candidate = registry.version(task, version)
    mine, baselines = run_scores(registry, task, candidate.run_id)
    champion = registry.alias(task, CHAMPION)
    theirs = None
    how: str | None = None
    if champion is not None and champion.version != candidate.version:
        theirs, _ = run_scores(registry, task, champion.run_id)
        if not set(theirs) & set(mine):
            rerun = rebacktested_scores(registry, task, candidate.run_id, champion)
            if rerun is not None:
                theirs, how = rerun
    result = evaluate_gates(
        task,
        challenger=mine,
        baselines=baselines,
        champion=theirs,
        floors=settings.gates,
        champion_rebacktested=how == REFITTED,
        champion_as_served=how == AS_SERVED,
    )
    registry.tag_gates(task, candidate.version, result)
    log.info("gates on %s v%s: %s (%s)", task, version, result.passed, result.reason)
    return result


def gate_and_promote(
    settings: Settings, task: Task, version: str, *, force: bool = False, registry: Registry | None = None
) -> PromotionReport:
    """Promote `version` to champion if it passes the gates (or `force`); the old champion becomes previous."""
    registry = registry or Registry(settings)
    registry.repair(task)  # gates compare with the champion an interrupted move leaves: finish or undo it first
    result = check_gates(settings, registry, task, version)
    # The champions' folder is there once a version was gated, empty while none passed: a pipeline that keeps it as
    # an output of the training (dvc.yaml) finds it even then.
    champions_root(settings).mkdir(parents=True, exist_ok=True)
    if not (result.passed or force):
        return PromotionReport(task, str(version), result, False, None, None)
    old = registry.promote(task, str(version))
    cache = registry.download(task, CHAMPION, champion_dir(settings, task))
    return PromotionReport(task, str(version), result, True, old.version if old else None, cache)


def promote_version(settings: Settings, task: Task, version: str, *, force: bool = False) -> PromotionReport:
    """For people: promote a version, refusing with the gates' reason unless forced (runs left RUNNING by a dead
    process are marked FAILED first, an interrupted alias move finished or undone: `Registry.repair`)."""
    registry = Registry(settings)
    registry.reap()
    report = gate_and_promote(settings, task, version, force=force, registry=registry)
    if not report.promoted:
        raise PromotionError(
            f"version {version} refused by the gates: {report.gate.reason}; pass --force to promote it anyway"
        )
    return report


def rollback(settings: Settings, task: Task) -> tuple[VersionInfo, VersionInfo | None]:
    """previous_champion becomes champion again (and the local copy follows); returns (restored, demoted)."""
    registry = Registry(settings)
    registry.reap()
    restored, demoted = registry.rollback(task)
    registry.download(task, CHAMPION, champion_dir(settings, task))
    return restored, demoted
