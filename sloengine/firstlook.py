"""The page's first look: which label values the bad events come from, right now.

On-call's first questions are "which model, which feature, which provider?". At page
time, the SLI's bad events over the alert's short window are split by each label the
metrics carry, and the top values with their share go into the page.
"""

from __future__ import annotations

from dataclasses import dataclass

from sloengine import sli
from sloengine.model import Objective
from sloengine.prometheus import Prometheus, PrometheusError

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
    out: list[Slice] = []
    for label in LABELS:
        expr = sli.bad_by(obj.sli, obj.preset, obj.file_selector, window, label)
        if expr is None:
            return []
        try:
            rows = prom.query(expr, at)
        except PrometheusError:
            return out
        counts = [(r.labels.get(label, ""), r.value) for r in rows if r.labels.get(label)]
        total = sum(v for _, v in counts if v > 0)
        if total <= 0:
            continue
        top = sorted(((v, c / total) for v, c in counts if c > 0), key=lambda x: -x[1])[:TOP]
        out.append(Slice(label, top))
    return out
