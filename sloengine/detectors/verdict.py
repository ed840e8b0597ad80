"""A detector's verdict from its readings: recent value, baseline, change, and whether it
fires, decided exactly as its alert rule decides (``rules.alert_expr``).

Pure: the readings come in (the recorded series, or sums computed from the raw series),
the verdict goes out. ``status``, ``run`` and the web page call :func:`judge_detector`,
so recorded and raw readings of the same counts give the same verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sloengine.conventions import Mode, Severity
from sloengine.detectors.model import Detector, Direction
from sloengine.detectors.rules import compared
from sloengine.durations import format_duration
from sloengine.status import OK_STATE, STALE_INTERVALS, Health, State

# A group's label values (and version), in the detector's key order: sortable, hashable.
Group = tuple[tuple[str, str], ...]


def group_of(det: Detector, labels: Mapping[str, str]) -> Group:
    return tuple((key, labels.get(key, "")) for key in det.keys)


@dataclass(frozen=True)
class Reading:
    """One group's numbers over the recent and the baseline window, however read.

    ``recent`` and ``baseline`` are the compared ratios (None where the window holds no
    denominator); the events are what ``min_events`` counts in each window.
    """

    recent: float | None
    baseline: float | None
    recent_events: float
    baseline_events: float | None  # None for a share, which has no baseline
    mode: Mode
    group: dict[str, str] = field(default_factory=dict)
    age_seconds: float = 0.0  # how old the newest recorded sample is (0 in raw mode)


@dataclass
class DetectorStatus:
    service: str
    detector: str
    kind: str
    compared: str  # what the ratio is: "cost per call ($)", ...
    unit: str  # the numerator's unit: "$", "tokens", "cached tokens", "calls over budget"
    events_unit: str  # what min_events counts: "calls" or "input tokens"
    window: str
    baseline_window: str | None
    group: dict[str, str]  # group_by labels, and the version for prompt_version_cost
    recent: float | None
    baseline: float | None
    change: float | None  # recent / baseline - 1
    recent_events: float | None
    baseline_events: float | None
    direction: Direction
    threshold: float  # a fraction: 0.2 for 20%
    min_events: int
    active: bool  # the alert condition holds now (the scheduler adds `for`)
    state: State
    health: Health
    mode: Mode | Literal[""]
    error: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.service, self.detector)

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def reading(
    numerator_recent: float,
    denominator_recent: float,
    numerator_baseline: float | None,
    denominator_baseline: float | None,
    mode: Mode,
    group: Mapping[str, str] | None = None,
) -> Reading:
    """A reading from counts (dollars, tokens, calls) over each window; a ratio only
    where its window holds a denominator above zero, as the rules divide."""
    return Reading(
        recent=_ratio(numerator_recent, denominator_recent),
        baseline=(
            None
            if numerator_baseline is None or denominator_baseline is None
            else _ratio(numerator_baseline, denominator_baseline)
        ),
        recent_events=denominator_recent,
        baseline_events=denominator_baseline,
        mode=mode,
        group=dict(group or {}),
    )


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def judge_detector(det: Detector, read: Reading, interval: float) -> DetectorStatus:
    """The verdict on one group: fires when the change passes the threshold (a share:
    the recent value passes it) and both windows hold ``min_events``, as the alert rule.

    A NaN or infinite number is missing data, never a value: the group is unavailable
    and its alert holds where it is. ``interval`` is the detector rules' evaluation
    interval: recorded series older than three of them are stale.
    """
    numbers = [read.recent, read.baseline, read.recent_events, read.baseline_events]
    if any(v is not None and not math.isfinite(v) for v in numbers):
        return unavailable_detector(det, "Prometheus returned NaN or Inf", read.group)
    change = None
    if read.recent is not None and read.baseline is not None and read.baseline > 0:
        change = read.recent / read.baseline - 1
    enough = read.recent_events >= det.min_events
    if det.direction is Direction.SHARE:
        active = read.recent is not None and read.recent > det.threshold and enough
    else:
        enough = enough and (read.baseline_events or 0.0) >= det.min_events
        moved = change is not None and (
            change > det.threshold
            if det.direction is Direction.INCREASE
            else change < -det.threshold
        )
        active = moved and enough
    if read.mode == Mode.RECORDED and read.age_seconds > STALE_INTERVALS * interval:
        health = Health.STALE
    elif read.recent_events <= 0 and not read.baseline_events:
        health = Health.NO_DATA
    elif not enough:
        health = Health.LOW_TRAFFIC
    else:
        health = Health.OK
    return DetectorStatus(
        **_identity(det, read.group),
        recent=read.recent,
        baseline=read.baseline,
        change=change,
        recent_events=read.recent_events,
        baseline_events=read.baseline_events,
        active=active,
        state=det.severity if active else OK_STATE,
        health=health,
        mode=read.mode,
    )


def unavailable_detector(
    det: Detector, error: str, group: Mapping[str, str] | None = None
) -> DetectorStatus:
    """A status for a detector (or one group) whose numbers could not be read."""
    return DetectorStatus(
        **_identity(det, dict(group or {})),
        recent=None,
        baseline=None,
        change=None,
        recent_events=None,
        baseline_events=None,
        active=False,
        state=OK_STATE,
        health=Health.UNAVAILABLE,
        mode="",
        error=error,
    )


def _identity(det: Detector, group: dict[str, str]) -> dict[str, Any]:
    return {
        "service": det.service,
        "detector": det.name,
        "kind": str(det.kind),
        "compared": compared(det),
        "unit": det.ratio.numerator_unit,
        "events_unit": det.ratio.denominator_unit,
        "window": format_duration(det.window),
        "baseline_window": None if det.baseline is None else format_duration(det.baseline),
        "group": group,
        "direction": det.direction,
        "threshold": det.threshold,
        "min_events": det.min_events,
    }


def raw_readings(det: Detector, rates: Mapping[str, Mapping[Group, float]]) -> list[Reading]:
    """Readings per group from raw per-second rates (``rules.raw_queries``' keys).

    For ``prompt_version_cost`` a (group, version)'s baseline is its group's baseline
    less that version's own calls, as the recorded rules compute it: a new version is
    compared with what its group cost before it appeared. A group missing from a
    window had no events in it.
    """
    recent, baseline = det.window, det.baseline
    seen = sorted(set(rates.get("numerator_recent", {})) | set(rates.get("denominator_recent", {})))

    def count(name: str, group: Group, seconds: int) -> float:
        return rates.get(name, {}).get(group, 0.0) * seconds

    out = []
    for group in seen:
        num_base: float | None = None
        den_base: float | None = None
        if baseline is not None:
            num_base = count("numerator_baseline", group, baseline)
            den_base = count("denominator_baseline", group, baseline)
            if det.version_label is not None:
                peers = [g for g in rates.get("denominator_baseline", {}) if _same_group(g, group)]
                num_base = sum(count("numerator_baseline", g, baseline) for g in peers) - num_base
                den_base = sum(count("denominator_baseline", g, baseline) for g in peers) - den_base
        out.append(
            reading(
                count("numerator_recent", group, recent),
                count("denominator_recent", group, recent),
                num_base,
                den_base,
                Mode.RAW,
                dict(group),
            )
        )
    return out


def _same_group(a: Group, b: Group) -> bool:
    """The same group_by values, whatever the version (the last key)."""
    return a[:-1] == b[:-1]


def firing_first(statuses: list[DetectorStatus]) -> list[DetectorStatus]:
    """Firing detectors first (page, then ticket), then by name and group."""
    rank: dict[State, int] = {Severity.PAGE: 0, Severity.TICKET: 1}
    return sorted(
        statuses,
        key=lambda s: (rank.get(s.state, 2), s.service, s.detector, sorted(s.group.items())),
    )


def shown(unit: str, value: float | None) -> str:
    """A compared value as people read it: dollars, tokens, or a percentage."""
    if value is None:
        return "-"
    if unit == "$":
        return f"${value:.4g}"
    if unit == "tokens":
        return f"{value:,.0f}"
    return f"{value * 100:.1f}%"


def shown_change(status: DetectorStatus) -> str:
    return "-" if status.change is None else f"{status.change * 100:+.1f}%"


def limit_text(status: DetectorStatus) -> str:
    """The threshold as the alert states it: +20%, -20%, or 1% of calls."""
    sign = {Direction.INCREASE: "+", Direction.DECREASE: "-", Direction.SHARE: ""}
    return f"{sign[status.direction]}{status.threshold * 100:g}%"


def summary(status: DetectorStatus) -> str:
    """One line: what it compares, recent against baseline, the change and the limit."""
    recent = shown(status.unit, status.recent)
    if status.direction is Direction.SHARE:
        return (
            f"{status.compared} {recent} over the last {status.window} (limit {limit_text(status)})"
        )
    return (
        f"{status.compared} {recent} over the last {status.window} against "
        f"{shown(status.unit, status.baseline)} over the {status.baseline_window} before it: "
        f"{shown_change(status)} (limit {limit_text(status)})"
    )


def events_text(status: DetectorStatus) -> str:
    """The events each window holds, against ``min_events``."""
    recent = "-" if status.recent_events is None else f"{status.recent_events:,.0f}"
    text = f"{recent} {status.events_unit} recent"
    if status.baseline_window is not None and status.baseline_events is not None:
        text += f", {status.baseline_events:,.0f} in the baseline"
    return text + f" (min_events {status.min_events})"
