"""An SLO's status from its rates: SLI, budget, burn rates, alert conditions, data health.

Pure: the readings come in (per-second bad and total rates at every window, however
they were read), the verdict goes out. `status`, the scheduler, and anything else that
shows or acts on an SLO's state call :func:`judge`, so recorded and raw readings of the
same rates give the same verdict.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from sloengine import conventions as cv
from sloengine.budget import AlertWindow, budget_exhaustion_seconds, month_forecast, pair_fires
from sloengine.conventions import Mode, Severity
from sloengine.durations import format_duration
from sloengine.model import Objective
from sloengine.spec import SLIKind

# A cycle spells the same few windows for every SLO it judges.
_duration = functools.cache(format_duration)

# Recorded series older than this many evaluation intervals mean the rules stopped running.
STALE_INTERVALS = 3


class Health(StrEnum):
    """Whether an SLO's numbers can be trusted, and if not, why."""

    OK = "ok"
    NO_DATA = "no_data"  # no events over the SLO window
    LOW_TRAFFIC = "low_traffic"  # one failure would page, or fewer than min_events
    STALE = "stale"  # the recorded series stopped moving
    UNAVAILABLE = "unavailable"  # Prometheus did not answer


# Health that leaves every alert where it is: missing data neither fires nor resolves.
HOLDS = frozenset({Health.UNAVAILABLE, Health.STALE, Health.NO_DATA})

# The state of an SLO: no alert condition holds, or the most severe one that does.
State = Literal["ok"] | Severity
OK_STATE: State = "ok"


@dataclass(frozen=True)
class Rates:
    """Per-second bad and total rates at each window (seconds); total is None for spend."""

    bad: dict[int, float]
    total: dict[int, float] | None
    mode: Mode
    age_seconds: float = 0.0  # how old the newest recorded sample is (0 in raw mode)
    month_to_date: float | None = None  # `window: month` spend: dollars since the 1st
    group: dict[str, str] = field(default_factory=dict)  # the group these rates are for


@dataclass(frozen=True)
class PairState:
    severity: Severity
    long_window: str
    short_window: str
    threshold: float
    long_burn: float
    short_burn: float
    active: bool  # the alert condition holds now


@dataclass
class Status:
    service: str
    slo: str
    kind: SLIKind
    objective: float | None  # percent
    window: str
    sli: float | None  # good ratio over the SLO window; dollars spent for spend
    error_budget_remaining: float | None
    budget_remaining: dict[str, float]  # in the SLO's units: events, outage_minutes, dollars
    burn_rates: dict[str, float]
    state: State  # from the conditions; the scheduler adds `for`
    exhaustion_at: str | None
    health: Health
    mode: Mode | Literal[""]  # "" when nothing could be read
    pairs: list[PairState] = field(default_factory=list)
    error: str = ""
    # The group_by label values this row is for ({} for an ungrouped SLO).
    group: dict[str, str] = field(default_factory=dict)
    # Spend SLOs on a calendar month: the dollars the month will have spent at its end at
    # the current rate, and when that rate crosses the budget (None otherwise).
    forecast_usd: float | None = None
    forecast_crosses_at: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.service, self.slo)

    def as_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "pairs"}
        out["pairs"] = [p.__dict__ for p in self.pairs]
        return out


def burn(
    obj: Objective, bad: float, total: float | None, group: Mapping[str, str] | None = None
) -> float:
    """Budget burn at these rates (of one group, for a grouped SLO): 1 spends exactly the
    budget over the SLO window."""
    if obj.is_spend:
        budget = obj.budget_for(group or {})
        assert budget is not None
        return bad / (budget / obj.period)
    if not total or total <= 0:
        return 0.0  # no traffic burns nothing; never NaN
    return (bad / total) / obj.error_budget


def judge(obj: Objective, rates: Rates, now: float) -> Status:
    """Everything a status shows, from one set of window rates.

    A NaN or infinite rate is missing data, never a number: it holds every alert where
    it is (zero would resolve a firing incident; infinity would page on nothing).
    """
    broken = sorted(w for w, v in _values(rates) if not math.isfinite(v))
    if broken:
        windows = ", ".join(dict.fromkeys(format_duration(w) for w in broken))
        return unavailable(
            obj, f"Prometheus returned NaN or Inf for the {windows} rates", rates.group
        )
    period = obj.period
    burns = {
        s: burn(
            obj,
            rates.bad.get(s, 0.0),
            None if rates.total is None else rates.total.get(s),
            rates.group,
        )
        for s in sorted(rates.bad)
    }
    pairs = [_pair(obj, w, burns, rates) for w in obj.active_windows()]
    month = month_status(obj, rates, now)
    if month is not None and month.pair is not None:
        pairs.append(month.pair)
    state = next(
        (
            sev
            for sev in (Severity.PAGE, Severity.TICKET)
            if any(p.active and p.severity == sev for p in pairs)
        ),
        OK_STATE,
    )
    window_burn = burns.get(period, 0.0)
    remaining = 1 - window_burn
    total_window = None if rates.total is None else rates.total.get(period, 0.0) * period
    sli: float | None
    if obj.is_spend:
        sli = rates.bad.get(period, 0.0) * period
        units = {"dollars": round((obj.budget_for(rates.group) or 0) * remaining, 2)}
    else:
        bad_window = rates.bad.get(period, 0.0) * period
        sli = None if not total_window else 1 - bad_window / total_window
        units = {
            "events": round(obj.error_budget * (total_window or 0) * remaining, 1),
            "outage_minutes": round(obj.error_budget * period * remaining / 60, 1),
        }
    current = min((w.long_seconds for w in obj.active_windows()), default=period)
    exhaustion = _exhaustion(period, remaining, burns.get(current, 0.0), now)
    if month is not None:  # the budget is this month's: spent since the 1st
        sli, remaining = month.spent, month.remaining
        units = {"dollars": round((obj.budget_usd or 0) * remaining, 2)}
        exhaustion = month.crosses_at
    return Status(
        service=obj.service,
        slo=obj.name,
        kind=obj.kind,
        objective=_percent(obj),
        window=window_name(obj),
        sli=sli,
        error_budget_remaining=remaining,
        budget_remaining=units,
        burn_rates={_duration(s): b for s, b in burns.items()},
        state=state,
        exhaustion_at=exhaustion,
        health=health(obj, rates),
        mode=rates.mode,
        pairs=pairs,
        forecast_usd=None if month is None else month.forecast_usd,
        forecast_crosses_at=None if month is None else month.crosses_at,
        group=dict(rates.group),
    )


