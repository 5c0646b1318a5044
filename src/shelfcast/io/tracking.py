"""MLflow tracking: where runs go, and one call that logs a training run.

MLflow is imported inside the functions: it takes seconds to import, which
`shelfcast --help` and the fast tests should not pay.

Metric names: `{metric}.{model}` over all backtest windows and
`{metric}.{model}.w{k}` for window k, whose cutoff is the param
`backtest.cutoff.w{k}`; the registered model's own scores are also logged
without the model name (`wape`, `pr_auc`) for the MLflow UI's run table.
When the champion's configuration was re-backtested on the run's windows
(the data grew since it was trained), its scores are those of the model
`champion`, with the params `champion.version` and `champion.run_id`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import polars.selectors as cs

from shelfcast.errors import TrackingError
from shelfcast.features.spec import FeatureSpec
from shelfcast.io.files import process_alive
from shelfcast.redact import redact, split_credentials
from shelfcast.settings import Settings
from shelfcast.types import Task

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from shelfcast.io.delta_tables import TableVersion

log = logging.getLogger(__name__)
EXPERIMENTS: dict[Task, str] = {t: f"shelfcast-{t}" for t in Task}
MODEL_ARTIFACT = "model"
CUTOFF_PARAM = "backtest.cutoff.w{}"
CANDIDATE_PARAM = "model.candidate"
CHAMPION_MODEL = "champion"
CHAMPION_VERSION_PARAM = "champion.version"
CHAMPION_RUN_PARAM = "champion.run_id"
CHAMPION_HOW_PARAM = "champion.scored"  # how the champion was scored on the run's windows: one of these two
AS_SERVED, REFITTED = "as_served", "refitted"
_REQUIREMENTS = ("mlflow", "lightgbm", "xgboost-cpu", "polars", "pandas", "numpy", "pydantic", "scikit-learn")


def mlflow_dir(settings: Settings) -> Path:
    return (settings.workspace / "mlflow").resolve()


def configured_uri(settings: Settings) -> str:
    """The settings' URI, else the user's `MLFLOW_TRACKING_URI`, else SQLite inside the workspace (as written,
    credentials included: never print it, see `shelfcast.redact`)."""
    if settings.mlflow_tracking_uri:
        return settings.mlflow_tracking_uri
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{mlflow_dir(settings) / 'mlflow.db'}"


def tracking_uri(settings: Settings) -> str:
    """The URI MLflow is given: a server's without its `user:password@` (`connect` hands those to MLflow's
    `MLFLOW_TRACKING_USERNAME`/`PASSWORD`); a database's as configured (its driver needs the password)."""
    uri = configured_uri(settings)
    return split_credentials(uri)[0] if _is_server(uri) else uri


def _is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def _embedded(settings: Settings) -> bool:
    return tracking_uri(settings) == f"sqlite:///{mlflow_dir(settings) / 'mlflow.db'}"


def _backend_errors() -> tuple[type[Exception], ...]:
    """What MLflow lets out when its server or store fails (requests' errors are OSErrors; a server answering
    with something else than JSON raises a JSONDecodeError)."""
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError
    from urllib3.exceptions import HTTPError

    return (MlflowException, SQLAlchemyError, HTTPError, OSError, json.JSONDecodeError)


@contextmanager
def mlflow_errors(uri: str) -> Iterator[None]:
    """MLflow, database, HTTP and file errors raised inside become a TrackingError naming the URI.

    Callers then catch TrackingError for "the registry did not answer"
    fallbacks, and a bug (a TypeError, a KeyError) still surfaces as one.
    """
    errors = _backend_errors()
    try:
        yield
    except errors as exc:
        raise TrackingError(describe_failure(uri, exc)) from exc


