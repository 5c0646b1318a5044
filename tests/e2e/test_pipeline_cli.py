"""`shelfcast pipeline run` through Prefect 3 for real (its temporary local server, ~20 s), and the one-line
errors of `pipeline run | schedule`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_cli

from shelfcast.data.simulator import SimConfig, simulate

pytestmark = pytest.mark.e2e


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd, env=env, drop=("PREFECT_", "MLFLOW_"), columns=250, timeout=900)


def test_pipeline_run_goes_through_prefect_and_links_the_mlflow_runs(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    # The chain of tests/integration/test_pipeline.py: both models pass their gates on it.
    sim = simulate(SimConfig(n_stores=4, n_items=10, n_days=300, seed=1))
    for name, frame in sim.tables().items():
        frame.write_parquet(raw / f"{name}.parquet")
    (raw / "exogenous_roles.json").write_text(json.dumps(sim.exogenous_roles))

    result = run("pipeline", "run", "raw", "--folds", "2", "--horizon", "7", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for step in ("ingest", "validate", "features", "train demand", "train stockout", "score"):
        assert re.search(rf"│ {step}\s+│", result.stdout), step
    assert "280 rows" in result.stdout  # 40 series x 7 days
    assert re.search(r"│ compact live\s+│ skipped: ", result.stdout)  # no live store bound to this workspace
    found = re.search(r"Prefect flow run\s+│ ([0-9a-f-]{36})", result.stdout)
    assert found, result.stdout
    flow_run_id = found.group(1)
    # Prefect's temporary server kept its database in the workspace, and logged each step as a task run.
    assert (tmp_path / ".shelfcast" / "prefect").is_dir()
    for step in ("ingest", "train demand", "promote demand", "score"):
        assert f"prefect.task_runs: {step}" in result.stderr, step
    assert "Successfully registered model" not in result.stderr + result.stdout  # MLflow quiet without -v

    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / '.shelfcast' / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    for name in ("shelfcast-demand", "shelfcast-stockout"):
        champion = client.get_model_version_by_alias(name, "champion")
        run_tags = client.get_run(champion.run_id).data.tags
        assert run_tags["prefect.flow_run_id"] == flow_run_id, name
        assert f"MLflow run {champion.run_id}" in result.stderr  # the Prefect log names the MLflow run
    assert list((tmp_path / ".shelfcast" / "predictions").glob("scored_on=*/part.parquet"))


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["pipeline", "run", "missing"], {}, "missing does not exist"),
        (["pipeline", "run", "--tasks", "demand,price"], {}, "`--tasks` takes demand and/or stockout"),
        (["pipeline", "schedule", "--cron", "61 * * * *"], {}, "`--cron` '61 * * * *' is not a valid cron"),
        (["pipeline", "schedule", "--cron", "0 3 * * *"], {}, "a schedule needs a Prefect server: start one with"),
        (["pipeline", "schedule", "--cron", "0 3 * * *", "--monitor", "--compact"], {}, "give one of them"),
    ],
)
def test_pipeline_mistakes_are_one_line_errors(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    result = run(*args, cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_pipeline_schedule_registers_a_cron_deployment_on_a_prefect_server(tmp_path: Path) -> None:
    import time
    import urllib.request

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect-server"), "COLUMNS": "200"}
    prefect = Path(sys.executable).with_name("prefect")
    server = subprocess.Popen(
        [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}/api"
    served: subprocess.Popen[str] | None = None
    monitoring: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the Prefect server did not start"
                time.sleep(1)
        served = subprocess.Popen(
            [sys.executable, "-m", "shelfcast", "pipeline", "schedule", "--cron", "0 3 * * *", "--folds", "2"],
            cwd=tmp_path,
            env={**env, "SHELFCAST_PREFECT_API_URL": api},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deployments: list[dict[str, object]] = []
        while not deployments and time.monotonic() < deadline + 60:
            time.sleep(1)
            assert served.poll() is None, served.communicate()[1][-2000:]
            request = urllib.request.Request(
                f"{api}/deployments/filter", data=b"{}", headers={"content-type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                deployments = json.loads(response.read())
        assert [d["name"] for d in deployments] == ["shelfcast-daily"]
        deployment = deployments[0]
        assert [s["schedule"]["cron"] for s in deployment["schedules"]] == ["0 3 * * *"]  # type: ignore[attr-defined, index]
        parameters = deployment["parameters"]
        assert parameters["workspace"] == str((tmp_path / ".shelfcast").resolve())  # type: ignore[index]
        assert parameters["folds"] == 2 and parameters["tasks"] == ["demand", "stockout"]  # type: ignore[index]
        # A scheduled run passes these to the flow by name: they must be its parameters.
        from shelfcast.workflows.flows import pipeline_flow

        pipeline_flow.validate_parameters(parameters)  # type: ignore[arg-type]

        # The monitoring flow on its own schedule, against the same server.
        monitoring = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shelfcast",
                "pipeline",
                "schedule",
                "--cron",
                "0 4 * * *",
                "--monitor",
                "--name",
                "shelfcast-monitor-daily",
            ],
            cwd=tmp_path,
            env={**env, "SHELFCAST_PREFECT_API_URL": api},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        while len(deployments) < 2 and time.monotonic() < deadline + 120:
            time.sleep(1)
            assert monitoring.poll() is None, monitoring.communicate()[1][-2000:]
            request = urllib.request.Request(
                f"{api}/deployments/filter", data=b"{}", headers={"content-type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                deployments = json.loads(response.read())
        watch = next(d for d in deployments if d["name"] == "shelfcast-monitor-daily")
        assert [s["schedule"]["cron"] for s in watch["schedules"]] == ["0 4 * * *"]  # type: ignore[attr-defined, index]
        assert watch["parameters"] == {"workspace": str((tmp_path / ".shelfcast").resolve()), "act": True}
    finally:
        for process in (served, monitoring, server):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
