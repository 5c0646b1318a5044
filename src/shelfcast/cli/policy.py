"""`shelfcast evaluate-policy`: replay a simulated chain under shelfcast's reorder advice and two other policies."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.table import Table

import shelfcast.cli.output as out
from shelfcast.errors import ConfigError, first_problem

M = TypeVar("M", bound=BaseModel)

app = typer.Typer()

DEFAULT_SWEEP = "0.90,0.91,0.92,0.93,0.94,0.95,0.96,0.97,0.98,0.99"


def parse_sweep(value: str) -> tuple[float, ...]:
    """The value of `--sweep`: service settings separated by commas."""
    try:
        levels = tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise ConfigError(
            f"`--sweep` must be service settings separated by commas, e.g. 0.9,0.95,0.99; got {value!r}"
        ) from None
    if not levels:
        raise ConfigError("`--sweep` needs at least one service setting, e.g. 0.9,0.95,0.99")
    return levels


# Option name -> the field it sets, so a bad value is reported under the name the user typed.
_FIELDS = {
    "stores": "n_stores",
    "items": "n_items",
    "days": "n_days",
    "service": "service_level",
    "replay-days": "days",
    "refit-days": "refit_days",
    "review-days": "review_days",
}


def _validated(cls: type[M], options: dict[str, Any]) -> M:
    """A config from option values; the first bad one is a one-line error naming its option."""
    try:
        return cls.model_validate({_FIELDS.get(k, k): v for k, v in options.items()})
    except ValidationError as exc:
        where, message = first_problem(exc)
        flag = next((k for k, v in _FIELDS.items() if v == where), where)
        given = options.get(flag)
        raise ConfigError(f"`--{flag}`: {message}" + ("" if given is None else f" (got {given})")) from None


def _pct(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.1%}"


def policy_table(payload: dict[str, Any]) -> None:
    """The figures per policy at the service setting, the trade-off curve, and the target's verdict."""
    meta, target = payload["meta"], payload["target"]
    table = Table(
        title=f"Policies on the simulated chain, {meta['measured_from']}..{meta['last_date']} "
        f"({meta['series']:,} store-items; service setting {target['service_setting']:.0%})",
        title_justify="left",
    )
    for name in ("policy", "cycle service", "fill rate", "lost units", "lost share", "avg on hand", "days of cover"):
        table.add_column(name, justify="left" if name == "policy" else "right")
    table.add_column("orders", justify="right")
    for row in payload["policies"]:
        table.add_row(
            row["policy"],
            _pct(row["cycle_service_level"]),
            _pct(row["fill_rate"]),
            f"{row['lost_units']:,.0f}",
            _pct(row["lost_share"]),
            f"{row['avg_on_hand']:,.1f}",
            f"{row['days_of_cover']:.1f}",
            f"{row['orders']:,.0f}",
        )
    out.console.print(table)
    curve = Table(title="Trade-off: realised cycle service / average units on hand", title_justify="left")
    curve.add_column("setting", justify="right")
    policies = list(dict.fromkeys(r["policy"] for r in payload["curve"]))
    for policy in policies:
        curve.add_column(policy, justify="right")
    for setting in sorted({r["service_setting"] for r in payload["curve"]}):
        cells = []
        for policy in policies:
            row = next(r for r in payload["curve"] if r["policy"] == policy and r["service_setting"] == setting)
            cells.append(f"{_pct(row['cycle_service_level'])} / {row['avg_on_hand']:,.1f}")
        curve.add_row(f"{setting:.0%}", *cells)
    out.console.print(curve)
    within = "within" if target["within_2_points"] else "not within"
    out.console.print(
        f"target: shelfcast's cycle service {_pct(target['realised_cycle_service'])} at a "
        f"{target['service_setting']:.0%} setting ({within} 2 points) with {target['avg_on_hand']:,.1f} units on hand: "
        f"{'met' if target['met'] else 'not met'}",
        highlight=False,
    )
    best = target["classic_best"]
    same_service = target["classic_avg_on_hand_at_same_service"]
    reach = (
        f"{same_service:,.1f} units for the same service"
        if same_service is not None
        else f"never that service (best {_pct(best['cycle_service_level'])} with {best['avg_on_hand']:,.1f} units "
        f"at a {best['service_setting']:.2%} setting)"
    )
    out.console.print(
        f"the classic policy: {reach}; {_pct(target['classic_service_at_same_stock'])} cycle service and "
        f"{_pct(target['classic_fill_rate_at_same_stock'])} fill rate at the same stock (shelfcast's fill rate "
        f"{_pct(target['fill_rate'])}); shelfcast ahead at the same stock on "
        f"{target['curve_points_ahead_at_same_stock']} curve points",
        highlight=False,
    )
    fits = ", ".join(f"{d} ({m})" for d, m in zip(meta["refits"], meta["models"], strict=True))
    calibration = (
        f"; the first ({meta['calibration_forecast']}) calibrates only" if meta["calibration_forecast"] else ""
    )
    out.console.print(f"forecasts issued {fits}{calibration}; {meta['seconds']:.0f}s", highlight=False)


@app.command("evaluate-policy")
def evaluate_policy(
    service: Annotated[float, typer.Option(help="Service setting judged, in (0.5, 1).")] = 0.95,
    sweep: Annotated[str, typer.Option(help="Service settings of the trade-off curve, comma-separated.")] = (
        DEFAULT_SWEEP
    ),
    replay_days: Annotated[int, typer.Option(help="Days replayed (the last of the chain, warm-up included).")] = 112,
    refit_days: Annotated[int, typer.Option(help="Days between refits of the forecaster; 0: fit once.")] = 28,
    review_days: Annotated[int, typer.Option(help="Days between the advice's regular orders.")] = 7,
    calibrate: Annotated[
        bool, typer.Option("--calibrate/--no-calibrate", help="Calibrate the lead-time demand on earlier sums.")
    ] = True,
    stores: Annotated[int, typer.Option(help="Number of simulated stores.")] = 10,
    items: Annotated[int, typer.Option(help="Number of simulated items.")] = 50,
    days: Annotated[int, typer.Option(help="Number of simulated days.")] = 730,
    seed: Annotated[int, typer.Option(help="Seed of the chain and of its supplier delays.")] = 0,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Also draw the trade-off curve as a PNG.")] = None,
) -> None:
    """Replay a simulated chain, whose true demand is known, under shelfcast's reorder advice, a moving-average
    (s, S) policy and the chain's own rule: service, lost sales, stock and orders per policy, and the trade-off of
    service against stock over the service settings."""
    from shelfcast.data.simulator import SimConfig
    from shelfcast.jobs.evaluate_policy import PolicyEvalConfig, run_evaluate_policy

    chain = _validated(SimConfig, {"stores": stores, "items": items, "days": days, "seed": seed})
    config = _validated(
        PolicyEvalConfig,
        {
            "service": service,
            "sweep": parse_sweep(sweep),
            "replay-days": replay_days,
            "refit-days": refit_days,
            "review-days": review_days,
            "seed": seed,
            "calibrate": calibrate,
        },
    )
    with out.progress_bar("evaluate-policy") as progress:
        report = run_evaluate_policy(chain, config, progress=progress)
    payload = report.to_dict()
    policy_table(payload)
    if json_path is not None or plot is not None:
        from shelfcast.io.policy_report import policy_json, policy_plot

        if json_path is not None:
            out.console.print(f"figures written to {policy_json(payload, json_path)}")
        if plot is not None:
            drawn = policy_plot(payload, plot)
            out.console.print(f"plot written to {drawn}" if drawn else "no plot: matplotlib is not installed")