def describe_failure(uri: str, exc: BaseException) -> str:
    """One line naming the store, what went wrong and, where known, what to do; redacted."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = lines[0][:300] if lines else type(exc).__name__
    where = redact(uri)
    if "database is locked" in reason:
        return (
            f"the MLflow store {where} stayed locked by another process for over 5 s "
            "(another train, promote or retrain in this workspace?): try again when it has finished"
        )
    if isinstance(exc, json.JSONDecodeError) or "JSONDecodeError" in reason or "Expecting value" in reason:
        return f"MLflow at {where} answered with something that is not MLflow's JSON: is the URI an MLflow server?"
    if any(s in reason for s in ("disk is full", "disk I/O error", "No space left", "File too large")):
        # SQLite says "disk I/O error" when a write is refused for size (a quota, a file size limit).
        return redact(f"MLflow at {where}: {reason}: is the disk full (or a quota reached)? free space, then retry")
    return redact(f"MLflow at {where}: {reason}")


# A server or database that does not answer in this time is "unreachable" (MLflow itself retries for minutes).
PROBE_SECONDS = 5.0
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}


def connect(settings: Settings) -> str:
    """The tracking URI, made ready: a server or database is checked first (short timeout, one line if it fails),
    a server's credentials handed to MLflow, an embedded store's folder made.

    Nothing global is set but MLflow's credential variables: callers pass the URI to `MlflowClient` (see
    `client`) or scope MLflow's fluent API to it (see `fluent`).
    """
    configured = configured_uri(settings)
    uri = tracking_uri(settings)
    if _is_server(configured):
        _, user, password = split_credentials(configured)
        # MLflow's client reads them on every request (and never from the URI); the user's own variables
        # stand unless the URI names credentials itself.
        if user is not None:
            os.environ["MLFLOW_TRACKING_USERNAME"] = user
        if password is not None:
            os.environ["MLFLOW_TRACKING_PASSWORD"] = password
        # MLflow retries a failing server seven times with growing waits (about four minutes); a command then
        # seems hung. Two quick retries ride out a blip; the user's own settings win.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
        _probe_server(uri)
    elif _embedded(settings):
        (mlflow_dir(settings) / "artifacts").mkdir(parents=True, exist_ok=True)
    else:
        _probe_database(uri)
    # MLflow logs "Creating initial MLflow database tables..." at INFO for a new store, and every database error
    # (a locked SQLite file) with its traceback at ERROR before raising it: the error is ours to report, once.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    return uri


def _probe_server(uri: str) -> None:
    """One quick API call with MLflow's own credentials: unreachable, refused and not-MLflow are one line each."""
    import requests
    from mlflow.exceptions import MlflowException
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    endpoint = "/api/2.0/mlflow/experiments/search"
    try:
        response = http_request(  # type: ignore[no-untyped-call]
            get_default_host_creds(uri),  # type: ignore[no-untyped-call]
            endpoint,
            "GET",
            max_retries=0,
            timeout=PROBE_SECONDS,
            raise_on_status=False,
            params={"max_results": 1},
        )
    except (requests.RequestException, OSError, MlflowException) as exc:
        raise TrackingError(f"MLflow tracking server {uri} is unreachable ({_short(exc)})") from None
    if response.status_code in (401, 403):
        raise TrackingError(
            f"MLflow tracking server {uri} refused the credentials (HTTP {response.status_code}): set "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or user:password@ in the URI"
        )
    try:
        response.json()
    except ValueError:
        kind = response.headers.get("content-type", "no content type")
        raise TrackingError(
            f"MLflow tracking server {uri} answered {endpoint} with HTTP {response.status_code} and {kind}, "
            "not MLflow's JSON: is the URI an MLflow server?"
        ) from None


