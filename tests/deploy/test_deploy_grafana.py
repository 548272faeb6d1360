"""deploy/grafana/mailintake.json: a dashboard Grafana imports, whose every query reads
metrics mailintake serves and is valid PromQL (promtool checks it as a recording rule)."""

from __future__ import annotations

import json
import shutil
import subprocess
from itertools import combinations
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.metric_names import known, queried
from tests.support.services import service_missing

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "mailintake.json"


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def expressions() -> list[str]:
    return [target["expr"] for panel in dashboard()["panels"] for target in panel["targets"]]


def test_the_dashboard_is_one_grafana_document() -> None:
    board = dashboard()
    assert board["uid"] == "mailintake"
    assert board["title"] == "mailintake"
    (variable,) = board["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == (
        "datasource",
        "datasource",
        "prometheus",
    )
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["title"], panel["id"]
        assert panel["description"], panel["title"]
        assert panel["targets"], panel["title"]
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24, panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
    for a, b in combinations(panels, 2):
        p, q = a["gridPos"], b["gridPos"]
        apart = (
            p["x"] + p["w"] <= q["x"]
            or q["x"] + q["w"] <= p["x"]
            or p["y"] + p["h"] <= q["y"]
            or q["y"] + q["h"] <= p["y"]
        )
        assert apart, f"{a['title']} overlaps {b['title']}"


def test_every_query_reads_metrics_mailintake_serves() -> None:
    names = known()
    read: set[str] = set()
    for expression in expressions():
        assert queried(expression) <= names, expression
        read |= queried(expression)
    assert read >= {
        "mailintake_mailboxes",  # health per state
        "mailintake_mailbox_lag_seconds",
        "mailintake_polls_running",
        "mailintake_poll_concurrency",
        "mailintake_messages_total",  # imports and failures
        "mailintake_token_requests_total",
        "mailintake_earliest_expiry_seconds",
        "mailintake_worker_heartbeat_timestamp_seconds",
    }


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    tool = shutil.which("promtool")
    if tool is None:
        service_missing("promtool (Debian package prometheus; `make services` installs it)")
        raise AssertionError("unreachable")
    rules = [
        {"record": f"dashboard:query_{n}", "expr": expr} for n, expr in enumerate(expressions())
    ]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [tool, "check", "rules", str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
