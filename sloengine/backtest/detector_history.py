"""Read each detector's history for a backtest: the shell around :mod:`.detectors`.

Per detector two range queries' worth of points (the numerator's and the denominator's
per-second rate over one step, per group and version, every step), from the recent and
baseline windows before ``since`` to ``until``, cut into chunks of at most 11,000
points as the SLOs' history is; the replay builds every window from these increments.
"""

from __future__ import annotations

from sloengine.backtest.detectors import PARTS, DetectorHistory, DetectorReplay, replay_detector
from sloengine.backtest.history import chunks
from sloengine.detectors.model import Detector
from sloengine.detectors.verdict import Group, group_of
from sloengine.durations import format_duration
from sloengine.prometheus import Prometheus


def read_detector_history(
    prom: Prometheus, det: Detector, since: float, until: float, step: int
) -> DetectorHistory:
    """The detector's increments per step, per group, from both its windows before
    ``since`` to ``until``; a step with no answer counts as no events."""
    start = int((since - det.window - (det.baseline or 0)) // step * step)
    end = int(until // step * step)
    n = (end - start) // step + 1
    window = format_duration(step)
    counters = {"numerator": det.ratio.numerator, "denominator": det.ratio.denominator}
    increments: dict[str, dict[Group, list[float]]] = {}
    for part in PARTS:
        expr = counters[part].rate(det.keys, window, det.selector)
        into = increments.setdefault(part, {})
        for lo, hi in chunks(start, end, step):
            for series in prom.query_range(expr, lo, hi, step):
                values = into.setdefault(group_of(det, series.labels), [0.0] * n)
                for t, v in series.points:
                    i = round((t - start) / step)
                    if 0 <= i < n:
                        values[i] += v * step
    # Every group in both parts, so a window's sums line up.
    groups = set(increments["numerator"]) | set(increments["denominator"])
    for part in PARTS:
        for group in groups:
            increments[part].setdefault(group, [0.0] * n)
    return DetectorHistory(start, step, increments)


def backtest_detectors(
    prom: Prometheus, detectors: list[Detector], since: float, until: float, step: int
) -> list[DetectorReplay]:
    """Replay every detector, one at a time (one detector's history in memory)."""
    return [
        replay_detector(det, read_detector_history(prom, det, since, until, step), since)
        for det in detectors
    ]
