"""What the web page shows, as plain data: statuses, explanations, history and series in,
the rows, charts and links the templates draw out.

Pure: the shell (:mod:`sloengine.web.app`) reads Prometheus and the state database and
hands the results here. Every number on the page is formatted from the same
:class:`~sloengine.status.Status` objects that ``status --format json`` prints, and each
one also carries its exact value (``data-value``) so a reader or a test can check it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from sloengine.conventions import Severity
from sloengine.detectors.verdict import (
    DetectorStatus,
    events_text,
    firing_first,
    limit_text,
    shown,
    shown_change,
)
from sloengine.durations import format_duration
from sloengine.model import Objective, group_text
from sloengine.promql import number
from sloengine.status import OK_STATE, Health, PairState, Status, burn
from sloengine.web.charts import Chart, Level, Line, chart
from sloengine.yamldoc import Document

# Firing first: pages, then tickets, then the rest.
STATE_RANK = {Severity.PAGE: 0, Severity.TICKET: 1, OK_STATE: 2}
STATES = (Severity.PAGE.value, Severity.TICKET.value, OK_STATE)
STATE_TEXT = {Severity.PAGE: "PAGE", Severity.TICKET: "TICKET", OK_STATE: "ok"}


@dataclass(frozen=True)
class Filters:
    """The overview's GET parameters: ``service``, ``state`` and free ``q`` text."""

    service: str = ""
    state: str = ""
    text: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, Sequence[str]]) -> Filters:
        def first(name: str) -> str:
            return (query.get(name) or [""])[0].strip()[:200]

        state = first("state")
        return cls(first("service"), state if state in STATES else "", first("q"))

    def keeps(self, status: Status, description: str) -> bool:
        return self._keeps(status.service, str(status.state), status.slo, description, status.group)

    def keeps_detector(self, status: DetectorStatus) -> bool:
        return self._keeps(
            status.service, str(status.state), status.detector, status.compared, status.group
        )

    def _keeps(
        self, service: str, state: str, name: str, description: str, group: Mapping[str, str]
    ) -> bool:
        if self.service and service != self.service:
            return False
        if self.state and state != self.state:
            return False
        if self.text:
            haystack = " ".join([service, name, description, *group.values()]).lower()
            return all(word in haystack for word in self.text.lower().split())
        return True

    @property
    def active(self) -> bool:
        return bool(self.service or self.state or self.text)


@dataclass(slots=True)
class PairView:
    severity: str
    windows: str  # "1h / 5m"
    threshold: str
    long_burn: str
    short_burn: str
    long_value: str  # exact values, as status --format json has them
    short_value: str
    active: bool
    fill: float  # 0..100: how far the slower of the two burns is towards the threshold
    label: str  # "page 1h / 5m:"
    burns: str  # "20.07x / 31.78x of 14.40x"
    css: str  # "active" while the pair's condition holds


@dataclass(slots=True)
class Row:
    """One SLO (one group of a grouped SLO) on the overview and the detail page."""

    service: str
    slo: str
    href: str
    group: str  # "provider=openai", "" for an ungrouped SLO
    kind: str
    description: str
    state: str
    state_text: str
    health: str
    mode: str
    spend: bool
    sli: str
    sli_value: str
    objective: str
    budget_fill: float  # 0..100 for the bar
    budget_css: str  # "gone" when spent, "low" under a quarter
    budget: str  # "21.8% left"
    budget_units: str  # the same in the SLO's units: events and outage minutes, or dollars
    budget_value: str
    exhaustion: str
    pairs: list[PairView]
    forecast: str
    error: str


@dataclass(slots=True)
class DetectorRow:
    """One detector group on the overview: recent against baseline, and the change."""

    service: str
    detector: str
    group: str  # "feature=chat, prompt_sha=9f8e7d6", "" for an ungrouped detector
    kind: str
    state: str
    state_text: str
    recent: str
    baseline: str
    change: str
    change_value: str  # exact, as status --format json has it
    limit: str
    events: str
    health: str
    mode: str
    error: str


@dataclass(frozen=True)
class Overview:
    rows: list[Row]
    services: list[str]
    filters: Filters
    total: int
    counts: dict[str, int]  # every SLO row's state, before filtering
    evaluated_at: str
    detectors: list[DetectorRow] = field(default_factory=list)


@dataclass(frozen=True)
class Note:
    """One notification of an incident, as the state database's outbox holds it."""

    incident: str
    kind: str  # firing, escalated, renotify, resolved
    created: float
    severity: str
    attempts: int
    delivered: float | None
    failed: str | None


