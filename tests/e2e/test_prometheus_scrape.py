"""A real Prometheus (Debian's server, from `make promtool`) scraping a real `shelfcast serve` with the deployed
rules: the target is up, the request counters it stores move with the requests made, every rule evaluates
without error on the scraped series, and a service answering from the rule baseline fires its alert (the deployed
rules with their waits cut to seconds).

Without the server the test skips with the way to install it, except on CI (CI=true), where it fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from serving import call, free_port, ingest_chain, serve_process

pytestmark = pytest.mark.e2e

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
PROMETHEUS = "prometheus"
SKIP_REASON = "the Prometheus server is not installed: `make promtool` (or `apt-get install prometheus`)"
IDS = {"store_id": "S001", "item_id": "I0001"}


@pytest.fixture
def binary() -> str:
    """The server's path, looked for before the service starts (a skip costs nothing)."""
    found = shutil.which(PROMETHEUS)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SKIP_REASON}; on CI the Prometheus tests must run")
        pytest.skip(SKIP_REASON)
    return found


@pytest.fixture
def service(tmp_path: Path) -> Iterator[str]:
    """`shelfcast serve` on a free loopback port over a small ingested chain without models (the rule baseline
    answers), so no training is needed."""
    settings = ingest_chain(tmp_path)
    yield from serve_process(settings.workspace)


WAIT = "2s"  # the rules' `for` in this test: an alert fires within it, not after minutes


def quick_rules(path: Path) -> Path:
    """The deployed alerts.yml with every alert's wait (`for`) cut to `WAIT`: the same expressions and labels."""
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = WAIT
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return path


def config_for(service: str, consumer_port: int, rules: Path) -> dict[str, Any]:
    """deploy/prometheus/prometheus.local.yml with the service's port, a consumer port nothing listens on, the
    deployed rules (`quick_rules`), and a scrape and an evaluation every second."""
    config = yaml.safe_load((DEPLOY / "prometheus.local.yml").read_text())
    config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(rules)]
    targets = {
        "shelfcast-api": [urllib.parse.urlsplit(service).netloc],
        "shelfcast-consumer": [f"127.0.0.1:{consumer_port}"],
    }
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": targets[job["job_name"]]}]
    return config


def api(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=10) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return body["data"]


def wait_for(what: str, check: Callable[[], Any], *, seconds: float = 60, log: Path | None = None) -> Any:
    """`check()` once it is truthy (errors while Prometheus starts count as not yet); fails after `seconds`."""
    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        try:
            if found := check():
                return found
        except OSError as exc:
            last = exc
        time.sleep(0.3)
    tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
    pytest.fail(f"{what} not within {seconds:.0f} s (last error: {last})\n{tail}")


@pytest.fixture
def prometheus(binary: str, service: str, tmp_path: Path) -> Iterator[str]:
    """The Prometheus server on a free loopback port scraping `service`; stopped by its PID afterwards."""
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(config_for(service, free_port(), quick_rules(tmp_path / "alerts.yml"))))
    port = free_port()
    log = tmp_path / "prometheus.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for("Prometheus ready", lambda: call(f"{base}/-/ready")[0] == 200 or process.poll() is not None, log=log)
        assert process.poll() is None, log.read_text(errors="replace")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def predict_requests(base: str) -> float | None:
    """Prometheus's latest value of the service's 200s on POST /predict; None before the first scrape of one."""
    query = 'sum(shelfcast_requests_total{job="shelfcast-api", route="/predict", status="200"})'
    result = api(base, "/api/v1/query", query=query)["result"]
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_the_service_and_evaluates_the_rules(prometheus: str, service: str) -> None:
    def health() -> dict[str, str] | None:
        targets = api(prometheus, "/api/v1/targets")["activeTargets"]
        found = {t["labels"]["job"]: t["health"] for t in targets}
        return found if found.get("shelfcast-api") == "up" and found.get("shelfcast-consumer") == "down" else None

    assert wait_for("the service's target up", health) == {"shelfcast-api": "up", "shelfcast-consumer": "down"}

    # the request counter Prometheus stores moves with the requests made
    assert call(f"{service}/predict", IDS)[0] == 200
    before = wait_for("a /predict counted", lambda: predict_requests(prometheus))
    for _ in range(5):
        status, body = call(f"{service}/predict", IDS)
        assert status == 200 and body["fallback"] is True, body
    wait_for("5 more /predict counted", lambda: predict_requests(prometheus) == before + 5)

    # every deployed rule evaluates on the real series (a wrong label or function would show as an error)
    def evaluated() -> list[dict[str, Any]] | None:
        rules = [rule for group in api(prometheus, "/api/v1/rules")["groups"] for rule in group["rules"]]
        return rules if rules and all(rule["health"] != "unknown" for rule in rules) else None

    rules = wait_for("every rule evaluated", evaluated)
    deployed = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    assert {rule["name"] for rule in rules} == {r["alert"] for g in deployed["groups"] for r in g["rules"]}
    assert [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"] == []

    # without a model the service serves the rule baseline: that alert fires (after its wait, cut to WAIT here),
    # and so does the down consumer's; no other
    def firing() -> set[tuple[str, str]] | None:
        alerts = api(prometheus, "/api/v1/alerts")["alerts"]
        found = {(a["labels"]["alertname"], a["state"]) for a in alerts}
        return found if found and all(state == "firing" for _, state in found) and len(found) >= 2 else None

    assert wait_for("the fallback alert firing", firing) == {
        ("ShelfcastServingRuleBaseline", "firing"),
        ("ShelfcastTargetDown", "firing"),
    }
