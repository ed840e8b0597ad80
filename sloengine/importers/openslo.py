"""OpenSLO v1 documents as sloengine/v1 files, one per service.

What maps: SLO (inline ``indicator`` or ``indicatorRef`` to an SLI document), Prometheus
``ratioMetric`` (good or bad over total) and ``thresholdMetric`` queries, a rolling
``timeWindow``, each objective's ``target``/``targetPercent`` (several objectives make one
sloengine SLO each), ``Occurrences`` budgeting, burn-rate AlertConditions of an SLO's alert
policies (into its ``policy``), and a Service's description. Everything else (calendar
windows, time-slice budgeting, notification targets, raw ratios, composite objectives,
other data sources) is a note.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, cast

from sloengine.durations import format_duration, parse_duration
from sloengine.errors import Problem
from sloengine.importers import (
    NUMBER,
    SLOENGINE_WINDOW,
    Imported,
    Note,
    Walk,
    fail_on,
    labels_into,
    name_from,
    nothing_left,
    objective_percent,
    slug,
    window_query,
    with_key,
)
from sloengine.promql import WINDOW_PLACEHOLDER, number, selectors
from sloengine.spec import MAX_WINDOW
from sloengine.yamldoc import Document, KeyPath

API_VERSION = "openslo/v1"
KINDS = (
    "SLO",
    "SLI",
    "AlertPolicy",
    "AlertCondition",
    "AlertNotificationTarget",
    "Service",
    "DataSource",
)
DEFAULT_WINDOW = "30d"
# OpenSLO's duration-shorthand units sloengine has the same durations for.
_EXACT_UNITS = {"m": "m", "h": "h", "d": "d", "w": "w"}
# The comparison that makes a thresholdMetric sample bad, for each objective `op`.
_BAD_OP = {"lt": ">=", "lte": ">", "gt": "<=", "gte": "<"}
_SEVERITY = {"page": "page", "critical": "page", "ticket": "ticket", "warning": "ticket"}
# The Workbook's short window: 1/12 of the long one, at least the 5m base window.
_SHORT_FRACTION = 12
_MIN_SHORT = 300


class _Docs:
    """The documents of every input file, by kind and name, each with its walk."""

    def __init__(self, docs: list[Document], problems: list[Problem]) -> None:
        self.problems = problems
        self.walks: list[Walk] = []
        self.named: dict[tuple[str, str], Walk] = {}
        for doc in docs:
            walk = Walk(doc, problems, [])
            if not isinstance(doc.data, dict):
                walk.problem((), "not an OpenSLO document", "give apiVersion, kind, metadata, spec")
                continue
            version = doc.data.get("apiVersion")
            if version != API_VERSION:
                walk.problem(
                    ("apiVersion",) if version is not None else (),
                    f"apiVersion {version!r} is not {API_VERSION}"
                    if version is not None
                    else "not an OpenSLO document (no apiVersion)",
                    f"sloengine reads OpenSLO {API_VERSION} documents",
                )
                continue
            kind = walk.get(("kind",), str, required=True)
            name = walk.get(("metadata", "name"), str, required=True)
            walk.take(("apiVersion",))
            walk.used.add(("metadata",))
            if kind is None or name is None:
                continue
            if kind not in KINDS:
                walk.problem(("kind",), f"{kind!r} is not an OpenSLO v1 kind", ", ".join(KINDS))
                continue
            if (kind, name) in self.named:
                other = self.named[(kind, name)].doc
                walk.problem(
                    ("metadata", "name"),
                    f"{kind} {name!r} is also defined in {other.file}:{other.at(('metadata', 'name'))[0]}",
                    "names are unique per kind",
                )
                continue
            self.named[(kind, name)] = walk
            self.walks.append(walk)

    def ref(self, walk: Walk, path: KeyPath, kind: str, used: set[int], at: str) -> Walk | None:
        """The document of ``kind`` that ``path`` names, now read for ``walk``'s SLO."""
        name = walk.get(path, str, required=True)
        if name is None:
            return None
        found = self.named.get((kind, name))
        if found is None:
            walk.problem(path, f"no {kind} named {name!r} in the files given", "add its file")
            return None
        used.add(id(found))
        found.service = walk.service
        # Notes about it go next to the first SLO it made, at its ``at`` key.
        near = walk.targets.get((), ())
        found.targets[()] = near if near[-1:] == (at,) else (*near, at)
        found.take(("kind",))
        found.used.add(("metadata",))
        found.take(("metadata", "name"))
        return found


