"""Replay a detector's history through the decisions ``run`` makes: pure.

The history comes in as per-step increments of the detector's numerator and denominator
per group (and version), read from the raw series once; every recent and baseline window
is a difference of prefix sums of them. Every 5 minutes (the detectors' interval, as
the rules run) :func:`~sloengine.detectors.verdict.judge_detector` and
:func:`~sloengine.detectors.incidents.advance_detector` decide, exactly as the
scheduler would, so ``for``, ``min_events`` and resolution behave as in ``run``; what
comes out is each group's episodes (fired, resolved, the largest change while firing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sloengine import conventions as cv
from sloengine.alerting import AlertRow, Event
from sloengine.detectors.incidents import advance_detector
from sloengine.detectors.model import Detector
from sloengine.detectors.verdict import Group, judge_detector, raw_readings
from sloengine.model import group_text

# The counts ``rules.raw_queries`` names, per group: one increment per step.
PARTS = ("numerator", "denominator")


@dataclass(frozen=True)
class DetectorHistory:
    """Per-step increments; point i covers (start + (i-1)*step, start + i*step]."""

    start: float
    step: int
    increments: Mapping[str, Mapping[Group, Sequence[float]]]  # "numerator"/"denominator"


@dataclass
class DetectorEpisode:
    group: dict[str, str]
    fired_at: float
    resolved_at: float | None = None  # None while still firing at the end
    peak_change: float | None = None  # the largest change (a share: value) while firing


@dataclass
class DetectorReplay:
    service: str
    detector: str
    since: float
    until: float
    step: int
    episodes: list[DetectorEpisode] = field(default_factory=list)
    groups: int = 0


def _prefix(values: Sequence[float]) -> list[float]:
    out = [0.0]
    for v in values:
        out.append(out[-1] + v)
    return out


def replay_detector(det: Detector, history: DetectorHistory, since: float) -> DetectorReplay:
    """Judge and advance the detector every 5 minutes from ``since`` to the history's end."""
    step = history.step
    prefix = {
        part: {g: _prefix(v) for g, v in history.increments.get(part, {}).items()} for part in PARTS
    }
    n = max((len(p) - 1 for by in prefix.values() for p in by.values()), default=0)
    until = history.start + (n - 1) * step
    out = DetectorReplay(det.service, det.name, since, until, step)
    out.groups = len(prefix["denominator"])
    recent = max(1, round(det.window / step))
    baseline = 0 if det.baseline is None else max(1, round(det.baseline / step))
    every = max(1, cv.DETECTOR_INTERVAL_SECONDS // step)
    rows: dict[str, AlertRow] = {}
    open_: dict[tuple[tuple[str, str], ...], DetectorEpisode] = {}
    first = max(recent + baseline, round((since - history.start) / step))
    for i in range(first, n, every):

        def total(part: str, lo: int, hi: int) -> dict[Group, float]:
            return {
                g: p[max(hi, 0)] - p[max(lo, 0)] for g, p in prefix[part].items() if len(p) > hi
            }

        top = i + 1
        rates: dict[str, dict[Group, float]] = {}
        for part in PARTS:
            rates[f"{part}_recent"] = {
                g: v / det.window for g, v in total(part, top - recent, top).items()
            }
            if det.baseline is not None:
                rates[f"{part}_baseline"] = {
                    g: v / det.baseline
                    for g, v in total(part, top - recent - baseline, top - recent).items()
                }
        now = history.start + i * step
        for read in raw_readings(det, rates):
            status = judge_detector(det, read, cv.DETECTOR_INTERVAL_SECONDS)
            step_ = advance_detector(det, rows, status, now)
            rows.update({r.key: r for r in step_.rows})
            key = tuple(sorted(status.group.items()))
            value = status.change if status.change is not None else status.recent
            for note in step_.notifications:
                if note.kind == Event.FIRING:
                    open_[key] = DetectorEpisode(dict(status.group), now, None, value)
                    out.episodes.append(open_[key])
                elif note.kind == Event.RESOLVED and key in open_:
                    open_.pop(key).resolved_at = now
            episode = open_.get(key)
            if episode is not None and value is not None:
                episode.peak_change = max(episode.peak_change or value, value)
    return out


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def as_json(replays: Sequence[DetectorReplay]) -> list[dict[str, Any]]:
    """One object per detector: ``service``, ``detector``, ``since``, ``until``,
    ``step_seconds``, ``groups`` and ``episodes`` [{group, fired_at, resolved_at, peak_change}]."""
    return [
        {
            "service": r.service,
            "detector": r.detector,
            "since": _iso(r.since),
            "until": _iso(r.until),
            "step_seconds": r.step,
            "groups": r.groups,
            "episodes": [
                {
                    "group": e.group,
                    "fired_at": _iso(e.fired_at),
                    "resolved_at": _iso(e.resolved_at),
                    "peak_change": e.peak_change,
                }
                for e in r.episodes
            ],
        }
        for r in replays
    ]


def _episode_line(e: DetectorEpisode) -> str:
    group = f" {{{group_text(e.group)}}}" if e.group else ""
    resolved = _iso(e.resolved_at) or "still firing"
    peak = "" if e.peak_change is None else f"  peak {e.peak_change * 100:+.1f}%"
    return f"  fired {_iso(e.fired_at)}  resolved {resolved}{peak}{group}"


def render_text(replays: Sequence[DetectorReplay]) -> str:
    """Each detector's episodes, per group, after the SLOs' report."""
    blocks = []
    for r in replays:
        lines = [
            f"{r.service}/{r.detector} (detector)  {_iso(r.since)} .. {_iso(r.until)}",
            f"  episodes {len(r.episodes)} over {r.groups} group(s)",
        ]
        lines += [_episode_line(e) for e in r.episodes]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n" if blocks else ""


def render_markdown(replays: Sequence[DetectorReplay]) -> str:
    if not replays:
        return ""
    lines = ["", "### Detectors", "", "| detector | groups | episodes |", "|---|---:|---:|"]
    lines += [f"| {r.service}/{r.detector} | {r.groups} | {len(r.episodes)} |" for r in replays]
    for r in replays:
        if r.episodes:
            lines += ["", f"`{r.service}/{r.detector}`:", "", "```"]
            lines += [_episode_line(e).strip() for e in r.episodes]
            lines.append("```")
    return "\n".join(lines) + "\n"
