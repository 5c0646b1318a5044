from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import write
from pydantic import ValidationError

from shelfcast.errors import first_problem
from shelfcast.models.gates import GateFloors
from shelfcast.monitoring.drift import DriftThresholds
from shelfcast.monitoring.policy import PolicyConfig
from shelfcast.settings import FLAT_NAMES, MonitorConfig, ServeConfig, Settings, get_settings, reference_tables


def test_defaults() -> None:
    s = Settings()
    assert s.workspace == Path(".shelfcast")
    assert s.duplicates == "sum"
    assert s.lake_dir == Path(".shelfcast/lake")


def test_toml_then_env_then_arguments(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write(tmp_path / "shelfcast.toml", 'workspace = "from-toml"\nduplicates = "reject"\nmin_date = "2000-01-01"\n')
    assert Settings().workspace == Path("from-toml")
    monkeypatch.setenv("SHELFCAST_WORKSPACE", "from-env")
    assert Settings().workspace == Path("from-env")
    assert Settings().min_date == dt.date(2000, 1, 1)
    assert Settings(workspace=Path("from-arg")).workspace == Path("from-arg")


def test_config_path_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SHELFCAST_CONFIG", str(write(tmp_path / "conf" / "x.toml", 'workspace = "elsewhere"\n')))
    get_settings.cache_clear()
    assert get_settings().workspace == Path("elsewhere")


@pytest.mark.parametrize(
    "content",
    ['duplicates = "maybe"\n', 'min_date = "2030-01-01"\nmax_date = "2020-01-01"\n', "unknown_key = 1\n"],
)
def test_bad_settings_are_rejected(tmp_path: Path, content: str) -> None:
    write(tmp_path / "shelfcast.toml", content)
    with pytest.raises(ValidationError):
        Settings()


# One valid value per flat name of earlier versions, each different from its default.
FLAT_VALUES = {
    "selection_metric": ('"wmae"', "wmae"),
    "selection_windows": ("4", 4),
    "selection_margin": ("0.1", 0.1),
    "gate_tolerance": ("0.05", 0.05),
    "gate_demand_max_wape": ("0.5", 0.5),
    "gate_stockout_min_f1": ("0.7", 0.7),
    "drift_psi_threshold": ("0.3", 0.3),
    "drift_js_threshold": ("0.2", 0.2),
    "drift_alpha": ("0.01", 0.01),
    "monitor_window_days": ("35", 35),
    "accuracy_degradation": ("0.3", 0.3),
    "monitor_evidently": ("true", True),
    "policy_min_live_days": ("21", 21),
    "policy_cooldown_hours": ("2.5", 2.5),
    "policy_fresh_days": ("7", 7.0),
    "policy_rollback_margin": ("0.2", 0.2),
    "policy_fallback_relative": ("1.5", 1.5),
    "serve_max_batch": ("50", 50),
    "serve_max_body_bytes": ("2048", 2048),
    "serve_refresh_seconds": ("5", 5.0),
    "live_prefix": ('"shop"', "shop"),
    "live_max_len": ("5000", 5000),
    "live_max_lag": ("100", 100),
    "live_group": ('"workers"', "workers"),
    "live_batch_size": ("50", 50),
    "live_block_ms": ("10", 10),
    "live_claim_idle_ms": ("500", 500),
    "live_max_deliveries": ("3", 3),
    "live_dedup_days": ("2", 2),
    "live_history_days": ("30", 30),
    "live_new_series": ('"reject"', "reject"),
    "live_serve": ("true", True),
    "live_stale_seconds": ("60.0", 60.0),
    "live_refresh_seconds": ("2.0", 2.0),
    "live_timeout_seconds": ("0.5", 0.5),
}


def _get(settings: Settings, flat: str) -> object:
    section, field = FLAT_NAMES[flat]
    return getattr(getattr(settings, section), field)


def test_sections_are_the_config_objects_of_the_core() -> None:
    s = Settings()
    assert (s.gates, s.drift, s.policy) == (GateFloors(), DriftThresholds(), PolicyConfig())
    assert isinstance(s.monitor, MonitorConfig) and isinstance(s.serve, ServeConfig)
    with pytest.raises(ValidationError, match="frozen"):
        s.gates.tolerance = 1.0  # type: ignore[misc]


def test_the_core_does_not_import_the_settings() -> None:
    code = (
        "import sys, shelfcast.models.gates, shelfcast.monitoring.drift, shelfcast.monitoring.policy, "
        "shelfcast.models.forecaster; "
        "print(sorted(m for m in sys.modules if m in ('shelfcast.settings', 'pydantic_settings')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_nested_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELFCAST_GATES__TOLERANCE", "0.05")
    monkeypatch.setenv("SHELFCAST_POLICY__MIN_LIVE_DAYS", "21")
    monkeypatch.setenv("shelfcast_drift__alpha", "0.01")  # any case, as the other variables
    monkeypatch.setenv("SHELFCAST_SERVE__MAX_BATCH", "50")
    s = Settings()
    assert (s.gates.tolerance, s.policy.min_live_days, s.drift.alpha, s.serve.max_batch) == (0.05, 21, 0.01, 50)
    assert s.policy.fresh_days == PolicyConfig().fresh_days  # the rest of the section keeps its defaults


def test_nested_toml(tmp_path: Path) -> None:
    write(
        tmp_path / "shelfcast.toml", "[gates]\ndemand_max_wape = 0.5\n[monitor]\nlookback_days = 35\nevidently = true\n"
    )
    s = Settings()
    assert (s.gates.demand_max_wape, s.monitor.lookback_days, s.monitor.evidently) == (0.5, 35, True)


@pytest.mark.parametrize("flat", sorted(FLAT_VALUES))
def test_flat_names_are_aliases_everywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flat: str) -> None:
    text, value = FLAT_VALUES[flat]
    assert _get(Settings(), flat) != value
    assert _get(Settings(**{flat: value}), flat) == value
    monkeypatch.setenv(f"SHELFCAST_{flat.upper()}", text.strip('"'))  # TOML quotes a string, the environment not
    assert _get(Settings(), flat) == value
    monkeypatch.delenv(f"SHELFCAST_{flat.upper()}")
    write(tmp_path / "shelfcast.toml", f"{flat} = {text}\n")
    assert _get(Settings(), flat) == value


