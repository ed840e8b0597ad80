"""Which windows an SLO reads, and from where: pure bookkeeping over its alert pairs.

The rules, the raw-mode reader and the rule tests all ask the same questions of an
SLO's policy; the answers live here once.
"""

from __future__ import annotations

from sloengine import conventions as cv
from sloengine.model import Objective


def windows_of(obj: Objective) -> list[int]:
    """Every window (seconds) the alerts and the budget need, shortest first."""
    if obj.calendar_month:  # the budget is the month-to-date, not a rolling window
        return alert_windows(obj)
    return sorted({obj.period, *alert_windows(obj)})


def alert_windows(obj: Objective) -> list[int]:
    """Every window the alerts read, shortest first."""
    wanted: set[int] = set()
    for w in obj.active_windows():
        wanted |= {w.long_seconds, w.short_seconds}
    return sorted(wanted)


def raw_windows(obj: Objective) -> set[int]:
    """Windows read from raw series: the base window and every alert's short window."""
    return {cv.BASE_WINDOW_SECONDS} | {w.short_seconds for w in obj.active_windows()}
