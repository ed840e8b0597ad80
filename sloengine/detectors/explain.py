"""What a detector compares, and the smallest change it can see at its ``min_events``."""

from __future__ import annotations

import math

from sloengine.detectors.model import Detector, Direction
from sloengine.durations import format_duration
from sloengine.promql import number

_RATIOS = {
    "$": "dollars per call",
    "tokens": "tokens (input + output) per call",
    "cached tokens": "cached input tokens per input token",
    "calls over budget": "calls over their token budget per call",
}


def _percent(fraction: float) -> str:
    return number(round(fraction * 100, 4)) + "%"


def explain_detector(det: Detector) -> str:
    """A few lines for ``sloengine explain``."""
    per = f" per {', '.join(det.keys)}" if det.keys else ""
    what = _RATIOS[det.ratio.numerator_unit]
    window = format_duration(det.window)
    unit = det.ratio.denominator_unit
    lines = [f"{det.service}/{det.name}: {det.kind} detector, {det.severity}"]
    if det.direction is Direction.SHARE:
        lines.append(f"  compares: {what}{per} over the last {window}")
        lines.append(
            f"  fires: above {_percent(det.threshold)}, with at least {det.min_events} {unit}"
        )
        if det.min_events:
            over = math.floor(det.min_events * det.threshold) + 1
            lines.append(
                f"  smallest change it sees: at {det.min_events} {unit}, {over} over budget fire it"
            )
        return "\n".join(lines)
    assert det.baseline is not None
    baseline = format_duration(det.baseline)
    lines.append(
        f"  compares: {what}{per} over the last {window} with the {baseline} before it"
        + (" (the group's other versions)" if det.version_label else "")
    )
    sign = "+" if det.direction is Direction.INCREASE else "-"
    lines.append(
        f"  fires: beyond {sign}{_percent(det.threshold)}, with at least "
        f"{det.min_events} {unit} in each window"
    )
    if det.min_events and det.direction is Direction.INCREASE:
        # One outlier among min_events moves the mean by (k - 1) / N.
        alone = 1 + det.min_events * det.threshold
        lines.append(
            f"  smallest change it sees: {sign}{_percent(det.threshold)}; at {det.min_events} "
            f"{unit} a single call at {number(round(alone, 2))}x the mean fires it alone"
        )
    elif det.min_events:
        lines.append(
            f"  smallest change it sees: {sign}{_percent(det.threshold)}; at {det.min_events} "
            f"{unit}, one {unit.removesuffix('s')} is {_percent(1 / det.min_events)} of the window"
        )
    return "\n".join(lines)
