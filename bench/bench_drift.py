"""Drift tests benchmark: false alarm rate, detection rate and speed of `shelfcast.monitoring.drift`.

Usage: uv run python bench/bench_drift.py [--seeds 200] [--json bench/results/drift.json]

- False alarm rate: the share of runs with at least one alarm when the
  reference and the current window are drawn from the same retail-like
  process (9 features: zero-inflated counts, skewed levels, tied prices,
  heavy tails, mostly-zero shares, 10 % nulls, a constant, two categoricals;
  see `shelfcast.monitoring.calibration`), default thresholds, per sample size.
- Detection rate: the same with one change injected into the current window
  (demand level x1.6, a heavy-tailed feature's spread x2, the category mix
  reversed, the null share of on_hand from 10 % to 40 %).
- Speed: `compare` over 100 numeric features x 100,000 rows per window.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import polars as pl

from shelfcast.monitoring.calibration import SHIFTS, alarm_rate
from shelfcast.monitoring.drift import DriftThresholds, compare

DEFAULT_JSON = Path(__file__).parent / "results" / "drift.json"
SIZES = (100, 1_000, 10_000)
POWER_SIZES = (200, 1_000, 5_000)


def _speed(features: int = 100, rows: int = 100_000) -> float:
    rng = np.random.default_rng(0)
    ref = pl.DataFrame({f"f{i}": rng.gamma(2.0, 2.0, rows) for i in range(features)})
    cur = pl.DataFrame({f"f{i}": rng.gamma(2.0, 2.0, rows) for i in range(features)})
    started = time.perf_counter()
    compare(ref, cur, features=dict.fromkeys(ref.columns, "numeric"))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--power-seeds", type=int, default=50)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    thresholds = DriftThresholds()
    false_alarms = {n: alarm_rate(args.seeds, n_reference=n, n_current=n) for n in SIZES}
    detection = {
        shift: {n: alarm_rate(args.power_seeds, n_reference=n, n_current=n, shift=shift) for n in POWER_SIZES}
        for shift in SHIFTS
    }
    seconds = _speed()
    print(f"Drift tests, default thresholds (PSI >= {thresholds.psi}, JS >= {thresholds.js}, alpha {thresholds.alpha})")
    print(f"\nfalse alarm rate over {args.seeds} seeds (runs with any alarm, 9 features)")
    print(f"{'rows per window':>16} {'rate':>8}")
    for n, rate in false_alarms.items():
        print(f"{n:>16,} {rate:>8.3f}")
    print(f"\ndetection rate over {args.power_seeds} seeds")
    print(f"{'shift':>14} " + " ".join(f"{f'n={n:,}':>10}" for n in POWER_SIZES))
    for shift, rates in detection.items():
        print(f"{shift:>14} " + " ".join(f"{r:>10.2f}" for r in rates.values()))
    print(f"\n100 numeric features x 100,000 rows per window: {seconds:.2f} s")
    result = {
        "date": dt.date.today().isoformat(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "thresholds": {"psi": thresholds.psi, "js": thresholds.js, "alpha": thresholds.alpha, "bins": thresholds.bins},
        "seeds": args.seeds,
        "false_alarm_rate": {str(n): r for n, r in false_alarms.items()},
        "power_seeds": args.power_seeds,
        "detection_rate": {s: {str(n): r for n, r in rates.items()} for s, rates in detection.items()},
        "seconds_100_features_100k_rows": round(seconds, 3),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