def translate(docs: list[Document]) -> list[Imported]:
    """Every service the OpenSLO SLOs name; SpecError for what is not valid OpenSLO."""
    problems: list[Problem] = []
    index = _Docs(docs, problems)
    services: dict[str, Imported] = {}
    used: set[int] = set()
    types = {
        name: str(w.doc.data.get("spec", {}).get("type"))
        for (kind, name), w in index.named.items()
        if kind == "DataSource" and isinstance(w.doc.data.get("spec"), dict)
    }
    for walk in index.walks:
        walk.source_types = types
    for walk in index.walks:
        if walk.doc.data.get("kind") == "SLO":
            _slo(index, walk, services, used)
    fail_on(problems)
    for key, service in index.named.items():
        if key[0] == "Service" and key[1] in services:
            _service_doc(service, services[key[1]])
            used.add(id(service))
    refs = {ref for walk in index.walks for ref in walk.source_refs}
    for (kind, name), source in index.named.items():
        if kind == "DataSource" and name in refs:
            used.add(id(source))
            source.take(("kind",))
            source.take(("metadata", "name"))
            source.take(("spec", "type"))
            source.used.add(("spec",))
            source.note(
                ("spec", "connectionDetails"),
                "sloengine reads the Prometheus given to run, status and validate --prometheus",
            )
    leftovers: list[Note] = []
    for walk in index.walks:
        if id(walk) not in used:
            kind = walk.doc.data.get("kind")
            walk.note(
                (),
                "notification targets are not carried over: give the Slack channels in the "
                "file's notify (page, ticket)"
                if kind == "AlertNotificationTarget"
                else f"no imported SLO refers to this {kind}",
                at=(),
            )
            walk.take(())
        walk.leftovers()
        if walk.service in services and walk.doc.file not in services[walk.service].sources:
            services[walk.service].sources.append(walk.doc.file)
        for note in walk.notes:
            owner = walk.service
            if owner in services:
                services[owner].notes.append(note)
            else:
                leftovers.append(replace(note, at=()))
    for imported in services.values():
        imported.notes.extend(leftovers)
    fail_on(problems)
    return list(services.values())


def _service_doc(walk: Walk, imported: Imported) -> None:
    walk.service = imported.service
    walk.used.add(("spec",))
    description = walk.get(("spec", "description"), str)
    if description and "description" not in imported.data:
        imported.data = with_key(imported.data, "description", description, before="slos")
    if walk.doc.data.get("metadata", {}).get("displayName") is not None:
        walk.note(("metadata", "displayName"), "a display name; the file has the service name")


