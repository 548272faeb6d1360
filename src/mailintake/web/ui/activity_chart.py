"""Imports and failures per hour, drawn on the server as inline SVG (the page's Content
Security Policy allows no inline script or style: the SVG uses attributes and classes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mailintake.store.health import Activity

HOURS = 48
WIDTH = 960
HEIGHT = 160
TOP = 10  # room above the tallest bar
BOTTOM = 20  # room for the hour labels


@dataclass(frozen=True)
class Hour:
    start: datetime
    imported: int
    failed: int


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    kind: str  # imported | failed
    title: str  # the hover text: the hour and the count


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    labels: list[tuple[float, str]]  # x, text under the axis
    peak: int
    imported: int
    failed: int
    hours: int


def hourly(activity: Activity, now: datetime, hours: int = HOURS) -> list[Hour]:
    """Counts per hour for the last ``hours`` hours, the current (partial) hour last."""
    current = now.replace(minute=0, second=0, microsecond=0)
    first = current - timedelta(hours=hours - 1)
    imported = [0] * hours
    failed = [0] * hours
    for times, counts in ((activity.imported, imported), (activity.failed, failed)):
        for t in times:
            index = int((t - first).total_seconds() // 3600)
            if 0 <= index < hours:
                counts[index] += 1
    return [Hour(first + timedelta(hours=i), imported[i], failed[i]) for i in range(hours)]


def chart(hours: list[Hour]) -> Chart:
    """Bars side by side per hour: imported, then failed; scaled to the busiest hour."""
    peak = max([1] + [max(h.imported, h.failed) for h in hours])
    slot = WIDTH / max(len(hours), 1)
    bar = slot * 0.4
    room = HEIGHT - TOP - BOTTOM
    bars: list[Bar] = []
    labels: list[tuple[float, str]] = []
    for i, h in enumerate(hours):
        x = i * slot + slot * 0.1
        when = f"{h.start:%Y-%m-%d %H:00} UTC"
        for offset, kind, count in ((0.0, "imported", h.imported), (bar, "failed", h.failed)):
            if count:
                height = room * count / peak
                title = f"{when}: {count} {kind}"
                bars.append(Bar(x + offset, TOP + room - height, bar, height, kind, title))
        if h.start.hour % 6 == 0:
            labels.append((x, f"{h.start:%H}h" if h.start.hour else f"{h.start:%d %b}"))
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        bars=bars,
        labels=labels,
        peak=peak,
        imported=sum(h.imported for h in hours),
        failed=sum(h.failed for h in hours),
        hours=len(hours),
    )
