"""Data drift between a reference window and a current window: PSI, KS and Jensen-Shannon, sample-size aware.

Pure numpy/scipy. A feature alarms only when two things hold:

- an **effect size** worth acting on: PSI >= `psi` (0.2, the usual "major
  shift") for numeric features, Jensen-Shannon distance (base 2, in [0, 1])
  >= `js` (0.1) for categorical ones; and
- **statistical significance** after a Bonferroni correction over the
  features tested (`alpha` / number of features): the two-sample KS test
  for numeric features (with a test on the share of nulls when there are
  any), a chi-square test of homogeneity for categorical ones.

The effect size keeps a huge window from alarming on differences nobody
cares about; the test keeps a small window from alarming on noise (the PSI
of two samples of the same distribution is about (bins - 1)(1/n + 1/m), 0.18
for 100 rows each with 10 bins). Both are needed.

Feature rows are not independent: the same series at consecutive origins
shares most of its history, so a rolling mean barely moves from one origin
to the next. Given the series (`groups`) with rows in time order inside
each, the tests use an **effective sample size**: n divided by the
variance inflation 1 + 2 sum_k (1 - k/L) rho_k of a mean over L rows of a
series, rho_k the lag-k autocorrelation of the feature's ranks within the
series, floored at the number of series. Without groups the rows are taken
as independent.

PSI bins come from the reference's deciles: ties and constant columns give
fewer, unique edges, with the reference minimum as a bin of its own and
values below it as another, nulls (and NaN) are a bin of their own, and
shares are floored at 1e-4 so an empty bin does not give an infinite PSI.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from shelfcast.monitoring.statistics import (
    NULL,
    category_counts,
    chi2_pvalue,
    effective_size,
    js_distance,
    ks_test,
    psi,
    ranks,
)

Kind = Literal["numeric", "categorical"]


class DriftThresholds(BaseModel):
    """When a feature alarms: the `drift` section of the settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    psi: float = Field(
        0.2,
        gt=0.0,
        description="A numeric feature (or the predictions) alarms only with a PSI at least this, and a significant "
        "KS test.",
    )
    js: float = Field(
        0.1,
        gt=0.0,
        le=1.0,
        description="A categorical feature alarms only with a Jensen-Shannon distance (base 2) at least this, and a "
        "significant chi-square test.",
    )
    alpha: float = Field(
        0.05,
        gt=0.0,
        lt=1.0,
        description="Family-wise significance level, Bonferroni-corrected over the features tested (the tests use "
        "effective sample sizes).",
    )
    bins: int = Field(10, ge=2, description="PSI bins: the reference's quantiles.")


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: Kind
    effect: float  # PSI (numeric) or JS distance (categorical): what the threshold applies to
    psi: float | None
    ks: float | None
    js: float | None
    p_value: float
    n_reference: int
    n_current: int
    n_effective: float  # the smaller side's effective sample size used by the test
    null_reference: float  # share of nulls
    null_current: float
    alarm: bool


@dataclass(frozen=True)
class DriftResult:
    features: list[FeatureDrift]
    alpha_per_test: float

    @property
    def drifted(self) -> list[str]:
        """Alarming features, largest effect first."""
        hits = sorted((f for f in self.features if f.alarm), key=lambda f: -f.effect)
        return [f.feature for f in hits]

    @property
    def alarm(self) -> bool:
        return any(f.alarm for f in self.features)


