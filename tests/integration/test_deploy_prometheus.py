"""The Prometheus deployment (deploy/prometheus): the configs and rules are valid for `promtool`, the rules' unit
tests pass, every alert has a test where it fires and one where it does not, and every metric the rules read is
one `shelfcast serve` or `shelfcast stream consume --metrics-port` exports (or is marked `# needs metric: NAME` in
alerts.yml, not exported yet), with the labels the rules match and group by.

`promtool` is Debian's (`make promtool`, which `make test` runs, installs the `prometheus` package where it can);
without it the promtool tests skip with the way to install it, except on CI (CI=true), where they fail."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from helpers import REDIS_URL, redis_prefix
from prometheus_client.parser import text_string_to_metric_families

from shelfcast.service.app import create_app
from shelfcast.settings import Settings

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
CONFIGS = ("prometheus.yml", "prometheus.local.yml")
SKIP_REASON = "promtool is not installed: `make promtool` (or `apt-get install prometheus`; make test does it)"
# Series Prometheus makes itself for every target, not the service.
PROMETHEUS_OWN = {"up"}
NEEDS_METRIC = re.compile(r"^\s*#\s*needs metric:\s*([a-zA-Z_:][a-zA-Z0-9_:]*)", flags=re.MULTILINE)
# PromQL words that are not metric names (aggregation modifiers, set and vector-matching operators).
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SKIP_REASON}; on CI the Prometheus rule tests must run")
        pytest.skip(SKIP_REASON)
    return found


def run_promtool(*args: str) -> str:
    """`promtool ARGS` in deploy/prometheus; its output, asserting it exited 0 (the output is the failure's text)."""
    done = subprocess.run(
        [promtool(), *args], cwd=DEPLOY, capture_output=True, text=True, timeout=120, check=False, env=os.environ
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(args)} exited {done.returncode}:\n{output}"
    return output


def load(name: str) -> Any:
    return yaml.safe_load((DEPLOY / name).read_text())


def alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for group in load("alerts.yml")["groups"] for rule in group["rules"] if "alert" in rule}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are not functions, keywords, label names (in
    matchers or grouping clauses) or numbers."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals (matcher values, label_replace arguments)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery windows
    text = re.sub(r"\boffset\s+-?\w+|@\s*(?:start\(\)|end\(\)|[\d.]+)", " ", text)  # offset and @ modifiers
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)  # label lists
    text = re.sub(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b", " ", text)  # numbers
    found = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("(") or match.group() in KEYWORDS:
            continue  # a function call, or an operator word
        found.add(match.group())
    return found


def exported_names(exposition: str) -> set[str]:
    """The series names of a Prometheus text exposition, from its TYPE lines (so a family with no sample yet, a
    counter of 5xx before the first one, counts): a histogram's `_bucket`, `_count` and `_sum`, a counter's
    `_total`."""
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", exposition, flags=re.MULTILINE):
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
        elif kind == "summary":
            names |= {name, f"{name}_count", f"{name}_sum"}
        elif kind == "counter" and not name.endswith("_total"):
            names.add(f"{name}_total")
        else:
            names.add(name)
    return names


@pytest.mark.parametrize("config", CONFIGS)
def test_the_config_is_valid(config: str) -> None:
    output = run_promtool("check", "config", config)
    assert "SUCCESS: 1 rule files found" in output and f"SUCCESS: {len(alerts())} rules found" in output, output


def test_the_rules_are_valid() -> None:
    output = run_promtool("check", "rules", "alerts.yml")
    assert f"SUCCESS: {len(alerts())} rules found" in output, output


def test_the_rules_unit_tests_pass() -> None:
    output = run_promtool("test", "rules", "alerts_test.yml")
    assert "SUCCESS" in output, output


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_does_not() -> None:
    rules = alerts()
    cases = [case for test in load("alerts_test.yml")["tests"] for case in test["alert_rule_test"]]
    unknown = {case["alertname"] for case in cases} - set(rules)
    # promtool passes a case of an alert that does not exist as long as it expects none: a typo would test nothing.
    assert not unknown, f"alerts_test.yml tests alerts alerts.yml does not have: {sorted(unknown)}"
    fires = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert not set(rules) - fires, f"alerts without a test where they fire: {sorted(set(rules) - fires)}"
    assert not set(rules) - quiet, f"alerts without a test where they do not fire: {sorted(set(rules) - quiet)}"
    for case in cases:
        for expected in case.get("exp_alerts") or []:
            # the firing cases pin the whole alert: its severity and both annotations
            assert "severity" in expected.get("exp_labels", {}), case
            assert set(expected.get("exp_annotations", {})) == {"summary", "description"}, case


def test_every_alert_waits_and_says_how_bad_and_what() -> None:
    for name, rule in alerts().items():
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{name}: no `for:` duration"
        assert rule.get("labels", {}).get("severity") in ("critical", "warning"), name
        annotations = rule.get("annotations", {})
        assert annotations.get("summary") and annotations.get("description"), name


def test_the_compose_and_local_configs_differ_in_their_targets_only() -> None:
    def without_targets(config: dict[str, Any]) -> dict[str, Any]:
        for job in config["scrape_configs"]:
            job.pop("static_configs", None)
            job.pop("dns_sd_configs", None)
        return config

    compose, local = (load(name) for name in CONFIGS)
    jobs = [job["job_name"] for job in compose["scrape_configs"]]
    assert jobs == ["shelfcast-api", "shelfcast-consumer"]
    # ShelfcastTargetDown watches `up{job=~"shelfcast-.*"}`
    assert all(re.fullmatch(r"shelfcast-.*", job) for job in jobs)
    targets = [target for job in local["scrape_configs"] for c in job["static_configs"] for target in c["targets"]]
    assert all(target.startswith("localhost:") for target in targets), targets
    assert without_targets(compose) == without_targets(local)


def _stream_exposition() -> str:
    """A consumer's /metrics (`stream consume --metrics-port`): its collector over a stream on the real Redis
    with the consumer group made (so the group's gauges have series)."""
    from prometheus_client import CollectorRegistry, generate_latest

    from shelfcast.jobs.stream import open_live
    from shelfcast.jobs.stream_metrics import StreamCollector
    from shelfcast.settings import LiveConfig

    prefixes = redis_prefix("prometheus")
    prefix = next(prefixes)
    try:
        settings = Settings(redis_url=REDIS_URL, live=LiveConfig(prefix=prefix))
        open_live(settings).stream.ensure_group()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StreamCollector(settings))
        return generate_latest(registry).decode()
    finally:
        next(prefixes, None)  # its keys deleted


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory) -> str:
    """What Prometheus scrapes: the app's real /metrics, an empty workspace but for a monitoring summary of one
    task (so the monitoring gauges have series too), after a request answered and one refused (so the request
    counters have theirs); then a consumer's stream metrics."""
    workspace = tmp_path_factory.mktemp("prometheus") / "ws"
    (workspace / "monitoring").mkdir(parents=True)
    demand = {
        "model_version": "1",
        "drift_alarm": False,
        "degraded": False,
        "features": {"lag_7": {"effect": 0.05}},
        "prediction_drift": {"effect": 0.01},
        "live_metric": "wape",
        "live_value": 0.3,
        "backtest_value": 0.28,
        "live_relative": 0.9,
    }
    summary = {"schema_version": 1, "created_at": "2026-11-23T03:00:00+00:00", "tasks": {"demand": demand}}
    (workspace / "monitoring" / "latest.json").write_text(json.dumps(summary))
    with TestClient(create_app(Settings(workspace=workspace)), raise_server_exceptions=False) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/no/such/page").status_code == 404
        answer = client.get("/metrics")
    assert answer.status_code == 200, answer.text
    return answer.text + _stream_exposition()