def _probe_database(uri: str) -> None:
    """A TCP connection to a database store's host: MLflow would retry a dead one for minutes."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(uri)
    except ArgumentError:
        return  # not a database URL (a file store, a plugin's scheme): MLflow says what it makes of it
    port = url.port or _DEFAULT_PORTS.get(url.get_backend_name())
    if url.host is None or port is None:
        return  # a socket or a file: nothing to wait for
    try:
        socket.create_connection((url.host, port), timeout=PROBE_SECONDS).close()
    except OSError as exc:
        raise TrackingError(f"MLflow store {redact(uri)} is unreachable ({_short(exc)})") from None


def _short(exc: BaseException) -> str:
    """The innermost reason of a connection error, on one line and redacted."""
    while exc.__context__ is not None and not str(exc):
        exc = exc.__context__
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    found = re.search(r"(\[Errno -?\d+\][^'\")]*|Connection refused|timed out|Name or service not known)", text)
    return redact(found.group(1) if found else text[:200])


# Who owns a run: "host:pid:start" (start: the process's start time, so a reused pid is not taken for the owner).
OWNER_TAG = "shelfcast.owner"
PAUSE_ENV = "SHELFCAST_TEST_PAUSE_AT"


def crash_point(point: str) -> None:
    """For crash tests only: with SHELFCAST_TEST_PAUSE_AT=`point`, say so on stderr and wait there to be killed."""
    if os.environ.get(PAUSE_ENV) == point:
        sys.stderr.write(f"shelfcast-test-pause: {point}\n")
        sys.stderr.flush()
        time.sleep(600)


def _started(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), else ""."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[19]


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{_started(os.getpid())}"


def _owner_alive(tag: str) -> bool:
    host, pid_text, started = [*tag.split(":"), "", ""][:3]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True  # another machine's run: not ours to judge
    pid = int(pid_text)
    if not process_alive(pid):
        return False
    return not started or _started(pid) in ("", started)


def reap_dead_runs(tracking: MlflowClient) -> list[str]:
    """Runs still RUNNING whose owning process (tag `shelfcast.owner`, this host) is gone are set FAILED."""
    experiments = [e.experiment_id for e in tracking.search_experiments()]
    if not experiments:
        return []
    reaped = []
    for run in tracking.search_runs(experiments, filter_string="attributes.status = 'RUNNING'", max_results=500):
        tag = run.data.tags.get(OWNER_TAG)
        if tag is None or _owner_alive(tag):
            continue
        tracking.set_tag(run.info.run_id, "shelfcast.failure", "its process ended before the run did (killed?)")
        tracking.set_terminated(run.info.run_id, status="FAILED")
        log.warning("run %s was left RUNNING by a process that died (%s): marked FAILED", run.info.run_id, tag)
        reaped.append(run.info.run_id)
    return reaped


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt in the block (main thread only), so an open run ends FAILED, not RUNNING."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def client(uri: str) -> MlflowClient:
    """A client of the tracking store and the model registry at `uri` (the registry lives with the runs)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


# One fluent block at a time: the URIs it sets are process-wide, and another thread's block would restore them
# under this one.
_FLUENT = threading.RLock()
_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextmanager
def fluent(uri: str) -> Iterator[None]:
    """MLflow's fluent API (`start_run`, `log_model`, `register_model`) at `uri` for one block, then as it was.

    Those calls take no URI: they read MLflow's process-wide tracking and
    registry URIs, which `mlflow.set_tracking_uri` also writes to the
    environment. Both are put back on exit, so the block leaves nothing behind
    for another workspace in the same process, and the user's own
    `MLFLOW_TRACKING_URI` is as they set it.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    with _FLUENT:
        # MLflow's own `_use_tracking_uri` puts its module variable back, but it unsets MLFLOW_TRACKING_URI when
        # that variable was None (the user's variable too); the registry has no such helper.
        saved_registry = registry_utils._registry_uri
        saved_env = {name: os.environ.get(name) for name in _URI_VARIABLES}
        try:
            with tracking_utils._use_tracking_uri(uri):
                mlflow.set_registry_uri(uri)
                yield
        finally:
            registry_utils._registry_uri = saved_registry
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def experiment_id(settings: Settings, task: Task) -> str:
    """The task's experiment, created on first use (with its artifacts in the workspace when embedded)."""
    return named_experiment(settings, EXPERIMENTS[task])


def named_experiment(settings: Settings, name: str) -> str:
    """The experiment `name`, created on first use (with its artifacts in the workspace when embedded)."""
    tracking = client(tracking_uri(settings))
    found = tracking.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = (mlflow_dir(settings) / "artifacts").as_uri() if _embedded(settings) else None
    return str(tracking.create_experiment(name, artifact_location=location))


