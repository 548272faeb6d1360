"""docs/deployment.md keeps up with deploy/: every metric served and every alert is in its
tables, and its links lead to files and headings that exist."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from mailintake.observability.metrics import REGISTRY
from tests.deploy.metric_names import FLEET

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "deployment.md"


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings."""
    found = set()
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def test_every_metric_and_alert_is_described() -> None:
    text = PAGE.read_text()
    described = set(re.findall(r"^\| `(mailintake_[a-z_]+)", text, re.MULTILINE))
    served = {family.name for family in REGISTRY.collect()}
    served = {f"{n}_total" if f"{n}_total" in text else n for n in served} | FLEET
    assert described == served
    rules = yaml.safe_load((ROOT / "deploy/prometheus/mailintake-rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert f"`{rule['alert']}`" in text, rule["alert"]


def test_links_lead_somewhere() -> None:
    for target in re.findall(r"\]\(\s*([^)\s]+)\s*\)", PAGE.read_text()):
        if target.startswith("http"):
            continue
        file, _, anchor = target.partition("#")
        path = (PAGE.parent / file) if file else PAGE
        assert path.is_file(), target
        if anchor:
            assert anchor in anchors(path), target
