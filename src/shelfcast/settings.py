"""Settings shared by the CLI, jobs and the service.

Precedence, highest first: explicit arguments, environment variables
`SHELFCAST_*`, the TOML file (`./shelfcast.toml`, or the path in
`SHELFCAST_CONFIG`), then the defaults.

Settings of one concern form a section whose type is the frozen config
object the code that uses it takes (`gates` is the `GateFloors` the
promotion gates read, `drift` the `DriftThresholds` of the drift tests,
`policy` the `PolicyConfig` of the policy), so each default is written
once, in that object; the jobs pass `settings.gates` straight through.
A section is set as `SHELFCAST_GATES__TOLERANCE=0.05` or, in TOML,
`[gates]` then `tolerance = 0.05`. The flat names of earlier versions
(`SHELFCAST_GATE_TOLERANCE`, `gate_tolerance = 0.05`,
`Settings(gate_tolerance=0.05)`) are aliases (`FLAT_NAMES`). Giving one
setting both ways in the same place (both environment variables, or both
keys of the file) is an error rather than a silent choice: one of them
would be ignored without anyone knowing which. Across places the usual
precedence applies.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from shelfcast.errors import ConfigError
from shelfcast.events import NewSeriesPolicy
from shelfcast.features.spec import FeatureSpec
from shelfcast.models.gates import GateFloors
from shelfcast.models.selection import SelectionConfig
from shelfcast.monitoring.drift import DriftThresholds
from shelfcast.monitoring.policy import PolicyConfig
from shelfcast.threads import AUTO, CONFIG_ENV, DEFAULT_CONFIG_FILE, EXPECTED, parse_threads

DuplicatePolicy = Literal["sum", "reject"]
PredictionStoreKind = Literal["parquet", "postgres", "delta"]
ENV_PREFIX = "SHELFCAST_"


# The monitor and serve sections configure a job and the service, not a function of the core, so they live here.
class MonitorConfig(BaseModel):
    """What the monitor job looks at and writes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lookback_days: int = Field(
        28,
        ge=7,
        description="Days of origins in the monitoring window, and in the reference window saved with a model.",
    )
    accuracy_degradation: float = Field(
        0.2,
        gt=0.0,
        description="Live accuracy alert when the champion does worse than its backtest by more than this fraction "
        "(0.2 = 20 % worse).",
    )
    evidently: bool = Field(
        False,
        description="Also write Evidently's data drift report per task (needs the `reports` extra; several MB and "
        "seconds each).",
    )


