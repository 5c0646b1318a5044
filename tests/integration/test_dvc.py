"""The repository's dvc.yaml under real DVC: `dvc repro` in a new git repository runs ingest, validate, train and
score on a tiny simulated chain and writes their figures; run again with nothing changed, nothing reruns; new data
reruns every stage, a changed training setting in shelfcast.toml only train and score; a setting shelfcast refuses or a
broken data file stops DVC at that stage with shelfcast's one-line error, and nothing downstream runs.

DVC is the optional `dvc` extra (`make test` installs it): without it the test skips with the way to install it,
except on CI (CI=true), where it fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from helpers import write_chain

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SKIP_REASON = "DVC is not installed: `uv sync --extra dvc` (make test installs it)"
STAGES = ("ingest", "validate", "train", "score")
DAYS, SERIES = 200, 8  # write_chain's tiny chain: 2 stores x 4 items
GIT_USER = ("-c", "user.name=shelfcast tests", "-c", "user.email=tests@shelfcast.invalid")


def require_dvc() -> None:
    if os.environ.get("CI") == "true":
        try:
            import dvc  # noqa: F401
        except ImportError:
            pytest.fail(f"{SKIP_REASON}; on CI the DVC test must run")
    pytest.importorskip("dvc", reason=SKIP_REASON)


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A command in the project as a user runs it, with this environment's `shelfcast` first on the PATH."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",  # no network
        "COLUMNS": "200",
    }
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=900, check=False, env=env)


def dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "dvc", *args], cwd)


def repro(project: Path) -> str:
    done = dvc("repro", cwd=project)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return output


def ran(output: str) -> set[str]:
    """The stages `dvc repro` ran; it says of every other one that it didn't change."""
    running = {s for s in STAGES if f"Running stage '{s}'" in output}
    skipped = {s for s in STAGES if f"Stage '{s}' didn't change, skipping" in output}
    assert running | skipped == set(STAGES) and not running & skipped, output[-4000:]
    return running


def figures(project: Path, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((project / "metrics" / f"{name}.json").read_text())
    return loaded


def stamps(*folders: Path) -> dict[Path, int]:
    """Every file under the folders with its modification time: a stage that reran rewrote them."""
    found = {p: p.stat().st_mtime_ns for f in folders for p in f.rglob("*") if p.is_file()}
    assert found, folders
    return found


def settings(project: Path, *, gates: str = "") -> None:
    """The README's shelfcast.toml for dvc.yaml (Deploy, Data versions), with `gates` in its `[gates]` table."""
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"```toml\n(\s*# shelfcast.toml beside dvc.yaml.*?)\n\s*```", readme, flags=re.DOTALL)
    assert found, "the README has no shelfcast.toml for dvc.yaml"
    text = textwrap.dedent(found.group(1)) + "\n"
    assert "\n[gates]\n" in text
    (project / "shelfcast.toml").write_text(text.replace("\n[gates]\n", f"\n[gates]\n{gates}\n"))


def new_data(project: Path, *, days: int) -> None:
    """A chain of `days` in data/raw, versioned with `dvc add` as the README says."""
    write_chain(project / "data" / "raw", days=days)
    added = dvc("add", "data/raw", cwd=project)
    assert added.returncode == 0, added.stdout + added.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git repository with DVC, the repository's dvc.yaml, a shelfcast.toml and a tiny chain in data/raw."""
    require_dvc()
    project = tmp_path / "project"
    project.mkdir()
    assert run(["git", "init", "-q"], project).returncode == 0
    init = dvc("init", "-q", cwd=project)
    assert init.returncode == 0, init.stderr
    for key, value in (("core.analytics", "false"), ("core.site_cache_dir", str(tmp_path / "dvc-site"))):
        assert dvc("config", key, value, cwd=project).returncode == 0
    # The repository's dvc.yaml, with one backtest fold per training (its `folds` var) to keep the test short.
    pipeline = (ROOT / "dvc.yaml").read_text()
    assert "    folds: 3 #" in pipeline
    (project / "dvc.yaml").write_text(pipeline.replace("    folds: 3 #", "    folds: 1 #"))
    settings(project)
    new_data(project, days=DAYS)
    return project