def _slo(index: _Docs, walk: Walk, services: dict[str, Imported], used: set[int]) -> None:
    used.add(id(walk))
    before = len(index.problems)
    spec = walk.get(("spec",), dict, required=True)
    name_text = walk.get(("metadata", "name"), str)
    if spec is None or name_text is None:
        return
    service_text = walk.get(("spec", "service"), str, required=True)
    if service_text is None:
        return
    service = name_from(walk, ("spec", "service"), service_text, "service")
    base = name_from(walk, ("metadata", "name"), name_text, "SLO name")
    if service is None or base is None:
        return
    walk.service = service
    imported = services.setdefault(
        service,
        Imported(
            service,
            {"apiVersion": "sloengine/v1", "service": service, "slos": []},
            [],
        ),
    )
    if walk.doc.file not in imported.sources:
        imported.sources.append(walk.doc.file)
    out: list[dict[str, Any]] = imported.data["slos"]
    first = len(out)
    walk.targets[()] = ("slos", first)

    sli_walk, sli_path = _indicator(index, walk, used)
    budgeting = walk.get(("spec", "budgetingMethod"), str, required=True)
    if budgeting is not None and budgeting != "Occurrences":
        walk.note(
            ("spec", "budgetingMethod"),
            f"{budgeting} budgeting: sloengine counts events (Occurrences); imported as that",
        )
    window = _window(walk)
    common: dict[str, Any] = {}
    description = walk.get(("spec", "description"), str)
    display = walk.get(("metadata", "displayName"), str)
    if description or display:
        common["description"] = description or display
        if description and display:
            walk.note(("metadata", "displayName"), "the description is kept, not the display name")
    if window is not None:
        common["window"] = window
    alerting, policy = _alert_policies(index, walk, used)
    labels: dict[str, str] = {}
    raw_labels = walk.get(("metadata", "labels"), dict)
    for key, value in (raw_labels or {}).items():
        if isinstance(value, list):
            walk.note(("metadata", "labels", key), "a label with several values")
    if raw_labels:
        single = {k: v for k, v in raw_labels.items() if not isinstance(v, list)}
        labels_into(walk, ("metadata", "labels"), single, labels, "alerts")
    if labels:
        alerting["labels"] = labels
    if walk.value(("metadata", "annotations")) is not None:
        walk.note(("metadata", "annotations"), "OpenSLO annotations are metadata for tools")
    objectives = walk.get(("spec", "objectives"), list, required=True)
    if objectives is None or sli_walk is None or len(index.problems) > before:
        return
    names: set[str] = {str(s["name"]) for s in out}
    notes_at, sli_at = len(walk.notes), len(sli_walk.notes)
    for i, _ in enumerate(objectives):
        path = ("spec", "objectives", i)
        walk.used.add(path)
        walk.targets[path] = ("slos", len(out))
        notes_before = len(walk.notes)
        slo = _objective(walk, path, sli_walk, sli_path, base, len(objectives))
        if slo is None:
            walk.targets[path] = ("slos",)
            walk.notes[notes_before:] = [
                replace(n, at=("slos",)) for n in walk.notes[notes_before:]
            ]
            continue
        name = slo["name"]
        n = 2
        while name in names:
            name, n = f"{slo['name']}-{n}", n + 1
        if name != slo["name"]:
            walk.note(
                path,
                f"named {name!r}: another SLO of the service is {slo['name']!r}",
                at=("slos", len(out)),
                whole=False,
            )
        names.add(name)
        slo = {**slo, "name": name, **common}
        slo["sli"] = slo.pop("sli")
        if alerting:
            slo["alerting"] = alerting
        if policy:
            slo["policy"] = policy
        out.append(slo)
    if len(out) == first:
        why = walk.notes[notes_at:] + (sli_walk.notes[sli_at:] if sli_walk is not walk else [])
        nothing_left(walk, ("spec", "objectives"), "objective of this SLO", why)


def _indicator(index: _Docs, walk: Walk, used: set[int]) -> tuple[Walk | None, KeyPath]:
    """The SLI's walk and the path of its spec: inline, or the SLI document it names."""
    if walk.value(("spec", "indicator")) is not None:
        walk.used.add(("spec", "indicator"))
        walk.used.add(("spec", "indicator", "metadata"))
        walk.take(("spec", "indicator", "metadata", "name"))
        if walk.value(("spec", "indicator", "metadata", "displayName")) is not None:
            walk.take(("spec", "indicator", "metadata", "displayName"))
        return walk, ("spec", "indicator", "spec")
    if walk.value(("spec", "indicatorRef")) is None:
        walk.problem(("spec",), "the SLO has no indicator", "give indicator or indicatorRef")
        return None, ()
    sli = index.ref(walk, ("spec", "indicatorRef"), "SLI", used, "sli")
    if sli is None:
        return None, ()
    if sli.value(("metadata", "displayName")) is not None:
        sli.take(("metadata", "displayName"))
    if sli.value(("spec", "description")) is not None:
        sli.note(("spec", "description"), "the SLO's description is the one kept")
    return sli, ("spec",)


