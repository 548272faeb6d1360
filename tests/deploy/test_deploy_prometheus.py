"""deploy/prometheus: the alerting rules pass ``promtool check rules`` and their unit tests
(``promtool test rules``: input series and the alerts they raise), and query only metrics
mailintake serves."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from mailintake.observability import metrics
from mailintake.observability.exposition import HeartbeatCollector, Scrape
from tests.deploy.metric_names import known, queried
from tests.support.services import service_missing

FOLDER = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = FOLDER / "mailintake-rules.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        service_missing("promtool (Debian package prometheus; `make services` installs it)")
        raise AssertionError("unreachable")
    return subprocess.run(
        [tool, *args], cwd=FOLDER, capture_output=True, text=True, timeout=120, check=False
    )


def alerts() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_promtool_checks_the_rules() -> None:
    result = promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    result = promtool("test", "rules", "mailintake-rules.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_checks_the_example_configuration() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_says_what_to_do_and_is_unit_tested() -> None:
    tests = yaml.safe_load((FOLDER / "mailintake-rules.test.yml").read_text())["tests"]
    raised = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    for rule in alerts():
        annotations = rule["annotations"]
        assert annotations["summary"].strip(), rule["alert"]
        assert annotations["description"].strip(), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
    assert raised == {rule["alert"] for rule in alerts()}


def test_the_rules_query_only_metrics_mailintake_serves() -> None:
    names = known()
    for rule in alerts():
        assert queried(rule["expr"]) <= names, rule["alert"]
    assert set().union(*(queried(rule["expr"]) for rule in alerts())) >= {
        "mailintake_mailboxes",
        "mailintake_expiry_seconds",
        "mailintake_worker_heartbeat_timestamp_seconds",
        "mailintake_polls_running",
        "mailintake_poll_concurrency",
        "mailintake_messages_total",
    }


def test_what_mailintake_serves_passes_promtool_check_metrics() -> None:
    """Prometheus's own linter of the exposition format and of metric naming."""
    metrics.POLLS.labels("lint-check", "ok").inc()
    metrics.POLL_SECONDS.labels("lint-check").observe(0.25)
    metrics.MESSAGES.labels("lint-check", "imported").inc(2)
    metrics.TOKENS.labels("lint-check", "client_credentials", "ok").inc()
    beats = HeartbeatCollector(lambda: {"host-a:41:aaaaaaaaaaaa": 1_796_000_000.0})
    body = Scrape(metrics.REGISTRY, beats).render()
    assert b"mailintake_worker_heartbeat_timestamp_seconds{" in body
    tool = shutil.which("promtool")
    if tool is None:
        service_missing("promtool (Debian package prometheus; `make services` installs it)")
        raise AssertionError("unreachable")
    result = subprocess.run(
        [tool, "check", "metrics"], input=body, capture_output=True, timeout=120, check=False
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    assert result.stdout + result.stderr == b""  # no lint finding either