@dataclass(frozen=True)
class MonthStatus:
    spent: float
    remaining: float  # share of the month's budget left
    forecast_usd: float
    crosses_at: str | None
    pair: PairState | None  # the forecast page: month end over the budget


def month_status(obj: Objective, rates: Rates, now: float) -> MonthStatus | None:
    """A calendar month's spend, forecast and forecast page (None for rolling windows, or
    when the month-to-date was not read)."""
    if not obj.calendar_month or obj.budget_usd is None or rates.month_to_date is None:
        return None
    budget, spent = obj.budget_usd, rates.month_to_date
    forecast = month_forecast(spent, rates.bad.get(cv.FORECAST_WINDOW_SECONDS, 0.0), budget, now)
    share = forecast.usd / budget
    pair = None
    if obj.enabled.get(Severity.PAGE, True):
        pair = PairState(
            severity=Severity.PAGE,
            long_window=cv.MONTH_WINDOW,
            short_window=format_duration(cv.FORECAST_WINDOW_SECONDS),
            threshold=1.0,  # the forecast over the budget
            long_burn=share,
            short_burn=share,
            active=forecast.usd > budget,
        )
    crosses = forecast.crosses_at
    return MonthStatus(
        spent=spent,
        remaining=1 - spent / budget,
        forecast_usd=round(forecast.usd, 2),
        crosses_at=None if crosses is None else _iso(crosses),
        pair=pair,
    )


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def window_name(obj: Objective) -> str:
    """The SLO window as shown: ``month`` for a calendar month, else its duration."""
    return cv.MONTH_WINDOW if obj.calendar_month else _duration(obj.period)


def _values(rates: Rates) -> list[tuple[int, float]]:
    return [*rates.bad.items(), *(rates.total or {}).items()]


def _percent(obj: Objective) -> float | None:
    return None if obj.objective is None else round(obj.objective * 100, 10)


def _pair(obj: Objective, w: AlertWindow, burns: dict[int, float], rates: Rates) -> PairState:
    long_b, short_b = burns.get(w.long_seconds, 0.0), burns.get(w.short_seconds, 0.0)
    events = None if rates.total is None else rates.total.get(w.long_seconds, 0.0) * w.long_seconds
    bad_events = rates.bad.get(w.long_seconds, 0.0) * w.long_seconds
    return PairState(
        severity=w.severity,
        long_window=_duration(w.long_seconds),
        short_window=_duration(w.short_seconds),
        threshold=w.burn_rate,
        long_burn=long_b,
        short_burn=short_b,
        active=pair_fires(
            w,
            long_b,
            short_b,
            events=events,
            bad_events=None if obj.is_spend else bad_events,
            min_events=obj.min_events,
            min_bad_events=obj.min_bad_events,
        ),
    )


def _exhaustion(period: int, remaining: float, rate: float, now: float) -> str | None:
    if remaining <= 0:
        seconds: float | None = 0.0
    else:
        lasts = budget_exhaustion_seconds(period, rate)
        seconds = None if lasts is None else remaining * lasts
    if seconds is None:
        return None
    return datetime.fromtimestamp(now + seconds, UTC).isoformat(timespec="seconds")


def health(obj: Objective, rates: Rates) -> Health:
    """Whether these rates can be acted on: fresh, with traffic enough to judge."""
    if rates.mode == Mode.RECORDED and rates.age_seconds > STALE_INTERVALS * obj.interval:
        return Health.STALE
    if obj.is_spend:
        return Health.OK
    assert rates.total is not None
    if rates.total.get(obj.period, 0.0) <= 0:
        return Health.NO_DATA
    active = obj.active_windows()
    if not active:
        return Health.OK
    fastest = min(active, key=lambda w: w.long_seconds)
    events = rates.total.get(fastest.long_seconds, 0.0) * fastest.long_seconds
    # Below this volume a single failure already burns at the fastest page threshold.
    single_failure_pages = fastest.burn_rate * obj.error_budget * events < 1
    if single_failure_pages or events < obj.min_events:
        return Health.LOW_TRAFFIC
    return Health.OK


def unavailable(obj: Objective, error: str, group: Mapping[str, str] | None = None) -> Status:
    """A status for an SLO (or one of its groups) whose numbers could not be read."""
    return Status(
        service=obj.service,
        slo=obj.name,
        kind=obj.kind,
        objective=_percent(obj),
        window=window_name(obj),
        sli=None,
        error_budget_remaining=None,
        budget_remaining={},
        burn_rates={},
        state=OK_STATE,
        exhaustion_at=None,
        health=Health.UNAVAILABLE,
        mode="",
        error=error,
        group=dict(group or {}),
    )
