"""Replay one SLO's history through the decisions ``run`` makes, one step at a time.

Pure: the history comes in as per-step bad and total increments (events, or dollars for
spend), every window the SLO reads is built from them by prefix sums, and at every step
:func:`sloengine.status.judge` and :func:`sloengine.alerting.advance` decide, exactly as
the scheduler would at that instant. ``for``, escalation, ``min_events``, missing data and
resolution therefore behave as in ``run``; what comes out is what changed: the alert
pairs' episodes, the incidents and their pages and tickets, the budget over time.

A window of W seconds at step i is the sum of the last round(W / step) increments over
that many steps: with the default 1m step every default window is whole. An increment is
Prometheus's ``rate`` over one step times the step, so each is extrapolated to its step's
boundaries the way ``increase`` is, and a window's sum matches ``increase(...[W])`` to
within that extrapolation (tests/test_backtest.py measures it).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sloengine.alerting import AlertRow, AlertState, Event, incident_key, pair_key
from sloengine.alerting import advance as advance_alerts
from sloengine.conventions import Mode, Severity
from sloengine.model import Objective
from sloengine.status import PairState, Rates, Status, judge
from sloengine.windows import windows_of

DAY = 86400


@dataclass(frozen=True)
class History:
    """One SLO's increments per step; point i covers (start + (i-1)*step, start + i*step].

    A non-finite increment is missing data: every window that holds it is missing too.
    """

    start: float
    step: int
    bad: Sequence[float]
    total: Sequence[float] | None  # None for spend
    group: dict[str, str] = field(default_factory=dict)  # one group of a grouped SLO

    def __len__(self) -> int:
        return len(self.bad)

    def time(self, i: int) -> float:
        return self.start + i * self.step


class Windows:
    """Rates over any window ending at any step, from prefix sums (two arrays per SLO)."""

    def __init__(self, history: History) -> None:
        self.step = history.step
        self.group = history.group
        self._bad = _prefix(history.bad)
        self._total = None if history.total is None else _prefix(history.total)
        self._broken = _prefix(
            [0.0 if math.isfinite(b) else 1.0 for b in history.bad]
            if history.total is None
            else [
                0.0 if math.isfinite(b) and math.isfinite(t) else 1.0
                for b, t in zip(history.bad, history.total, strict=True)
            ]
        )

    def steps(self, seconds: int) -> int:
        return max(1, round(seconds / self.step))

    def rates(self, i: int, windows: Sequence[int]) -> Rates:
        """Per-second bad and total rates over each window ending at step ``i``."""
        bad: dict[int, float] = {}
        total: dict[int, float] | None = None if self._total is None else {}
        top, prefix, totals, broken = i + 1, self._bad, self._total, self._broken
        for seconds in windows:
            n = self.steps(seconds)
            lo = top - n if top > n else 0
            span = n * self.step
            if broken[top] != broken[lo]:
                bad[seconds] = math.nan
                if total is not None:
                    total[seconds] = math.nan
                continue
            bad[seconds] = (prefix[top] - prefix[lo]) / span
            if total is not None and totals is not None:
                total[seconds] = (totals[top] - totals[lo]) / span
        return Rates(bad, total, Mode.RAW, group=dict(self.group))

    def increase(self, i: int, seconds: int) -> tuple[float, float | None]:
        """Bad and total events (or dollars) over the window ending at step ``i``."""
        r = self.rates(i, [seconds])
        span = self.steps(seconds) * self.step
        return r.bad[seconds] * span, None if r.total is None else r.total[seconds] * span


def _prefix(values: Sequence[float]) -> array[float]:
    out = array("d", [0.0])
    running = 0.0
    for v in values:
        if math.isfinite(v):
            running += max(0.0, v)  # a rate is never negative; a counter reset is not credit
        out.append(running)
    return out


@dataclass
class Episode:
    """One alert pair firing, from when it fired to when it resolved (None: still firing)."""

    severity: Severity
    long_window: str
    short_window: str
    fired_at: float
    resolved_at: float | None
    peak_burn: float  # the highest long-window burn while it fired


@dataclass
class Incident:
    """The SLO's incident as on-call saw it: opened (a page or a ticket), maybe escalated."""

    opened_at: float
    severity: Severity  # the highest it reached
    paged_at: float | None  # when it paged (opened as or escalated to a page)
    resolved_at: float | None


