"""Replay one SLO's history through the decisions ``run`` makes, one step at a time.

Pure: the history comes in as per-step bad and total increments (events, or dollars for
spend), every window the SLO reads is built from them by prefix sums, and at every step
where anything can happen :func:`sloengine.status.judge` and
:func:`sloengine.alerting.advance` decide, exactly as the scheduler would at that instant.
``for``, escalation, ``min_events``, missing data and resolution therefore behave as in
``run``; what comes out is what changed: the alert pairs' episodes, the incidents and
their pages and tickets, the budget over time.

Most steps of a month are quiet: no pair has both burns over its threshold and nothing
is pending or firing. Such a step is told by a :class:`Screen` from plain floats, with
the policy's own :func:`sloengine.status.burn` and :func:`sloengine.budget.pair_fires`,
and skips judge and advance, which would change nothing on it; any other step is judged
in full. Skipping is exact (tests/test_backtest_core.py replays histories both ways) and
takes 7-8x less CPU than judging every step (bench/BACKTEST.md).

A window of W seconds at step i is the sum of the last round(W / step) increments over
that many steps: with the default 1m step every default window is whole. An increment is
Prometheus's ``rate`` over one step times the step, so each is extrapolated to its step's
boundaries the way ``increase`` is, and a window's sum matches ``increase(...[W])`` to
within that extrapolation (tests/test_backtest.py measures it). A calendar month's
month-to-date is the sum of the increments since 00:00 UTC on the 1st (the steps after
the one at midnight), as ``status --mode raw`` reads the counter since the 1st.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate

from sloengine import conventions as cv
from sloengine.alerting import AlertRow, AlertState, Event, Transition, incident_key, pair_key
from sloengine.alerting import advance as advance_alerts
from sloengine.budget import month_bounds, month_forecast, pair_fires
from sloengine.conventions import Mode, Severity
from sloengine.model import Objective
from sloengine.status import PairState, Rates, Status, burn, judge
from sloengine.windows import windows_of

DAY = 86400


def replay_windows(obj: Objective) -> list[int]:
    """Every window (seconds) the replay reads: the SLO's, and a calendar month's
    forecast window (the spend rate its month-end forecast extrapolates)."""
    if obj.calendar_month:
        return sorted({*windows_of(obj), cv.FORECAST_WINDOW_SECONDS})
    return windows_of(obj)


def history_start(obj: Objective, since: float) -> float:
    """The earliest time a replay from ``since`` reads: its longest window before
    ``since``, and for a calendar month 00:00 UTC on the 1st of ``since``'s month."""
    start = since - max(replay_windows(obj))
    return min(start, month_bounds(since)[0]) if obj.calendar_month else start


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
        self.start = history.start
        self.step = history.step
        self.group = history.group
        self.bad_sums = _prefix(history.bad)
        self.total_sums = None if history.total is None else _prefix(history.total)
        self.missing_sums = _prefix(
            [0.0 if math.isfinite(b) else 1.0 for b in history.bad]
            if history.total is None
            else [
                0.0 if math.isfinite(b) and math.isfinite(t) else 1.0
                for b, t in zip(history.bad, history.total, strict=True)
            ]
        )
        # The month the last month_to_date was in: [begin, end) and its first point.
        self._month = (math.inf, -math.inf, 0)

    def steps(self, seconds: int) -> int:
        return max(1, round(seconds / self.step))

    def rates(self, i: int, windows: Sequence[int], *, month: bool = False) -> Rates:
        """Per-second bad and total rates over each window ending at step ``i`` (and with
        ``month``, the bad increments since the 1st)."""
        bad: dict[int, float] = {}
        total: dict[int, float] | None = None if self.total_sums is None else {}
        top, prefix, totals, broken = i + 1, self.bad_sums, self.total_sums, self.missing_sums
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
        spent = self.month_to_date(i) if month else None
        return Rates(bad, total, Mode.RAW, month_to_date=spent, group=dict(self.group))

    def increase(self, i: int, seconds: int) -> tuple[float, float | None]:
        """Bad and total events (or dollars) over the window ending at step ``i``."""
        r = self.rates(i, [seconds])
        span = self.steps(seconds) * self.step
        return r.bad[seconds] * span, None if r.total is None else r.total[seconds] * span

    def first_events(self) -> float | None:
        """When the first step with any events (or dollars) ends; None: none at all."""
        # Prefix sums never fall: the first sum over 0 is just after that step.
        k = min(bisect_right(x, 0.0) for x in (self.bad_sums, self.total_sums) if x is not None)
        return None if k >= len(self.bad_sums) else self.start + (k - 1) * self.step

    def month_to_date(self, i: int) -> float:
        """Bad increments (dollars) since 00:00 UTC on the 1st of step ``i``'s month: the
        points after the one at midnight (0 at midnight itself, as the month rules)."""
        now = self.start + i * self.step
        begin, end, first = self._month
        if not begin <= now < end:
            begin, end = month_bounds(now)
            first = math.floor((begin - self.start) / self.step) + 1
            self._month = (begin, end, first)
        return self.bad_sums[i + 1] - self.bad_sums[min(max(first, 0), i + 1)]


def _prefix(values: Sequence[float]) -> array[float]:
    # A rate is never negative (a counter reset is not credit) and a missing one adds
    # nothing; `0 < v < inf` is false for NaN too.
    return array("d", accumulate((v if 0 < v < math.inf else 0.0 for v in values), initial=0.0))