def flat_metrics(metrics: pl.DataFrame) -> dict[str, float]:
    """`{metric}.{model}` and `{metric}.{model}.w{k}` from a backtest table (model, window, metric columns)."""
    out: dict[str, float] = {}
    columns = [c for c in metrics.columns if c not in ("model", "window") and metrics.schema[c].is_numeric()]
    for row in metrics.iter_rows(named=True):
        suffix = "" if row["window"] == "all" else f".w{row['window']}"
        for c in columns:
            value = row[c]
            if value is not None and math.isfinite(float(value)):
                out[f"{c}.{row['model']}{suffix}"] = float(value)
    return out


def window_scores(
    metrics: Mapping[str, float], params: Mapping[str, str], *, model: str, names: tuple[str, ...]
) -> dict[str, dict[str, float]]:
    """cutoff -> metric -> value of one model, read back from a run's metrics and params."""
    out: dict[str, dict[str, float]] = {}
    for name in names:
        pattern = re.compile(rf"^{re.escape(name)}\.{re.escape(model)}\.w(\d+)$")
        for key, value in metrics.items():
            found = pattern.match(key)
            cutoff = params.get(CUTOFF_PARAM.format(found.group(1))) if found else None
            if cutoff is not None:
                out.setdefault(cutoff, {})[name] = float(value)
    return out


def run_cutoffs(params: Mapping[str, str]) -> set[str]:
    """The backtest cutoffs (ISO dates) a run was scored on."""
    pattern = re.compile(r"^backtest\.cutoff\.w\d+$")
    return {value for key, value in params.items() if pattern.match(key)}


def models_in(metrics: Mapping[str, float], name: str) -> list[str]:
    """The models a run has an overall `name` metric for."""
    prefix = f"{name}."
    return sorted({k[len(prefix) :] for k in metrics if k.startswith(prefix) and not re.search(r"\.w\d+$", k)})


def lineage_frame(manifest: Mapping[str, Any]) -> pl.DataFrame:
    """One row per lake table: rows, date range and content hash."""
    rows = [
        {
            "table": name,
            "rows": int(info.get("rows") or 0),
            "date_min": info.get("date_min"),
            "date_max": info.get("date_max"),
            "content_hash": str(info.get("content_hash")),
        }
        for name, info in sorted(manifest.get("tables", {}).items())
    ]
    schema = {"table": pl.String, "rows": pl.Int64, "date_min": pl.String, "date_max": pl.String}
    return pl.DataFrame(rows, schema={**schema, "content_hash": pl.String})


@dataclass(frozen=True)
class TrainingRun:
    """Everything one training run logs."""

    task: Task
    candidate: str
    params: dict[str, Any]
    spec: FeatureSpec
    metrics: pl.DataFrame
    cutoffs: list[dt.date]
    primary: dict[str, float]
    model_dir: Path
    input_example: pl.DataFrame
    output_example: pl.DataFrame
    manifest: Mapping[str, Any]
    lake_root: Path
    artifacts: list[Path] = field(default_factory=list)
    tags: Mapping[str, str] = field(default_factory=dict)  # e.g. the Prefect flow run that trained it


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    experiment_id: str
    model_uri: str
    tracking_uri: str


def log_training_run(settings: Settings, run: TrainingRun) -> LoggedRun:
    """Params, spec, metrics per window, lake lineage, artifacts and the pyfunc model in one MLflow run."""
    uri = connect(settings)
    with mlflow_errors(uri):
        reap_dead_runs(client(uri))
        with _sigterm_as_interrupt():
            return _log_training_run(settings, run, uri)


