"""Spark missing or misconfigured, as a user meets it: one line naming the `spark` extra (or the bad setting) and a
non-zero exit, no traceback.

pyspark is made unimportable in the CLI's process (`sys.modules["pyspark"] = None` before `launch.main()`), as
when the extra is not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_cli
from serving import ingest_chain

from shelfcast.cli.options import engine_of
from shelfcast.data.simulator import SimConfig
from shelfcast.errors import SparkError
from shelfcast.io.spark.session import check_master
from shelfcast.settings import Settings, SparkConfig

pytestmark = pytest.mark.e2e
TINY = SimConfig(n_stores=2, n_items=2, n_days=90, seed=4)

WITHOUT_PYSPARK = (
    "import sys; sys.modules['pyspark'] = None; sys.argv = ['shelfcast', *sys.argv[1:]]; "
    "from shelfcast.launch import main; main()"
)


def without_pyspark(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`shelfcast ARGS` in a process where `import pyspark` fails, as without the extra."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SHELFCAST_")}
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_PYSPARK, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=base | {"COLUMNS": "300"} | (env or {}),
    )


def one_line_naming_the_extra(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Apache Spark is not installed"), result.stderr
    assert "the `spark` extra" in lines[0] and "Traceback" not in result.stderr


def test_the_engine_check_names_the_extra_when_pyspark_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # type: ignore[arg-type]
    for cfg, option in ((Settings(), "spark"), (Settings(spark=SparkConfig(enabled=True)), None)):
        with pytest.raises(SparkError, match=r"needs the `spark` extra") as caught:
            engine_of(cfg, option)  # type: ignore[arg-type]
        assert "\n" not in str(caught.value)
    assert engine_of(Settings(spark=SparkConfig(enabled=True)), "local") == "local"  # local never needs Spark
    assert engine_of(Settings(), None) == "local"


def test_train_and_score_on_spark_without_the_extra_say_so_in_one_line(tmp_path: Path) -> None:
    workspace = str(ingest_chain(tmp_path, TINY).workspace)  # a lake to work on: the error must be Spark's
    one_line_naming_the_extra(without_pyspark("train", "--engine", "spark", "-w", workspace, cwd=tmp_path))
    enabled = {"SHELFCAST_SPARK__ENABLED": "true"}
    one_line_naming_the_extra(without_pyspark("score", "-w", workspace, cwd=tmp_path, env=enabled))


def test_the_local_engine_does_not_need_the_extra(tmp_path: Path) -> None:
    result = without_pyspark("score", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_a_bad_spark_master_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    for command in ("train", "score"):
        bad = run_cli(
            command,
            "-w",
            str(tmp_path / "ws"),
            cwd=tmp_path,
            env={"SHELFCAST_SPARK__MASTER": "nowhere"},
            drop=("SHELFCAST_",),
        )
        assert bad.returncode == 1
        lines = bad.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: setting `spark.master`: not a Spark master: 'nowhere'")


def test_an_unreachable_standalone_master_is_named_before_any_jvm_starts() -> None:
    with pytest.raises(SparkError, match=r"the Spark master at spark://127\.0\.0\.1:1 is unreachable") as caught:
        check_master("spark://127.0.0.1:1")
    assert "\n" not in str(caught.value)
    with pytest.raises(SparkError, match="expected spark://HOST:PORT"):
        check_master("spark://nohost")
    check_master("local[2]")  # nothing to reach


def test_train_on_an_unreachable_master_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    workspace = str(ingest_chain(tmp_path, TINY).workspace)
    result = run_cli(
        "train", "--engine", "spark", "-w", workspace, cwd=tmp_path,
        env={"SHELFCAST_SPARK__MASTER": "spark://127.0.0.1:1"}, drop=("SHELFCAST_",), timeout=300,
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "spark://127.0.0.1:1 is unreachable" in lines[0], result.stderr


def test_a_spark_conf_key_without_the_spark_prefix_is_one_line_naming_it(tmp_path: Path) -> None:
    """`spark.conf` holds Spark's own keys (`spark.*`): a key without the prefix, from shelfcast.toml or the
    environment, is refused before anything runs, named in one line."""
    (tmp_path / "shelfcast.toml").write_text('[spark.conf]\n"executor.memory" = "1g"\n"spark.executor.cores" = "2"\n')
    from_file = run_cli("score", "-w", str(tmp_path / "ws"), cwd=tmp_path, drop=("SHELFCAST_",))
    (tmp_path / "shelfcast.toml").unlink()
    from_env = run_cli(
        "train", "-w", str(tmp_path / "ws"), cwd=tmp_path,
        env={"SHELFCAST_SPARK__CONF": '{"executor.cores": "2"}'}, drop=("SHELFCAST_",),
    )  # fmt: skip
    for result, key in ((from_file, "'executor.memory'"), (from_env, "'executor.cores'")):
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert lines[0] == f"error: setting `spark.conf`: Spark settings start with `spark.`, got {key}", lines
