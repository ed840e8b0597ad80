"""What `run --alertmanager` sends, as a table: the alert rows after a cycle, what was
sent before and a clock in; the alerts for Alertmanager out. The rows come from the
scheduler's own decision (sloengine.alerting.advance), as in a real cycle."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

import pytest
from test_alerting import CLEAN, IMMEDIATE, PAGE_RATIO, PATIENT, T0, TICKET_RATIO, status

from sloengine import conventions as cv
from sloengine.alerting import AlertRow, advance
from sloengine.amalerts import (
    LEASE_CYCLES,
    RESOLVED_RETENTION,
    Alert,
    dump,
    load,
    outgoing,
    timestamp,
)
from sloengine.conventions import Severity
from sloengine.model import Objective
from sloengine.rules import VALUE_TEMPLATE, alerting_rules
from sloengine.status import Status, unavailable

INTERVAL = 30.0
PROM = "http://prometheus:9090"


def cycle(
    obj: Objective,
    st: Status,
    rows: Mapping[str, AlertRow],
    last: Mapping[str, Alert],
    now: float,
) -> tuple[dict[str, AlertRow], dict[str, Alert]]:
    """One scheduler cycle: advance the rows, then what goes to Alertmanager."""
    after = dict(rows)
    for row in advance(obj, rows, st, now).rows:
        after[row.key] = row
    sent = outgoing({obj.key: obj}, [st], after, last, now, interval=INTERVAL, prometheus_url=PROM)
    return after, sent


def run(obj: Objective, steps: list[tuple[Status, float]]) -> dict[str, Alert]:
    """What the last of several cycles sends."""
    rows: dict[str, AlertRow] = {}
    sent: dict[str, Alert] = {}
    for st, now in steps:
        rows, sent = cycle(obj, st, rows, sent, now)
    return sent


def severities(sent: Mapping[str, Alert]) -> list[tuple[str, str, bool]]:
    return sorted(
        (a.labels[cv.SEVERITY], a.labels[cv.LONG_WINDOW], a.firing) for a in sent.values()
    )


DOWN = unavailable(IMMEDIATE, "prometheus:9090 is unreachable (ConnectionError)")
LEASE = LEASE_CYCLES * INTERVAL
ALL_FIRING = [
    ("page", "1h", True),
    ("page", "6h", True),
    ("ticket", "1d", True),
    ("ticket", "3d", True),
]
ALL_RESOLVED = [(s, w, False) for s, w, _ in ALL_FIRING]


@dataclass
class Case:
    name: str
    obj: Objective
    steps: list[tuple[Status, float]]
    sent: list[tuple[str, str, bool]]  # severity, long window, firing
    starts_at: float | None = None
    ends_at: float | None = None


CASES = [
    Case(
        "A burning SLO sends every firing pair, from when it fired, leased four cycles ahead",
        IMMEDIATE,
        [(status(IMMEDIATE, PAGE_RATIO), T0)],
        ALL_FIRING,
        T0,
        T0 + LEASE,
    ),
    Case(
        "A pair still firing is sent again each cycle with a fresh lease and its first start",
        IMMEDIATE,
        [(status(IMMEDIATE, PAGE_RATIO), T0), (status(IMMEDIATE, PAGE_RATIO), T0 + 30)],
        ALL_FIRING,
        T0,
        T0 + 30 + LEASE,
    ),
    Case(
        "A ticket-level burn sends the ticket pairs only",
        IMMEDIATE,
        [(status(IMMEDIATE, TICKET_RATIO), T0)],
        [("ticket", "1d", True), ("ticket", "3d", True)],
    ),
    Case(
        "A page waiting out its `for` is pending, and Alertmanager hears nothing",
        PATIENT,
        [(status(PATIENT, PAGE_RATIO), T0), (status(PATIENT, PAGE_RATIO), T0 + 60)],
        [],
    ),
    Case(
        "A page that held for its `for` is sent, starting when it fired",
        PATIENT,
        [(status(PATIENT, PAGE_RATIO), T0), (status(PATIENT, PAGE_RATIO), T0 + 120)],
        [("page", "1h", True), ("page", "6h", True)],
        T0 + 120,
    ),
    Case(
        "A pair the scheduler resolved is sent resolved: it ends now and keeps its start",
        IMMEDIATE,
        [(status(IMMEDIATE, PAGE_RATIO), T0), (status(IMMEDIATE, CLEAN), T0 + 60)],
        ALL_RESOLVED,
        T0,
        T0 + 60,
    ),
    Case(
        "A resolved pair is sent again, unchanged, for fifteen minutes",
        IMMEDIATE,
        [
            (status(IMMEDIATE, PAGE_RATIO), T0),
            (status(IMMEDIATE, CLEAN), T0 + 60),
            (status(IMMEDIATE, CLEAN), T0 + 60 + RESOLVED_RETENTION),
        ],
        ALL_RESOLVED,
        T0,
        T0 + 60,
    ),
    Case(
        "After fifteen minutes a resolved pair is no longer sent",
        IMMEDIATE,
        [
            (status(IMMEDIATE, PAGE_RATIO), T0),
            (status(IMMEDIATE, CLEAN), T0 + 60),
            (status(IMMEDIATE, CLEAN), T0 + 61 + RESOLVED_RETENTION),
        ],
        [],
    ),
    Case(
        "When the burn drops to ticket level the pages resolve and the tickets keep firing",
        IMMEDIATE,
        [(status(IMMEDIATE, PAGE_RATIO), T0), (status(IMMEDIATE, TICKET_RATIO), T0 + 60)],
        [
            ("page", "1h", False),
            ("page", "6h", False),
            ("ticket", "1d", True),
            ("ticket", "3d", True),
        ],
    ),
    Case(
        "While Prometheus is unavailable a firing pair is sent as before with a fresh lease, "
        "never resolved",
        IMMEDIATE,
        [(status(IMMEDIATE, PAGE_RATIO), T0), (DOWN, T0 + 600)],
        ALL_FIRING,
        T0,
        T0 + 600 + LEASE,
    ),
    Case(
        "Data that comes back clean after an unavailable spell resolves the pairs then",
        IMMEDIATE,
        [
            (status(IMMEDIATE, PAGE_RATIO), T0),
            (DOWN, T0 + 60),
            (status(IMMEDIATE, CLEAN), T0 + 120),
        ],
        ALL_RESOLVED,
        T0,
        T0 + 120,
    ),
    Case(
        "While Prometheus is unavailable a resolved pair stays resolved",
        IMMEDIATE,
        [
            (status(IMMEDIATE, PAGE_RATIO), T0),
            (status(IMMEDIATE, CLEAN), T0 + 60),
            (DOWN, T0 + 120),
        ],
        ALL_RESOLVED,
        T0,
        T0 + 60,
    ),
    Case(
        "A quiet SLO sends nothing",
        IMMEDIATE,
        [(status(IMMEDIATE, CLEAN), T0), (status(IMMEDIATE, CLEAN), T0 + 30)],
        [],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_what_goes_to_alertmanager(case: Case) -> None:
    sent = run(case.obj, case.steps)
    assert severities(sent) == case.sent
    if case.starts_at is not None:
        assert {a.starts_at for a in sent.values()} == {case.starts_at}
    if case.ends_at is not None:
        assert {a.ends_at for a in sent.values()} == {case.ends_at}


def test_labels_and_annotations_are_the_generated_rules_as_prometheus_sends_them() -> None:
    st = status(IMMEDIATE, PAGE_RATIO)
    sent = run(IMMEDIATE, [(st, T0)])
    burns = {(p.severity.value, p.long_window): p.long_burn for p in st.pairs}
    rules = alerting_rules(IMMEDIATE)
    assert len(rules) == len(sent) == 4
    for rule in rules:
        labels = {**rule["labels"], "alertname": rule["alert"]}
        (alert,) = [a for a in sent.values() if a.labels == labels]
        value = f"{burns[(labels[cv.SEVERITY], labels[cv.LONG_WINDOW])]:.2f}"
        expected = {k: v.replace(VALUE_TEMPLATE, value) for k, v in rule["annotations"].items()}
        assert alert.annotations == expected
        assert (
            "burning its error budget at 100.00x over the last" in alert.annotations["description"]
        )
        assert (
            alert.annotations["runbook_url"] == "https://runbooks.example/chat/provider-outage.md"
        )
        assert unquote(alert.generator_url) == f"{PROM}/graph?g0.expr={rule['expr']}&g0.tab=1"


def test_user_text_is_sent_as_written_where_the_rule_escapes_it_for_prometheus() -> None:
    obj = dataclasses.replace(
        IMMEDIATE, labels={"team": "{{ core }}"}, annotations={"dashboard": "https://d/{{x}}"}
    )
    (rule, *_) = alerting_rules(obj)
    assert rule["labels"]["team"] == '{{ "{{" }} core }}'
    sent = run(obj, [(status(obj, PAGE_RATIO), T0)])
    alert = next(iter(sent.values()))
    assert alert.labels["team"] == "{{ core }}"
    assert alert.annotations["dashboard"] == "https://d/{{x}}"


def test_a_grouped_slo_sends_its_group_labels_and_holds_only_its_own_group() -> None:
    eu = dataclasses.replace(status(IMMEDIATE, PAGE_RATIO), group={"region": "eu"})
    _, sent = cycle(IMMEDIATE, eu, {}, {}, T0)
    assert {a.labels["region"] for a in sent.values()} == {"eu"}
    # The eu alerts under other keys, as the grouped scheduler keys its rows.
    last = {f"eu/{k}": a for k, a in sent.items()}
    last |= {
        f"us/{k}": dataclasses.replace(a, labels={**a.labels, "region": "us"})
        for k, a in sent.items()
    }
    down = dataclasses.replace(unavailable(IMMEDIATE, "down"), group={"region": "us"})
    held = outgoing(
        {IMMEDIATE.key: IMMEDIATE},
        [down],
        {},
        last,
        T0 + 30,
        interval=INTERVAL,
        prometheus_url=PROM,
    )
    assert {a.labels["region"] for a in held.values()} == {"us"}


def test_what_was_sent_survives_a_restart_through_its_stored_form() -> None:
    sent = run(
        IMMEDIATE, [(status(IMMEDIATE, PAGE_RATIO), T0), (status(IMMEDIATE, CLEAN), T0 + 60)]
    )
    assert load(dump(sent)) == sent
    assert load([{"key": "x", "labels": "not a mapping"}, {"nothing": 1}]) == {}


def test_times_are_rfc3339_in_utc_as_alertmanager_reads_them() -> None:
    assert timestamp(1_800_000_000.25) == "2027-01-15T08:00:00.250Z"
    page = next(
        a
        for a in run(IMMEDIATE, [(status(IMMEDIATE, PAGE_RATIO), T0)]).values()
        if a.labels[cv.SEVERITY] == Severity.PAGE
    )
    body = page.as_json()
    assert sorted(body) == ["annotations", "endsAt", "generatorURL", "labels", "startsAt"]
    assert body["startsAt"] == timestamp(T0)