@dataclass(frozen=True)
class NoteView:
    kind: str
    at: str
    severity: str
    delivery: str  # delivered, failed (why), pending
    delivered: bool


@dataclass(frozen=True)
class Incident:
    id: str
    severity: str
    opened: str
    escalated: str
    resolved: str  # "" while firing
    notes: list[NoteView]


@dataclass(frozen=True)
class RatePoint:
    at: float
    bad: float
    total: float | None  # None for spend


@dataclass(frozen=True)
class Link:
    name: str
    url: str


@dataclass
class Detail:
    service: str
    slo: str
    kind: str
    description: str
    owner: str
    rows: list[Row]
    links: list[Link]
    unsafe_links: list[Link]  # not http(s): shown as text, never as a link
    definition_file: str
    definition_line: int
    definition: str
    explanation: str
    charts: list[Chart]
    incidents: list[Incident]
    history: str  # why there is no history, "" when there is a state database
    evaluated_at: str
    errors: list[str] = field(default_factory=list)


def iso(t: float | None) -> str:
    if t is None:
        return ""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def slo_href(service: str, slo: str) -> str:
    return f"/slo/{quote(service, safe='')}/{quote(slo, safe='')}"


def _percent(ratio: float, digits: int) -> str:
    return f"{ratio * 100:.{digits}f}%"


def _burn(value: float) -> str:
    return f"{value:.2f}x"


def _dollars(value: float) -> str:
    return f"${value:,.2f}"


def _pair(p: PairState) -> PairView:
    slower = min(p.long_burn, p.short_burn)
    fill = 0.0 if p.threshold <= 0 else min(100.0, max(0.0, slower / p.threshold * 100))
    return PairView(
        severity=p.severity,
        windows=f"{p.long_window} / {p.short_window}",
        threshold=_burn(p.threshold),
        long_burn=_burn(p.long_burn),
        short_burn=_burn(p.short_burn),
        long_value=repr(p.long_burn),
        short_value=repr(p.short_burn),
        active=p.active,
        fill=round(fill, 1),
        label=f"{p.severity} {p.long_window} / {p.short_window}:",
        burns=f"{_burn(p.long_burn)} / {_burn(p.short_burn)} of {_burn(p.threshold)}",
        css="active" if p.active else "",
    )


def row(status: Status, obj: Objective | None) -> Row:
    """A status as the page shows it, with its exact numbers kept beside the text."""
    spend = obj.is_spend if obj is not None else status.kind == "spend"
    remaining = status.error_budget_remaining
    if status.sli is None:
        sli = "no data"
    else:
        sli = _dollars(status.sli) + " spent" if spend else _percent(status.sli, 3)
    if spend:
        budget_usd = obj.budget_usd if obj is not None else None
        objective = f"{_dollars(budget_usd or 0)} per {status.window}"
    else:
        objective = f"{number(status.objective or 0)}% over {status.window}"
    if remaining is None:
        budget = "unknown"
        units = ""
    elif spend:
        budget = f"{_percent(remaining, 1)} left"
        units = f"{_dollars(status.budget_remaining.get('dollars', 0))}"
    else:
        budget = f"{_percent(remaining, 1)} left"
        events = status.budget_remaining.get("events", 0)
        minutes = status.budget_remaining.get("outage_minutes", 0)
        units = f"{events:,.0f} bad events, {minutes:,.1f} min of full outage"
    fill = 0.0 if remaining is None else round(min(100.0, max(0.0, remaining * 100)), 1)
    forecast = ""
    if status.forecast_usd is not None:
        forecast = f"{_dollars(status.forecast_usd)} by the end of the month"
        if status.forecast_crosses_at:
            forecast += f", over budget from {status.forecast_crosses_at}"
    return Row(
        service=status.service,
        slo=status.slo,
        href=slo_href(status.service, status.slo),
        group=group_text(status.group),
        kind=str(status.kind),
        description=obj.description if obj is not None else "",
        state=str(status.state),
        state_text=STATE_TEXT.get(status.state, str(status.state)),
        health=str(status.health),
        mode=str(status.mode) or "none",
        spend=spend,
        sli=sli,
        sli_value="" if status.sli is None else repr(status.sli),
        objective=objective,
        budget_fill=fill,
        budget_css="gone" if fill <= 0 else "low" if fill < 25 else "",
        budget=budget,
        budget_units=units,
        budget_value="" if remaining is None else repr(remaining),
        exhaustion=_exhaustion(status),
        pairs=[_pair(p) for p in status.pairs],
        forecast=forecast,
        error=status.error,
    )