class ServeConfig(BaseModel):
    """Limits and refresh of the prediction service."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_batch: int = Field(1000, gt=0, le=100_000, description="Rows a `/predict/batch` request may hold.")
    max_body_bytes: int = Field(
        1_048_576, gt=0, description="Largest request body the service reads; bigger ones get 413."
    )
    refresh_seconds: float = Field(
        30.0, gt=0, description="How often the service looks for a newer scoring day in the prediction store."
    )
    max_origins: int = Field(
        4, gt=0, le=1000, description="Distinct cutoffs a `/predict/batch` request may hold (each builds a table)."
    )
    read_timeout_seconds: float = Field(
        30.0, gt=0, description="A request's headers and body must arrive within this time, or the connection closes."
    )


def history_days_for(spec: FeatureSpec) -> int:
    """Days of daily history per series the online store must keep for a feature spec: the widest look-back
    (`spec.history_needed`, in the spec's steps, weeks counting 7 days) plus the origin day itself."""
    step = 7 if spec.freq == "W" else 1
    return spec.history_needed * step + 1


class LiveConfig(BaseModel):
    """Live sales through Redis Streams into the online store (`shelfcast stream ...`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prefix: str = Field(
        "shelfcast",
        min_length=1,
        description="Prefix of every Redis key of the live path (`{prefix}:events`, `{prefix}:dead`, ...).",
    )
    max_len: int = Field(
        1_000_000, gt=0, description="Approximate longest length of the events stream (`XADD MAXLEN ~`)."
    )
    max_lag: int = Field(
        200_000,
        gt=0,
        description="Back-pressure: a producer waits while the consumer group has more unread entries than this.",
    )
    group: str = Field("shelfcast-online", min_length=1, description="Consumer group applying events to the store.")
    batch_size: int = Field(1000, gt=0, le=100_000, description="Entries a consumer reads and applies in one step.")
    block_ms: int = Field(1000, ge=1, description="How long a consumer's read waits for new entries.")
    claim_idle_ms: int = Field(
        60_000, ge=1, description="Pending entries idle this long (a dead worker's) are claimed by another worker."
    )
    max_deliveries: int = Field(
        5, gt=0, description="An entry delivered more times than this goes to the dead-letter stream."
    )
    dedup_days: int = Field(
        7, gt=0, description="Days an applied `event_id` is remembered (after the last event of its day arrived)."
    )
    history_days: int = Field(
        default_factory=lambda: history_days_for(FeatureSpec()),
        gt=0,
        description="Days of daily history kept per series: the default feature spec's longest lag or window "
        "plus the origin day.",
    )
    new_series: NewSeriesPolicy = Field(
        "accept",
        description="Events of a store or item the store does not know: `accept` (and remember it) or `reject` "
        "to the dead-letter stream.",
    )
    serve: bool = Field(
        False,
        description="`shelfcast serve` answers `/predict` with the online store's features (the lake's days, the "
        "store's later days, today's latest stock count); off: the lake's alone.",
    )
    stale_seconds: float = Field(
        21_600,
        gt=0,
        description="The service treats the online store as stale (and answers from the lake, `stale: true`) when "
        "nothing was applied or seeded for this long.",
    )
    refresh_seconds: float = Field(
        5.0, gt=0, description="How often the service looks for new events in the online store to rebuild its table."
    )
    timeout_seconds: float = Field(
        0.25, gt=0, description="The service's Redis timeout: a slower answer falls back to the lake's features."
    )


Engine = Literal["local", "spark"]


class SparkConfig(BaseModel):
    """Apache Spark for the heavy steps (`--engine spark`): features, training, backtests and batch scoring."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(False, description="Run train, backtest, score and features on Spark without `--engine`.")
    master: str = Field(
        "local[*]",
        min_length=1,
        description="Spark master: `local[*]` (in this process), `spark://HOST:PORT` (a standalone cluster), `yarn`.",
    )
    groups: int = Field(
        0,
        ge=0,
        le=100_000,
        description="Groups of series the data is cut into (each built by one task); 0: four per core Spark has.",
    )
    workers: int = Field(
        0,
        ge=0,
        le=10_000,
        description="XGBoost workers (one Spark task each) when training; 0: one per core Spark has.",
    )
    executor_memory: str | None = Field(
        None, description="`spark.executor.memory` (e.g. `4g`); unset: Spark's default. Local mode: the driver's."
    )
    conf: dict[str, str] = Field(
        default_factory=dict, description="Any other Spark settings, as `spark.*` keys and their values."
    )

    @field_validator("master")
    @classmethod
    def _check_master(cls, value: str) -> str:
        if not re.fullmatch(r"local(\[(\*|\d+)(,\d+)?\])?|(spark|k8s|mesos)://\S+|yarn", value):
            raise ValueError(
                f"not a Spark master: {value!r}; expected `local[*]`, `local[N]`, `spark://HOST:PORT` or `yarn`"
            )
        return value

    @field_validator("conf")
    @classmethod
    def _check_conf(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if not k.startswith("spark.")]
        if bad:
            raise ValueError(f"Spark settings start with `spark.`, got {', '.join(map(repr, bad))}")
        return value


# Flat name of earlier versions -> (section, field). `live` has flat names too (`live_prefix`), like its neighbours;
# other later sections (spark) need none: they have no past.
FLAT_NAMES: dict[str, tuple[str, str]] = {
    "selection_metric": ("selection", "metric"),
    "selection_windows": ("selection", "windows"),
    "selection_margin": ("selection", "margin"),
    "gate_tolerance": ("gates", "tolerance"),
    "gate_demand_max_wape": ("gates", "demand_max_wape"),
    "gate_stockout_min_f1": ("gates", "stockout_min_f1"),
    "drift_psi_threshold": ("drift", "psi"),
    "drift_js_threshold": ("drift", "js"),
    "drift_alpha": ("drift", "alpha"),
    "monitor_window_days": ("monitor", "lookback_days"),
    "accuracy_degradation": ("monitor", "accuracy_degradation"),
    "monitor_evidently": ("monitor", "evidently"),
    "policy_min_live_days": ("policy", "min_live_days"),
    "policy_cooldown_hours": ("policy", "cooldown_hours"),
    "policy_fresh_days": ("policy", "fresh_days"),
    "policy_rollback_margin": ("policy", "rollback_margin"),
    "policy_fallback_relative": ("policy", "fallback_relative"),
    "serve_max_batch": ("serve", "max_batch"),
    "serve_max_body_bytes": ("serve", "max_body_bytes"),
    "serve_refresh_seconds": ("serve", "refresh_seconds"),
    "live_prefix": ("live", "prefix"),
    "live_max_len": ("live", "max_len"),
    "live_max_lag": ("live", "max_lag"),
    "live_group": ("live", "group"),
    "live_batch_size": ("live", "batch_size"),
    "live_block_ms": ("live", "block_ms"),
    "live_claim_idle_ms": ("live", "claim_idle_ms"),
    "live_max_deliveries": ("live", "max_deliveries"),
    "live_dedup_days": ("live", "dedup_days"),
    "live_history_days": ("live", "history_days"),
    "live_new_series": ("live", "new_series"),
    "live_serve": ("live", "serve"),
    "live_stale_seconds": ("live", "stale_seconds"),
    "live_refresh_seconds": ("live", "refresh_seconds"),
    "live_timeout_seconds": ("live", "timeout_seconds"),
}


class Settings(BaseSettings):
    """Everything a user may configure; see the README's Configuration section."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True)

    workspace: Path = Field(Path(".shelfcast"), description="Folder holding the lake and all outputs.")
    min_date: dt.date = Field(
        dt.date(1990, 1, 1), description="Earliest date accepted in any table (earlier rows are quarantined)."
    )
    max_date: dt.date = Field(
        dt.date(2100, 12, 31), description="Latest date accepted in any table (later rows are quarantined)."
    )
    future_days: int = Field(
        1, ge=0, description="Facts (sales, inventory, movements) may be at most this many days after today."
    )
    duplicates: DuplicatePolicy = Field(
        "sum",
        description="Rows of an additive table (sales, movements) sharing a key: `sum` them or `reject` them all to "
        "the quarantine.",
    )
    lock_timeout: float = Field(
        600,
        ge=0,
        description="Seconds an ingest waits for another one writing the same workspace (0: give up at once).",
    )
    lead_time_days: int = Field(7, ge=0, description="Supplier lead time used for reorder advice when none is known.")
    service_level: float = Field(0.95, gt=0.5, lt=1.0, description="Target cycle service level for safety stock.")
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow server; else `MLFLOW_TRACKING_URI`; else SQLite in `<workspace>/mlflow/`."
    )
    postgres_url: str = Field(
        "postgresql://127.0.0.1:5432/test",
        description="PostgreSQL prediction store: a URL or a libpq `key=value` string (checked when read).",
    )
    prediction_store: PredictionStoreKind = Field(
        "parquet", description="Where `shelfcast score` writes: `parquet`, `postgres` or `delta`."
    )
    prediction_table: str = Field(
        "predictions", description="PostgreSQL predictions table, `TABLE` or `SCHEMA.TABLE` (created if missing)."
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis for live sales and online features.")
    prefect_api_url: str | None = Field(
        None, description="Prefect server (else `PREFECT_API_URL`); `pipeline schedule` needs one."
    )
    api_key: SecretStr | None = Field(
        None, description="Key for the service's `/admin` routes (header `X-API-Key`); unset: they answer 403."
    )
    threads: int | Literal["auto"] = Field(
        AUTO,
        description="Threads for LightGBM, XGBoost and Polars: a number, or `auto` (the CPUs other processes leave "
        "free when a command starts); read as the command starts, see Threads and shared machines.",
    )
    selection: SelectionConfig = Field(
        default_factory=SelectionConfig, description="How the forecast's model, baseline or blend is chosen."
    )
    gates: GateFloors = Field(default_factory=GateFloors, description="Promotion gates.")
    drift: DriftThresholds = Field(default_factory=DriftThresholds, description="Drift tests.")
    monitor: MonitorConfig = Field(default_factory=MonitorConfig, description="Monitoring.")
    policy: PolicyConfig = Field(default_factory=PolicyConfig, description="Retrain, roll back or fall back.")
    serve: ServeConfig = Field(default_factory=ServeConfig, description="The prediction service.")
    live: LiveConfig = Field(default_factory=LiveConfig, description="Live sales (Redis Streams) and the online store.")
    spark: SparkConfig = Field(default_factory=SparkConfig, description="Apache Spark (`--engine spark`).")

    @field_validator("postgres_url")
    @classmethod
    def _check_postgres_url(cls, value: str) -> str:
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict

        # libpq's own parser, so whatever it accepts (URL or key=value form) passes; its message is not shown,
        # as it repeats the value, password included.
        try:
            parsed = conninfo_to_dict(value)
        except ProgrammingError:
            parsed = {}
        if not parsed:
            raise ValueError(
                "not a PostgreSQL connection string; expected postgresql://USER@HOST:PORT/DB "
                "or `host=HOST port=PORT dbname=DB`"
            )
        return value

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: object) -> object:
        # `SHELFCAST_API_KEY=` (compose passes an unset one as empty): no key, so the admin routes answer 403,
        # rather than a key no header can match (401).
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("threads", mode="before")
    @classmethod
    def _check_threads(cls, value: object) -> int | str:
        # The entry point read the same value before the settings (`shelfcast.threads`); same rules, same words.
        try:
            count = parse_threads(value, source="threads")
        except ConfigError:
            raise ValueError(f"{EXPECTED}, got {value!r}") from None
        return AUTO if count is None else count

    @model_validator(mode="after")
    def _check_dates(self) -> Settings:
        if self.min_date >= self.max_date:
            raise ValueError(f"`min_date` ({self.min_date}) must be before `max_date` ({self.max_date})")
        return self

    @property
    def lake_dir(self) -> Path:
        return self.workspace / "lake"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        named = os.environ.get(CONFIG_ENV)
        toml_file = Path(named or DEFAULT_CONFIG_FILE)
        if named and not toml_file.is_file():
            what = "is a folder" if toml_file.is_dir() else "does not exist"
            raise ConfigError(f"{CONFIG_ENV} names {toml_file}, which {what}; give the path of a TOML file or unset it")
        toml = _TomlFile(settings_cls, toml_file=toml_file)
        return (
            _WithFlatNames(init_settings, where="the arguments", spell=_spell_argument),
            _WithFlatNames(env_settings, where="the environment", extra=_flat_environment, spell=_spell_env),
            _WithFlatNames(toml, where=str(toml_file), spell=_spell_toml),
        )


class _TomlFile(TomlConfigSettingsSource):
    """The TOML file, a file that cannot be read or parsed being a one-line error naming it (and the line)."""

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        try:
            text = Path(file_path).read_bytes().decode("utf-8")
            return tomllib.loads(text)
        except UnicodeDecodeError as exc:
            line = Path(file_path).read_bytes()[: exc.start].count(b"\n") + 1
            raise ConfigError(
                f"{file_path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at line {line}); re-save it as UTF-8"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file_path}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{file_path}: cannot read the settings file: {exc.strerror or exc}") from None


class _WithFlatNames(PydanticBaseSettingsSource):
    """One source of settings, its flat names (`gate_tolerance`) moved into their sections (`gates.tolerance`).

    Done per source, before the sources are merged, so that precedence holds
    between the two forms: a flat environment variable beats a `[gates]`
    table of the file as any environment variable beats the file.
    """

    def __init__(
        self,
        inner: PydanticBaseSettingsSource,
        *,
        where: str,
        extra: Callable[[], dict[str, Any]] | None = None,
        spell: Callable[[str], str],
    ) -> None:
        super().__init__(inner.settings_cls)
        self._inner = inner
        self._where = where
        self._extra = extra  # flat names the inner source does not see (environment variables that are no field)
        self._spell = spell  # a name as the user wrote it in this source

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads the inner source whole

    def __call__(self) -> dict[str, Any]:
        data = dict(self._inner())
        flat = {key: data.pop(key) for key in list(data) if key.lower() in FLAT_NAMES}
        flat.update(self._extra() if self._extra is not None else {})
        for key, value in flat.items():
            name = key.lower()
            section, field = FLAT_NAMES[name]
            given = data.get(section)
            if given is not None and (not isinstance(given, Mapping) or field in given):
                both = f"{self._spell(name)} and {self._spell(f'{section}__{field}')}"
                raise _error(name, value, f"set twice in {self._where}, as {both}; keep one")
            _check_flat(name, value)
            data[section] = {**(given or {}), field: value}
        return data


def _spell_argument(name: str) -> str:
    return f"`{name.replace('__', '.')}`"


def _spell_env(name: str) -> str:
    return f"`{ENV_PREFIX}{name.upper()}`"


def _spell_toml(name: str) -> str:
    section, _, field = name.partition("__")
    return f"`[{section}] {field}`" if field else f"`{name}`"


def _flat_environment() -> dict[str, Any]:
    """`SHELFCAST_<FLAT NAME>` variables (any case, as pydantic-settings reads the others)."""
    found: dict[str, Any] = {}
    for key, value in os.environ.items():
        name = key.lower().removeprefix(ENV_PREFIX.lower())
        if key.upper().startswith(ENV_PREFIX) and name in FLAT_NAMES:
            found[name] = value
    return found


@cache
def _flat_model(name: str) -> type[BaseModel]:
    """A one-field model holding the section field behind a flat name, so its errors name the flat name."""
    section, field = FLAT_NAMES[name]
    section_type = Settings.model_fields[section].annotation
    assert isinstance(section_type, type) and issubclass(section_type, BaseModel)
    info = section_type.model_fields[field]
    return create_model("Settings", **{name: (info.annotation, info)})  # type: ignore[call-overload, no-any-return]


def _check_flat(name: str, value: Any) -> None:
    _flat_model(name).model_validate({name: value})


def _error(name: str, value: Any, message: str) -> ValidationError:
    # The message goes in as context: a `{` in it (a file name) is then not read as a template field.
    problem = PydanticCustomError("setting_twice", "{problem}", {"problem": message})
    detail = InitErrorDetails(type=problem, loc=(name,), input=value)
    return ValidationError.from_exception_data("Settings", [detail])


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests call `get_settings.cache_clear()` to re-read."""
    return Settings()


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str | Path):
        return f"`{value}`"
    return str(value)


def reference_tables() -> str:
    """The README's tables of settings (markdown), from the fields' defaults and descriptions, so they cannot drift."""
    rows = ["| setting | environment variable | TOML | default | meaning |", "|---|---|---|---|---|"]
    for name, info in Settings.model_fields.items():
        section = info.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            for field, inner in section.model_fields.items():
                env = f"{ENV_PREFIX}{name.upper()}__{field.upper()}"
                default = inner.get_default(call_default_factory=True)
                where = f"`{field}` in `[{name}]`"
                rows.append(f"| `{name}.{field}` | `{env}` | {where} | {_shown(default)} | {inner.description} |")
        else:
            default = info.get_default(call_default_factory=True)
            rows.append(
                f"| `{name}` | `{ENV_PREFIX}{name.upper()}` | `{name}` | {_shown(default)} | {info.description} |"
            )
    aliases = ["| old name (argument, TOML key) | old environment variable | same as |", "|---|---|---|"]
    aliases += [
        f"| `{flat}` | `{ENV_PREFIX}{flat.upper()}` | `{section}.{field}` |"
        for flat, (section, field) in FLAT_NAMES.items()
    ]
    return "\n".join(rows) + "\n\n" + "\n".join(aliases) + "\n"