class Screen:
    """Tells a quiet step from plain floats, far cheaper than judge and advance.

    A step is quiet when no window the replay reads is missing data, no pair has both
    burns over its threshold (:func:`pair_fires` without its event guards, which can only
    hold a pair back), and a calendar month's forecast is within its budget. With no pair
    pending or firing and no incident open, judge would then find every condition false
    and advance would change nothing but the inactive rows' timestamps, which nothing
    reads: the replay skips both. The rates and burns are computed as judge's are, so
    the budget remaining is the same number.
    """

    def __init__(self, obj: Objective, windows: Windows) -> None:
        self.obj = obj
        self.windows = windows
        self.group = dict(windows.group)
        self.longest = windows.steps(max(replay_windows(obj)))
        step = windows.step

        def steps(seconds: int) -> tuple[int, int]:
            n = windows.steps(seconds)
            return n, n * step

        self.pairs = [
            (w, *steps(w.long_seconds), *steps(w.short_seconds)) for w in obj.active_windows()
        ]
        self.period = steps(obj.period)
        self.forecast = steps(cv.FORECAST_WINDOW_SECONDS)
        self.month_page = obj.calendar_month and obj.enabled.get(Severity.PAGE, True)

    def _burn(self, top: int, n: int, span: int) -> float:
        """The burn over the ``n`` steps (``span`` seconds) before ``top``, as judge's."""
        lo = top - n if top > n else 0
        bad, totals = self.windows.bad_sums, self.windows.total_sums
        total = None if totals is None else (totals[top] - totals[lo]) / span
        return burn(self.obj, (bad[top] - bad[lo]) / span, total, self.group)

    def remaining(self, i: int, now: float) -> float | None:
        """The budget remaining at a quiet step ``i``; None when the step must be judged."""
        top = i + 1
        missing, longest = self.windows.missing_sums, self.longest
        if missing[top] != missing[top - longest if top > longest else 0]:
            return None
        rate = self._burn
        for w, long_n, long_span, short_n, short_span in self.pairs:
            long_burn = rate(top, long_n, long_span)
            # pair_fires needs both burns over the threshold: the long one first saves
            # computing the short one on almost every step.
            if long_burn > w.burn_rate and pair_fires(
                w,
                long_burn,
                rate(top, short_n, short_span),
                events=None,
                bad_events=None,
                min_events=0,
                min_bad_events=0,
            ):
                return None
        if not self.obj.calendar_month:
            return 1 - rate(top, *self.period)
        budget = self.obj.budget_usd
        assert budget is not None
        spent = self.windows.month_to_date(i)
        if self.month_page:
            n, span = self.forecast
            bad = self.windows.bad_sums
            if (
                month_forecast(
                    spent, (bad[top] - bad[top - n if top > n else 0]) / span, budget, now
                ).usd
                > budget
            ):
                return None
        return 1 - spent / budget


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
    # When the history the windows read begins, and its first step with any events
    # (None: none at all); windows reaching before that count no events.
    read_from: float = 0.0
    data_from: float | None = None

    @property
    def partial(self) -> bool:
        """Whether the first steps' windows reach before the first events."""
        return self.data_from is None or self.data_from > self.read_from + self.step

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


def replay(
    obj: Objective, history: History, since: float, *, renotify: float = 0, screen: bool = True
) -> Replay:
    """Judge and advance the SLO at every step from ``since`` to the end of its history
    (``screen``: only at the steps a :class:`Screen` cannot tell quiet; False judges every
    step, the same replay slower).

    The history must reach back to :func:`history_start` for the first steps' windows
    (and a calendar month's month-to-date) to be whole; points before it count as no
    events.
    """
    windows = Windows(history)
    needed = replay_windows(obj)
    quiet = Screen(obj, windows) if screen else None
    first = max(0, math.ceil((since - history.start) / history.step))
    last = len(history) - 1
    until = history.time(last)
    out = Replay(obj.service, obj.name, history.time(first), until, history.step)
    out.group = dict(history.group)
    out.read_from = history.start
    out.data_from = windows.first_events()
    every = budget_every(out.since, until, history.step)
    rows: dict[str, AlertRow] = {}
    busy = False  # a pair pending or firing, or the incident open: every step is judged
    open_episodes: dict[str, Episode] = {}
    open_incident: Incident | None = None
    breached: dict[int, None] = {}  # UTC days since the epoch (Unix time has no leap seconds)
    remaining: float | None = None
    for i in range(first, last + 1):
        now = history.time(i)
        skipped = None if busy or quiet is None else quiet.remaining(i, now)
        if skipped is not None:
            remaining = skipped
        else:
            status = judge(obj, windows.rates(i, needed, month=obj.calendar_month), now)
            remaining = status.error_budget_remaining
            transition = advance_alerts(obj, rows, status, now, renotify=renotify)
            open_incident = _follow(
                out, rows, open_episodes, open_incident, status, transition, now
            )
            busy = any(row.state != AlertState.INACTIVE for row in rows.values())
        if (i - first) % every == 0 or i == last:
            out.budget.append((now, remaining))
        if remaining is not None and remaining < 0:
            breached[int(now // DAY)] = None
    out.episodes.extend(open_episodes.values())
    out.episodes.sort(key=lambda e: (e.fired_at, e.severity.rank))
    out.budget_end = remaining
    out.breached_days = [_day(day * DAY) for day in breached]
    return out


def _follow(
    out: Replay,
    rows: dict[str, AlertRow],
    open_episodes: dict[str, Episode],
    open_incident: Incident | None,
    status: Status,
    transition: Transition,
    now: float,
) -> Incident | None:
    """Apply one judged step's transition: the rows, the episodes and the incident it
    opens, escalates or resolves (returned: the incident open after the step)."""
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
    return open_incident


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