def _exhaustion(status: Status) -> str:
    remaining = status.error_budget_remaining
    if remaining is None:
        return ""
    if remaining <= 0:
        return "exhausted"
    if not status.exhaustion_at:
        return "not at this rate"
    return status.exhaustion_at.replace("T", " ")[:16] + " UTC"


def _order(status: Status) -> tuple[int, int, str, str, tuple[tuple[str, str], ...]]:
    unhealthy = 0 if status.health == Health.UNAVAILABLE else 1
    return (
        STATE_RANK.get(status.state, 3),
        unhealthy,
        status.service,
        status.slo,
        tuple(sorted(status.group.items())),
    )


def detector_row(status: DetectorStatus) -> DetectorRow:
    return DetectorRow(
        service=status.service,
        detector=status.detector,
        group=group_text(status.group),
        kind=status.kind,
        state=str(status.state),
        state_text=STATE_TEXT.get(status.state, str(status.state)),
        recent=shown(status.unit, status.recent),
        baseline=shown(status.unit, status.baseline) if status.baseline_window else "",
        change=shown_change(status) if status.baseline_window else "",
        change_value="" if status.change is None else repr(status.change),
        limit=limit_text(status),
        events=events_text(status),
        health=str(status.health),
        mode=str(status.mode),
        error=status.error,
    )


def overview(
    statuses: Iterable[Status],
    objectives: Mapping[tuple[str, str], Objective],
    filters: Filters,
    evaluated_at: float | None,
    detectors: Iterable[DetectorStatus] = (),
) -> Overview:
    """Every SLO's row, firing first, then unreadable ones, then by name; filtered."""
    everything = sorted(statuses, key=_order)
    counts = {state: 0 for state in STATES}
    for s in everything:
        counts[str(s.state)] = counts.get(str(s.state), 0) + 1
    kept = []
    for s in everything:
        obj = objectives.get(s.key)
        if filters.keeps(s, obj.description if obj else ""):
            kept.append(row(s, obj))
    return Overview(
        rows=kept,
        services=sorted({s.service for s in everything}),
        filters=filters,
        total=len(everything),
        counts=counts,
        evaluated_at=iso(evaluated_at) or "not yet",
        detectors=[
            detector_row(d) for d in firing_first(list(detectors)) if filters.keeps_detector(d)
        ],
    )


def safe_url(url: str) -> bool:
    """Whether a link from an SLO file may be a link: http(s) only, never javascript: or data:."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def links(obj: Objective) -> tuple[list[Link], list[Link]]:
    """The runbook and dashboard links, and those that are not http(s) (shown as text)."""
    found = [
        Link(name, url)
        for name, url in (
            ("runbook", obj.runbook_url or ""),
            ("dashboard", obj.annotations.get("dashboard", "")),
        )
        if url
    ]
    return [x for x in found if safe_url(x.url)], [x for x in found if not safe_url(x.url)]


def definition(text: str, doc: Document | None, name: str) -> tuple[int, str]:
    """The SLO's entry in its file as written: (first line, text); (0, "") if not found."""
    if doc is None or not isinstance(doc.data, dict):
        return 0, ""
    slos = doc.data.get("slos")
    if not isinstance(slos, list):
        return 0, ""
    index = next(
        (i for i, s in enumerate(slos) if isinstance(s, dict) and s.get("name") == name), None
    )
    if index is None:
        return 0, ""
    lines = text.splitlines()
    start = doc.values.get(("slos", index), (0, 0))[0]
    if start <= 0:
        return 0, ""
    after = [doc.values[("slos", j)][0] for j in range(len(slos)) if ("slos", j) in doc.values]
    after += [pos[0] for path, pos in doc.keys.items() if len(path) == 1]
    end = min((line for line in after if line > start), default=len(lines) + 1) - 1
    body = lines[start - 1 : end]
    # Blank lines and top-level comments before the next key belong to that key.
    while body and (not body[-1].strip() or body[-1].startswith("#")):
        body.pop()
    return start, "\n".join(body)


def incidents(notes: Iterable[Note]) -> list[Incident]:
    """Notifications grouped by incident, newest incident first."""
    grouped: dict[str, list[Note]] = {}
    for n in sorted(notes, key=lambda n: n.created):
        grouped.setdefault(n.incident, []).append(n)
    out = []
    for incident_id, group in grouped.items():
        opened = next((n.created for n in group if n.kind == "firing"), group[0].created)
        escalated = next((n.created for n in group if n.kind == "escalated"), None)
        resolved = next((n.created for n in reversed(group) if n.kind == "resolved"), None)
        severities = [n.severity for n in group if n.severity]
        worst = max(severities, key=lambda s: 2 if s == Severity.PAGE else 1, default="")
        out.append(
            Incident(
                id=incident_id,
                severity=worst,
                opened=iso(opened),
                escalated=iso(escalated),
                resolved=iso(resolved),
                notes=[_note(n) for n in group],
            )
        )
    return sorted(out, key=lambda i: i.opened, reverse=True)


