"""The stockout classifier on a simulated chain: it learns, calibrates and picks its threshold honestly."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.errors import DataValidationError
from shelfcast.features.labels import StockoutDefinition, rule_baseline, stockout_labels
from shelfcast.features.panel import Panel, build_panel
from shelfcast.features.spec import FeatureSpec
from shelfcast.io import checkpoint as ckpt
from shelfcast.models.classification import best_threshold, pr_auc
from shelfcast.models.stockout import StockoutConfig, fit_stockout, quantile_risk, stockout_features

CUTOFF = dt.date(2022, 7, 31)
FAST = StockoutConfig(n_origins=24, holdout_origins=7, n_estimators=40, learning_rate=0.15, num_leaves=15)
DEFINITION = StockoutDefinition(window=7, min_hours=1)


@pytest.fixture(scope="module")
def chain() -> Panel:
    # A low safety factor makes stockouts common enough to learn in a small chain.
    result = simulate(SimConfig(n_stores=2, n_items=15, n_days=300, seed=5, safety_factor=0.2))
    return build_panel(result.tables(), freq="D", exogenous_roles=result.exogenous_roles)


LATER = [CUTOFF + dt.timedelta(days=7 * k) for k in range(13)]


def _evaluate(panel: Panel, model_scores: pl.DataFrame) -> pl.DataFrame:
    labels = stockout_labels(panel, origins=LATER, definition=DEFINITION).drop_nulls("label")
    return model_scores.join(
        labels.select("store_id", "item_id", "origin", "label"), on=["store_id", "item_id", "origin"]
    )


def test_classifier_beats_chance_and_is_calibrated_to_probabilities(chain: Panel) -> None:
    spec = FeatureSpec.for_freq("D")
    model = fit_stockout(chain, spec, FAST, DEFINITION, cutoff=CUTOFF)
    # Walk forward: the model fitted at the cutoff scores 13 later weekly origins (features up to each origin).
    features = stockout_features(chain, spec, LATER, window=7)
    scored = _evaluate(chain, features.with_columns(pl.Series("risk", model.predict_proba(features))))
    y, p = scored["label"].to_numpy(), scored["risk"].to_numpy()
    assert ((p >= 0) & (p <= 1)).all()
    assert pr_auc(y, p) > y.mean() * 1.3  # clearly better than the base rate
    assert 0 < model.threshold < 1


def test_the_threshold_never_sees_the_evaluated_period(chain: Panel) -> None:
    # Scrambling everything after the cutoff must not change the fitted model's threshold or scores.
    spec = FeatureSpec.for_freq("D")
    later = pl.col("date") > CUTOFF
    noisy = chain.frame.with_columns(
        pl.when(later).then(pl.lit(24.0)).otherwise(pl.col("stockout_hours")).alias("stockout_hours"),
        pl.when(later).then(pl.lit(0.0)).otherwise(pl.col("on_hand")).alias("on_hand"),
    )
    scrambled = Panel(noisy, chain.freq, chain.known_in_advance, chain.past_only, chain.categorical)
    a = fit_stockout(chain, spec, FAST, DEFINITION, cutoff=CUTOFF)
    b = fit_stockout(scrambled, spec, FAST, DEFINITION, cutoff=CUTOFF)
    assert a.threshold == b.threshold
    assert np.array_equal(a.calibration_x, b.calibration_x) and np.array_equal(a.calibration_y, b.calibration_y)
    # The evidence the threshold is chosen from: held-out origins whose 7-day windows close by the cutoff.
    assert a.holdout is not None
    last_origin = (CUTOFF - dt.timedelta(days=7) - dt.date(1970, 1, 1)).days
    assert a.holdout.origin.max() == last_origin
    features = stockout_features(chain.as_known_at(CUTOFF), spec, [CUTOFF], window=7)
    assert np.allclose(a.predict_proba(features), b.predict_proba(features))


def test_the_fit_is_deterministic_for_a_seed(chain: Panel) -> None:
    spec = FeatureSpec.for_freq("D")
    a = fit_stockout(chain, spec, FAST, DEFINITION, cutoff=CUTOFF)
    b = fit_stockout(chain, spec, FAST, DEFINITION, cutoff=CUTOFF)
    assert a.threshold == b.threshold
    assert np.array_equal(a.calibration_x, b.calibration_x) and np.array_equal(a.calibration_y, b.calibration_y)
    features = stockout_features(chain.as_known_at(CUTOFF), spec, [CUTOFF], window=7)
    assert np.array_equal(a.predict_proba(features), b.predict_proba(features))


def test_the_old_choice_is_still_available(chain: Panel) -> None:
    # isotonic + holdout_f1 is the choice before issue 15: the staircase map and the held-out F1 peak.
    spec = FeatureSpec.for_freq("D")
    old = fit_stockout(
        chain,
        spec,
        FAST.model_copy(update={"calibration": "isotonic", "threshold": "holdout_f1"}),
        DEFINITION,
        cutoff=CUTOFF,
    )
    assert old.holdout is not None
    held = old.calibrate(old.holdout.raw)  # the staircase applies to either model's scores as is
    assert old.threshold == best_threshold(old.holdout.label, held)


def test_rule_baseline_is_scored_beside_it(chain: Panel) -> None:
    rule = rule_baseline(chain, origins=[CUTOFF], window=7, definition=DEFINITION)
    assert set(rule["score"].drop_nulls().unique().to_list()) <= {0, 1}


def test_too_little_history_is_a_clear_error(chain: Panel) -> None:
    with pytest.raises(DataValidationError, match="no complete 7-day label windows"):
        fit_stockout(chain, FeatureSpec.for_freq("D"), FAST, DEFINITION, cutoff=dt.date(2022, 1, 5))


def test_quantile_risk_rises_as_stock_falls() -> None:
    forecast = pl.DataFrame(
        {
            "store_id": ["S"] * 7,
            "item_id": ["I"] * 7,
            "h": list(range(1, 8)),
            "p10": [2.0] * 7,
            "p50": [4.0] * 7,
            "p90": [6.0] * 7,
        }
    )
    stock = [pl.DataFrame({"store_id": ["S"], "item_id": ["I"], "on_hand": [v]}) for v in (10.0, 28.0, 60.0)]
    risks = [quantile_risk(forecast, s, window=7)["risk"][0] for s in stock]
    assert risks[0] > risks[1] > risks[2]
    assert risks[1] == pytest.approx(0.5)


def test_an_interrupted_final_fit_resumes_from_its_checkpoint(
    chain: Panel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = FeatureSpec.for_freq("D")
    config = FAST.model_copy(update={"n_estimators": 120})
    real_save = ckpt.FileCheckpoint.save

    def save_then_crash(self: ckpt.FileCheckpoint, writer: object, rounds: int) -> None:
        real_save(self, writer, rounds)
        raise KeyboardInterrupt  # the machine goes down right after the first checkpoint

    monkeypatch.setattr(ckpt.FileCheckpoint, "save", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        fit_stockout(chain, spec, config, DEFINITION, cutoff=CUTOFF, checkpoints=ckpt.FileCheckpoints(tmp_path))
    assert len(list(tmp_path.glob("*.txt"))) == 1

    saved: list[int] = []
    monkeypatch.setattr(ckpt.FileCheckpoint, "save", lambda self, w, r: (saved.append(r), real_save(self, w, r)))
    resumed = fit_stockout(chain, spec, config, DEFINITION, cutoff=CUTOFF, checkpoints=ckpt.FileCheckpoints(tmp_path))
    assert saved == [100]  # resumed after round 50, not from the start
    assert not list(tmp_path.glob("*.txt"))  # cleared once training finished
    plain = fit_stockout(chain, spec, config, DEFINITION, cutoff=CUTOFF)
    assert resumed.model.model_.current_iteration() == 120
    # Bagging restarts its sampling on resume, so the trees after round 50 differ
    # a little; the model is the same in substance and as good.
    features = stockout_features(chain, spec, LATER, window=7)
    assert np.corrcoef(resumed.raw_scores(features), plain.raw_scores(features))[0, 1] > 0.9
    scored = _evaluate(chain, features.with_columns(pl.Series("risk", resumed.predict_proba(features))))
    y = scored["label"].to_numpy()
    assert pr_auc(y, scored["risk"].to_numpy()) > y.mean() * 1.3


def test_xgboost_engine_gives_calibrated_probabilities(chain: Panel) -> None:
    spec = FeatureSpec.for_freq("D")
    model = fit_stockout(chain, spec, FAST.model_copy(update={"engine": "xgboost"}), DEFINITION, cutoff=CUTOFF)
    features = stockout_features(chain, spec, LATER, window=7)
    scored = _evaluate(chain, features.with_columns(pl.Series("risk", model.predict_proba(features))))
    y, p = scored["label"].to_numpy(), scored["risk"].to_numpy()
    assert ((p >= 0) & (p <= 1)).all()
    assert pr_auc(y, p) > y.mean() * 1.3


def test_a_cutoff_past_the_data_still_gets_a_threshold(chain: Panel) -> None:
    # No rows at the cutoff: the expected-F1 threshold is read from the latest held-out origin instead.
    last = chain.frame["date"].max()
    assert isinstance(last, dt.date)
    model = fit_stockout(chain, FeatureSpec.for_freq("D"), FAST, DEFINITION, cutoff=last + dt.timedelta(days=3))
    assert model.holdout is not None and model.holdout.current_final.size == 0
    assert 0 < model.threshold < 1
