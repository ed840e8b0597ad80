"""Prometheus durations: parsing user input and spelling windows back out."""

from __future__ import annotations

import math
import re
from functools import lru_cache

_UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|y|w|d|h|m|s)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|y|w|d|h|m|s))+")
# Far below Prometheus's own limit (about 292y); no window or threshold needs more.
MAX_SECONDS = 10 * _UNITS["y"]


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``30d``, ``1h30m`` or ``250ms``; ValueError otherwise."""
    text = text.strip()
    if len(text) > 64:
        raise ValueError(f"{text[:20]!r}... is too long to be a duration")
    if not _WHOLE.fullmatch(text):
        raise ValueError(f"{text!r} is not a duration")
    seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
    if not math.isfinite(seconds) or seconds > MAX_SECONDS:
        raise ValueError(f"{text!r} is longer than 10y")
    return seconds


# Called for every window at every step of a backtest: the answers are few and fixed.
@lru_cache(maxsize=4096)
def format_duration(seconds: float) -> str:
    """The shortest Prometheus spelling of a whole number of seconds: 2d19h12m, 4m40s."""
    total = round(seconds)
    if total <= 0 or abs(total - seconds) > 1e-6:
        raise ValueError(f"{seconds} s is not a positive whole number of seconds")
    out = []
    for unit in ("d", "h", "m", "s"):
        size = int(_UNITS[unit])
        if total >= size:
            out.append(f"{total // size}{unit}")
            total %= size
    return "".join(out)
