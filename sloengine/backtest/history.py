"""Read an SLO's history from Prometheus for a backtest: the shell around :mod:`.replay`.

Per SLO two range queries' worth of points (bad and total per-second rates over one
step, every step), never a long window at every step: ``rate(raw[30d])`` evaluated every
minute would re-read a month of samples 43,200 times. The replay builds every window
from these increments. The range is cut into chunks of at most 11,000 points (the most
Prometheus returns a series), and a chunk Prometheus refuses for loading too many
samples (``query.max-samples``) is halved until it fits.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable

from sloengine.backtest.replay import History, Replay, history_start, replay
from sloengine.model import Objective
from sloengine.prometheus import Prometheus, PrometheusError, Series

MAX_POINTS = 11_000
MIN_STEP_SECONDS = 60
MIN_POINTS = 60
TOO_MANY_SAMPLES = "too many samples"


def first_point(obj: Objective, since: float, step: int) -> int:
    """The first step to read, on the step grid: :func:`history_start`."""
    return int(history_start(obj, since) // step * step)


def chunks(start: int, end: int, step: int, points: int = MAX_POINTS) -> list[tuple[int, int]]:
    """``[start, end]`` (both on the step grid) cut into ranges of at most ``points`` points."""
    out = []
    at = start
    while at <= end:
        stop = min(end, at + (points - 1) * step)
        out.append((at, stop))
        at = stop + step
    return out


# A group's label values, in group_by order (() for an ungrouped SLO).
Group = tuple[tuple[str, str], ...]


def read_history(
    prom: Prometheus,
    obj: Objective,
    since: float,
    until: float,
    step: int,
    *,
    points: int = MAX_POINTS,
    progress: Callable[[int], None] | None = None,
) -> list[History]:
    """The SLO's bad and total increments per step from its longest window before
    ``since`` to ``until``: one History, or one per group value of a grouped SLO (as
    ``status`` gives one row per group); a step with no answer counts as no events."""
    start = first_point(obj, since, step)
    end = int(until // step * step)
    n = (end - start) // step + 1
    q = obj.queries(step)

    def group(series: Series) -> Group:
        return tuple((label, series.labels.get(label, "")) for label in obj.group_by)

    bad = _read(prom, q.bad, start, end, step, n, points, progress, group)
    total = (
        None
        if q.total is None
        else _read(prom, q.total, start, end, step, n, points, progress, group)
    )
    groups = sorted(set(bad) | set(total or {})) or [()]
    zeros = array("d", bytes(8 * n))
    return [
        History(
            start,
            step,
            bad.get(g, zeros),
            None if total is None else total.get(g, zeros),
            dict(g),
        )
        for g in groups
    ]


def _read(
    prom: Prometheus,
    expr: str,
    start: int,
    end: int,
    step: int,
    n: int,
    points: int,
    progress: Callable[[int], None] | None,
    group: Callable[[Series], Group],
) -> dict[Group, array[float]]:
    out: dict[Group, array[float]] = {}
    pending = chunks(start, end, step, points)
    while pending:
        lo, hi = pending.pop(0)
        try:
            answer = prom.query_range(expr, lo, hi, step)
        except PrometheusError as exc:
            size = (hi - lo) // step + 1
            if TOO_MANY_SAMPLES not in str(exc) or size <= MIN_POINTS:
                raise
            pending[:0] = chunks(lo, hi, step, math.ceil(size / 2))
            continue
        for series in answer:
            values = out.setdefault(group(series), array("d", bytes(8 * n)))  # n zeros
            for t, v in series.points:
                i = round((t - start) / step)
                if 0 <= i < n:
                    values[i] += v * step
        if progress is not None:
            progress((hi - lo) // step + 1)
    return out


def backtest(
    prom: Prometheus,
    objectives: list[Objective],
    since: float,
    until: float,
    step: int,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> list[Replay]:
    """Replay every SLO (each group of a grouped SLO on its own, as ``run`` pages per
    group), one SLO at a time so only one SLO's history is ever in memory.

    ``progress`` is told the points read so far and the points to read in all.
    """
    todo = sum(
        (2 if obj.queries(step).total is not None else 1)
        * ((int(until // step * step) - first_point(obj, since, step)) // step + 1)
        for obj in objectives
    )
    done = 0

    def advanced(points: int) -> None:
        nonlocal done
        done += points
        if progress is not None:
            progress(done, todo)

    out = []
    for obj in objectives:
        for history in read_history(prom, obj, since, until, step, progress=advanced):
            out.append(replay(obj, history, since))
    return out
