"""The evaluate-policy job end to end on a tiny simulated chain: every policy replayed on the same days."""

from __future__ import annotations

import pytest

from shelfcast.data.simulator import SimConfig
from shelfcast.errors import ConfigError
from shelfcast.jobs.evaluate_policy import CLASSIC, POLICIES, SHELFCAST, PolicyEvalConfig, run_evaluate_policy

pytestmark = pytest.mark.slow


def test_tiny_chain_replayed_under_every_policy() -> None:
    chain = SimConfig(n_stores=2, n_items=4, n_days=240, seed=2)
    report = run_evaluate_policy(chain, PolicyEvalConfig(days=42, refit_days=0, sweep=(0.9, 0.95)))
    assert [r["policy"] for r in report.rows] == list(POLICIES)
    assert {(r["policy"], r["service_setting"]) for r in report.curve} == {
        (p, s) for p in (SHELFCAST, CLASSIC) for s in (0.9, 0.95)
    }
    for row in report.rows:
        # Every policy meets the same demand over the same measured days.
        assert row["demand_units"] == report.rows[0]["demand_units"]
        assert row["lost_units"] == pytest.approx(row["lost_share"] * row["demand_units"])
        assert 0 <= row["fill_rate"] <= 1
    # One forecast to calibrate on, one to advise from (fit once).
    assert len(report.meta["refits"]) == 2
    assert set(report.target) >= {"realised_cycle_service", "within_2_points", "met"}


def test_too_short_a_chain_is_refused() -> None:
    with pytest.raises(ConfigError, match="too little history"):
        run_evaluate_policy(SimConfig(n_stores=1, n_items=2, n_days=150), PolicyEvalConfig(days=56))
