"""A validated SLO file resolved into a model.Service: every default applied."""

from __future__ import annotations

from urllib.parse import urljoin

import pydantic

from sloengine.budget import DEFAULT_POLICY, resolve_policy
from sloengine.conventions import Severity
from sloengine.model import Objective, Service
from sloengine.spec import SLO, Alerting, SLOFile
from sloengine.yamldoc import Document


def resolve_service(doc: Document, spec: SLOFile) -> Service:
    """The service of a file that passed every check."""
    # Imported here: the detectors' resolution uses resolve_runbook below.
    from sloengine.detectors.resolution import resolve_detectors

    return Service(
        spec.service,
        doc.file,
        tuple(_resolve(doc.file, spec, slo) for slo in spec.slos),
        spec.description,
        spec.owner,
        document=doc,
        detectors=resolve_detectors(doc.file, spec),
    )


def resolve_runbook(spec: SLOFile, runbook: str | None) -> str | None:
    """A runbook's URL: joined with runbooks.base_url unless it is absolute already."""
    if not runbook:
        return None
    base = spec.runbooks.base_url or ""
    return urljoin(base if base.endswith("/") else base + "/", runbook) if base else runbook


def _merge_alerting(shared: Alerting, own: Alerting | None) -> Alerting:
    if own is None:
        return shared
    values = shared.model_dump(by_alias=True)
    for name in own.model_fields_set:
        value = getattr(own, name)
        if name in ("labels", "annotations"):
            values[name] = {**values[name], **value}
        else:
            values[name] = (
                value.model_dump(by_alias=True) if isinstance(value, pydantic.BaseModel) else value
            )
    return Alerting.model_validate(values)


def file_channels(spec: SLOFile) -> dict[Severity, str]:
    """The file's Slack channel per severity (``notify``), for its SLOs and detectors."""
    return {
        severity: route.slack_channel
        for severity, route in (
            (Severity.PAGE, spec.notify.page),
            (Severity.TICKET, spec.notify.ticket),
        )
        if route is not None and route.slack_channel
    }


def _resolve(file: str, spec: SLOFile, slo: SLO) -> Objective:
    period = round(slo.period(spec.window))
    alerting = _merge_alerting(spec.alerting, slo.alerting)
    policy = slo.policy or spec.policy or list(DEFAULT_POLICY)
    kind = slo.sli.kind
    objective = None if slo.objective is None else round(slo.objective / 100, 12)
    runbook_url = resolve_runbook(spec, slo.runbook)
    channels = file_channels(spec)
    return Objective(
        service=spec.service,
        name=slo.name,
        file=file,
        kind=kind,
        sli=slo.sli,
        preset=spec.metrics.preset,
        period=period,
        interval=round(spec.evaluation_interval),
        objective=objective,
        error_budget=1.0 if objective is None else round(1 - objective, 12),
        budget_usd=slo.sli.spend.budget_usd if slo.sli.spend else None,
        windows=tuple(resolve_policy(policy, period)),
        enabled={Severity.PAGE: alerting.page.enabled, Severity.TICKET: alerting.ticket.enabled},
        for_seconds={
            Severity.PAGE: round(alerting.page.for_),
            Severity.TICKET: round(alerting.ticket.for_),
        },
        min_events=alerting.min_events,
        min_bad_events=alerting.min_bad_events,
        labels={**spec.labels, **alerting.labels},
        annotations=dict(alerting.annotations),
        runbook_url=runbook_url,
        description=slo.description,
        owner=spec.owner,
        channels=channels,
        file_selector=spec.metrics.selector,
        calendar_month=slo.calendar_month,
        group_by=tuple(slo.group_by),
        budget_usd_by=dict(slo.sli.spend.budget_usd_by) if slo.sli.spend else {},
    )
