"""An Alertmanager configuration for the generated alerts: routes, Slack receivers, inhibition.

For teams that page through Alertmanager rather than ``sloengine run``: one route per SLO
and severity (grouped by service and SLO) and one per detector, a Slack receiver per service and severity
with the SLO file's channel, the burn, budget and objective from the alert's
annotations, Runbook and Dashboard buttons, and ``send_resolved``; inhibit rules so a
firing page silences the same SLO's ticket. The webhook URL is a secret: the file only
names where Alertmanager reads it (``api_url_file``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sloengine import conventions as cv
from sloengine.conventions import Severity
from sloengine.errors import UserError
from sloengine.model import Objective, Service
from sloengine.promql import quote
from sloengine.yamlwriter import dump_yaml

DEFAULT_RECEIVER = "sloengine-unrouted"
DEFAULT_WEBHOOK_FILE = "/etc/alertmanager/secrets/slack-webhook-url"


@dataclass(frozen=True)
class Timing:
    """Alertmanager's notification timing, per severity."""

    group_wait: str = "30s"
    group_interval: str = "5m"
    page_repeat: str = "4h"
    ticket_repeat: str = "24h"


# Alertmanager's Go templates over the notification's alerts. The annotations are the
# ones the generated rules write: summary, description (burn, windows, objective,
# budget), runbook_url and the user's dashboard.
TITLE = (
    '[{{ if eq .Status "firing" }}{{ .CommonLabels.severity | toUpper }}'
    "{{ else }}RESOLVED{{ end }}] {{ .CommonLabels.service }}/"
    # An SLO's alert names its SLO, a detector's its detector.
    "{{ or .CommonLabels.slo .CommonLabels.detector }}"
)
TEXT = "{{ range .Alerts }}*{{ .Annotations.summary }}*\n{{ .Annotations.description }}\n{{ end }}"
RUNBOOK_URL = "{{ (index .Alerts 0).Annotations.runbook_url }}"
DASHBOARD_URL = "{{ (index .Alerts 0).Annotations.dashboard }}"


def _matchers(**labels: str) -> list[str]:
    return [f"{name}={quote(value)}" for name, value in labels.items()]


def _receiver_name(service: str, severity: Severity, channel: str, links: list[str]) -> str:
    return "-".join([service, severity.value, _slug(channel), *links])


def _receiver(
    name: str, channel: str, webhook_file: str, runbook: bool, dashboard: bool
) -> dict[str, Any]:
    slack: dict[str, Any] = {
        "api_url_file": webhook_file,
        "channel": channel,
        "send_resolved": True,
        "title": TITLE,
        "text": TEXT,
    }
    # A button only where every alert routed here has its link: Slack refuses a button
    # with an empty URL, and with it the whole message.
    actions = []
    if runbook:
        actions.append({"type": "button", "text": "Runbook", "url": RUNBOOK_URL})
    if dashboard:
        actions.append({"type": "button", "text": "Dashboard", "url": DASHBOARD_URL})
    if actions:
        slack["actions"] = actions
    return {"name": name, "slack_configs": [slack]}


def build_config(
    services: Iterable[Service],
    *,
    channels: dict[Severity, str] | None = None,
    webhook_file: str = DEFAULT_WEBHOOK_FILE,
    timing: Timing = Timing(),
) -> dict[str, Any]:
    """The configuration as data; ``channels`` are the defaults for files with no route."""
    defaults = channels or {}
    routes: list[dict[str, Any]] = []
    receivers: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    services = list(services)

    def route(
        service: str,
        what: str,
        severity: Severity,
        channel: str | None,
        runbook: bool,
        dashboard: bool,
        matchers: list[str],
        group_by: list[str],
    ) -> None:
        if not channel:
            missing.append(f"{what} ({severity})")
            return
        links = [x for x, on in (("runbook", runbook), ("dashboard", dashboard)) if on]
        name = _receiver_name(service, severity, channel, links)
        receivers.setdefault(name, _receiver(name, channel, webhook_file, runbook, dashboard))
        repeat = timing.page_repeat if severity == Severity.PAGE else timing.ticket_repeat
        routes.append(
            {
                "receiver": name,
                "matchers": matchers,
                "group_by": group_by,
                "repeat_interval": repeat,
            }
        )

    for service in services:
        for obj in service.objectives:
            for severity in _severities(obj):
                route(
                    obj.service,
                    f"{obj.file}: {obj.service}/{obj.name}",
                    severity,
                    obj.channels.get(severity) or defaults.get(severity),
                    bool(obj.runbook_url),
                    bool(obj.annotations.get("dashboard")),
                    _matchers(
                        alertname=cv.ALERT_NAME,
                        service=obj.service,
                        slo=obj.name,
                        severity=severity.value,
                    ),
                    # A grouped SLO notifies per group, as `run` pages per group.
                    [cv.SERVICE, cv.SLO, cv.SEVERITY, *obj.group_by],
                )
        for det in service.detectors:
            route(
                det.service,
                f"{det.file}: {det.service}/{det.name}",
                det.severity,
                det.channels.get(det.severity) or defaults.get(det.severity),
                bool(det.runbook_url),
                False,
                _matchers(
                    alertname=cv.DETECTOR_ALERT_NAME,
                    service=det.service,
                    detector=det.name,
                    severity=det.severity.value,
                ),
                # One notification per group (and prompt version) that regressed.
                [cv.SERVICE, cv.DETECTOR, cv.SEVERITY, *det.keys],
            )
    if missing:
        raise UserError(
            "no Slack channel for " + "; ".join(missing),
            "set notify.page.slack_channel / notify.ticket.slack_channel in the SLO file, "
            "or pass --page-channel / --ticket-channel",
        )
    return {
        "route": {
            "receiver": DEFAULT_RECEIVER,
            "group_by": [cv.SERVICE, cv.SLO],
            "group_wait": timing.group_wait,
            "group_interval": timing.group_interval,
            "routes": routes,
        },
        "receivers": [{"name": DEFAULT_RECEIVER}, *receivers.values()],
        "inhibit_rules": [
            {
                # A firing page says it all: the same SLO's ticket stays quiet.
                "source_matchers": _matchers(alertname=cv.ALERT_NAME, severity="page"),
                "target_matchers": _matchers(alertname=cv.ALERT_NAME, severity="ticket"),
                # and the same group's: a label absent on both sides is equal in Alertmanager,
                # so ungrouped SLOs are unaffected.
                "equal": [
                    cv.SERVICE,
                    cv.SLO,
                    *sorted({g for s in services for o in s.objectives for g in o.group_by}),
                ],
            }
        ],
    }


def _severities(obj: Objective) -> list[Severity]:
    return [s for s in Severity if any(w.severity == s for w in obj.active_windows())]


def _slug(channel: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in channel.lstrip("#")).strip("-")


def render_config(services: Iterable[Service], **options: Any) -> str:
    """The configuration file, byte-for-byte deterministic."""
    head = (
        "# Generated by sloengine: an Alertmanager configuration for its alerts.\n"
        "# Merge route.routes, receivers and inhibit_rules into your own, or run it as is.\n"
    )
    return head + dump_yaml(build_config(services, **options))
