"""The page's first look: which label values the bad events come from, right now.

On-call's first questions are "which model, which feature, which provider?". At page
time, the SLI's bad events over the alert's short window are split by each label the
metrics carry, and the top values with their share go into the page.
"""

from __future__ import annotations

from dataclasses import dataclass

from sloengine import sli
from sloengine.detectors import rules as detector_rules
from sloengine.detectors.model import Detector
from sloengine.detectors.verdict import DetectorStatus
from sloengine.model import Objective
from sloengine.prometheus import Prometheus, PrometheusError, Sample

LABELS = ("provider", "model", "feature", "prompt_template", "tenant", "route", "code")
TOP = 3


@dataclass(frozen=True)
class Slice:
    label: str
    values: list[tuple[str, float]]  # (value, share of the bad events), largest first


def first_look(
    prom: Prometheus, obj: Objective, window: str, at: float | None = None
) -> list[Slice]:
    """Top label values behind the bad events; empty when nothing can be told (never raises)."""
    asks = [
        (label, sli.bad_by(obj.sli, obj.preset, obj.file_selector, window, label))
        for label in LABELS
    ]
    if any(expr is None for _, expr in asks):
        return []
    return _slices(prom, [(label, expr) for label, expr in asks if expr is not None], at)


def _slices(prom: Prometheus, asks: list[tuple[str, str]], at: float | None) -> list[Slice]:
    """Each (label, query)'s top values, in order, until Prometheus fails to answer."""
    out: list[Slice] = []
    for label, expr in asks:
        try:
            rows = prom.query(expr, at)
        except PrometheusError:
            return out
        found = _slice(label, rows)
        if found is not None:
            out.append(found)
    return out


def _slice(label: str, rows: list[Sample]) -> Slice | None:
    """The top values of ``label`` by their share of the positive amounts, if any."""
    counts = [(r.labels.get(label, ""), r.value) for r in rows if r.labels.get(label)]
    total = sum(v for _, v in counts if v > 0)
    if total <= 0:
        return None
    top = sorted(((v, c / total) for v, c in counts if c > 0), key=lambda x: -x[1])[:TOP]
    return Slice(label, top)


# Where a detector's extra cost may come from: the labels LLM metrics carry.
DETECTOR_LABELS = ("provider", "model", "feature", "prompt_sha", "tenant")


def detector_first_look(
    prom: Prometheus, det: Detector, status: DetectorStatus, at: float | None = None
) -> list[Slice]:
    """Which model, feature, prompt version and tenant carry a regressed group's extra
    cost (the cache hits lost, the calls over budget) over the recent window; empty when
    nothing can be told (never raises)."""
    labels = [
        label
        for label in dict.fromkeys((*DETECTOR_LABELS, *det.keys))
        if label not in status.group  # a group's own labels have one value
    ]
    asks = [(k, detector_rules.extra_by(det, status.group, k, status.baseline)) for k in labels]
    return _slices(prom, asks, at)