def _note(n: Note) -> NoteView:
    if n.delivered is not None:
        delivery = f"delivered {iso(n.delivered)}"
    elif n.failed:
        delivery = f"not delivered: {n.failed}"
    else:
        tries = f" after {n.attempts} attempt{'s' if n.attempts != 1 else ''}" if n.attempts else ""
        delivery = f"pending{tries}"
    return NoteView(n.kind, iso(n.created), n.severity, delivery, n.delivered is not None)


def _ratio(obj: Objective, p: RatePoint) -> float | None:
    """The SLI at one point: the good share, or dollars spent over the window for spend."""
    if obj.is_spend:
        return p.bad * obj.period
    if not p.total or p.total <= 0:
        return None
    return 1 - p.bad / p.total


def _remaining(obj: Objective, p: RatePoint) -> float | None:
    if not obj.is_spend and (not p.total or p.total <= 0):
        return None
    return 1 - burn(obj, p.bad, p.total)


def charts(
    obj: Objective,
    window_series: Sequence[RatePoint],
    burn_series: Mapping[int, Sequence[RatePoint]],
    start_window: float,
    start_day: float,
    end: float,
) -> list[Chart]:
    """The SLI and budget over the SLO window, and the burn at each alert window over the
    last day with each pair's threshold drawn."""
    window = format_duration(obj.period)
    sli_points = [(p.at, _ratio(obj, p)) for p in window_series]
    if obj.is_spend:
        sli_chart = chart(
            f"Dollars spent over {window}",
            [Line("spent", sli_points, "line sli")],
            start_window,
            end,
            _dollars,
            levels=[Level("budget", obj.budget_usd or 0, "level objective")],
            floor=0,
        )
    else:
        sli_chart = chart(
            f"SLI over {window}",
            [Line("SLI", sli_points, "line sli")],
            start_window,
            end,
            lambda v: _percent(v, 3),
            levels=[Level("objective", obj.objective or 0, "level objective")],
            ceiling=1,
        )
    budget_chart = chart(
        f"Error budget remaining over {window}",
        [Line("budget left", [(p.at, _remaining(obj, p)) for p in window_series], "line budget")],
        start_window,
        end,
        lambda v: _percent(v, 1),
        levels=[Level("exhausted", 0.0, "level zero")],
        ceiling=1,
    )
    burn_lines = [
        Line(
            format_duration(seconds),
            [(p.at, burn(obj, p.bad, p.total)) for p in points],  # 0 with no traffic, as status
            f"line w{i % 8}",
        )
        for i, (seconds, points) in enumerate(sorted(burn_series.items()))
    ]
    thresholds = [
        Level(
            f"{w.severity} {format_duration(w.long_seconds)}/{format_duration(w.short_seconds)}",
            w.burn_rate,
            f"level {w.severity}",
        )
        for w in obj.active_windows()
    ]
    burn_chart = chart(
        "Burn rate per window, last day",
        burn_lines,
        start_day,
        end,
        _burn,
        levels=thresholds,
        floor=0,
    )
    return [sli_chart, budget_chart, burn_chart]


def detail(
    obj: Objective,
    statuses: Sequence[Status],
    *,
    explanation: str,
    source: tuple[int, str],
    drawn: list[Chart],
    notes: Sequence[Note] | None,
    evaluated_at: float | None,
    errors: Sequence[str] = (),
) -> Detail:
    """The detail page of one SLO; ``notes`` is None without a state database."""
    good, unsafe = links(obj)
    history = "" if notes is not None else "no state database: start with --state to see incidents"
    return Detail(
        service=obj.service,
        slo=obj.name,
        kind=str(obj.kind),
        description=obj.description,
        owner=obj.owner,
        rows=[row(s, obj) for s in sorted(statuses, key=_order)],
        links=good,
        unsafe_links=unsafe,
        definition_file=obj.file,
        definition_line=source[0],
        definition=source[1],
        explanation=explanation,
        charts=drawn,
        incidents=incidents(notes or ()),
        history=history,
        evaluated_at=iso(evaluated_at) or "not yet",
        errors=list(errors),
    )
