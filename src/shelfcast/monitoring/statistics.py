"""The two-sample statistics drift is judged on: PSI, KS, chi-square, Jensen-Shannon, and the effective sample
size of rows that are not independent (see `monitoring.drift` for how they combine)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

# scipy is imported where a test needs it: settings import this module (through the drift thresholds), and
# every command but `monitor` would otherwise pay scipy.stats' import (about 0.5 s of CPU) at start-up.

FLOOR = 1e-4
MAX_CATEGORIES = 50  # chi-square cells: the most frequent reference categories, the rest pooled
NULL = "\x00null"
OTHER = "\x00other"


def psi_edges(reference: np.ndarray, bins: int = 10) -> np.ndarray:
    """Unique inner and outer quantile edges of the reference's finite values (min, deciles, max)."""
    values = reference[np.isfinite(reference)]
    if values.size == 0:
        return np.empty(0)
    return np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))


def _bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin: below the first edge, at it, (edge_i, edge_i+1], above the last edge; then nulls."""
    nan = np.isnan(values)
    finite = values[~nan]
    if edges.size == 0:
        return np.array([finite.size, 0, nan.sum()])
    index = np.searchsorted(edges, finite, side="left") + 1
    index[finite < edges[0]] = 0
    counts = np.bincount(index, minlength=edges.size + 2)
    return np.append(counts, nan.sum())


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    shares: np.ndarray = np.maximum(counts / total if total else counts.astype(float), FLOOR)
    return shares


def psi(reference: np.ndarray, current: np.ndarray, *, bins: int = 10) -> float:
    """Population stability index of `current` against `reference` (NaN is a bin of its own)."""
    reference = np.asarray(reference, dtype=np.float64)
    current = np.asarray(current, dtype=np.float64)
    edges = psi_edges(reference, bins)
    p = _shares(_bin_counts(reference, edges))
    q = _shares(_bin_counts(current, edges))
    return float(np.sum((q - p) * np.log(q / p)))


def ks_test(
    reference: np.ndarray, current: np.ndarray, *, n_reference: float | None = None, n_current: float | None = None
) -> tuple[float, float]:
    """KS statistic on the non-null values and its two-sided p-value for the (effective) sample sizes given."""
    a = reference[~np.isnan(reference)]
    b = current[~np.isnan(current)]
    if a.size == 0 or b.size == 0:
        return math.nan, 1.0
    from scipy import stats

    d = float(stats.ks_2samp(a, b, method="asymp").statistic)
    n = a.size if n_reference is None else min(a.size, n_reference)
    m = b.size if n_current is None else min(b.size, n_current)
    en = max(1, round(n * m / (n + m)))
    return d, float(stats.kstwo.sf(d, en))


def chi2_pvalue(counts_a: np.ndarray, counts_b: np.ndarray, *, scale_a: float, scale_b: float) -> float:
    """Chi-square homogeneity test on two count vectors, each scaled to its effective sample size."""
    keep = (counts_a + counts_b) > 0
    table = np.vstack([counts_a[keep] * scale_a, counts_b[keep] * scale_b])
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / np.where(expected > 0, expected, 1.0)))
    from scipy import stats

    return float(stats.chi2.sf(statistic, table.shape[1] - 1))


def js_distance(reference: Sequence[object], current: Sequence[object]) -> float:
    """Jensen-Shannon distance (base 2, 0..1) between two categorical samples; None is a category."""
    ref, cur, _ = category_counts(reference, current, max_categories=None)
    if ref.sum() == 0 or cur.sum() == 0:
        return 0.0 if ref.sum() == cur.sum() else 1.0
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon(ref / ref.sum(), cur / cur.sum(), base=2))


def category_counts(
    reference: Sequence[object], current: Sequence[object], *, max_categories: int | None = MAX_CATEGORIES
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Counts of each category in both samples, over the reference's most frequent ones (+ other, + null)."""
    ref = pl.Series("v", list(reference), dtype=pl.String, strict=False).fill_null(NULL)
    cur = pl.Series("v", list(current), dtype=pl.String, strict=False).fill_null(NULL)
    if max_categories is not None:
        top = ref.value_counts(sort=True, name="n")["v"].head(max_categories)
        ref = pl.select(pl.when(ref.is_in(top.implode())).then(ref).otherwise(pl.lit(OTHER))).to_series()
        cur = pl.select(pl.when(cur.is_in(top.implode())).then(cur).otherwise(pl.lit(OTHER))).to_series()
    counts = (
        ref.value_counts(name="a")
        .join(cur.value_counts(name="b"), on="v", how="full", coalesce=True)
        .fill_null(0)
        .sort("v")
    )
    names = counts["v"].to_list()
    a = counts["a"].cast(pl.Float64).to_numpy()
    b = counts["b"].cast(pl.Float64).to_numpy()
    return a, b, names


def effective_size(codes: np.ndarray, groups: np.ndarray | None, *, max_lag: int = 60) -> float:
    """n / (1 + 2 sum_k (1 - k/L) rho_k): rho_k the lag-k autocorrelation inside groups (rows in time order), L
    their mean length; at least one row per group.

    The sum runs over every lag up to L - 1 (at most `max_lag`): a weekly
    pattern on top of a slow level (retail's usual shape) has a small lag-1
    autocorrelation but a large dependence all the same. The AR(1) inflation
    (1 + rho_1) / (1 - rho_1) is used instead when it is larger.
    """
    n = codes.size
    if groups is None or n < 3:
        return float(n)
    starts = np.r_[True, groups[1:] != groups[:-1]]
    n_groups = int(starts.sum())
    ids = np.cumsum(starts) - 1
    means = np.bincount(ids, weights=codes) / np.bincount(ids)
    centred = codes - means[ids]
    variance = float(np.sum(centred**2))
    if variance <= 0:
        return float(n_groups)  # constant inside every series: one value per series
    length = n / n_groups
    rho = [
        float(np.sum(centred[k:][same] * centred[:-k][same])) / variance
        for k in range(1, min(int(length), max_lag + 1))
        if (same := ids[k:] == ids[:-k]).any()
    ]
    summed = 1.0 + 2 * sum((1 - k / length) * r for k, r in enumerate(rho, start=1))
    # The AR(1) inflation from the lag-1 autocorrelation alone: the sum above can be pulled down by the
    # negative lags of a weekly pattern; the larger of the two is kept (the conservative one).
    first = min(max(rho[0], 0.0), 0.999) if rho else 0.0
    inflation = min(max(summed, (1 + first) / (1 - first), 1.0), length)
    return float(min(n, max(n_groups, n / inflation)))


def ranks(values: np.ndarray) -> np.ndarray:
    from scipy import stats

    out = np.zeros(values.size)
    ok = ~np.isnan(values)
    out[ok] = stats.rankdata(values[ok])
    return out
