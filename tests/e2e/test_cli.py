"""The CLI as a user runs it: a real process, exit codes and what it prints."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest
from helpers import run_cli, write
from serving import check_every_endpoint, serve_process

pytestmark = pytest.mark.e2e
COMMANDS = [
    "ingest",
    "validate",
    "info",
    "quarantine",
    "simulate",
    "demo",
    "backtest",
    "forecast",
    "stockout",
    "score",
    "train",
    "models",
    "pipeline",
    "serve",
    "dashboard",
    "monitor",
    "retrain",
    "events",
    "evaluate-policy",
    "stream",
    "stream compact",
    "stack",
    "stack up",
]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd)


def test_the_help_list_covers_every_command() -> None:
    import typer

    from shelfcast.cli import app

    assert sorted({c.split()[0] for c in COMMANDS}) == sorted(typer.main.get_command(app).commands)


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_on_every_command(command: str | None) -> None:
    # In-process: a process per command would spend most of its time importing.
    from typer.testing import CliRunner

    from shelfcast.cli import app

    result = CliRunner().invoke(app, [*(command.split() if command else []), "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout


def test_demo_runs_the_whole_loop_and_can_be_rerun(tmp_path: Path) -> None:
    # A chain on which both models pass their gates (fixed seeds).
    args = ("demo", "--stores", "4", "--items", "10", "--days", "300", "--seed", "1")
    for version in ("v1", "v2"):
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        text = " ".join(result.stdout.split())
        assert "all tables pass" in text
        assert "quarantined 4" in text  # the planted bad rows, replaced (not doubled) on a re-run
        assert "invalid_units 1, negative_units 1, invalid_date 1, unknown_store 1" in text
        for line in ("demand (", "stockout (classifier)"):
            assert re.search(rf"{re.escape(line)}.*passed │ {version}", text), (line, text)
        assert re.search(r"scored 40 series x 14 days from \S+ with shelfcast-demand " + version, text), text
        assert "stockout alerts; predictions in .shelfcast/predictions" in text
        assert "mlflow ui --backend-store-uri sqlite:///" in text
        assert "shelfcast dashboard -w" in text and "http://127.0.0.1:8501" in text
    assert (tmp_path / ".shelfcast" / "lake" / "manifest.json").exists()
    info = run("info", cwd=tmp_path)
    assert info.returncode == 0 and "sales" in info.stdout
    assert run("validate", cwd=tmp_path).returncode == 0
    score = run("score", cwd=tmp_path)  # with the champions the demo made
    assert score.returncode == 0, score.stderr
    assert "shelfcast-demand, version 2" in " ".join(score.stdout.split())
    assert "shelfcast serve -w" in text
    server = serve_process(tmp_path / ".shelfcast")  # what the demo's summary says to run next
    try:
        check_every_endpoint(next(server), version="2")
    finally:
        server.close()
    _live_commands_of_the_summary(result.stdout, tmp_path)


def _live_commands_of_the_summary(stdout: str, cwd: Path) -> None:
    """The summary's live-sales commands, run as printed (under a key prefix of their own), then served live."""
    import uuid

    import redis
    from serving import call

    lines = [" ".join(line.split()) for line in stdout.splitlines()]
    commands = [
        line.removeprefix("uv run shelfcast ").split() for line in lines if line.startswith("uv run shelfcast stream")
    ]
    assert [c[1] for c in commands] == ["seed", "produce", "consume", "status"], commands
    prefix = f"shelfcast-e2e-{uuid.uuid4().hex[:8]}"
    env = {"SHELFCAST_LIVE__PREFIX": prefix}
    try:
        for args in commands:
            done = run_cli(*args, cwd=cwd, env=env)
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        assert "applied" in done.stdout
        assert any(line.startswith("SHELFCAST_LIVE__SERVE=true shelfcast serve") for line in lines)
        server = serve_process(cwd / ".shelfcast", env=env | {"SHELFCAST_LIVE__SERVE": "true"})
        try:
            base = next(server)
            deadline = time.monotonic() + 120
            while True:
                status, body = call(f"{base}/predict", {"store_id": "S001", "item_id": "I0001"})
                assert status == 200, body
                if body["source"] == "live" or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert body["source"] == "live" and not body["stale"], body
        finally:
            server.close()
    finally:
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


