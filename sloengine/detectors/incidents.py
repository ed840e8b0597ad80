"""What happens to a detector's alert and incident now: :func:`sloengine.alerting.advance`'s
twin for detectors, a pure function of the stored rows, a verdict and the clock.

Per (detector, group, version): one alert row (inactive -> pending -> firing after the
detector's ``for``) and one incident, opened when it fires, told again every
``renotify`` seconds, resolved when it stops. Nothing moves while the data is
unavailable, stale or absent, so missing data never resolves a regression. The rows
and notifications are the SLOs' own (:class:`~sloengine.alerting.AlertRow`,
:class:`~sloengine.alerting.Notification`): the scheduler writes them in the same
transaction and delivers them from the same outbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sloengine.alerting import (
    AlertRow,
    AlertState,
    Transition,
    _incident,
    _pair_row,
    told,
)
from sloengine.detectors.model import Detector
from sloengine.detectors.verdict import DetectorStatus, events_text, summary
from sloengine.model import group_text
from sloengine.status import HOLDS, PairState


def detector_key(service: str, detector: str, group: Mapping[str, str] | None = None) -> str:
    """``service/detector:name``, with ``{feature=chat, prompt_sha=ab12}`` for a group:
    apart from every SLO's ``service/slo`` key."""
    return f"{service}/detector:{detector}" + (f"{{{group_text(group)}}}" if group else "")


def _condition(det: Detector, status: DetectorStatus) -> PairState:
    """The detector's one alert condition, as the pair its row is kept for."""
    return PairState(
        severity=det.severity,
        long_window=status.window,
        short_window=status.baseline_window or "",
        threshold=det.threshold,
        long_burn=status.change if status.change is not None else (status.recent or 0.0),
        short_burn=0.0,
        active=status.active,
    )


def advance_detector(
    det: Detector,
    rows: Mapping[str, AlertRow],
    status: DetectorStatus,
    now: float,
    *,
    renotify: float = 0,
    look: Mapping[str, Any] | None = None,
) -> Transition:
    """Move one group's alert and incident on by one evaluation."""
    if status.health in HOLDS:
        return Transition()  # missing data neither fires nor resolves anything
    key = detector_key(status.service, status.detector, status.group)
    alert = f"{key}/alert"
    row = rows.get(alert) or AlertRow(alert, AlertState.INACTIVE, det.severity, now, None, None)
    new = _pair_row(row, _condition(det, status), now, det.for_seconds)
    changed = [new] if new != row else []
    firing = [new.severity] if new.state == AlertState.FIRING else []
    incident = _incident(key, rows.get(key), firing, now, renotify)
    if incident is None:
        return Transition(tuple(changed))
    opened, kind, _ = incident
    content = payload(det, status, now, look)
    return Transition((*changed, opened), (told(kind, opened, rows.get(key), content),))


def payload(
    det: Detector, status: DetectorStatus, now: float, look: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What a notification about a detector carries: its verdict and where to go next."""
    return {
        **(look or {}),
        "severity": det.severity,
        "at": now,
        "detector": status.as_json(),
        "summary": summary(status),
        "events": events_text(status),
        "description": det.description,
        "owner": det.owner,
        "runbook_url": det.runbook_url,
        "channel": det.channels.get(det.severity, ""),
        "annotations": {},
    }


def wants_first_look(rows: Mapping[str, AlertRow], status: DetectorStatus) -> bool:
    """Whether this group is about to open an incident (so the page needs its first look)."""
    if not status.active or status.health in HOLDS:
        return False
    row = rows.get(detector_key(status.service, status.detector, status.group))
    return row is None or row.state != AlertState.FIRING