def test_dvc_repro_runs_the_pipeline_and_reruns_only_what_changed(project: Path) -> None:
    workspace = project / ".shelfcast"
    lake, predictions = workspace / "lake", workspace / "predictions"

    # First run: every stage, and their figures.
    assert ran(repro(project)) == set(STAGES)
    checked = figures(project, "validate")
    assert checked["ok"] is True and checked["problems"] == 0 and checked["quarantined"] == 0
    assert checked["tables"]["sales"]["rows"] == SERIES * DAYS
    assert checked["rows"] == sum(t["rows"] for t in checked["tables"].values())
    demand, stockout = figures(project, "train-demand"), figures(project, "train-stockout")
    assert demand["task"] == "demand" and demand["version"] == "1"
    assert {"seasonal_naive", "naive", "moving_average_28", demand["candidate"]} <= set(demand["backtest"])
    assert 0 < demand["backtest"][demand["candidate"]]["wape"] < 1
    assert demand["gates"]["passed"] is demand["promoted"]
    assert stockout["task"] == "stockout" and {"classifier", "rule"} <= set(stockout["backtest"])
    scored = figures(project, "score")
    assert scored["rows"] == SERIES * 14 and scored["series"] == SERIES and scored["cutoff"] == "2022-07-21"
    assert scored["model_version"] == (demand["version"] if demand["promoted"] else "rule-baseline")
    assert scored["stockout_version"] == (stockout["version"] if stockout["promoted"] else "rule-baseline")
    assert list(predictions.glob("scored_on=*/part.parquet"))
    status = dvc("status", cwd=project)
    assert "Data and pipelines are up to date." in status.stdout, status.stdout + status.stderr
    shown = dvc("metrics", "show", "--json", cwd=project)
    assert shown.returncode == 0 and "train-demand.json" in shown.stdout, shown.stderr
    assert run(["git", "add", "-A"], project).returncode == 0
    committed = run(["git", *GIT_USER, "commit", "-q", "-m", "sales to 2022-07-21"], project)
    assert committed.returncode == 0, committed.stdout + committed.stderr

    # Nothing changed: nothing reruns, not a file of the workspace or the figures is rewritten.
    outputs = (lake, workspace / "mlflow", workspace / "models", predictions, project / "metrics")
    before = stamps(*outputs)
    assert ran(repro(project)) == set()
    assert stamps(*outputs) == before

    # Training settings that refuse every model: train and score rerun, the lake is left as it was. The training
    # made a new registry with no champion (and an empty folder of champions), so the rule baselines score.
    lake_before, scored_before = stamps(lake), stamps(predictions)
    settings(project, gates="demand_max_wape = 0.01\nstockout_min_f1 = 0.99")
    assert ran(repro(project)) == {"train", "score"}
    assert stamps(lake) == lake_before and stamps(predictions) != scored_before
    assert "demand_max_wape: 0.01" in (project / "dvc.lock").read_text()
    demand, stockout = figures(project, "train-demand"), figures(project, "train-stockout")
    assert demand["version"] == stockout["version"] == "1" and not demand["promoted"] and not stockout["promoted"]
    assert "above the floor gate_demand_max_wape=0.01" in demand["gates"]["reason"]
    assert "below the floor gate_stockout_min_f1=0.99" in stockout["gates"]["reason"]
    scored = figures(project, "score")
    assert scored["model_version"] == scored["stockout_version"] == "rule-baseline"
    assert list((workspace / "models").iterdir()) == []

    # A setting shelfcast refuses: train stops DVC with the one-line error, score never starts.
    settings(project, gates="tolerance = -1")
    failed = failing_repro(project)
    assert "error: setting `gates.tolerance`: Input should be greater than or equal to 0" in failed.splitlines()
    assert "failed to reproduce 'train'" in failed and started(failed) == {"train"}

    # Fixed, with a week of new data: the ingest builds the lake anew and every stage downstream reruns.
    settings(project)
    new_data(project, days=DAYS + 7)
    assert ran(repro(project)) == set(STAGES)
    assert figures(project, "validate")["tables"]["sales"]["rows"] == SERIES * (DAYS + 7)
    assert figures(project, "score")["cutoff"] == "2022-07-28"
    diff = dvc("metrics", "diff", "--json", cwd=project)  # against the commit of the first version
    assert diff.returncode == 0, diff.stderr
    rows = json.loads(diff.stdout)["metrics/validate.json"]["tables.sales.rows"]
    assert (rows["old"], rows["new"]) == (SERIES * DAYS, SERIES * (DAYS + 7))

    # A data file shelfcast cannot read: the ingest stops DVC with its one-line error, nothing downstream runs.
    sales = project / "data" / "raw" / "sales.parquet"
    pl.read_parquet(sales).drop("units").write_parquet(sales)
    failed = failing_repro(project)
    problem = "error: data/raw/sales.parquet: missing required column(s) units"
    assert any(line.startswith(problem) for line in failed.splitlines()), failed[-4000:]
    assert "failed to reproduce 'ingest'" in failed and started(failed) == {"ingest"}


def failing_repro(project: Path) -> str:
    """The output of a `dvc repro` that must fail, on a user's mistake: no traceback."""
    done = dvc("repro", cwd=project)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    return output


def started(output: str) -> set[str]:
    """The stages a failed `dvc repro` started, the one that failed among them."""
    return {s for s in STAGES if f"Running stage '{s}'" in output}
