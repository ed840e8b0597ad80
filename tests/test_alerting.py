"""The alerting decision as a table: previous rows, a status and a clock in; rows and
notifications out. No Prometheus, no database: what the scheduler writes and sends is
exactly what these functions return."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from conftest import ROOT

from sloengine.alerting import (
    BLIND,
    AlertRow,
    AlertState,
    Event,
    Sight,
    Transition,
    advance,
    track_sight,
    wants_first_look,
)
from sloengine.conventions import Mode, Severity
from sloengine.loading import load_specs
from sloengine.model import Objective
from sloengine.status import Rates, Status, judge, unavailable

SPEC = str(ROOT / "tests" / "live-slos" / "outage.yaml")
T0 = 1_800_000_000.0
WINDOWS = (300, 1800, 3600, 7200, 21600, 86400, 259200, 2592000)
# At 99.5%, a bad ratio of 0.5 burns 100x (every pair), 0.02 burns 4x (the ticket pairs
# at 3x and 1x only), 0 burns nothing.
PAGE_RATIO, TICKET_RATIO, CLEAN = 0.5, 0.02, 0.0


def objective(name: str) -> Objective:
    return next(o for s in load_specs([SPEC]) for o in s.objectives if o.name == name)


IMMEDIATE = objective("availability")  # page and ticket, no `for`
PATIENT = objective("availability-patient")  # page only, `for: 2m`


def status(obj: Objective, bad_ratio: float, *, events: float = 10.0) -> Status:
    rates = Rates(
        {w: bad_ratio * events for w in WINDOWS}, dict.fromkeys(WINDOWS, events), Mode.RAW
    )
    return judge(obj, rates, T0)


def incident(obj: Objective, severity: Severity, since: float, opened: float) -> AlertRow:
    key = f"{obj.service}/{obj.name}"
    return AlertRow(key, AlertState.FIRING, severity, since, opened, f"{key}/{int(opened)}")


def firing_pairs(obj: Objective, severity: Severity, since: float) -> dict[str, AlertRow]:
    """The pair rows of ``severity`` as they are after firing since ``since``."""
    rows = {}
    for pair in status(obj, PAGE_RATIO).pairs:
        if pair.severity == severity:
            key = f"{obj.service}/{obj.name}/{pair.severity}/{pair.long_window}"
            rows[key] = AlertRow(key, AlertState.FIRING, pair.severity, since, since, None)
    return rows


def pending_pages(obj: Objective, since: float) -> dict[str, AlertRow]:
    """Both page pairs, pending since ``since``."""
    keys = [f"{obj.service}/{obj.name}/page/{w}" for w in ("1h", "6h")]
    return {k: AlertRow(k, AlertState.PENDING, Severity.PAGE, since, None, None) for k in keys}


def kinds(step: Transition) -> list[Event]:
    return [n.kind for n in step.notifications]


def incident_row(step: Transition, obj: Objective) -> AlertRow | None:
    return next((r for r in step.rows if r.key == f"{obj.service}/{obj.name}"), None)


@dataclass
class Case:
    name: str
    obj: Objective
    rows: dict[str, AlertRow]
    status: Status
    now: float
    notifications: list[Event]
    incident_state: AlertState | None  # the incident row written, None when untouched
    incident_severity: Severity | None = None
    renotify: float = 0
    pair_states: dict[AlertState, int] = field(default_factory=dict)


CASES = [
    Case(
        "A burning SLO with no `for` fires at once and opens one incident at page severity",
        IMMEDIATE,
        {},
        status(IMMEDIATE, PAGE_RATIO),
        T0,
        [Event.FIRING],
        AlertState.FIRING,
        Severity.PAGE,
        pair_states={AlertState.FIRING: 4},
    ),
    Case(
        "A burning SLO whose page waits 2m is pending first and tells nobody",
        PATIENT,
        {},
        status(PATIENT, PAGE_RATIO),
        T0,
        [],
        None,
        pair_states={AlertState.PENDING: 2},
    ),
    Case(
        "A pending page that has held for its 2m fires and opens the incident",
        PATIENT,
        pending_pages(PATIENT, T0),
        status(PATIENT, PAGE_RATIO),
        T0 + 120,
        [Event.FIRING],
        AlertState.FIRING,
        Severity.PAGE,
        pair_states={AlertState.FIRING: 2},
    ),
    Case(
        "A pending page that has held for 1m of its 2m stays pending",
        PATIENT,
        pending_pages(PATIENT, T0),
        status(PATIENT, PAGE_RATIO),
        T0 + 60,
        [],
        None,
    ),
    Case(
        "A ticket-level burn opens a ticket incident",
        IMMEDIATE,
        {},
        status(IMMEDIATE, TICKET_RATIO),
        T0,
        [Event.FIRING],
        AlertState.FIRING,
        Severity.TICKET,
        pair_states={AlertState.FIRING: 2},
    ),
    Case(
        "A page pair joining a firing ticket escalates the same incident",
        IMMEDIATE,
        {
            **firing_pairs(IMMEDIATE, Severity.TICKET, T0 - 600),
            "chat-assistant/availability": incident(IMMEDIATE, Severity.TICKET, T0 - 600, T0 - 600),
        },
        status(IMMEDIATE, PAGE_RATIO),
        T0,
        [Event.ESCALATED],
        AlertState.FIRING,
        Severity.PAGE,
    ),
    Case(
        "A page incident that falls back to ticket-level burn neither de-escalates nor resolves",
        IMMEDIATE,
        {"chat-assistant/availability": incident(IMMEDIATE, Severity.PAGE, T0 - 600, T0 - 600)},
        status(IMMEDIATE, TICKET_RATIO),
        T0,
        [],
        None,
    ),
    Case(
        "An incident still burning after the renotify interval is told again in its thread",
        IMMEDIATE,
        {
            "chat-assistant/availability": incident(
                IMMEDIATE, Severity.PAGE, T0 - 4 * 3600, T0 - 4 * 3600
            )
        },
        status(IMMEDIATE, PAGE_RATIO),
        T0,
        [Event.RENOTIFY],
        AlertState.FIRING,
        Severity.PAGE,
        renotify=4 * 3600,
    ),
    Case(
        "An incident burning for less than the renotify interval is not told again",
        IMMEDIATE,
        {"chat-assistant/availability": incident(IMMEDIATE, Severity.PAGE, T0 - 3600, T0 - 3600)},
        status(IMMEDIATE, PAGE_RATIO),
        T0,
        [],
        None,
        renotify=4 * 3600,
    ),
    Case(
        "An incident whose pairs all stop burning resolves",
        IMMEDIATE,
        {"chat-assistant/availability": incident(IMMEDIATE, Severity.PAGE, T0 - 600, T0 - 600)},
        status(IMMEDIATE, CLEAN),
        T0,
        [Event.RESOLVED],
        AlertState.INACTIVE,
        Severity.PAGE,
    ),
    Case(
        "Unavailable data never resolves a firing incident",
        IMMEDIATE,
        {"chat-assistant/availability": incident(IMMEDIATE, Severity.PAGE, T0 - 600, T0 - 600)},
        unavailable(IMMEDIATE, "Prometheus is down"),
        T0,
        [],
        None,
    ),
    Case(
        "No events over the window (no data) never resolves a firing incident",
        IMMEDIATE,
        {"chat-assistant/availability": incident(IMMEDIATE, Severity.PAGE, T0 - 600, T0 - 600)},
        status(IMMEDIATE, CLEAN, events=0.0),
        T0,
        [],
        None,
    ),
    Case(
        "Recorded series that stopped moving (stale) never resolve a firing incident",
        IMMEDIATE,
        {"chat-assistant/availability": incident(IMMEDIATE, Severity.PAGE, T0 - 600, T0 - 600)},
        judge(
            IMMEDIATE,
            Rates(dict.fromkeys(WINDOWS, 0.0), dict.fromkeys(WINDOWS, 10.0), Mode.RECORDED, 3600),
            T0,
        ),
        T0,
        [],
        None,
    ),
    Case(
        "A clean SLO with no incident tells nobody",
        IMMEDIATE,
        {},
        status(IMMEDIATE, CLEAN),
        T0,
        [],
        None,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_alert_transitions(case: Case) -> None:
    step = advance(case.obj, case.rows, case.status, case.now, renotify=case.renotify)
    assert kinds(step) == case.notifications
    row = incident_row(step, case.obj)
    assert (row.state if row else None) == case.incident_state
    if case.incident_severity is not None:
        assert row is not None and row.severity == case.incident_severity
    for state, count in case.pair_states.items():
        pairs = [r for r in step.rows if r.key.count("/") == 3 and r.state == state]
        assert len(pairs) == count, (state, step.rows)


def test_an_escalation_a_renotification_and_a_resolution_thread_under_the_opening_incident() -> (
    None
):
    opened = incident(IMMEDIATE, Severity.TICKET, T0 - 600, T0 - 600)
    rows = {"chat-assistant/availability": opened}
    escalated = advance(IMMEDIATE, rows, status(IMMEDIATE, PAGE_RATIO), T0)
    resolved = advance(IMMEDIATE, rows, status(IMMEDIATE, CLEAN), T0)
    assert [n.incident for n in escalated.notifications] == [opened.incident]
    assert [n.incident for n in resolved.notifications] == [opened.incident]
    assert resolved.notifications[0].payload["fired_at"] == T0 - 600
    # An escalated incident keeps the time it opened.
    raised = incident_row(escalated, IMMEDIATE)
    assert raised is not None and raised.fired_at == T0 - 600 and raised.since == T0 - 600


def test_a_new_incident_is_named_after_the_slo_and_the_second_it_opened() -> None:
    step = advance(IMMEDIATE, {}, status(IMMEDIATE, PAGE_RATIO), T0 + 0.7)
    (note,) = step.notifications
    assert note.incident == f"chat-assistant/availability/{int(T0)}"
    assert note.payload["severity"] == Severity.PAGE
    assert note.payload["channel"] == "#chat-oncall"
    assert note.payload["runbook_url"] == "https://runbooks.example/chat/provider-outage.md"
    assert note.payload["status"]["state"] == "page"


def test_a_first_look_goes_into_the_page_that_opens_the_incident() -> None:
    look = {"first_look_window": "5m", "first_look": [{"label": "model", "values": [["m", 1.0]]}]}
    step = advance(IMMEDIATE, {}, status(IMMEDIATE, PAGE_RATIO), T0, look=look)
    assert step.notifications[0].payload["first_look"] == look["first_look"]


def test_a_clean_slo_never_seen_burning_writes_no_row() -> None:
    assert advance(IMMEDIATE, {}, status(IMMEDIATE, CLEAN), T0) == Transition()


def test_a_pair_that_stops_burning_goes_back_to_inactive() -> None:
    rows = firing_pairs(IMMEDIATE, Severity.TICKET, T0 - 600)
    step = advance(IMMEDIATE, rows, status(IMMEDIATE, CLEAN), T0)
    assert {r.key: r.state for r in step.rows if r.key in rows} == dict.fromkeys(
        rows, AlertState.INACTIVE
    )


def test_an_unchanged_pair_row_is_not_written_again() -> None:
    pairs = firing_pairs(IMMEDIATE, Severity.PAGE, T0 - 600) | firing_pairs(
        IMMEDIATE, Severity.TICKET, T0 - 600
    )
    rows = {
        **pairs,
        "chat-assistant/availability": incident(IMMEDIATE, Severity.PAGE, T0 - 600, T0 - 600),
    }
    assert advance(IMMEDIATE, rows, status(IMMEDIATE, PAGE_RATIO), T0) == Transition()


@pytest.mark.parametrize(
    ("name", "status", "window"),
    [
        (
            "An SLO about to page looks at its page's short window",
            status(IMMEDIATE, PAGE_RATIO),
            "5m",
        ),
        (
            "An SLO about to open a ticket looks at the ticket's short window",
            status(IMMEDIATE, TICKET_RATIO),
            "2h",
        ),
        ("A clean SLO needs no look", status(IMMEDIATE, CLEAN), None),
        ("An unreadable SLO needs no look", unavailable(IMMEDIATE, "down"), None),
    ],
)
def test_when_a_page_needs_a_first_look(name: str, status: Status, window: str | None) -> None:
    assert wants_first_look({}, status) == window


def test_an_incident_already_told_at_page_severity_needs_no_second_look() -> None:
    rows = {"chat-assistant/availability": incident(IMMEDIATE, Severity.PAGE, T0, T0)}
    assert wants_first_look(rows, status(IMMEDIATE, PAGE_RATIO)) is None
    ticket = {"chat-assistant/availability": incident(IMMEDIATE, Severity.TICKET, T0, T0)}
    assert wants_first_look(ticket, status(IMMEDIATE, PAGE_RATIO)) == "5m"


BLIND_CYCLE = [unavailable(IMMEDIATE, "down"), unavailable(PATIENT, "down")]
SEEING_CYCLE = [unavailable(IMMEDIATE, "down"), status(PATIENT, CLEAN)]


@pytest.mark.parametrize(
    ("name", "before", "statuses", "after", "events"),
    [
        (
            "A first blind cycle counts one failure and pages nobody",
            Sight(),
            BLIND_CYCLE,
            Sight(1),
            [],
        ),
        (
            "The third blind cycle in a row opens the blind page",
            Sight(2),
            BLIND_CYCLE,
            Sight(3, f"{BLIND}/{int(T0)}"),
            [Event.BLIND],
        ),
        (
            "Further blind cycles do not page again",
            Sight(5, f"{BLIND}/1"),
            BLIND_CYCLE,
            Sight(6, f"{BLIND}/1"),
            [],
        ),
        (
            "One readable SLO is sight: the blind page resolves",
            Sight(6, f"{BLIND}/1"),
            SEEING_CYCLE,
            Sight(),
            [Event.SIGHT],
        ),
        (
            "A readable cycle after a short blindness resets the count quietly",
            Sight(2),
            SEEING_CYCLE,
            Sight(),
            [],
        ),
        ("A cycle with no SLOs at all is not blind", Sight(2), [], Sight(), []),
    ],
)
def test_sight(
    name: str, before: Sight, statuses: list[Status], after: Sight, events: list[Event]
) -> None:
    sight, notes = track_sight(before, statuses, T0, blind_after=3)
    assert sight == after
    assert [n.kind for n in notes] == events
    if events == [Event.BLIND]:
        assert notes[0].payload == {
            "severity": Severity.PAGE,
            "failed_cycles": 3,
            "errors": ["down"],
            "at": T0,
        }


def test_the_blind_page_and_its_resolution_go_to_every_page_channel_the_files_name() -> None:
    channels = ["#chat-oncall", "#search-oncall"]
    sight, notes = track_sight(Sight(2), BLIND_CYCLE, T0, blind_after=3, channels=channels)
    assert [(n.incident, n.payload["channel"]) for n in notes] == [
        (f"{sight.blind_incident}/#chat-oncall", "#chat-oncall"),
        (f"{sight.blind_incident}/#search-oncall", "#search-oncall"),
    ]
    _, back = track_sight(sight, SEEING_CYCLE, T0 + 60, blind_after=3, channels=channels)
    assert [(n.kind, n.incident) for n in back] == [
        (Event.SIGHT, f"{sight.blind_incident}/#chat-oncall"),
        (Event.SIGHT, f"{sight.blind_incident}/#search-oncall"),
    ]


def test_page_channels_are_the_files_page_channels_once_each() -> None:
    from sloengine.alerting import page_channels

    assert page_channels([IMMEDIATE, PATIENT]) == ["#chat-oncall"]