def _window(walk: Walk) -> str | None:
    path = ("spec", "timeWindow")
    windows = walk.get(path, list)
    if not windows:
        return DEFAULT_WINDOW
    if len(windows) != 1:
        walk.problem(path, "timeWindow has exactly one item", "keep one window")
        return None
    item = (*path, 0)
    walk.used.add(item)
    duration = walk.get((*item, "duration"), str, required=True)
    rolling = walk.get((*item, "isRolling"), bool)
    if duration is None:
        return None
    if walk.value((*item, "calendar")) is not None or rolling is False:
        walk.note(
            item,
            f"a calendar window ({duration}): sloengine's windows roll; imported as a "
            f"rolling {DEFAULT_WINDOW}",
        )
        return DEFAULT_WINDOW
    count, unit = duration[:-1], duration[-1:]
    seconds = (
        parse_duration(count + _EXACT_UNITS[unit])
        if count.isdigit() and unit in _EXACT_UNITS
        else 0
    )
    if not seconds or seconds > MAX_WINDOW:
        walk.note(
            (*item, "duration"),
            f"{duration!r} is not a rolling window sloengine has (minutes to 365d, in m h d w); "
            f"imported as {DEFAULT_WINDOW}",
        )
        return DEFAULT_WINDOW
    return format_duration(seconds)


def _objective(
    walk: Walk, path: KeyPath, sli: Walk, at: KeyPath, base: str, count: int
) -> dict[str, Any] | None:
    target = walk.get((*path, "target"), NUMBER)
    percent_given = walk.get((*path, "targetPercent"), NUMBER)
    if (target is None) == (percent_given is None):
        walk.problem(
            path, "an objective has exactly one of target or targetPercent", "e.g. target: 0.995"
        )
        return None
    percent = float(percent_given) if percent_given is not None else round(float(target) * 100, 9)
    objective = objective_percent(
        walk, (*path, "target" if target is not None else "targetPercent"), percent
    )
    for key in ("indicator", "indicatorRef", "compositeWeight"):
        if walk.value((*path, key)) is not None:
            walk.note(
                (*path, key), "composite SLOs (an indicator per objective) are not carried over"
            )
            return None
    for key in ("timeSliceTarget", "timeSliceWindow"):
        if walk.value((*path, key)) is not None:
            walk.note((*path, key), "time-slice budgeting: sloengine counts events")
    display = walk.get((*path, "displayName"), str)
    name = base
    if count > 1:
        name = f"{base}-{slug(display) if display and slug(display) else str(int(path[-1]) + 1)}"[
            :128
        ]
    ratio = _sli(walk, path, sli, at)
    if objective is None or ratio is None:
        return None
    slo: dict[str, Any] = {"name": name, "objective": objective, "sli": {"ratio": ratio}}
    return slo


def _query(walk: Walk, path: KeyPath, index_walk: Walk | None = None) -> str | None:
    """The PromQL of a metricSource; a note when it is another backend's."""
    source = (*path, "metricSource")
    if walk.get(source, dict, required=True) is None:
        return None
    kind = walk.get((*source, "type"), str)
    ref = walk.get((*source, "metricSourceRef"), str)
    if kind is None and ref is not None:
        kind = walk.source_types.get(ref)
    if ref is not None:
        walk.source_refs.add(ref)
    if (kind or "").lower() != "prometheus":
        walk.note(
            source,
            f"metric source type {kind!r}: sloengine reads Prometheus (give type: Prometheus)"
            if kind
            else "a metric source without a type: sloengine reads Prometheus (give type: Prometheus)",
        )
        return None
    query: str | None = walk.get((*source, "spec", "query"), str, required=True)
    walk.used.add((*source, "spec"))
    return query


def _sli(walk: Walk, objective: KeyPath, sli: Walk, at: KeyPath) -> dict[str, str] | None:
    ratio_path, threshold_path = (*at, "ratioMetric"), (*at, "thresholdMetric")
    sli.used.add(at)
    if sli.value(ratio_path) is not None:
        return _ratio(sli, ratio_path)
    if sli.value(threshold_path) is not None:
        return _threshold(walk, objective, sli, threshold_path)
    sli.problem(at, "the SLI has neither ratioMetric nor thresholdMetric", "give one of them")
    return None


