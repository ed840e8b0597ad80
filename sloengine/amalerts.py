"""The alerts ``run --alertmanager`` sends: a pure function of the scheduler's alert state.

Like Prometheus's notifier (``rules/alerting.go`` and ``rules/manager.go``): every
firing pair is sent every cycle with ``startsAt`` when it fired and ``endsAt`` a lease
of :data:`LEASE_CYCLES` cycles ahead, so an Alertmanager lets it lapse only when no
replica has refreshed it for that long; a pair the scheduler resolved is sent with
``endsAt`` when it resolved, for :data:`RESOLVED_RETENTION` seconds, so an Alertmanager
that was down then still hears it. Labels and annotations are the generated alerting
rules' own (:mod:`sloengine.rules`), as Prometheus would send them, so a configuration
from ``sloengine alertmanager`` routes and inhibits them unchanged.

While an SLO's data is unavailable, stale or absent the scheduler moves nothing
(:func:`sloengine.alerting.advance`): its firing pairs are re-sent as last sent, with a
fresh lease, and never resolved.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from sloengine import conventions as cv
from sloengine.alerting import AlertRow, AlertState, pair_key
from sloengine.budget import AlertWindow
from sloengine.detectors.incidents import detector_key
from sloengine.detectors.model import Detector
from sloengine.detectors.rules import alert_expr as detector_alert_expr
from sloengine.detectors.verdict import DetectorStatus, shown, shown_change, summary
from sloengine.durations import format_duration
from sloengine.model import Objective, group_text
from sloengine.rules import alert_annotations, alert_expr, alert_labels
from sloengine.status import HOLDS, PairState, Status

# Prometheus: ValidUntil = now + 4 x max(interval, resend delay); sloengine re-sends
# every cycle, so the lease outlasts three lost cycles or failed posts.
LEASE_CYCLES = 4
# Prometheus keeps sending a resolved alert for 15 minutes.
RESOLVED_RETENTION = 15 * 60


@dataclass(frozen=True)
class Alert:
    """One alert pair as Alertmanager receives it; ``firing`` False once resolved."""

    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    ends_at: float
    generator_url: str
    firing: bool

    def as_json(self) -> dict[str, Any]:
        """The alert in Alertmanager's v2 API (``POST /api/v2/alerts``)."""
        return {
            "labels": self.labels,
            "annotations": self.annotations,
            "startsAt": timestamp(self.starts_at),
            "endsAt": timestamp(self.ends_at),
            "generatorURL": self.generator_url,
        }


