"""What happens to an SLO's alerts and incident now: a pure function of state, status and time.

Per alert pair the state goes inactive -> pending -> firing (after its ``for``) and back;
per SLO, an incident opens when a pair fires, escalates when a page pair joins a ticket,
is told again every ``renotify`` seconds while it burns, and resolves when no pair
fires. Nothing moves while the SLO's data is unavailable, stale or absent: missing data
never resolves an alert. When every SLO is unavailable for ``blind_after`` cycles in a
row, one "SLO evaluation is blind" page goes out, and its resolution when sight returns.

Like Prometheus's own ``AlertingRule.Eval``, the decision takes the clock as an argument
and returns what changed; the scheduler writes it and its notifications in one
transaction, and delivery is a separate step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sloengine.conventions import Severity
from sloengine.model import Objective, group_text
from sloengine.status import HOLDS, Health, PairState, Status

BLIND = "sloengine/evaluation-blind"


class AlertState(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"  # the condition holds, for less than the pair's `for`
    FIRING = "firing"


class Event(StrEnum):
    """What a notification tells: the kinds the outbox holds."""

    FIRING = "firing"  # an incident opened
    ESCALATED = "escalated"  # a page pair joined a firing ticket
    RENOTIFY = "renotify"  # still burning after `renotify` seconds
    RESOLVED = "resolved"  # no pair fires any more
    BLIND = "blind"  # no SLO could be read for `blind_after` cycles
    SIGHT = "sight"  # SLOs can be read again


@dataclass(frozen=True)
class AlertRow:
    """One alert pair's state (key ``service/slo/severity/long_window``), or an SLO's
    incident (key ``service/slo``, severity the highest firing); a grouped SLO's keys
    carry the group after the SLO (``service/slo{tenant=acme}/...``)."""

    key: str
    state: AlertState
    severity: Severity
    since: float  # when the condition started holding (an incident: when it was last told)
    fired_at: float | None
    incident: str | None  # the firing incident's id, for threading notifications


@dataclass(frozen=True)
class Notification:
    kind: Event
    incident: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Transition:
    """The rows that changed and the notifications the change causes."""

    rows: tuple[AlertRow, ...] = ()
    notifications: tuple[Notification, ...] = ()


def incident_key(service: str, slo: str, group: Mapping[str, str] | None = None) -> str:
    """``service/slo``, and ``service/slo{tenant=acme}`` for one group of a grouped SLO:
    an ungrouped SLO keeps the key it always had, so an upgrade re-pages nothing."""
    return f"{service}/{slo}" + (f"{{{group_text(group)}}}" if group else "")


def pair_key(
    service: str, slo: str, pair: PairState, group: Mapping[str, str] | None = None
) -> str:
    return f"{incident_key(service, slo, group)}/{pair.severity}/{pair.long_window}"


def advance(
    obj: Objective,
    rows: Mapping[str, AlertRow],
    status: Status,
    now: float,
    *,
    renotify: float = 0,
    look: Mapping[str, Any] | None = None,
) -> Transition:
    """Move the SLO's pairs and incident on by one evaluation.

    ``rows`` are the stored alert rows (any SLO's), ``look`` the first look at the bad
    events for a page that opens or escalates now (see :func:`wants_first_look`).
    """
    if status.health in HOLDS:
        return Transition()  # missing data neither fires nor resolves anything
    changed: list[AlertRow] = []
    firing: list[Severity] = []
    for pair in status.pairs:
        key = pair_key(obj.service, obj.name, pair, status.group)
        row = rows.get(key) or AlertRow(key, AlertState.INACTIVE, pair.severity, now, None, None)
        new = _pair_row(row, pair, now, obj.for_seconds.get(pair.severity, 0))
        if new != row:
            changed.append(new)
        if new.state == AlertState.FIRING:
            firing.append(new.severity)
    key = incident_key(obj.service, obj.name, status.group)
    incident = _incident(key, rows.get(key), firing, now, renotify)
    if incident is None:
        return Transition(tuple(changed))
    row, kind, severity = incident
    content = payload(obj, status, severity, now, look)
    return Transition((*changed, row), (told(kind, row, rows.get(row.key), content),))


def told(
    kind: Event, row: AlertRow, previous: AlertRow | None, content: dict[str, Any]
) -> Notification:
    """The notification of an incident's change, in its thread: a new incident's own
    id, else the one it opened with; a resolution says when it fired."""
    if kind == Event.FIRING:
        thread = row.incident or row.key  # the new incident's id
    else:
        assert previous is not None  # only a firing incident escalates, renotifies or resolves
        thread = previous.incident or row.key
    if kind == Event.RESOLVED:
        content["fired_at"] = previous.fired_at if previous else None
    return Notification(kind, thread, content)


def _pair_row(row: AlertRow, pair: PairState, now: float, wait: int) -> AlertRow:
    if not pair.active:
        return AlertRow(row.key, AlertState.INACTIVE, pair.severity, now, None, None)
    holding = row.state in (AlertState.PENDING, AlertState.FIRING)
    since = row.since if holding else now
    state = AlertState.FIRING if now - since >= wait else AlertState.PENDING
    if row.state == AlertState.FIRING:
        fired = row.fired_at
    else:
        fired = now if state == AlertState.FIRING else None
    return AlertRow(row.key, state, pair.severity, since, fired, None)


def _incident(
    key: str,
    row: AlertRow | None,
    firing: Sequence[Severity],
    now: float,
    renotify: float,
) -> tuple[AlertRow, Event, Severity] | None:
    """The incident's new row, what to tell and at which severity; None when nothing moves."""
    severity = max(firing, key=lambda s: s.rank) if firing else None
    if row is None or row.state != AlertState.FIRING:
        if severity is None:
            return None
        opened = AlertRow(key, AlertState.FIRING, severity, now, now, f"{key}/{int(now)}")
        return opened, Event.FIRING, severity
    if severity is None:
        closed = AlertRow(key, AlertState.INACTIVE, row.severity, now, None, None)
        return closed, Event.RESOLVED, row.severity
    if severity.rank > row.severity.rank:
        raised = AlertRow(key, AlertState.FIRING, severity, row.since, row.fired_at, row.incident)
        return raised, Event.ESCALATED, severity
    if renotify and now - row.since >= renotify:
        # Still burning after `renotify` seconds: say so again, in the incident's thread.
        return dataclasses.replace(row, since=now), Event.RENOTIFY, row.severity
    return None


def payload(
    obj: Objective,
    status: Status,
    severity: Severity,
    now: float,
    look: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What a notification about this SLO carries: the status and where to go from here."""
    return {
        **(look or {}),
        "severity": severity,
        "at": now,
        "status": status.as_json(),
        "description": obj.description,
        "owner": obj.owner,
        "runbook_url": obj.runbook_url,
        "channel": obj.channels.get(severity, ""),
        "annotations": obj.annotations,
    }


def wants_first_look(rows: Mapping[str, AlertRow], status: Status) -> str | None:
    """The short window to look at the bad events over, when this SLO is about to page
    or escalate; None when on-call was already told at this severity."""
    active = [p for p in status.pairs if p.active]
    if not active or status.health in HOLDS:
        return None
    worst = max(active, key=lambda p: p.severity.rank)
    row = rows.get(incident_key(status.service, status.slo, status.group))
    if row and row.state == AlertState.FIRING and row.severity.rank >= worst.severity.rank:
        return None
    return worst.short_window


@dataclass(frozen=True)
class Sight:
    """Whether evaluation can see: failed cycles in a row and the open blind incident."""

    failed_cycles: int = 0
    blind_incident: str = ""  # "" while not blind


def blind(statuses: Sequence[Status]) -> bool:
    """A cycle is blind when it read no SLO at all."""
    return bool(statuses) and all(s.health == Health.UNAVAILABLE for s in statuses)


def track_sight(
    sight: Sight,
    statuses: Sequence[Status],
    now: float,
    *,
    blind_after: int,
    channels: Sequence[str] = (),
) -> tuple[Sight, tuple[Notification, ...]]:
    """The new sight after a cycle, and the blind page or its resolution.

    The blind page goes to every page channel the SLO files name (``channels``), one
    notification each, since nobody knows which team's SLOs are the ones unseen; with
    none, one notification goes to the notifier's default page channel.
    """
    if not blind(statuses):
        if not sight.blind_incident:
            return Sight(), ()
        back = {"severity": Severity.PAGE, "at": now}
        return Sight(), _to_each(Event.SIGHT, sight.blind_incident, back, channels)
    failures = sight.failed_cycles + 1
    if failures < blind_after or sight.blind_incident:
        return Sight(failures, sight.blind_incident), ()
    incident = f"{BLIND}/{int(now)}"
    content = {
        "severity": Severity.PAGE,
        "failed_cycles": failures,
        "errors": errors(statuses),
        "at": now,
    }
    return Sight(failures, incident), _to_each(Event.BLIND, incident, content, channels)


def _to_each(
    kind: Event, incident: str, content: dict[str, Any], channels: Sequence[str]
) -> tuple[Notification, ...]:
    if not channels:
        return (Notification(kind, incident, content),)
    # One incident per channel: each has its own thread to open and resolve.
    return tuple(
        Notification(kind, f"{incident}/{channel}", {**content, "channel": channel})
        for channel in channels
    )


def page_channels(objectives: Iterable[Objective]) -> list[str]:
    """Every page channel the SLO files name, once each, sorted."""
    return sorted({c for o in objectives if (c := o.channels.get(Severity.PAGE))})


def errors(statuses: Sequence[Status]) -> list[str]:
    """The distinct reasons SLOs could not be read, sorted."""
    return sorted({s.error for s in statuses if s.error})
