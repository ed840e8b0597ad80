"""Checks of SLO files against a live Prometheus: do the metrics and buckets exist?

``validate --prometheus`` runs these after the offline checks. Missing metrics and
thresholds that are not bucket bounds are errors (the SLO would read nothing or the
wrong bucket); grouping by labels that look like per-request or per-user ids is a
warning (each value is a series: Prometheus pays for every one, every evaluation).
"""

from __future__ import annotations

import math
import re

from sloengine import sli
from sloengine.errors import Problem
from sloengine.model import Objective, Service
from sloengine.prometheus import Prometheus
from sloengine.promql import fill_window, metric_names_in, nodes, parse, selector
from sloengine.spec import RatioSLI
from sloengine.yamldoc import Document, KeyPath

# Labels whose values are usually one per user, request or session.
HIGH_CARDINALITY = re.compile(
    r"(^|_)(user|customer|account|request|session|trace|span|conversation|message|prompt)_?(id|uuid|hash)?$|(^|_)(id|uuid)$"
)
TOO_MANY_VALUES = 1000
# Past this many groups a grouped SLO is a dashboard of its own, not a page per group.
TOO_MANY_GROUPS = 100
# A metric counts as present if it had a sample this recently (scrapes can pause).
LOOKBACK = "1h"
LOOKBACK_GROUPS = 3600


def metric_names(obj: Objective) -> list[str]:
    spec = obj.sli.spec
    if isinstance(spec, RatioSLI):
        exprs = [e for e in (spec.errors, spec.good, spec.total) if e is not None]
        return list(dict.fromkeys(n for e in exprs for n in metric_names_in(e)))
    return sli.metric_names(obj.sli, obj.preset)


def check(services: list[Service], prom: Prometheus) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) for every SLO; queries are a handful per SLO."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    names = sorted({n for s in services for o in s.objectives for n in metric_names(o)})
    existing = _existing(prom, names)
    for service in services:
        # Loading kept the parsed file: problems point into it without reading it again.
        doc = service.document or Document(service.file, None)
        for index, obj in enumerate(service.objectives):
            at = ("slos", index, "sli")
            for name in metric_names(obj):
                if name not in existing:
                    errors.append(
                        doc.problem(
                            at,
                            f"{obj.service}/{obj.name}: metric {name} has no series in {prom.url}",
                            "check the metric name, the preset and that the service is scraped",
                        )
                    )
            bound = sli.histogram_bound(obj.sli, obj.preset)
            if bound and f"{bound[0]}_bucket" in existing:
                errors += _bucket_problems(prom, doc, at, obj, *bound)
            warnings += _grouping_warnings(doc, at, obj)
            if obj.group_by:
                warnings += _group_count_warnings(prom, doc, ("slos", index, "group_by"), obj)
            for name in metric_names(obj):
                if name in existing:
                    warnings += _cardinality_warnings(prom, doc, at, obj, name)
    return errors, warnings


def _existing(prom: Prometheus, names: list[str]) -> set[str]:
    if not names:
        return set()
    pattern = "|".join(re.escape(n) for n in names)
    rows = prom.query(
        f'count by (__name__) (last_over_time({{__name__=~"{pattern}"}}[{LOOKBACK}]))'
    )
    return {r.labels.get("__name__", "") for r in rows}


def _bucket_problems(
    prom: Prometheus,
    doc: Document,
    at: KeyPath,
    obj: Objective,
    base: str,
    bound: float,
) -> list[Problem]:
    spec = obj.sli.spec
    matchers = (obj.file_selector, getattr(spec, "selector", ""))
    series = selector(f"{base}_bucket", *matchers)
    rows = prom.query(f"count by (le) (last_over_time({series}[{LOOKBACK}]))")
    bounds = sorted({float(r.labels["le"]) for r in rows if "le" in r.labels})
    if not bounds or any(math.isclose(b, bound, rel_tol=1e-9) for b in bounds):
        return []
    shown = ", ".join(f"{b:g}" for b in bounds if not math.isinf(b))
    return [
        doc.problem(
            at,
            f"{obj.service}/{obj.name}: {bound:g} is not a bucket bound of {base} (its bounds: {shown})",
            "pick one of the bounds, or add this bound to the histogram where it is recorded",
        )
    ]