def timestamp(seconds: float) -> str:
    """RFC 3339 in UTC with milliseconds, as Alertmanager's API reads it."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def outgoing(
    objectives: Mapping[tuple[str, str], Objective],
    statuses: Sequence[Status],
    rows: Mapping[str, AlertRow],
    last: Mapping[str, Alert],
    now: float,
    *,
    interval: float,
    prometheus_url: str,
) -> dict[str, Alert]:
    """The alerts to send this cycle, by pair key; also what the next cycle gets as ``last``.

    ``rows`` are the alert rows after this cycle's :func:`~sloengine.alerting.advance`,
    ``last`` what the previous cycle sent. An SLO held by missing data re-sends its
    last alerts; one gone from the files is no longer sent, and lapses at its lease.
    """
    lease = now + LEASE_CYCLES * interval
    out: dict[str, Alert] = {}
    for status in statuses:
        obj = objectives[status.key]
        if status.health in HOLDS:
            out |= _held(
                last, {cv.SERVICE: status.service, cv.SLO: status.slo, **status.group}, lease
            )
            continue
        for pair in status.pairs:
            key = pair_key(status.service, status.slo, pair, status.group)
            alert = _moved(
                rows.get(key),
                last.get(key),
                now,
                functools.partial(_alert, obj, status, pair, ends=lease, prometheus=prometheus_url),
            )
            if alert is not None:
                out[key] = alert
    return _retained(out, now)


def _held(last: Mapping[str, Alert], ids: Mapping[str, str], lease: float) -> dict[str, Alert]:
    """A held status's alerts as last sent (those carrying ``ids``): nothing moved, so
    what fired still fires, on a fresh lease, and what resolved stays resolved."""
    return {
        key: dataclasses.replace(alert, ends_at=lease) if alert.firing else alert
        for key, alert in last.items()
        if all(alert.labels.get(k) == v for k, v in ids.items())
    }


def _moved(
    row: AlertRow | None, before: Alert | None, now: float, build: Callable[[float], Alert]
) -> Alert | None:
    """An alert's next version: firing (built from when it fired) while its row fires,
    resolved now if it was firing, else as last sent (None if never sent)."""
    if row is not None and row.state == AlertState.FIRING:
        return build(row.fired_at if row.fired_at is not None else row.since)
    if before is not None and before.firing:
        return dataclasses.replace(before, ends_at=now, firing=False)
    return before


def _retained(out: Mapping[str, Alert], now: float) -> dict[str, Alert]:
    """Firing alerts, and resolved ones for ``RESOLVED_RETENTION`` seconds."""
    return {
        key: alert
        for key, alert in out.items()
        if alert.firing or now - alert.ends_at <= RESOLVED_RETENTION
    }


def _window(obj: Objective, pair: PairState) -> AlertWindow:
    for w in obj.active_windows():
        if w.severity == pair.severity and format_duration(w.long_seconds) == pair.long_window:
            return w
    raise ValueError(f"{obj.service}/{obj.name} has no {pair.severity} {pair.long_window} pair")


def _alert(
    obj: Objective, status: Status, pair: PairState, starts: float, ends: float, prometheus: str
) -> Alert:
    w = _window(obj, pair)
    # Prometheus's $value is the alert expression's value: the long window's burn rate.
    annotations = alert_annotations(
        obj, w, value=f"{pair.long_burn:.2f}", expanded=True, group=status.group
    )
    labels = {**status.group, **alert_labels(obj, w, expanded=True), "alertname": cv.ALERT_NAME}
    return Alert(labels, annotations, starts, ends, generator_url(prometheus, obj, w), True)


def generator_url(prometheus: str, obj: Objective, w: AlertWindow) -> str:
    """The alert's expression in Prometheus's graph page, as Prometheus links it."""
    expr = quote(alert_expr(obj, w), safe="")
    return f"{prometheus.rstrip('/')}/graph?g0.expr={expr}&g0.tab=1"


def load(data: Sequence[Mapping[str, Any]]) -> dict[str, Alert]:
    """What :func:`dump` wrote; entries that do not read as alerts are dropped."""
    out: dict[str, Alert] = {}
    for item in data:
        try:
            key = str(item["key"])
            out[key] = Alert(
                labels={str(k): str(v) for k, v in item["labels"].items()},
                annotations={str(k): str(v) for k, v in item["annotations"].items()},
                starts_at=float(item["starts_at"]),
                ends_at=float(item["ends_at"]),
                generator_url=str(item["generator_url"]),
                firing=bool(item["firing"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # a damaged entry is re-sent from the alert rows, or lapses
    return out


def dump(alerts: Mapping[str, Alert]) -> list[dict[str, Any]]:
    """The alerts as JSON-ready data, to keep between cycles and restarts."""
    return [{"key": key, **dataclasses.asdict(a)} for key, a in sorted(alerts.items())]


# ---------------------------------------------------------------------------- detectors


def detector_outgoing(
    detectors: Mapping[tuple[str, str], Detector],
    statuses: Sequence[DetectorStatus],
    rows: Mapping[str, AlertRow],
    last: Mapping[str, Alert],
    now: float,
    *,
    interval: float,
    prometheus_url: str,
) -> dict[str, Alert]:
    """The detectors' alerts to send this cycle, by alert key, as :func:`outgoing` does
    for SLOs: firing ones with a lease, resolved ones for a while, held ones as last sent.
    Labels are the generated ``SLODetectorRegression`` rule's, so the configuration from
    ``sloengine alertmanager`` routes them unchanged."""
    lease = now + LEASE_CYCLES * interval
    out: dict[str, Alert] = {}
    for status in statuses:
        det = detectors[status.key]
        ids = {cv.SERVICE: status.service, cv.DETECTOR: status.detector, **status.group}
        if status.health in HOLDS:
            out |= _held(last, ids, lease)
            continue
        key = detector_key(status.service, status.detector, status.group) + "/alert"
        alert = _moved(
            rows.get(key),
            last.get(key),
            now,
            functools.partial(_detector_alert, det, status, ends=lease, prometheus=prometheus_url),
        )
        if alert is not None:
            out[key] = alert
    return _retained(out, now)


def _detector_alert(
    det: Detector, status: DetectorStatus, starts: float, ends: float, prometheus: str
) -> Alert:
    labels = {
        **det.labels,
        **status.group,
        cv.SERVICE: det.service,
        cv.DETECTOR: det.name,
        cv.SEVERITY: det.severity.value,
        "alertname": cv.DETECTOR_ALERT_NAME,
    }
    group = f" for {group_text(status.group)}" if status.group else ""
    annotations = {
        "summary": f"{det.service} {det.name}: {status.compared} {shown_change(status)}{group}"
        if status.change is not None
        else f"{det.service} {det.name}: {status.compared} {shown(status.unit, status.recent)}"
        f"{group}",
        "description": f"{det.service}/{det.name}{group}: {summary(status)}.",
    }
    if det.runbook_url:
        annotations["runbook_url"] = det.runbook_url
    url = f"{prometheus.rstrip('/')}/graph?g0.expr={quote(detector_alert_expr(det), safe='')}&g0.tab=1"
    return Alert(labels, annotations, starts, ends, url, True)
