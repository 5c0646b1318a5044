"""Job: simulate a retail chain and write it in one or more layouts.

On disk, under `out_dir`:
- `simulation.json`: the config and a summary (always);
- `truth.parquet`: the uncensored demand (always);
- `canonical/<table>.parquet` for the seven canonical tables and
  `canonical/exogenous_roles.json` ("canonical" layout);
- `branch-csv/<table>.csv` ("branch-csv" layout);
- `wide/daily.csv` and `wide/daily.parquet` ("wide" layout).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from shelfcast.data.sim_layouts import branch_csv_tables, wide_table
from shelfcast.data.simulator import SimConfig, SimResult, simulate

logger = logging.getLogger(__name__)

LAYOUTS = ("canonical", "branch-csv", "wide")


@dataclass(frozen=True)
class SimulateReport:
    """What the simulate job wrote, how big it is and how long it took."""

    out_dir: Path
    paths: dict[str, Path] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    stockout_rate: float = 0.0
    fill_rate: float = 0.0
    simulate_seconds: float = 0.0
    write_seconds: float = 0.0

    @property
    def seconds(self) -> float:
        """Total wall time of the job."""
        return self.simulate_seconds + self.write_seconds


def _check_layouts(layouts: Sequence[str]) -> tuple[str, ...]:
    if isinstance(layouts, str):
        layouts = (layouts,)
    unknown = [name for name in layouts if name not in LAYOUTS]
    if unknown or not layouts:
        raise ValueError(f"`layouts` must be one or more of {', '.join(LAYOUTS)}, got {list(layouts)!r}")
    return tuple(dict.fromkeys(layouts))


def _write_canonical(result: SimResult, out_dir: Path, *, paths: dict[str, Path], rows: dict[str, int]) -> None:
    folder = out_dir / "canonical"
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in result.tables().items():
        path = folder / f"{name}.parquet"
        frame.write_parquet(path)
        paths[f"canonical/{name}"] = path
        rows[f"canonical/{name}"] = frame.height
    roles = folder / "exogenous_roles.json"
    roles.write_text(json.dumps(result.exogenous_roles, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    paths["canonical/exogenous_roles"] = roles


def _write_branch_csv(result: SimResult, out_dir: Path, *, paths: dict[str, Path], rows: dict[str, int]) -> None:
    folder = out_dir / "branch-csv"
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in branch_csv_tables(result).items():
        path = folder / f"{name}.csv"
        frame.write_csv(path)
        paths[f"branch-csv/{name}"] = path
        rows[f"branch-csv/{name}"] = frame.height


def _write_wide(result: SimResult, out_dir: Path, *, paths: dict[str, Path], rows: dict[str, int]) -> None:
    folder = out_dir / "wide"
    folder.mkdir(parents=True, exist_ok=True)
    frame = wide_table(result)
    frame.write_csv(folder / "daily.csv")
    frame.write_parquet(folder / "daily.parquet")
    for key, suffix in (("wide/daily_csv", "csv"), ("wide/daily_parquet", "parquet")):
        paths[key] = folder / f"daily.{suffix}"
        rows[key] = frame.height


class _Writer(Protocol):
    def __call__(self, result: SimResult, out_dir: Path, *, paths: dict[str, Path], rows: dict[str, int]) -> None: ...


_WRITERS: dict[str, _Writer] = {
    "canonical": _write_canonical,
    "branch-csv": _write_branch_csv,
    "wide": _write_wide,
}


def run_simulate(
    config: SimConfig,
    out_dir: Path,
    *,
    layouts: Sequence[str] = ("canonical",),
    progress: Callable[[str], None] | None = None,
) -> SimulateReport:
    """Simulate the chain in `config` and write it under `out_dir` in the chosen layouts."""
    chosen = _check_layouts(layouts)
    say = progress or (lambda message: logger.info("%s", message))
    out_dir = Path(out_dir)
    say(f"simulating {config.n_stores} stores x {config.n_items} items x {config.n_days} days")
    started = time.perf_counter()
    result = simulate(config)
    simulated = time.perf_counter()
    say(f"simulated in {simulated - started:.1f} s, stockout rate {result.stockout_rate:.3f}")

    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    rows: dict[str, int] = {}
    truth = out_dir / "truth.parquet"
    result.truth.write_parquet(truth)
    paths["truth"], rows["truth"] = truth, result.truth.height
    for layout in chosen:
        say(f"writing the {layout} layout")
        _WRITERS[layout](result, out_dir, paths=paths, rows=rows)
    written = time.perf_counter()

    meta = out_dir / "simulation.json"
    summary = {
        "config": config.model_dump(mode="json"),
        "layouts": list(chosen),
        "summary": result.summary(),
        "exogenous_roles": result.exogenous_roles,
    }
    meta.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    paths["simulation"] = meta
    say(f"wrote {len(paths)} files to {out_dir} in {written - simulated:.1f} s")
    return SimulateReport(
        out_dir=out_dir,
        paths=paths,
        rows=rows,
        stockout_rate=result.stockout_rate,
        fill_rate=result.fill_rate,
        simulate_seconds=simulated - started,
        write_seconds=time.perf_counter() - simulated,
    )