def _ratio(sli: Walk, path: KeyPath) -> dict[str, str] | None:
    sli.used.add(path)
    if sli.value((*path, "raw")) is not None:
        sli.note(
            (*path, "raw"),
            "a raw ratio is already computed; sloengine builds every window from good (or "
            "bad) and total rates, and averaging a ratio is not the same SLI; this objective "
            "is not carried over",
        )
        sli.whole.add((*path, "rawType"))
        return None
    counter = sli.get((*path, "counter"), bool)
    parts: dict[str, str] = {}
    for key, field in (("good", "good"), ("bad", "errors"), ("total", "total")):
        if sli.value((*path, key)) is None:
            continue
        sli.used.add((*path, key))
        query = _query(sli, (*path, key))
        if query is None:
            return None
        windowed = _windowed(sli, (*path, key, "metricSource", "spec", "query"), query, counter)
        if windowed is None:
            return None
        parts[field] = windowed
    if "total" not in parts or ("good" in parts) == ("errors" in parts):
        sli.problem(path, "a ratioMetric has total and exactly one of good or bad", "give them")
        return None
    return parts


def _windowed(sli: Walk, path: KeyPath, query: str, counter: bool | None) -> str | None:
    """The query with sloengine's ``{{window}}``: as written, or a counter's rate."""
    query = window_query(query)
    if WINDOW_PLACEHOLDER.search(query):
        return query
    if counter:
        try:
            found = selectors(query)
        except ValueError:
            found = []
        text = query.strip()
        if len(found) == 1 and _is_plain_selector(text):
            return f"sum(rate({text}[{SLOENGINE_WINDOW}]))"
        inner = _sum_of_selector(text)
        if len(found) == 1 and inner is not None:
            return f"sum(rate({inner}[{SLOENGINE_WINDOW}]))"
    sli.note(
        path,
        "the query has no range: write it with [{{window}}] (e.g. "
        "sum(rate(x_total[{{window}}]))), or give counter: true on a plain counter selector; "
        "this objective is not carried over",
    )
    return None


def _is_plain_selector(text: str) -> bool:
    return bool(re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^{}]*\})?|\{[^{}]*\}", text))


def _sum_of_selector(text: str) -> str | None:
    """``sel`` in ``sum(sel)``; sloengine's rules sum what the query gives."""
    match = re.fullmatch(r"sum\s*\((.*)\)", text, re.S)
    if match and _is_plain_selector(match.group(1).strip()):
        return match.group(1).strip()
    return None


def _threshold(walk: Walk, objective: KeyPath, sli: Walk, path: KeyPath) -> dict[str, str] | None:
    sli.used.add(path)
    op = walk.get((*objective, "op"), str, required=True)
    value = walk.get((*objective, "value"), NUMBER, required=True)
    query = _query(sli, path)
    if op is None or value is None or query is None:
        return None
    if op not in _BAD_OP:
        walk.problem((*objective, "op"), f"op {op!r} is not one of lt, lte, gt, gte", "e.g. op: lt")
        return None
    if WINDOW_PLACEHOLDER.search(window_query(query)):
        sli.note(
            (*path, "metricSource", "spec", "query"),
            "a thresholdMetric query is compared sample by sample; it has no {{window}} of its "
            "own; this objective is not carried over",
        )
        return None
    # Occurrences of a threshold metric: each evaluated sample is an event, bad when it
    # misses the objective's op and value.
    inner = query.strip()
    bad = (
        f"sum_over_time((({inner}) {_BAD_OP[op]} bool {number(float(value))})[{SLOENGINE_WINDOW}:])"
    )
    total = f"count_over_time(({inner})[{SLOENGINE_WINDOW}:])"
    return {"errors": bad, "total": total}


