"""Drift statistics: PSI/KS/JS edge cases, the false alarm rate over many seeds, and power on injected shifts."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from shelfcast.monitoring.calibration import KINDS, alarm_rate, retail_sample
from shelfcast.monitoring.drift import DriftThresholds, compare
from shelfcast.monitoring.statistics import effective_size, js_distance, ks_test, psi, psi_edges


def test_psi_is_zero_on_identical_samples_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=2000)
    assert psi(x, x) == pytest.approx(0.0)
    assert psi(x, x + 0.25) < psi(x, x + 0.5) < psi(x, x + 1.0)


def test_psi_handles_ties_constants_and_nulls_without_inf() -> None:
    zeros = np.zeros(500)
    assert psi(zeros, zeros) == pytest.approx(0.0)
    # A constant column that moves either way is a shift (its value is a bin of its own).
    assert psi(zeros, np.ones(500)) > 5 and psi(zeros, -np.ones(500)) > 5
    zero_inflated = np.r_[np.zeros(800), np.arange(1, 201, dtype=float)]
    assert len(psi_edges(zero_inflated)) < 11  # tied deciles collapse
    with_nulls = np.r_[np.arange(100, dtype=float), np.full(100, np.nan)]
    value = psi(np.arange(200, dtype=float), with_nulls)
    assert np.isfinite(value) and value > 0.2  # half the rows became unknown
    assert np.isfinite(psi(np.full(10, np.nan), np.arange(10, dtype=float)))


def test_ks_and_js_agree_with_scipy_and_bounds() -> None:
    from scipy import stats

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=300), rng.normal(0.3, size=400)
    d, p = ks_test(a, b)
    ref = stats.ks_2samp(a, b, method="asymp")
    assert d == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue, rel=1e-6)
    # The same statistic with fewer effective rows is less significant.
    assert ks_test(a, b, n_reference=30, n_current=40)[1] > p
    assert js_distance(list("aabb"), list("aabb")) == pytest.approx(0.0)
    assert js_distance(list("aaaa"), list("bbbb")) == pytest.approx(1.0)
    assert js_distance(["a", None], ["a", None]) == pytest.approx(0.0)


def test_effective_size_falls_to_the_series_count_when_rows_repeat() -> None:
    groups = np.repeat(np.arange(10), 20)
    assert effective_size(np.repeat(np.arange(10.0), 20), groups) == 10
    noise = np.random.default_rng(2).normal(size=200)
    assert effective_size(noise, groups) > 150
    assert effective_size(noise, None) == 200


@pytest.mark.parametrize("n", [100, 500, 2000])
def test_false_alarm_rate_over_200_seeds_stays_below_5_percent(n: int) -> None:
    # Reference and current drawn from the same retail-like process: any alarm is a false one.
    rate = alarm_rate(200, n_reference=n, n_current=n)
    assert rate <= 0.05, f"false alarm rate {rate:.3f} at n={n}"


def test_unequal_window_sizes_do_not_raise_false_alarms() -> None:
    assert alarm_rate(100, n_reference=5000, n_current=300) <= 0.05


@pytest.mark.parametrize(
    ("shift", "feature"),
    [("level", "mean_28"), ("variance", "heavy_tail"), ("category_mix", "category"), ("nulls", "on_hand")],
)
def test_injected_shifts_are_detected(shift: str, feature: str) -> None:
    found = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        result = compare(retail_sample(rng, 2000), retail_sample(rng, 2000, shift=shift), features=KINDS)  # type: ignore[arg-type]
        found += feature in result.drifted
        assert not {"price", "constant", "store_type"} & set(result.drifted)  # unchanged features stay quiet
    assert found >= 19


def test_a_tiny_effect_on_a_huge_sample_is_significant_but_not_an_alarm() -> None:
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(size=100_000), rng.normal(0.05, size=100_000)
    assert ks_test(ref, cur)[1] < 1e-6
    frame = compare(pl.DataFrame({"x": ref}), pl.DataFrame({"x": cur}), features={"x": "numeric"})
    assert not frame.alarm and frame.features[0].p_value < 1e-6


def _ar_panel(rng: np.random.Generator, effects: np.ndarray, origins: int, *, scale: float = 1.0) -> pl.DataFrame:
    """A slow feature (a rolling mean): series effects plus AR(1) noise with rho 0.99, rows in time order."""
    x = rng.normal(size=effects.size)
    values = np.empty((effects.size, origins))
    for t in range(origins):
        x = 0.99 * x + np.sqrt(1 - 0.99**2) * rng.normal(size=effects.size)
        values[:, t] = effects + 0.5 * x
    series = np.repeat(np.arange(effects.size), origins).astype(str)
    return pl.DataFrame({"series": series, "mean_28": np.exp(values.ravel()) * scale})


def test_autocorrelated_rows_need_their_series_to_keep_false_alarms_down() -> None:
    naive = grouped = detected = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        effects = rng.normal(size=50)
        ref, cur = _ar_panel(rng, effects, 28), _ar_panel(rng, effects, 28)
        naive += compare(ref, cur, features={"mean_28": "numeric"}).alarm
        grouped += compare(ref, cur, features={"mean_28": "numeric"}, group_by=["series"]).alarm
        shifted = _ar_panel(rng, effects, 28, scale=1.6)
        detected += compare(ref, shifted, features={"mean_28": "numeric"}, group_by=["series"]).alarm
    assert naive / 40 > 0.3  # rows taken as independent: most windows "drift"
    assert grouped / 40 <= 0.1
    assert detected / 40 >= 0.8


def test_thresholds_are_checked() -> None:
    with pytest.raises(ValueError, match="alpha"):
        DriftThresholds(alpha=0.0)
