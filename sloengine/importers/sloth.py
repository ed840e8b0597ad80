"""Sloth specs (``prometheus/v1`` and the ``sloth.slok.dev/v1`` PrometheusServiceLevel CRD)
as sloengine/v1 files, one per service.

What maps: service, labels, each SLO's name, objective, description and events SLI
(``error_query``/``total_query`` become a ``ratio`` SLI with ``{{window}}``), alert labels
and annotations, disabled page or ticket alerts, a ``slack_channel`` label on the page or
ticket alert (into ``notify``), and Sloth's fixed 30d window. Raw and plugin SLIs, SLO
plugins, alert names and per-severity labels have no sloengine equivalent: each is a note.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sloengine.errors import Problem
from sloengine.importers import (
    NUMBER,
    OWN_ANNOTATIONS,
    Imported,
    Note,
    Walk,
    fail_on,
    labels_into,
    name_from,
    nothing_left,
    objective_percent,
    window_query,
    with_key,
)
from sloengine.yamldoc import Document, KeyPath

SPEC_VERSION = "prometheus/v1"
CRD_API = "sloth.slok.dev/v1"
CRD_KIND = "PrometheusServiceLevel"
# Sloth's default SLO period (`sloth generate --default-slo-period`).
PERIOD = "30d"
# The CRD spells Sloth's snake_case keys in camelCase.
_CAMEL = {
    "error_query": "errorQuery",
    "total_query": "totalQuery",
    "error_ratio_query": "errorRatioQuery",
    "page_alert": "pageAlert",
    "ticket_alert": "ticketAlert",
    "slo_plugins": "sloPlugins",
}
_SEVERITIES = (("page_alert", "page"), ("ticket_alert", "ticket"))
_NO_RAW = (
    "a raw SLI is a ratio already computed; sloengine builds every window from error and "
    "total rates, and averaging a ratio is not the same SLI, so this SLO is not carried over "
    "(rewrite it with error_query and total_query)"
)


class _Spec:
    """One Sloth document, plain or CRD: where its spec is and how its keys are spelled."""

    def __init__(self, walk: Walk, crd: bool) -> None:
        self.walk = walk
        self.crd = crd
        self.root: KeyPath = ("spec",) if crd else ()

    def key(self, name: str) -> str:
        return _CAMEL.get(name, name) if self.crd else name


def is_sloth(doc: Document) -> bool:
    data = doc.data
    return isinstance(data, dict) and (
        data.get("version") == SPEC_VERSION
        or (data.get("apiVersion") == CRD_API and data.get("kind") == CRD_KIND)
    )


def translate(docs: list[Document]) -> list[Imported]:
    """Every service in the Sloth documents; SpecError when one is not a Sloth spec."""
    problems: list[Problem] = []
    services: dict[str, Imported] = {}
    owners: dict[str, str] = {}
    for doc in docs:
        notes: list[Note] = []
        walk = Walk(doc, problems, notes)
        if not is_sloth(doc):
            walk.problem(
                (),
                "not a Sloth spec",
                f'a Sloth file has version: "{SPEC_VERSION}", or apiVersion: {CRD_API} '
                f"with kind: {CRD_KIND}",
            )
            continue
        before = len(problems)
        imported = _service(_Spec(walk, crd="apiVersion" in doc.data))
        if imported is None or len(problems) > before:
            continue
        line, _ = doc.at((*(("spec",) if "apiVersion" in doc.data else ()), "service"))
        if imported.service in services:
            walk.problem(
                (*(("spec",) if "apiVersion" in doc.data else ()), "service"),
                f"service {imported.service!r} is also defined in {owners[imported.service]}",
                "one spec per service: merge their slos",
            )
            continue
        owners[imported.service] = f"{doc.file}:{line}"
        services[imported.service] = imported
    fail_on(problems)
    return list(services.values())


def _service(spec: _Spec) -> Imported | None:
    walk, root = spec.walk, spec.root
    walk.take(("version",))
    if spec.crd:
        walk.take(("apiVersion",))
        walk.take(("kind",))
        walk.take(("spec",))
        walk.used.add(root)
        for key in ("metadata", "status"):
            if walk.value((key,)) is not None:
                walk.note(
                    (key,),
                    "Kubernetes object fields: the imported file is a plain SLO file "
                    "(sloengine generate --format operator writes PrometheusRules)",
                )
    service_text = walk.get((*root, "service"), str, required=True)
    slos = walk.get((*root, "slos"), list, required=True)
    if service_text is None or slos is None:
        return None
    service = name_from(walk, (*root, "service"), service_text, "service")
    if service is None:
        return None
    data: dict[str, Any] = {"apiVersion": "sloengine/v1", "service": service}
    labels: dict[str, str] = {}
    raw_labels = walk.get((*root, "labels"), dict)
    if raw_labels:
        labels_into(walk, (*root, "labels"), raw_labels, labels, "rules")
        data["labels"] = labels
    data["window"] = PERIOD
    plugins = (*root, spec.key("slo_plugins"))
    if walk.value(plugins) is not None:
        walk.note(plugins, "Sloth plugins run Go code inside Sloth; sloengine has none")
    channels: dict[str, set[str]] = {"page": set(), "ticket": set()}
    out: list[dict[str, Any]] = []
    data["slos"] = out
    imported = Imported(service, data, [walk.doc.file], walk.notes)
    for i, _ in enumerate(slos):
        path = (*root, "slos", i)
        walk.targets[path] = ("slos", len(out))
        for part in ("sli", "alerting"):
            walk.targets[(*path, part)] = ("slos", len(out), part)
        before = len(walk.notes)
        slo = _slo(spec, path, channels)
        if slo is None:
            # Notes about an SLO that is not written go next to the file's slos.
            walk.targets[path] = ("slos",)
            walk.notes[before:] = [replace(n, at=("slos",)) for n in walk.notes[before:]]
        elif any(s["name"] == slo["name"] for s in out):
            walk.problem((*path, "name"), f"a second SLO named {slo['name']!r}", "rename one")
        else:
            out.append(slo)
    # A channel label that differs between SLOs cannot be one file-level route.
    notify = {
        sev: {"slack_channel": min(chans)} for sev, chans in channels.items() if len(chans) == 1
    }
    for sev, chans in channels.items():
        if len(chans) > 1:
            walk.note(
                (*root, "slos"),
                f"the SLOs' {sev} alerts carry different slack_channel labels "
                f"({', '.join(sorted(chans))}); sloengine routes a file's {sev}s to one "
                "channel (notify), so none is set",
                at=("slos",),
                whole=False,
            )
    if notify:
        imported.data = with_key(data, "notify", notify, before="slos")
    walk.leftovers()
    if not out:
        skipped = [n for n in walk.notes if n.at == ("slos",)]
        nothing_left(walk, (*root, "slos"), "SLO of this service", skipped)
        return None
    return imported


def _slo(spec: _Spec, path: KeyPath, channels: dict[str, set[str]]) -> dict[str, Any] | None:
    walk = spec.walk
    walk.used.add(path)
    if walk.get(path, dict, required=True) is None:
        return None
    name_text = walk.get((*path, "name"), str, required=True)
    objective = walk.get((*path, "objective"), NUMBER, required=True)
    sli_path = (*path, "sli")
    sli = walk.get(sli_path, dict, required=True)
    if name_text is None or objective is None or sli is None:
        return None
    name = name_from(walk, (*path, "name"), name_text, "SLO name")
    percent = objective_percent(walk, (*path, "objective"), float(objective))
    ratio = _ratio(spec, sli_path, sli)
    if name is None or percent is None or ratio is None:
        walk.whole.add(path)
        return None
    slo: dict[str, Any] = {"name": name, "objective": percent}
    description = walk.get((*path, "description"), str)
    if description:
        slo["description"] = description
    slo["sli"] = {"ratio": ratio}
    if walk.value((*path, "plugins")) is not None:
        walk.note((*path, "plugins"), "Sloth plugins run Go code inside Sloth; sloengine has none")
    alerting = _alerting(spec, path, slo, channels)
    if alerting:
        slo["alerting"] = alerting
    return slo


def _ratio(spec: _Spec, path: KeyPath, sli: dict[str, Any]) -> dict[str, str] | None:
    walk, k = spec.walk, spec.key
    kinds = [kind for kind in ("events", "raw", "plugin") if kind in sli]
    if len(kinds) != 1:
        walk.problem(
            path,
            f"an SLI has exactly one of events, raw or plugin, got {', '.join(kinds) or 'none'}",
            "give events with error_query and total_query",
        )
        return None
    kind = kinds[0]
    if kind == "raw":
        walk.note((*path, "raw"), _NO_RAW)
        return None
    if kind == "plugin":
        walk.note(
            (*path, "plugin"),
            "an SLI plugin is Go code that Sloth runs; write its queries as events "
            "(error_query and total_query); this SLO is not carried over",
        )
        return None
    events = (*path, "events")
    if walk.get(events, dict, required=True) is None:
        return None
    errors = walk.get((*events, k("error_query")), str, required=True)
    total = walk.get((*events, k("total_query")), str, required=True)
    if errors is None or total is None:
        return None
    return {"errors": window_query(errors), "total": window_query(total)}


def _alerting(
    spec: _Spec, path: KeyPath, slo: dict[str, Any], channels: dict[str, set[str]]
) -> dict[str, Any]:
    walk, k = spec.walk, spec.key
    at = (*path, "alerting")
    out: dict[str, Any] = {}
    labels: dict[str, str] = {}
    own = walk.get((*path, "labels"), dict)
    if own:
        labels_into(walk, (*path, "labels"), own, labels, "alerts")
        walk.note(
            (*path, "labels"),
            "carried to this SLO's alerts (alerting.labels); sloengine's recording "
            "rules carry only the file's labels",
            at=walk.target(path),
            whole=False,
        )
    if walk.get(at, dict) is None:
        if labels:
            out["labels"] = labels
        return out
    if walk.value((*at, "name")) is not None:
        walk.note(
            (*at, "name"),
            "sloengine names every burn-rate alert SLOErrorBudgetBurn and tells them apart "
            "by the service, slo and severity labels",
        )
    alert_labels = walk.get((*at, "labels"), dict)
    if alert_labels:
        labels_into(walk, (*at, "labels"), alert_labels, labels, "alerts")
    annotations: dict[str, str] = {}
    raw_annotations = walk.get((*at, "annotations"), dict)
    for key, value in (raw_annotations or {}).items():
        here = (*at, "annotations", key)
        walk.used.add(here)
        if key == "runbook_url" and isinstance(value, str) and "://" in value:
            slo["runbook"] = value
            walk.take(here)
        elif key in OWN_ANNOTATIONS:
            walk.note(here, f"sloengine writes the {key} of its alerts (with the burn rate)")
        elif isinstance(value, str) and isinstance(key, str):
            annotations[key] = value
            walk.take(here)
            if "{{" in value:
                walk.note(
                    here,
                    "kept, but sloengine shows annotation text as written: Prometheus "
                    "does not expand its Go templates ({{ ... }})",
                )
            if key == "runbook" and "://" in value and "runbook" not in slo:
                slo["runbook"] = value
        else:
            walk.note(here, "not a text annotation")
    for sloth_key, severity in _SEVERITIES:
        alert = (*at, k(sloth_key))
        if walk.get(alert, dict) is None:
            continue
        if walk.get((*alert, "disable"), bool):
            out[severity] = {"enabled": False}
        sev_labels = walk.get((*alert, "labels"), dict) or {}
        for key, value in sev_labels.items():
            here = (*alert, "labels", key)
            walk.used.add(here)
            if key == "slack_channel" and isinstance(value, str):
                channels[severity].add(value)
                walk.take(here)
            elif key == "severity":
                walk.note(
                    here,
                    f"sloengine labels this alert severity={severity}; route on that "
                    f"(Sloth's {value!r})",
                )
            else:
                walk.note(
                    here,
                    f"sloengine's alert labels are per SLO, not per severity; add it to "
                    f"alerting.labels if every {severity} alert may carry it",
                )
        if walk.value((*alert, "annotations")) is not None:
            walk.note(
                (*alert, "annotations"),
                "sloengine's alert annotations are per SLO, not per severity",
            )
    if labels:
        out["labels"] = labels
    if annotations:
        out["annotations"] = annotations
    return out
