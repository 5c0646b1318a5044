"""A policy replay's figures as a JSON file and its service/stock trade-off curve as a PNG."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from shelfcast.io.plots import policy_tradeoff_png


def _clean(value: Any) -> Any:
    """NaN (a policy with no complete cycle) as null, so the file is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def policy_json(payload: dict[str, Any], path: Path) -> Path:
    """Write the replay's figures (`PolicyEvalReport.to_dict()`) as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(payload), indent=2, default=str) + "\n", encoding="utf-8")
    return path


def policy_plot(payload: dict[str, Any], path: Path) -> Path | None:
    """The trade-off curve: realised cycle service level against average stock, per policy (None: no matplotlib).

    The classic policy's settings past the sweep (`meta.classic_beyond`) continue its line, dashed.
    """
    beyond = payload.get("meta", {}).get("classic_beyond", [])
    return policy_tradeoff_png(payload["curve"], payload["policies"], path, beyond=beyond)
