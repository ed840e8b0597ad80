"""Error budgets and multi-window, multi-burn-rate policy (Google SRE Workbook, ch. 5).

Pure arithmetic: no PromQL, no I/O. The generated rules, ``explain`` and the scheduler
all take their thresholds from here, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sloengine import conventions as cv
from sloengine.conventions import Severity
from sloengine.spec import Pair, resolve_window

# The Workbook's four pairs, as budget shares over windows that are shares of the SLO
# window P, so they scale to any P: for 30d they are 14.4x 1h/5m, 6x 6h/30m (page),
# 3x 1d/2h and 1x 3d/6h (ticket).
_PAGE, _TICKET = Severity.PAGE, Severity.TICKET
DEFAULT_POLICY: tuple[Pair, ...] = (
    Pair(severity=_PAGE, budget_percent=2, long_window="window/720", short_window="window/8640"),
    Pair(severity=_PAGE, budget_percent=5, long_window="window/120", short_window="window/1440"),
    Pair(severity=_TICKET, budget_percent=10, long_window="window/30", short_window="window/360"),
    Pair(severity=_TICKET, budget_percent=10, long_window="window/10", short_window="window/120"),
)


@dataclass(frozen=True)
class AlertWindow:
    """One resolved page or ticket pair, windows in whole seconds."""

    severity: Severity
    burn_rate: float
    long_seconds: int
    short_seconds: int
    budget_consumed: float  # fraction of the whole budget spent when it fires
    clamped: bool  # a window was raised to the base rate window


def burn_rate(budget_consumed: float, period: float, long_window: float) -> float:
    """The burn rate that spends ``budget_consumed`` of the budget in ``long_window``."""
    return budget_consumed * period / long_window


def budget_consumed(rate: float, period: float, long_window: float) -> float:
    """Share of the budget a burn of ``rate`` spends over ``long_window``."""
    return rate * long_window / period


def detection_seconds(
    rate: float, long_window: float, error_budget: float, error_ratio: float = 1.0
) -> float | None:
    """Time for a constant ``error_ratio`` to reach ``rate`` over ``long_window``.

    Workbook: (1 - SLO) / error_ratio * long_window * burn rate. None when the error
    ratio can never reach the threshold (the alert cannot fire).
    """
    threshold = rate * error_budget
    if threshold > error_ratio:
        return None
    return threshold / error_ratio * long_window


def budget_exhaustion_seconds(period: float, rate: float) -> float | None:
    """How long a whole budget lasts at a constant burn ``rate`` (None if it never runs out)."""
    return period / rate if rate > 0 else None


def resolve_policy(pairs: tuple[Pair, ...] | list[Pair], period: float) -> list[AlertWindow]:
    """Turn a policy into concrete windows and thresholds for an SLO window ``period``."""
    out = []
    for pair in pairs:
        long_s = _whole_seconds(resolve_window(pair.long_window, period))
        short_s = _whole_seconds(resolve_window(pair.short_window, period))
        clamped = short_s < cv.BASE_WINDOW_SECONDS or long_s < cv.BASE_WINDOW_SECONDS
        long_s, short_s = (max(w, cv.BASE_WINDOW_SECONDS) for w in (long_s, short_s))
        if pair.burn_rate is not None:
            rate = pair.burn_rate
            consumed = budget_consumed(rate, period, long_s)
        else:
            consumed = (pair.budget_percent or 0) / 100
            rate = burn_rate(consumed, period, long_s)
        out.append(AlertWindow(pair.severity, rate, long_s, short_s, consumed, clamped))
    return out


def _whole_seconds(seconds: float) -> int:
    return max(1, round(seconds))


def pair_fires(
    w: AlertWindow,
    long_burn: float,
    short_burn: float,
    *,
    events: float | None,
    bad_events: float | None,
    min_events: int,
    min_bad_events: int,
) -> bool:
    """The alert condition the generated rules encode, for the scheduler's own judgement.

    Both windows burn above the threshold, the long window saw at least ``min_events``
    events and more than ``min_bad_events`` bad ones (``events`` is None for spend,
    which has no events to count).
    """
    if not (long_burn > w.burn_rate and short_burn > w.burn_rate):
        return False
    if events is None or bad_events is None:
        return True
    if min_events > 0 and events < min_events:
        return False
    return not (min_bad_events > 0 and bad_events <= min_bad_events + 0.5)


# --- calendar months (`window: month`, spend) -------------------------------------------


def month_bounds(now: float) -> tuple[float, float]:
    """Unix seconds of 00:00 UTC on the 1st of ``now``'s month and of the next month."""
    at = datetime.fromtimestamp(now, UTC)
    start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start.timestamp(), end.timestamp()


@dataclass(frozen=True)
class Forecast:
    """Where a month's spend is heading at the current rate."""

    usd: float  # dollars at month end: spent so far + rate x seconds left
    crosses_at: float | None  # unix s when spending crosses the budget; None: not this month


def month_forecast(spent: float, rate: float, budget: float, now: float) -> Forecast:
    """Month-to-date ``spent`` dollars and a spend ``rate`` (dollars a second) at ``now``.

    Already over budget crosses now; a rate that does not reach the budget before the
    month ends (the budget resets on the 1st) never crosses.
    """
    _, end = month_bounds(now)
    rate = max(rate, 0.0)
    usd = spent + rate * (end - now)
    if spent >= budget:
        return Forecast(usd, now)
    crosses = now + (budget - spent) / rate if rate > 0 else None
    return Forecast(usd, crosses if crosses is not None and crosses <= end else None)
