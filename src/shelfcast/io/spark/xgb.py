"""XGBoost trained on Spark with XGBoost's own estimators (`xgboost.spark`): the booster comes back to the driver.

The booster is the same kind of object a local fit gives, so it is saved in
the same native model folder and served, monitored and explained unchanged.
LightGBM on Spark needs SynapseML's Maven jars: not available here, so the
Spark engine trains XGBoost.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shelfcast.errors import SparkError

if TYPE_CHECKING:
    import xgboost as xgb
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)
# Set by Spark per task (`spark.task.cpus`); the local value would oversubscribe every executor.
_LOCAL_ONLY = ("nthread",)


def fit_booster(
    frame: DataFrame,
    *,
    features: Sequence[str],
    label: str,
    weight: str | None,
    params: Mapping[str, Any],
    rounds: int,
    feature_types: Sequence[str],
    workers: int,
    classifier: bool = False,
) -> xgb.Booster:
    """A booster trained on `frame`'s rows by `workers` XGBoost workers (one Spark task each), with `params`."""
    from xgboost.spark import SparkXGBClassifier, SparkXGBRegressor

    # Each training round logs the training loss at INFO; the driver's log says when training starts and ends.
    logging.getLogger("XGBoost-PySpark").setLevel(logging.WARNING)
    kwargs = {k: v for k, v in params.items() if k not in _LOCAL_ONLY}
    estimator_class = SparkXGBClassifier if classifier else SparkXGBRegressor
    if classifier:
        kwargs.pop("objective", None)  # the classifier sets its own (binary:logistic for 0/1 labels)
    estimator = estimator_class(
        features_col=list(features),
        label_col=label,
        weight_col=weight,
        num_workers=workers,
        feature_types=list(feature_types),
        n_estimators=rounds,
        verbose=False,  # no training loss printed per round by every worker
        **kwargs,
    )
    log.info("XGBoost on Spark: %d rounds, %d features, %d workers", rounds, len(features), workers)
    try:
        model = estimator.fit(frame)
    except Exception as exc:  # a Spark job failure: its first line, the trace in the log
        log.debug("XGBoost on Spark failed", exc_info=True)
        raise SparkError(f"XGBoost training on Spark failed: {str(exc).strip().splitlines()[0][:500]}") from exc
    booster: xgb.Booster = model.get_booster()
    return booster
