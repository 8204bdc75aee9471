"""Our own SVG charts, rendered on the server: a time line chart with the alert bands shaded, and bar charts.

Pure functions from data to markup (no I/O, no third-party code). Each chart is ``role="img"`` with a
``<title>`` and a ``<desc>`` that says in words what it shows; colours come in attributes (the page's
Content-Security-Policy forbids style attributes) and every series also has its name in a legend.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from zoneinfo import ZoneInfo

from adapters.dashboard.markup import esc, number

PALETTE = ("#0b57d0", "#6b3fa0", "#00696b", "#8a4b00", "#1a1a1a", "#a0306e")
CRITICAL_FILL, WARNING_FILL = "#f9d6d5", "#fdeaa8"
MARKER = "#b3261e"
LEFT, RIGHT, TOP, BOTTOM = 58, 18, 26, 42
GAP = timedelta(minutes=15)  # readings further apart are not joined by a line
_ids = count(1)
Scale = Callable[[float], float]
TimeScale = Callable[[datetime], float]
_STEPS = [timedelta(minutes=m) for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)]


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[datetime, float]]  # (stored time: UTC, naive; value), in time order


@dataclass(frozen=True)
class Bands:
    critical_low: float | None = None
    warning_low: float | None = None
    warning_high: float | None = None
    critical_high: float | None = None

    def bounds(self) -> list[float]:
        return [b for b in (self.critical_low, self.warning_low, self.warning_high, self.critical_high)
                if b is not None]

    def regions(self) -> list[tuple[float, float, str, str]]:
        """(low, high, fill, name) of the shaded value ranges; infinite ends are clipped by the chart."""
        found: list[tuple[float, float, str, str]] = []
        low_critical, low_warning = self.critical_low, self.warning_low
        high_warning, high_critical = self.warning_high, self.critical_high
        if low_critical is not None:
            found.append((-math.inf, low_critical, CRITICAL_FILL, "critical"))
        if low_warning is not None:
            found.append((low_critical if low_critical is not None else -math.inf, low_warning, WARNING_FILL,
                          "warning"))
        if high_warning is not None:
            found.append((high_warning, high_critical if high_critical is not None else math.inf, WARNING_FILL,
                          "warning"))
        if high_critical is not None:
            found.append((high_critical, math.inf, CRITICAL_FILL, "critical"))
        return found


def line_chart(title: str, series: Sequence[Series], start: datetime, end: datetime, zone: ZoneInfo, *,
               bands: Bands | None = None, markers: Sequence[tuple[datetime, str]] = (), unit: str = "",
               width: int = 760, height: int = 260, gap: timedelta | None = GAP) -> str:
    """Values over [start, end]; ``markers`` are labelled vertical lines (the alert's moment); points further
    apart than ``gap`` are not joined (None: always joined)."""
    chart_id = f"chart{next(_ids)}"
    values = [value for s in series for _, value in s.points]
    low, high = _value_range(values + (bands.bounds() if bands else []))
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    span = max((end - start).total_seconds(), 1.0)

    def x(moment: datetime) -> float:
        return LEFT + plot_w * min(max((moment - start).total_seconds() / span, 0.0), 1.0)

    def y(value: float) -> float:
        return TOP + plot_h * (1 - (min(max(value, low), high) - low) / (high - low))

    parts = [f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#ffffff" stroke="#5f6368"/>']
    if bands is not None:
        for region_low, region_high, fill, _ in bands.regions():
            top, bottom = y(min(region_high, high)), y(max(region_low, low))
            if bottom - top > 0.5:
                parts.append(f'<rect x="{LEFT}" y="{top:.1f}" width="{plot_w}" height="{bottom - top:.1f}" '
                             f'fill="{fill}"/>')
    parts += _y_axis(low, high, y, width, unit) + _x_axis(start, end, x, zone, height)
    for moment, label in markers:
        at = x(moment)
        left = at > LEFT + plot_w * 0.7  # near the right edge the label goes to the left of the line
        parts.append(f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{TOP}" y2="{TOP + plot_h}" stroke="{MARKER}" '
                     f'stroke-width="2" stroke-dasharray="6 4"/><text x="{at - 4 if left else at + 4:.1f}" '
                     f'y="{TOP + 12}" fill="{MARKER}" font-size="12" text-anchor="{"end" if left else "start"}">'
                     f'{esc(label)}</text>')
    for index, one in enumerate(series):
        parts += _series(one, PALETTE[index % len(PALETTE)], x, y, zone, gap)
    desc = _describe(series, start, end, zone, bands, unit)
    return (f'<figure class="chart"><svg role="img" aria-labelledby="{chart_id}-t {chart_id}-d" '
            f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMidYMid meet" '
            f'font-family="system-ui, sans-serif" xmlns="http://www.w3.org/2000/svg">'
            f'<title id="{chart_id}-t">{esc(title)}</title><desc id="{chart_id}-d">{esc(desc)}</desc>'
            f'{"".join(parts)}</svg>{_legend(title, series, bands)}</figure>')


def bar_chart(title: str, items: Sequence[tuple[str, float]], *, unit: str = "", width: int = 460,
              bar_height: int = 24) -> str:
    """Horizontal bars, one per (label, value), the value written at the bar's end."""
    chart_id = f"chart{next(_ids)}"
    label_w, value_w = 150, 50
    biggest = max((value for _, value in items), default=0) or 1
    height = max(len(items), 1) * (bar_height + 6) + 8
    parts = []
    for index, (label, value) in enumerate(items):
        top = 4 + index * (bar_height + 6)
        length = (width - label_w - value_w) * value / biggest
        parts.append(f'<text x="{label_w - 6}" y="{top + bar_height * 0.7:.1f}" text-anchor="end" font-size="15" '
                     f'fill="#1a1a1a">{esc(_clip(label, 22))}</text>'
                     f'<rect x="{label_w}" y="{top}" width="{max(length, 1):.1f}" height="{bar_height}" '
                     f'fill="{PALETTE[0]}"><title>{esc(label)}: {number(value)}{esc(unit)}</title></rect>'
                     f'<text x="{label_w + length + 6:.1f}" y="{top + bar_height * 0.7:.1f}" font-size="15" '
                     f'fill="#1a1a1a">{number(value)}{esc(unit)}</text>')
    if not items:
        parts.append(f'<text x="8" y="20" font-size="13" fill="#1a1a1a">{esc("nothing in this range")}</text>')
    desc = "; ".join(f"{label}: {number(value)}{unit}" for label, value in items) or "nothing in this range"
    return (f'<figure class="chart bars"><svg role="img" aria-labelledby="{chart_id}-t {chart_id}-d" '
            f'viewBox="0 0 {width} {height}" width="100%" font-family="system-ui, sans-serif" '
            f'xmlns="http://www.w3.org/2000/svg"><title id="{chart_id}-t">{esc(title)}</title>'
            f'<desc id="{chart_id}-d">{esc(desc)}</desc>{"".join(parts)}</svg></figure>')


def _value_range(values: list[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or max(abs(high) * 0.1, 1.0)
    return low - pad, high + pad


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= raw)


def _y_axis(low: float, high: float, y: Scale, width: int, unit: str) -> list[str]:
    step = _nice_step(high - low)
    parts = []
    value = math.ceil(low / step) * step
    while value <= high:
        position = y(value)
        parts.append(f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{position:.1f}" y2="{position:.1f}" '
                     f'stroke="#c4c7c5" stroke-width="1"/><text x="{LEFT - 6}" y="{position + 4:.1f}" '
                     f'text-anchor="end" font-size="12" fill="#1a1a1a">{number(round(value, 6))}</text>')
        value += step
    if unit:
        parts.append(f'<text x="4" y="{TOP - 10}" font-size="12" fill="#1a1a1a">{esc(unit)}</text>')
    return parts


def _x_axis(start: datetime, end: datetime, x: TimeScale, zone: ZoneInfo, height: int) -> list[str]:
    span = end - start
    step = next((s for s in _STEPS if span / s <= 8), _STEPS[-1])
    local_start = _local(start, zone)
    first = local_start.replace(second=0, microsecond=0)
    minutes = int(step.total_seconds() // 60)
    if minutes < 1440:
        first = first - timedelta(minutes=(first.hour * 60 + first.minute) % minutes)
    else:
        first = first.replace(hour=0, minute=0)
    parts = []
    tick = first
    fmt = "%H:%M" if span <= timedelta(hours=24) else "%d %b %H:%M"
    while tick <= _local(end, zone):
        if tick >= local_start:
            moment = tick.astimezone(UTC).replace(tzinfo=None)
            position = x(moment)
            parts.append(f'<line x1="{position:.1f}" x2="{position:.1f}" y1="{height - BOTTOM}" '
                         f'y2="{height - BOTTOM + 5}" stroke="#5f6368"/><text x="{position:.1f}" '
                         f'y="{height - BOTTOM + 18}" text-anchor="middle" font-size="12" '
                         f'fill="#1a1a1a">{tick:{fmt}}</text>')
        tick += step
    return parts


def _series(one: Series, colour: str, x: TimeScale, y: Scale, zone: ZoneInfo, gap: timedelta | None) -> list[str]:
    parts, run, previous = [], [], None
    for moment, value in one.points:
        if previous is not None and gap is not None and moment - previous > gap and run:
            parts.append(_polyline(run, colour))
            run = []
        run.append(f"{x(moment):.1f},{y(value):.1f}")
        previous = moment
    if run:
        parts.append(_polyline(run, colour))
    if len(one.points) <= 300:
        for moment, value in one.points:
            parts.append(f'<circle cx="{x(moment):.1f}" cy="{y(value):.1f}" r="3" fill="{colour}">'
                         f'<title>{esc(one.label)} {number(value)} at {_local(moment, zone):%H:%M:%S}</title></circle>')
    return parts


def _polyline(points: list[str], colour: str) -> str:
    return f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" stroke-width="2"/>'


def _legend(title: str, series: Sequence[Series], bands: Bands | None) -> str:
    items = [f'<li><span class="swatch swatch-{index % len(PALETTE)}" aria-hidden="true"></span>{esc(s.label)}</li>'
             for index, s in enumerate(series)]
    if bands is not None and bands.bounds():
        items.append('<li><span class="swatch swatch-warning" aria-hidden="true"></span>warning band</li>'
                     '<li><span class="swatch swatch-critical" aria-hidden="true"></span>critical band</li>')
    return f'<figcaption><strong>{esc(title)}</strong><ul class="legend">{"".join(items)}</ul></figcaption>'


def _describe(series: Sequence[Series], start: datetime, end: datetime, zone: ZoneInfo, bands: Bands | None,
              unit: str) -> str:
    words = [f"From {_local(start, zone):%Y-%m-%d %H:%M} to {_local(end, zone):%Y-%m-%d %H:%M}."]
    for one in series:
        values = [value for _, value in one.points]
        if values:
            words.append(f"{one.label}: {len(values)} readings, lowest {number(min(values))}, highest "
                         f"{number(max(values))}, last {number(values[-1])} {unit}.".replace(" .", "."))
        else:
            words.append(f"{one.label}: no readings.")
    if bands is not None and bands.bounds():
        named = zip(("critical low", "warning low", "warning high", "critical high"),
                    (bands.critical_low, bands.warning_low, bands.warning_high, bands.critical_high), strict=True)
        words.append("Bands: " + ", ".join(f"{name} {number(value)}" for name, value in named if value is not None)
                     + ".")
    return " ".join(words)


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.replace(tzinfo=UTC).astimezone(zone)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
