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
    """Windows read from raw series: the base window, the 1h tile, and every short window
    (which decides when an alert resets) that tiles cannot build exactly."""
    shorts = {w.short_seconds for w in obj.active_windows()}
    out = {cv.BASE_WINDOW_SECONDS} | {s for s in shorts if not tileable(obj, s)}
    if RAW_TILE_SECONDS in {*alert_windows(obj), *tile_windows(obj)}:
        out.add(RAW_TILE_SECONDS)
    return out


# Tile sizes, shortest first: the recorded 5m base rate, then the 1h and 1d windows. Every
# longer window is a sum of non-overlapping tiles read at offsets.
TILE_SECONDS = (cv.BASE_WINDOW_SECONDS, 3600, 86400)
# The 1h tile reads the raw series (60 samples a series): a live server scrapes out of
# phase with the rules, so a tile's rate() misses the scrape interval between its first
# sample and the previous tile's last and extrapolates it from the rest. Unbiased, but
# twelve 5m tiles leave one interval in five to extrapolation and a raw hour one in
# sixty: on sparse bad events that is the difference between tenths and hundredths of a
# percent over 1d and 30d. (On promtool's aligned grid both are exact.)
RAW_TILE_SECONDS = 3600


def tiled(obj: Objective) -> bool:
    """Whether the SLO's windows are built from tiles: every tile offset must land on an
    evaluation of the rules (an interval that divides 5m), or tiles would overlap."""
    return cv.BASE_WINDOW_SECONDS % obj.interval == 0


def tileable(obj: Objective, seconds: int) -> bool:
    """Whether tiles build the window exactly: a whole number of 5m tiles. (Others, such
    as a 28d SLO's 56m, average the base rate, or for a short window read raw series.)"""
    return tiled(obj) and seconds % cv.BASE_WINDOW_SECONDS == 0


def exact(obj: Objective) -> bool:
    """Whether every alert window is built from tiles, so alerts fire on the Workbook's
    minute (an averaged window can fire one interval later)."""
    return all(tileable(obj, w) for w in alert_windows(obj))


def tiles_of(seconds: int) -> list[tuple[int, int]]:
    """A whole number of 5m tiles as (tile, offset) pairs, newest first: greedy from the
    longest tile shorter than the window (1d, 1h, then 5m)."""
    assert seconds % cv.BASE_WINDOW_SECONDS == 0, seconds
    terms: list[tuple[int, int]] = []
    offset, left = 0, seconds
    for tile in reversed(TILE_SECONDS):
        if tile >= seconds and tile != cv.BASE_WINDOW_SECONDS:
            continue
        while left >= tile:
            terms.append((tile, offset))
            offset, left = offset + tile, left - tile
    return terms


def tile_windows(obj: Objective) -> list[int]:
    """The roll-up tiles (1h, 1d) some window of the SLO is built from, shortest first:
    recorded every interval, whether or not an alert reads them (the 1h tile from the
    raw series, the 1d tile from 1h tiles)."""
    if not tiled(obj):
        return []
    wanted: set[int] = set()
    todo = [w for w in windows_of(obj) if w > cv.BASE_WINDOW_SECONDS and tileable(obj, w)]
    while todo:
        for tile, _ in tiles_of(todo.pop()):
            if tile != cv.BASE_WINDOW_SECONDS and tile not in wanted:
                wanted.add(tile)
                if tile != RAW_TILE_SECONDS:
                    todo.append(tile)
    return sorted(wanted)


def ranged_windows(obj: Objective) -> list[list[int]]:
    """Windows whose recorded history other rules read (at offsets), in backfill passes:
    those read from raw series (the base window, the 1h tile), then the 1d tile (which
    reads the 1h tile)."""
    tiles = tile_windows(obj)
    first = [cv.BASE_WINDOW_SECONDS, *(t for t in tiles if t == RAW_TILE_SECONDS)]
    rest = [t for t in tiles if t != RAW_TILE_SECONDS]
    return [first, *([t] for t in rest)]