def test_demo_without_models_only_ingests(tmp_path: Path) -> None:
    result = run("demo", "--stores", "3", "--items", "8", "--days", "120", "--no-models", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "all tables pass" in result.stdout and "Models" not in result.stdout
    assert not (tmp_path / ".shelfcast" / "mlflow").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "missing.csv", "--source", "store-item"], "missing.csv: file not found"),
        (["ingest", "x.csv", "--source", "nope"], "unknown source 'nope'; expected one of"),
        (["ingest", "bad.csv", "--source", "store-item"], "bad.csv: missing required column(s) store, item, sales"),
        (["ingest", "x.csv", "--source", "generic"], "needs a column mapping"),
        (["ingest", "x.csv", "--source", "store-item", "--map", "a=b"], "only apply to --source generic"),
        (["ingest", "amb.csv", "--source", "store-item"], "pass --date-format %d/%m/%Y or --date-format %m/%d/%Y"),
        (["simulate", "--stores", "0"], "`n_stores`: Input should be greater than 0"),
        (["simulate", "--drift", "sideways"], "`drift.kind`"),
        (["validate"], "no workspace at .shelfcast"),
    ],
)
def test_user_mistakes_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    write(tmp_path / "bad.csv", "date,units\n2024-01-01,1\n")
    write(tmp_path / "x.csv", "date,store,item,sales\n2024-01-01,1,1,1\n")
    write(tmp_path / "amb.csv", "date,store,item,sales\n03/04/2024,1,1,1\n05/06/2024,1,1,1\n")
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_ingest_with_date_format_resolves_ambiguity(tmp_path: Path) -> None:
    write(tmp_path / "amb.csv", "date,store,item,sales\n03/04/2024,1,1,1\n05/06/2024,1,1,-1\n")
    result = run("ingest", "amb.csv", "--source", "store-item", "--date-format", "%d/%m/%Y", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "negative_units 1" in result.stdout
    quarantine = run("quarantine", "--rule", "negative_units", cwd=tmp_path)
    assert "amb.csv" in quarantine.stdout and "Quarantine (1 rows)" in quarantine.stdout


def test_simulate_writes_the_layouts(tmp_path: Path) -> None:
    result = run(
        "simulate",
        "--out",
        "sim",
        "--stores",
        "2",
        "--items",
        "5",
        "--days",
        "60",
        "--layout",
        "canonical",
        "--layout",
        "branch-csv",
        "--layout",
        "wide",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "sim" / "canonical" / "sales.parquet").exists()
    assert (tmp_path / "sim" / "branch-csv" / "stock_movement.csv").exists()
    assert (tmp_path / "sim" / "wide" / "daily.csv").exists()


@pytest.fixture(scope="module")
def small_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lake")
    result = run("demo", "--stores", "2", "--items", "6", "--days", "300", "--no-models", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder


def test_backtest_prints_every_model_and_writes_json(small_lake: Path) -> None:
    result = run("backtest", "--task", "demand", "--folds", "2", "--horizon", "7", "--json", "bt.json", cwd=small_lake)
    assert result.returncode == 0, result.stderr
    for name in ("gbm", "seasonal_naive", "moving_average_28", "naive"):
        assert name in result.stdout
    payload = json.loads((small_lake / "bt.json").read_text())
    assert payload["task"] == "demand" and len(payload["cutoffs"]) == 2
    assert {m["model"] for m in payload["metrics"]} >= {"gbm", "seasonal_naive"}


def test_validate_writes_its_figures_as_json(small_lake: Path) -> None:
    result = run("validate", "--json", "metrics/validate.json", cwd=small_lake)
    assert result.returncode == 0, result.stderr
    figures = json.loads((small_lake / "metrics" / "validate.json").read_text())
    assert figures["ok"] is True and figures["problems"] == 0 and figures["quarantined"] == 4  # the demo's bad rows
    assert figures["rows"] == sum(t["rows"] for t in figures["tables"].values())
    sales = figures["tables"]["sales"]
    assert set(sales) == {"rows", "problems", "series_with_gaps", "missing_periods"} and sales["rows"] > 0
    folder = run("validate", "--json", "metrics", cwd=small_lake)
    assert folder.returncode == 1 and folder.stderr.strip() == "error: cannot write metrics (is a directory)"


def test_forecast_writes_one_row_per_date_store_item(small_lake: Path) -> None:
    result = run("forecast", "--cutoff", "2022-10-01", "--horizon", "7", "--out", "fc.parquet", cwd=small_lake)
    assert result.returncode == 0, result.stderr
    frame = pl.read_parquet(small_lake / "fc.parquet")
    assert frame.height == 12 * 7
    assert {"date", "store_id", "item_id", "forecast", "p10", "p50", "p90"} <= set(frame.columns)
    assert frame.select("date", "store_id", "item_id").is_unique().all()
    assert (frame["p10"] <= frame["p90"]).all()
    # The decision: printed with every window's scores, and kept in the file's metadata.
    decision = json.loads(pl.read_parquet_metadata(small_lake / "fc.parquet")["shelfcast.selection"])
    assert frame["model"].unique().to_list() == [decision["candidate"]]
    assert len(decision["cutoffs"]) == 3 and set(decision["per_window"]["gbm"]) == {"1", "2", "3"}
    assert f"Selection by {decision['metric']} on 3 window(s)" in result.stdout
    assert f"chosen: {decision['candidate']}" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["forecast", "--cutoff", "yesterday", "--out", "x.parquet"], "`--cutoff` must be a date like 2024-01-31"),
        (["forecast", "--cutoff", "2031-01-01", "--out", "x.parquet"], "must fall after"),
        (["backtest", "--task", "margin"], "`--task` must be demand or stockout, got 'margin'"),
        (["stockout", "--min-hours", "30", "--out", "x.parquet"], "`--min-hours` must be in (0, 24], got 30.0"),
        (["train", "--task", "stockout", "--min-hours", "0"], "`--min-hours` must be in (0, 24], got 0.0"),
        (["train", "--task", "stockout", "--min-hours", "25"], "`--min-hours` must be in (0, 24], got 25.0"),
        (["train", "--min-hours", "12"], "`--min-hours` only applies to --task stockout"),
        (["stockout", "--cutoff", "2022-13-01", "--out", "x.parquet"], "`--cutoff` must be a date like"),
        (["backtest", "--folds", "40", "--horizon", "28"], "not enough history for 40 window"),
    ],
)
def test_modelling_mistakes_are_one_line_errors(small_lake: Path, args: list[str], message: str) -> None:
    result = run(*args, cwd=small_lake)
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_stockout_writes_risk_label_and_reorder_advice(small_lake: Path) -> None:
    result = run("stockout", "--cutoff", "2022-10-01", "--out", "so.parquet", cwd=small_lake)
    assert result.returncode == 0, result.stderr
    frame = pl.read_parquet(small_lake / "so.parquet")
    assert frame.height == 12
    assert frame.select("store_id", "item_id").is_unique().all()
    assert {"risk", "label", "threshold", "safety_stock", "reorder_point", "order_up_to", "order_quantity"} <= set(
        frame.columns
    )
    assert frame["risk"].is_between(0, 1).all()
    assert (frame["label"] == (frame["risk"] >= frame["threshold"]).cast(pl.Int8)).all()


def test_stockout_backtest_compares_the_classifier_with_the_rule(small_lake: Path) -> None:
    result = run("backtest", "--task", "stockout", "--folds", "2", "--json", "so.json", cwd=small_lake)
    assert result.returncode == 0, result.stderr
    assert "classifier" in result.stdout and "rule" in result.stdout
    payload = json.loads((small_lake / "so.json").read_text())
    # The simulated lake knows on-hand stock, so the demand-vs-stock risk is scored too.
    assert {m["model"] for m in payload["metrics"]} == {"classifier", "rule", "quantile_risk"}