def _alert_policies(
    index: _Docs, walk: Walk, used: set[int]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The SLO's alerting settings and policy pairs from its burn-rate alert conditions."""
    alerting: dict[str, Any] = {}
    pairs: list[dict[str, Any]] = []
    policies = walk.get(("spec", "alertPolicies"), list)
    for i, _ in enumerate(policies or []):
        path = ("spec", "alertPolicies", i)
        walk.used.add(path)
        if walk.value((*path, "alertPolicyRef")) is not None:
            found = index.ref(walk, (*path, "alertPolicyRef"), "AlertPolicy", used, "policy")
            if found is None:
                continue
            policy_walk, spec = found, cast(KeyPath, ("spec",))
        else:
            policy_walk, spec = walk, (*path, "spec")
            for key in ("kind", "metadata"):
                walk.take((*path, key))
        _policy(index, policy_walk, spec, alerting, pairs, used)
    return alerting, pairs


def _policy(
    index: _Docs,
    walk: Walk,
    spec: KeyPath,
    alerting: dict[str, Any],
    pairs: list[dict[str, Any]],
    used: set[int],
) -> None:
    walk.used.add(spec)
    if walk.value((*spec, "description")) is not None:
        walk.note(
            (*spec, "description"),
            "an alert policy's description; sloengine's alerts describe their burn rate",
        )
    for key in ("alertWhenNoData", "alertWhenResolved", "alertWhenBreaching"):
        if walk.value((*spec, key)) is not None:
            walk.note(
                (*spec, key),
                "sloengine alerts while the burn rate is over its threshold and says when it "
                "resolves; no-data is not an alert",
            )
    if walk.value((*spec, "notificationTargets")) is not None:
        walk.note(
            (*spec, "notificationTargets"),
            "give the Slack channels in the file's notify (page, ticket); "
            "`sloengine alertmanager` routes them",
        )
    conditions = walk.get((*spec, "conditions"), list) or []
    for i, _ in enumerate(conditions):
        path = (*spec, "conditions", i)
        walk.used.add(path)
        if walk.value((*path, "conditionRef")) is not None:
            found = index.ref(walk, (*path, "conditionRef"), "AlertCondition", used, "policy")
            if found is None:
                continue
            _condition(found, ("spec",), alerting, pairs)
        else:
            for key in ("kind", "metadata"):
                walk.take((*path, key))
            _condition(walk, (*path, "spec"), alerting, pairs)


def _condition(
    walk: Walk, spec: KeyPath, alerting: dict[str, Any], pairs: list[dict[str, Any]]
) -> None:
    walk.used.add(spec)
    condition = (*spec, "condition")
    walk.used.add(condition)
    kind = walk.get((*condition, "kind"), str, required=True)
    severity_text = walk.get((*spec, "severity"), str)
    op = walk.get((*condition, "op"), str)
    threshold = walk.get((*condition, "threshold"), NUMBER)
    lookback = walk.get((*condition, "lookbackWindow"), str)
    after = walk.get((*condition, "alertAfter"), str)
    if walk.value((*spec, "description")) is not None:
        walk.take((*spec, "description"))
    if kind != "burnrate":
        walk.note(spec, f"a {kind} alert condition: sloengine alerts on burn rates")
        return
    severity = _SEVERITY.get((severity_text or "").lower())
    if severity is None:
        walk.note(
            spec, f"severity {severity_text!r} is neither page nor ticket (critical, warning)"
        )
        return
    if op not in ("gt", "gte"):
        walk.note(spec, f"op {op!r}: sloengine alerts when the burn rate is above the threshold")
        return
    try:
        long_seconds = parse_duration(lookback or "")
    except ValueError:
        walk.note(spec, f"lookbackWindow {lookback!r} is not a duration")
        return
    if threshold is None or threshold <= 0 or long_seconds < 2 * _MIN_SHORT:
        walk.note(
            spec,
            "a burn-rate condition needs a threshold above 0 and a lookbackWindow of at least 10m",
        )
        return
    short = max(_MIN_SHORT, round(long_seconds / _SHORT_FRACTION / 60) * 60)
    pairs.append(
        {
            "severity": severity,
            "burn_rate": float(threshold),
            "long_window": format_duration(long_seconds),
            "short_window": format_duration(short),
        }
    )
    walk.note(
        (*condition, "lookbackWindow"),
        f"sloengine adds a short window ({format_duration(short)}, 1/12 of the long one) "
        "that must burn too, so the alert resolves soon after the burning stops",
        at=walk.target(spec),
        whole=False,
    )
    if after:
        try:
            alerting.setdefault(severity, {})["for"] = format_duration(parse_duration(after))
        except ValueError:
            walk.note((*condition, "alertAfter"), f"{after!r} is not a duration")