def numeric_drift(
    name: str,
    reference: np.ndarray,
    current: np.ndarray,
    *,
    thresholds: DriftThresholds,
    alpha: float,
    groups: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> FeatureDrift:
    """PSI, KS (and a test of the null share when there are nulls) for one numeric feature."""
    reference = np.asarray(reference, dtype=np.float64)
    current = np.asarray(current, dtype=np.float64)
    n_ref = effective_size(ranks(reference), groups[0]) if groups[0] is not None else float(reference.size)
    n_cur = effective_size(ranks(current), groups[1]) if groups[1] is not None else float(current.size)
    value = psi(reference, current, bins=thresholds.bins)
    d, p = ks_test(reference, current, n_reference=n_ref, n_current=n_cur)
    nulls = np.array([np.isnan(reference).sum(), np.isnan(current).sum()], dtype=np.float64)
    if nulls.any():
        sizes = np.array([reference.size, current.size], dtype=np.float64)
        p_null = chi2_pvalue(
            np.array([nulls[0], sizes[0] - nulls[0]]),
            np.array([nulls[1], sizes[1] - nulls[1]]),
            scale_a=n_ref / max(sizes[0], 1),
            scale_b=n_cur / max(sizes[1], 1),
        )
        p = min(1.0, 2 * min(p, p_null))  # two tests on this feature: Bonferroni inside it too
    return FeatureDrift(
        feature=name,
        kind="numeric",
        effect=value,
        psi=value,
        ks=None if math.isnan(d) else d,
        js=None,
        p_value=p,
        n_reference=int(reference.size),
        n_current=int(current.size),
        n_effective=min(n_ref, n_cur),
        null_reference=float(nulls[0] / max(reference.size, 1)),
        null_current=float(nulls[1] / max(current.size, 1)),
        alarm=value >= thresholds.psi and p < alpha,
    )


def _category_effective(values: list[object], groups: np.ndarray | None) -> float:
    """Effective size of a categorical sample: rho from how often a row repeats its predecessor's category."""
    n = len(values)
    if groups is None or n < 3:
        return float(n)
    codes = pl.Series(values, dtype=pl.String, strict=False).fill_null(NULL)
    shares = codes.value_counts()["count"].to_numpy() / n
    chance = float(np.sum(shares**2))
    starts = np.r_[True, groups[1:] != groups[:-1]]
    n_groups = int(starts.sum())
    array = codes.to_numpy()
    same = ~starts[1:]
    if not same.any():
        return float(n)
    repeat = float(np.mean(array[1:][same] == array[:-1][same]))
    if chance >= 1.0:
        return float(n_groups)
    rho = min(max((repeat - chance) / (1 - chance), 0.0), 0.999)
    return float(min(n, max(n_groups, n * (1 - rho) / (1 + rho))))


def categorical_drift(
    name: str,
    reference: Sequence[object],
    current: Sequence[object],
    *,
    thresholds: DriftThresholds,
    alpha: float,
    groups: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> FeatureDrift:
    """Jensen-Shannon distance and a chi-square test for one categorical feature."""
    ref_values, cur_values = list(reference), list(current)
    n_ref = _category_effective(ref_values, groups[0])
    n_cur = _category_effective(cur_values, groups[1])
    distance = js_distance(ref_values, cur_values)
    a, b, _ = category_counts(ref_values, cur_values)
    p = chi2_pvalue(a, b, scale_a=n_ref / max(a.sum(), 1), scale_b=n_cur / max(b.sum(), 1))
    return FeatureDrift(
        feature=name,
        kind="categorical",
        effect=distance,
        psi=None,
        ks=None,
        js=distance,
        p_value=p,
        n_reference=len(ref_values),
        n_current=len(cur_values),
        n_effective=min(n_ref, n_cur),
        null_reference=sum(v is None for v in ref_values) / max(len(ref_values), 1),
        null_current=sum(v is None for v in cur_values) / max(len(cur_values), 1),
        alarm=distance >= thresholds.js and p < alpha,
    )


def feature_kinds(frame: pl.DataFrame, *, categorical: Sequence[str] = ()) -> dict[str, Kind]:
    """numeric for numeric and boolean columns, categorical for strings and those named in `categorical`."""
    kinds: dict[str, Kind] = {}
    for name, dtype in frame.schema.items():
        if name in categorical or dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
            kinds[name] = "categorical"
        elif dtype.is_numeric() or dtype == pl.Boolean:
            kinds[name] = "numeric"
    return kinds


def _group_codes(frame: pl.DataFrame, group_by: Sequence[str]) -> np.ndarray | None:
    if not group_by:
        return None
    return frame.select(pl.struct(list(group_by)).rank("dense")).to_series().to_numpy()


def compare(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    *,
    features: Mapping[str, Kind],
    thresholds: DriftThresholds | None = None,
    group_by: Sequence[str] = (),
) -> DriftResult:
    """Drift of every feature in `features` (name -> kind) present in both frames.

    `group_by`: the columns naming a series; rows must be in time order inside
    each (sort by the series then the origin), so the tests can count the
    effective sample size. The Bonferroni correction divides `alpha` by the
    number of features compared.
    """
    thresholds = thresholds or DriftThresholds()
    names = [f for f in features if f in reference.columns and f in current.columns]
    alpha = thresholds.alpha / max(len(names), 1)
    groups = (_group_codes(reference, group_by), _group_codes(current, group_by))
    results = []
    for name in names:
        if features[name] == "categorical":
            results.append(
                categorical_drift(
                    name,
                    reference[name].cast(pl.String).to_list(),
                    current[name].cast(pl.String).to_list(),
                    thresholds=thresholds,
                    alpha=alpha,
                    groups=groups,
                )
            )
        else:
            results.append(
                numeric_drift(
                    name,
                    reference[name].cast(pl.Float64).fill_nan(None).to_numpy().astype(np.float64),
                    current[name].cast(pl.Float64).fill_nan(None).to_numpy().astype(np.float64),
                    thresholds=thresholds,
                    alpha=alpha,
                    groups=groups,
                )
            )
    return DriftResult(results, alpha)