def _log_training_run(settings: Settings, run: TrainingRun, uri: str) -> LoggedRun:
    import mlflow

    exp = experiment_id(settings, run.task)
    # Owner tagged at creation: a run whose process dies mid-way is found by `reap_dead_runs` and marked FAILED.
    with fluent(uri), mlflow.start_run(experiment_id=exp, tags={OWNER_TAG: owner()}) as active:
        crash_point("run started")
        mlflow.set_tags(
            {"shelfcast.task": run.task, "shelfcast.version": metadata.version("shelfcast"), **dict(run.tags)}
        )
        params = {**run.params, CANDIDATE_PARAM: run.candidate}
        params |= {CUTOFF_PARAM.format(k + 1): c.isoformat() for k, c in enumerate(run.cutoffs)}
        mlflow.log_params({k: str(v) for k, v in params.items()})
        mlflow.log_dict(run.spec.model_dump(mode="json"), "feature_spec.json")
        mlflow.log_metrics({**flat_metrics(run.metrics), **run.primary})
        _log_lineage(run)
        for path in run.artifacts:
            mlflow.log_artifact(str(path), artifact_path="reports")
        info = _log_pyfunc(run)
    return LoggedRun(active.info.run_id, exp, info.model_uri, redact(uri))


def _log_lineage(run: TrainingRun) -> None:
    import mlflow
    from mlflow.data.polars_dataset import from_polars

    frame = lineage_frame(run.manifest)
    combined = hashlib.sha256("\n".join(f"{t}:{h}" for t, h in frame.select("table", "content_hash").rows()).encode())
    # MLflow keeps at most 36 characters of a dataset digest; the full hashes go into the input's tags.
    dataset = from_polars(frame, source=str(run.lake_root), name="lake", digest=combined.hexdigest()[:32])
    hashes = dict(frame.select("table", "content_hash").rows())
    mlflow.log_input(dataset, context="training", tags={f"content_hash.{t}": h for t, h in hashes.items()})
    mlflow.set_tags({f"lake.{t}.content_hash": h for t, h in hashes.items()})


def _log_pyfunc(run: TrainingRun) -> Any:
    import mlflow
    from mlflow.models import infer_signature

    # Integer features may be null at serving time, where pandas makes them floats: declare them as floats.
    example = run.input_example.with_columns(cs.integer().cast(pl.Float64)).to_pandas()
    signature = infer_signature(example, run.output_example.to_pandas())
    code = Path(__file__).with_name("mlflow_model.py")
    return mlflow.pyfunc.log_model(
        name=MODEL_ARTIFACT,
        python_model=str(code),
        artifacts={"native": str(run.model_dir)},
        signature=signature,
        input_example=example,
        pip_requirements=_requirements(),
    )


def _requirements() -> list[str]:
    """Pinned from this environment: inferring them would load the model in a subprocess (seconds)."""
    pins = []
    for name in _REQUIREMENTS:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


DELTA_VERSION_KEY = "delta.{}.version"
DELTA_PATH_KEY = "delta.{}.path"


def delta_lineage(
    settings: Settings, run_id: str, tables: Mapping[str, TableVersion] | None = None, *, params: bool = True
) -> dict[str, int]:
    """The Delta tables' versions (and paths) on an existing run: which versions of the data it trained on.

    `tables` default: the workspace's input tables at their current versions
    (every `raw_<table>` and `features` written from the lake as it is now,
    see `io.delta_tables.input_versions`); none (no `--format delta` since the
    last ingest) logs nothing. Each table gives the tags
    `delta.<table>.version` and `delta.<table>.path`, and the param
    `delta.<table>.version` where the run has none yet (a param cannot change)
    unless `params` is off: outputs written after training (the predictions)
    are tags only. Returns table -> version logged.
    """
    from mlflow.entities import Param, RunTag

    from shelfcast.io.delta_tables import input_versions

    found = dict(input_versions(settings.workspace) if tables is None else tables)
    if not found:
        return {}
    uri = connect(settings)
    with mlflow_errors(uri):
        tracking = client(uri)
        existing = tracking.get_run(run_id).data.params
        tags = [RunTag(DELTA_VERSION_KEY.format(n), str(v.version)) for n, v in sorted(found.items())]
        tags += [RunTag(DELTA_PATH_KEY.format(n), str(v.path.resolve())) for n, v in sorted(found.items())]
        logged = [
            Param(DELTA_VERSION_KEY.format(n), str(v.version))
            for n, v in sorted(found.items())
            if params and DELTA_VERSION_KEY.format(n) not in existing
        ]
        tracking.log_batch(run_id, params=logged, tags=tags)
    return {n: v.version for n, v in found.items()}