def test_every_flat_name_is_tested() -> None:
    assert set(FLAT_VALUES) == set(FLAT_NAMES)


def test_arguments_then_environment_then_toml_then_defaults_in_either_form(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write(tmp_path / "shelfcast.toml", "policy_fresh_days = 3\n[gates]\ntolerance = 0.1\nstockout_min_f1 = 0.6\n")
    s = Settings()
    assert (s.gates.tolerance, s.gates.stockout_min_f1, s.policy.fresh_days) == (0.1, 0.6, 3.0)
    monkeypatch.setenv("SHELFCAST_GATE_TOLERANCE", "0.2")  # flat environment over nested file
    monkeypatch.setenv("SHELFCAST_POLICY__FRESH_DAYS", "4")  # nested environment over flat file
    s = Settings()
    assert (s.gates.tolerance, s.gates.stockout_min_f1, s.policy.fresh_days) == (0.2, 0.6, 4.0)
    s = Settings(gates={"tolerance": 0.3}, policy_fresh_days=5)
    assert (s.gates.tolerance, s.gates.stockout_min_f1, s.policy.fresh_days) == (0.3, 0.6, 5.0)
    assert s.gates.demand_max_wape is None and s.policy.min_live_days == 14  # defaults where nobody said


@pytest.mark.parametrize(
    ("where", "named"),
    [
        ("env", "`SHELFCAST_GATE_TOLERANCE` and `SHELFCAST_GATES__TOLERANCE`"),
        ("toml", "`gate_tolerance` and `[gates] tolerance`"),
        ("args", "`gate_tolerance` and `gates.tolerance`"),
    ],
)
def test_both_forms_in_one_place_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str, named: str
) -> None:
    kwargs: dict[str, object] = {}
    if where == "env":
        monkeypatch.setenv("SHELFCAST_GATE_TOLERANCE", "0.1")
        monkeypatch.setenv("SHELFCAST_GATES__TOLERANCE", "0.2")
    elif where == "toml":
        write(tmp_path / "shelfcast.toml", "gate_tolerance = 0.1\n[gates]\ntolerance = 0.2\n")
    else:
        kwargs = {"gate_tolerance": 0.1, "gates": {"tolerance": 0.2}}
    with pytest.raises(ValidationError) as caught:
        Settings(**kwargs)
    where, message = first_problem(caught.value)
    assert where == "gate_tolerance" and message.startswith("set twice") and named in message


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("SHELFCAST_POLICY__MIN_LIVE_DAYS", "two", ("policy.min_live_days", "Input should be a valid integer")),
        ("SHELFCAST_DRIFT__ALPHA", "1.5", ("drift.alpha", "Input should be less than 1")),
        ("SHELFCAST_POLICY_MIN_LIVE_DAYS", "two", ("policy_min_live_days", "Input should be a valid integer")),
        ("SHELFCAST_DRIFT_ALPHA", "0", ("drift_alpha", "Input should be greater than 0")),
    ],
)
def test_a_bad_value_names_the_setting_as_written(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: tuple[str, str]
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    where, message = first_problem(caught.value)
    assert (where, message.split(",")[0]) == named  # what the CLI prints on one line


@pytest.mark.parametrize("content", ["[gates]\nfloor = 1\n", "[policy]\nmin_live_day = 21\n", "gate_tolerence = 1\n"])
def test_unknown_keys_in_a_section_are_refused(tmp_path: Path, content: str) -> None:
    write(tmp_path / "shelfcast.toml", content)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Settings()


def test_unknown_nested_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELFCAST_SERVE__MAX_BATCHES", "10")
    with pytest.raises(ValidationError, match=r"serve\.max_batches"):
        Settings()


def test_the_readme_table_is_the_models() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme.split("<!-- settings-table:start -->\n")[1].split("<!-- settings-table:end -->")[0]
    assert table == reference_tables(), "regenerate it with shelfcast.settings.reference_tables()"


@pytest.mark.parametrize(
    "value", ["postgresql://127.0.0.1:5432/test", "postgres://u:p@db/x", "host=db port=5432 dbname=x password=s3cret"]
)
def test_postgres_url_takes_the_url_and_key_value_forms(value: str) -> None:
    assert Settings(postgres_url=value).postgres_url == value


def test_live_history_covers_the_feature_spec() -> None:
    from shelfcast.features.spec import FeatureSpec
    from shelfcast.settings import history_days_for

    spec = FeatureSpec()
    assert Settings().live.history_days == history_days_for(spec) == spec.history_needed + 1
    assert history_days_for(FeatureSpec.for_freq("W")) == FeatureSpec.for_freq("W").history_needed * 7 + 1