def test_every_metric_the_rules_read_is_exported_by_the_service(exposition: str) -> None:
    """The names in the rules' expressions against the app's /metrics; a name not exported must be marked
    `# needs metric`, and a marked one the service now exports must lose its mark."""
    exported = exported_names(exposition)
    # the exposition was read right: the histogram's and a labelled counter's series, the monitoring gauges
    assert {"shelfcast_request_seconds_bucket", "shelfcast_request_errors_total", "shelfcast_drift_alarm"} <= exported

    used = {name for rule in alerts().values() for name in metric_names(rule["expr"])}
    assert used and all(re.fullmatch(r"up|shelfcast_[a-z0-9_]+", name) for name in used), used
    needed = set(NEEDS_METRIC.findall((DEPLOY / "alerts.yml").read_text()))
    unknown = used - exported - PROMETHEUS_OWN - needed
    assert not unknown, f"the rules read metrics /metrics does not export (nor marked `# needs metric`): {unknown}"
    assert needed <= used, f"`# needs metric` marks names no rule reads: {needed - used}"
    now_exported = needed & exported
    assert not now_exported, f"the service exports {now_exported} now: remove their `# needs metric` mark"


TARGET_LABELS = {"job", "instance"}  # labels Prometheus adds to every scraped series


def series_labels(exposition: str) -> dict[str, set[str]]:
    """Each series name's labels in an exposition (names with a sample only), and `up`'s (none of its own)."""
    labels: dict[str, set[str]] = {"up": set()}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return labels


