"""The monitoring loop on the simulator: a drift injected at a date, then weekly ingest, score, monitor, policy.

For each scenario (no drift, and drifts of the simulator's kinds) the same
chain is simulated (3 stores x 8 items x 620 days, no exogenous covariates:
the simulator's CPI trend and fuel random walk drift by construction), with
the drift at day 560, after more than a year of history (so `year_ago` and
the yearly season are known, as in a real chain). A demand champion is
trained two weeks before the drift, and the chain is replayed every 7 days
(`shelfcast.workflows.drift_scenario`, `shelfcast.workflows.replay`): the new days are ingested, `run_monitor`
compares the champion's recent feature window with its reference window and
its stored predictions with the actuals, the policy decides and its
decision is carried out (a retrain goes through the gates; a fallback
scores with the rule baseline).

Printed per scenario: days from the drift to the first feature alarm, the
first retrain decision, the first fallback and the first promotion; the
weekly decisions; the live WAPE before the drift; and, on the same rows
after the drift (and after the first promotion), the WAPE of what was
served against the WAPE of the first champion had nothing been done (it
forecasts again from every scoring day, `replay.served_against`).

Models use a small configuration (60 trees, 1 backtest window) so the whole
run takes minutes; the policy and the statistics are the defaults.

    uv run python bench/bench_drift_loop.py [--kinds none level:0.5 level:1.6 promo:3] [--json PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from shelfcast.data.simulator import SimConfig
from shelfcast.workflows.drift_scenario import run_scenario

DEFAULT_JSON = Path(__file__).parent / "results" / "drift_loop.json"
CHAIN = SimConfig(n_stores=3, n_items=8, n_days=620, seed=3, min_base_demand=2.0, max_base_demand=30.0)
DRIFT_DAY = 560
WEEKS = 7


def scenario(kind: str | None, magnitude: float, root: Path, *, folds: int) -> dict[str, Any]:
    drift_day = CHAIN.start_date + dt.timedelta(days=DRIFT_DAY)
    result = run_scenario(
        root,
        CHAIN,
        drift_day=drift_day,
        drift=None if kind is None else (kind, magnitude),
        weeks=WEEKS,
        folds=folds,
    )
    return {"kind": kind or "none", "magnitude": magnitude if kind else None, **result.to_json()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", nargs="+", default=["none", "level:0.5", "level:1.6", "promo:3", "seasonality:1"])
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--folds", type=int, default=1, help="backtest folds of every training (the gates' evidence)")
    args = parser.parse_args()
    console = Console(width=160)
    results = []
    for spec in args.kinds:
        kind, _, value = spec.partition(":")
        with tempfile.TemporaryDirectory(prefix="shelfcast-drift-loop-") as tmp:
            console.print(f"scenario {spec} ...")
            results.append(scenario(None if kind == "none" else kind, float(value or 1), Path(tmp), folds=args.folds))
    table = Table(
        title=f"Drift at day {DRIFT_DAY}, replayed weekly for {WEEKS} weeks (days counted from the drift), "
        f"{args.folds} backtest fold(s) per training"
    )
    for column in (
        "scenario",
        "feature alarm",
        "retrain decided",
        "fallback",
        "promoted",
        "decisions",
        "WAPE before drift",
        "after drift: served / first model",
        "after promotion: served / first model",
    ):
        table.add_column(column)

    def day(value: int | None) -> str:
        return "-" if value is None else f"day {value}"

    def pair(c: dict[str, Any] | None) -> str:
        if not c or c["served_wape"] is None:
            return "-"
        return f"{c['served_wape']:.3f} / {c['model_wape']:.3f} ({c['rows']:,} rows)"

    for r in results:
        before = r["wape_before"]
        table.add_row(
            r["kind"] + (f" x{r['magnitude']:g}" if r["magnitude"] else ""),
            day(r["days_to_feature_alarm"]),
            day(r["days_to_retrain_decision"]),
            day(r["days_to_fallback"]),
            day(r["days_to_promotion"]),
            " ".join((d or "-")[:2] for d in r["decisions"]),
            "-" if before[0] is None else f"{before[0]:.3f} ({before[1]:,} rows)",
            pair(r["after_drift"]),
            pair(r["after_promotion"]),
        )
    console.print(table)
    console.print(
        "decisions: ok / re(train) / ro(llback) / fa(llback), one per weekly step from two weeks before the drift; "
        "served: what the policy's models (or the rule baseline in fallback) forecast; first model: what the "
        "champion of before the drift forecasts on the same rows"
    )
    report = {
        "benchmark": "drift_loop",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "chain": CHAIN.model_dump(mode="json"),
        "drift_day": DRIFT_DAY,
        "folds": args.folds,
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
