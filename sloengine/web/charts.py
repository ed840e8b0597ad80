"""Line charts as plain geometry for inline SVG: no script, nothing fetched.

Pure: series of (time, value) points in, the coordinates a template draws out. A point
whose value is None (no traffic, no data yet) breaks the line rather than drawing zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

WIDTH = 720
HEIGHT = 220
# Room for the axis labels: left, right, top, bottom.
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 64, 12, 12, 28

Point = tuple[float, float | None]


@dataclass(frozen=True)
class Line:
    """One series to draw: a name for the legend, its points, and its CSS class."""

    name: str
    points: Sequence[Point]
    css: str = "line"


@dataclass(frozen=True)
class Level:
    """A horizontal line across the chart: a threshold or an objective."""

    name: str
    value: float
    css: str = "level"


@dataclass(frozen=True)
class Tick:
    at: float  # pixels along the axis
    text: str


@dataclass(frozen=True)
class DrawnLine:
    name: str
    css: str
    segments: list[str]  # SVG polyline `points` attributes, one per unbroken run
    last: str  # the newest value, formatted


@dataclass(frozen=True)
class DrawnLevel:
    name: str
    css: str
    y: float
    text: str


@dataclass(frozen=True)
class Chart:
    title: str
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    lines: list[DrawnLine]
    levels: list[DrawnLevel]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    empty: bool  # no point to draw at all


def chart(
    title: str,
    lines: Sequence[Line],
    start: float,
    end: float,
    fmt: Callable[[float], str],
    *,
    levels: Sequence[Level] = (),
    floor: float | None = None,
    ceiling: float | None = None,
) -> Chart:
    """Lay out ``lines`` over [start, end] with ``levels`` drawn across; values are
    formatted with ``fmt``. The y range covers every point and level, within
    ``floor``/``ceiling`` when given."""
    values = [v for line in lines for _, v in line.points if v is not None and math.isfinite(v)]
    marks = [lv.value for lv in levels if math.isfinite(lv.value)]
    low = min([*values, *marks], default=0.0)
    high = max([*values, *marks], default=1.0)
    if floor is not None:
        low = max(low, floor) if values or marks else floor
    if ceiling is not None:
        high = min(high, ceiling) if values or marks else ceiling
    if high <= low:
        pad = abs(high) * 0.05 or 0.5
        low, high = low - pad, high + pad
    x0, x1 = PAD_LEFT, WIDTH - PAD_RIGHT
    y0, y1 = HEIGHT - PAD_BOTTOM, PAD_TOP
    span = max(end - start, 1e-9)

    def x(t: float) -> float:
        return x0 + (t - start) / span * (x1 - x0)

    def y(v: float) -> float:
        clamped = min(max(v, low), high)
        return y0 - (clamped - low) / (high - low) * (y0 - y1)

    drawn = []
    for line in lines:
        segments: list[str] = []
        run: list[str] = []
        for t, v in line.points:
            if v is None or not math.isfinite(v):
                if run:
                    segments.append(" ".join(run))
                run = []
                continue
            run.append(f"{x(t):.1f},{y(v):.1f}")
        if run:
            segments.append(" ".join(run))
        newest = next(
            (v for _, v in reversed(line.points) if v is not None and math.isfinite(v)), None
        )
        drawn.append(
            DrawnLine(line.name, line.css, segments, "no data" if newest is None else fmt(newest))
        )
    return Chart(
        title=title,
        width=WIDTH,
        height=HEIGHT,
        left=x0,
        right=x1,
        top=y1,
        bottom=y0,
        lines=drawn,
        levels=[
            DrawnLevel(lv.name, lv.css, round(y(lv.value), 1), fmt(lv.value))
            for lv in levels
            if math.isfinite(lv.value)
        ],
        x_ticks=[Tick(round(x(t), 1), _time_label(t, span)) for t in _spread(start, end, 5)],
        y_ticks=[Tick(round(y(v), 1), fmt(v)) for v in _spread(low, high, 4)],
        empty=not values,
    )


def _spread(low: float, high: float, count: int) -> list[float]:
    return [low + (high - low) * i / (count - 1) for i in range(count)]


def _time_label(t: float, span: float) -> str:
    when = datetime.fromtimestamp(t, UTC)
    return when.strftime("%H:%M") if span <= 2 * 86400 else when.strftime("%m-%d %H:%M")