@dataclass
class Replay:
    """What one SLO's alerts did between ``since`` and ``until``."""

    service: str
    slo: str
    since: float
    until: float
    step: int
    group: dict[str, str] = field(default_factory=dict)
    episodes: list[Episode] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    pages: int = 0
    tickets: int = 0
    budget: list[tuple[float, float | None]] = field(default_factory=list)
    budget_end: float | None = None
    breached_days: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.service, self.slo)

    @property
    def weeks(self) -> float:
        return max(self.until - self.since, self.step) / (7 * DAY)

    @property
    def firing_seconds(self) -> float:
        """Time an incident was open (firing at any severity)."""
        return sum((i.resolved_at or self.until) - i.opened_at for i in self.incidents)

    @property
    def page_times(self) -> list[float]:
        return [i.paged_at for i in self.incidents if i.paged_at is not None]


def budget_every(since: float, until: float, step: int) -> int:
    """Steps between the budget series' points: a day, or an hour for a span under 3 days."""
    every = DAY if until - since >= 3 * DAY else 3600
    return max(1, every // step)


def replay(obj: Objective, history: History, since: float, *, renotify: float = 0) -> Replay:
    """Judge and advance the SLO at every step from ``since`` to the end of its history.

    The history must reach back before ``since`` by the SLO's longest window for the
    first steps' windows to be whole; points before it count as no events.
    """
    windows = Windows(history)
    needed = windows_of(obj)
    first = max(0, math.ceil((since - history.start) / history.step))
    last = len(history) - 1
    until = history.time(last)
    out = Replay(obj.service, obj.name, history.time(first), until, history.step)
    every = budget_every(out.since, until, history.step)
    rows: dict[str, AlertRow] = {}
    open_episodes: dict[str, Episode] = {}
    open_incident: Incident | None = None
    breached: dict[str, None] = {}
    remaining: float | None = None
    for i in range(first, last + 1):
        now = history.time(i)
        status = judge(obj, windows.rates(i, needed), now)
        out.group = status.group
        remaining = status.error_budget_remaining
        if (i - first) % every == 0 or i == last:
            out.budget.append((now, remaining))
        if remaining is not None and remaining < 0:
            breached[_day(now)] = None
        transition = advance_alerts(obj, rows, status, now, renotify=renotify)
        incident = incident_key(status.service, status.slo, status.group)
        for row in transition.rows:
            before = rows.get(row.key)
            rows[row.key] = row
            if row.key == incident:
                continue
            was = before is not None and before.state == AlertState.FIRING
            if row.state == AlertState.FIRING and not was:
                pair = _pair_of(status, row.key)
                open_episodes[row.key] = Episode(
                    row.severity,
                    pair.long_window if pair else "",
                    pair.short_window if pair else "",
                    row.fired_at if row.fired_at is not None else now,
                    None,
                    pair.long_burn if pair else 0.0,
                )
            elif was and row.state != AlertState.FIRING and row.key in open_episodes:
                ended = open_episodes.pop(row.key)
                ended.resolved_at = now
                out.episodes.append(ended)
        for key, episode in open_episodes.items():
            pair = _pair_of(status, key)
            if pair is not None and math.isfinite(pair.long_burn):
                episode.peak_burn = max(episode.peak_burn, pair.long_burn)
        for note in transition.notifications:
            severity = Severity(note.payload["severity"])
            if note.kind == Event.FIRING:
                paged = now if severity == Severity.PAGE else None
                open_incident = Incident(now, severity, paged, None)
                out.incidents.append(open_incident)
                if severity == Severity.PAGE:
                    out.pages += 1
                else:
                    out.tickets += 1
            elif note.kind == Event.ESCALATED and open_incident is not None:
                open_incident.severity = severity
                open_incident.paged_at = now
                out.pages += 1
            elif note.kind == Event.RESOLVED and open_incident is not None:
                open_incident.resolved_at = now
                open_incident = None
    out.episodes.extend(open_episodes.values())
    out.episodes.sort(key=lambda e: (e.fired_at, e.severity.rank))
    out.budget_end = remaining
    out.breached_days = list(breached)
    return out


def _pair_of(status: Status, key: str) -> PairState | None:
    for pair in status.pairs:
        if pair_key(status.service, status.slo, pair, status.group) == key:
            return pair
    return None


def _day(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).date().isoformat()


def iso(t: float | None) -> str | None:
    """ISO 8601 UTC to the second, or None."""
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