def label_problems(expr: str, labels: dict[str, set[str]]) -> list[str]:
    """Labels `expr` matches on or groups by that none of its series has (a misspelt one selects nothing)."""
    problems = []
    names = metric_names(expr)
    for metric, matchers in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}", expr):
        named = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
        if not named <= labels[metric] | TARGET_LABELS:
            problems.append(f"{metric} has no label {sorted(named - labels[metric] - TARGET_LABELS)}")
    known = set().union(*(labels[metric] for metric in names)) | TARGET_LABELS
    for clause in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        grouped = {label.strip() for label in clause.split(",") if label.strip()}
        if not grouped <= known:
            problems.append(f"no series of {sorted(names)} has the labels {sorted(grouped - known)}")
    return problems


def test_the_rules_match_and_group_by_labels_the_series_have(exposition: str) -> None:
    """A label misspelt in a matcher or a `by (...)` gives an empty result, not an error: every label a rule
    names must be one of its series' (or a target label Prometheus adds, or a histogram's `le`)."""
    labels = series_labels(exposition)
    checked = 0
    for name, rule in alerts().items():
        if not metric_names(rule["expr"]) <= set(labels):
            continue
        checked += 1
        assert not label_problems(rule["expr"], labels), (name, label_problems(rule["expr"], labels))
    assert checked == len(alerts()), checked


def test_metric_names_are_read_from_promql() -> None:
    expr = """histogram_quantile(0.99, sum by (route, le) (rate(a_bucket{route="/x", le!="1"}[5m]))) > 0.005
      and on (route) sum by (route) (rate(b_count[5m] offset 1m)) > 0.2
      or time() - max without (instance) (c @ end()) > 36 * 3600 unless d{kind="e f"} == bool 1e3"""
    assert metric_names(expr) == {"a_bucket", "b_count", "c", "d"}


# --- Grafana ----------------------------------------------------------------------------------------------------
GRAFANA = DEPLOY.parent / "grafana"


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted((GRAFANA / "dashboards").glob("*.json"))}


def queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, PromQL) of every panel's targets."""
    return [
        (name, panel["title"], target["expr"])
        for name, board in dashboards().items()
        for panel in board["panels"]
        for target in panel["targets"]
    ]


def test_the_dashboards_are_provisioned_on_the_prometheus_datasource() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "shelfcast.yml").read_text())["providers"][0]
    compose = yaml.safe_load((DEPLOY.parent / "compose.yaml").read_text())["services"]["grafana"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in compose["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in compose["volumes"]
    boards = dashboards()
    assert set(boards) == {"service", "models", "live"}
    assert len({board["uid"] for board in boards.values()}) == 3
    for name, board in boards.items():
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == source["uid"], (name, panel["title"])
            assert panel["targets"] and all(t["datasource"]["uid"] == source["uid"] for t in panel["targets"])
            assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), (name, panel["title"])


def test_every_dashboard_query_parses_as_promql(tmp_path: Path) -> None:
    """promtool parses every panel's query (as a recording rule's expression: it has no command for one query)."""
    rules = [{"record": f"dashboard:{name}_{i}", "expr": expr} for i, (name, _, expr) in enumerate(queries())]
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in run_promtool("check", "rules", str(path))
    path.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [{"record": "x:y", "expr": "sum by (a (b)"}]}]}))
    broken = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert broken.returncode != 0  # the check would catch a broken query


def test_every_metric_and_label_the_dashboards_read_is_exported(exposition: str) -> None:
    """Against real scrapes of the API and of a stream worker: a panel on a misspelt metric or label stays empty."""
    exported = exported_names(exposition) | PROMETHEUS_OWN
    labels = series_labels(exposition)
    checked = 0
    for name, title, expr in queries():
        names = metric_names(expr)
        assert names and names <= exported, f"{name} / {title}: not exported {sorted(names - exported)}"
        if names <= set(labels):  # label names are known where the scrape has a sample
            checked += 1
            assert not label_problems(expr, labels), (name, title, label_problems(expr, labels))
    assert checked >= len(queries()) // 2, checked