def _grouping_warnings(doc: Document, at: KeyPath, obj: Objective) -> list[Problem]:
    spec = obj.sli.spec
    if not isinstance(spec, RatioSLI):
        return []
    found: set[str] = set()
    for expr in (spec.errors, spec.good, spec.total):
        if expr is None:
            continue
        found |= _grouped_labels(parse(fill_window(expr, "5m")))
    risky = sorted(label for label in found if HIGH_CARDINALITY.search(label))
    return [
        doc.problem(
            at,
            f"{obj.service}/{obj.name}: the SLI groups by {label}, likely one series per "
            "request or user",
            "aggregate it away: an SLO counts events, not who sent them",
        )
        for label in risky
    ]


def _group_count_warnings(
    prom: Prometheus, doc: Document, at: KeyPath, obj: Objective
) -> list[Problem]:
    """A warning when a grouped SLO has more than TOO_MANY_GROUPS groups in Prometheus."""
    # The SLI's own events over the last hour, one series per group: what the rules record.
    q = obj.queries(LOOKBACK_GROUPS)
    rows = prom.query(f"count({q.total or q.bad})")
    groups = int(rows[0].value) if rows else 0
    labels = ", ".join(obj.group_by)
    if 0 < groups <= TOO_MANY_GROUPS:
        # Few enough to read: a label no series carries puts every event in one group.
        found = prom.query(q.total or q.bad)
        return [
            doc.problem(
                at,
                f"{obj.service}/{obj.name}: no series the SLI reads carries {label} in "
                f"{prom.url}, so every event falls in one group with an empty {label}",
                f"group by a label the SLI's metrics carry, or add {label} where they are recorded",
            )
            for label in obj.group_by
            if not any(r.labels.get(label) for r in found)
        ]
    if groups <= TOO_MANY_GROUPS:
        return []
    return [
        doc.problem(
            at,
            f"{obj.service}/{obj.name}: group_by [{labels}] makes {groups} groups in "
            f"{prom.url} (more than {TOO_MANY_GROUPS}), each with its own series, budget and pages",
            "group by a label with fewer values (tenant tier, feature), or narrow the "
            "SLI's selector to the groups that need their own page",
        )
    ]


def _grouped_labels(tree: object) -> set[str]:
    """Labels an expression keeps with ``by (...)`` anywhere in it."""
    out: set[str] = set()
    for node in nodes(tree):
        modifier = getattr(node, "modifier", None)
        labels = getattr(modifier, "labels", None)
        if labels and "Exclude" not in str(getattr(modifier, "type", "")):
            out |= set(labels)
    return out


def _cardinality_warnings(
    prom: Prometheus, doc: Document, at: KeyPath, obj: Objective, name: str
) -> list[Problem]:
    sample = prom.query(f"topk(1, last_over_time({name}[{LOOKBACK}]))")
    labels = sorted(k for k in (sample[0].labels if sample else {}) if k not in ("__name__", "le"))
    out = []
    for label in labels:
        rows = prom.query(f"count(count by ({label}) (last_over_time({name}[{LOOKBACK}])))")
        values = int(rows[0].value) if rows else 0
        if values > TOO_MANY_VALUES or (HIGH_CARDINALITY.search(label) and values > 100):
            out.append(
                doc.problem(
                    at,
                    f"{obj.service}/{obj.name}: {name} carries {label} with {values} values",
                    "every value is a series the SLI sums each evaluation; drop the label "
                    "at the source or with metric_relabel_configs",
                )
            )
    return out
