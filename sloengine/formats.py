"""The rule groups of rules.py in the shapes other rule engines load.

One set of groups, wrapped four ways: a Prometheus rule file (``groups:``), a Prometheus
Operator ``PrometheusRule`` object (the groups under ``spec``), a Mimir ruler file for
``mimirtool rules load`` (the groups under a ruler ``namespace``), and a Thanos ruler
file (each group with ``partial_response_strategy``). No rule is rendered twice: every
format carries exactly the groups ``rules.rule_groups`` builds, and the operator, Mimir and
Thanos files also the detectors' groups (``detectors.rules.rule_groups``), which the
Prometheus format writes to a sibling file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sloengine.detectors.rules import rule_groups as detector_groups
from sloengine.errors import Problem, SpecError, UserError
from sloengine.model import Service
from sloengine.rules import header, rule_groups
from sloengine.yamlwriter import dump_yaml


class Format(StrEnum):
    PROMETHEUS = "prometheus"
    OPERATOR = "operator"
    MIMIR = "mimir"
    THANOS = "thanos"


# Thanos rulers query through Thanos Query, which can answer with some stores missing.
# An SLO read from part of the data undercounts bad or total events and can hide a page
# or raise a false one, so a partial answer fails the evaluation (the rule's failure
# counter rises) instead. Thanos's own docs recommend abort for alerts; it is also its
# default, written out so a ruler configured otherwise still aborts.
PARTIAL_RESPONSE_STRATEGY = "abort"

OPERATOR_API_VERSION = "monitoring.coreos.com/v1"
MANAGED_BY = {"app.kubernetes.io/managed-by": "sloengine"}

# Kubernetes names (DNS-1123): an object name is a subdomain, a namespace a label.
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")
_NAMESPACE = re.compile(_DNS_LABEL)
# A label key is an optional DNS subdomain prefix and a name; a value is at most 63.
_LABEL_NAME = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")


@dataclass(frozen=True)
class Target:
    """Where the rules go: the format, and for the Operator and Mimir their namespace
    (a Kubernetes namespace, or a Mimir ruler namespace) and the object's labels."""

    format: Format = Format.PROMETHEUS
    namespace: str = ""
    labels: dict[str, str] = field(default_factory=dict)


def file_name(service: Service, fmt: Format) -> str:
    """The file a service's rules are written to, in each format."""
    suffix = {
        Format.PROMETHEUS: "rules",
        Format.THANOS: "rules",
        Format.OPERATOR: "prometheusrule",
        Format.MIMIR: "mimir",
    }[fmt]
    return f"{service.name}.{suffix}.yml"


def _kubernetes_label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    hint = "give --label as key=value, e.g. --label release=prometheus"
    if not sep:
        raise UserError(f"--label {text!r} has no '='", hint)
    prefix, slash, name = key.rpartition("/")
    if (
        not _LABEL_NAME.fullmatch(name)
        or len(name) > 63
        or (slash and (not _DNS_SUBDOMAIN.fullmatch(prefix) or len(prefix) > 253))
    ):
        raise UserError(
            f"--label key {key!r} is not a Kubernetes label key",
            "use letters, digits, '-', '_' and '.', at most 63, with an optional "
            "DNS prefix and '/' (app.kubernetes.io/part-of)",
        )
    if not _LABEL_VALUE.fullmatch(value) or len(value) > 63:
        raise UserError(
            f"--label value {value!r} (for {key}) is not a Kubernetes label value",
            "use at most 63 letters, digits, '-', '_' and '.', starting and ending "
            "with a letter or digit",
        )
    return key, value


def target(fmt: Format, namespace: str = "", labels: tuple[str, ...] = ()) -> Target:
    """The target for command-line options, checked: namespaces and labels only where
    the format has them, in the spelling its consumer accepts."""
    if labels and fmt is not Format.OPERATOR:
        raise UserError(
            "--label only applies to --format operator",
            "the labels go on the PrometheusRule object; drop --label for this format",
        )
    if namespace and fmt not in (Format.OPERATOR, Format.MIMIR):
        raise UserError(
            f"--namespace does not apply to --format {fmt}",
            "it names the Kubernetes namespace (operator) or the Mimir ruler namespace (mimir)",
        )
    if (
        fmt is Format.OPERATOR
        and namespace
        and (not _NAMESPACE.fullmatch(namespace) or len(namespace) > 63)
    ):
        raise UserError(
            f"--namespace {namespace!r} is not a Kubernetes namespace",
            "use at most 63 lowercase letters, digits and '-', starting and ending "
            "with a letter or digit",
        )
    if fmt is Format.MIMIR and not namespace.isprintable():
        raise UserError("--namespace has a control character", "use a printable name")
    return Target(fmt, namespace, dict(_kubernetes_label(text) for text in labels))


def check_names(services: list[Service], fmt: Format) -> None:
    """The services' names where the format needs more than SLO files allow: a
    PrometheusRule is named after its service, and Kubernetes names have no '_'."""
    if fmt is not Format.OPERATOR:
        return
    problems = []
    for service in services:
        if _DNS_SUBDOMAIN.fullmatch(service.name):
            continue
        message = f"service {service.name!r} cannot name a Kubernetes PrometheusRule"
        hint = "Kubernetes names use lowercase letters, digits, '-' and '.': rename the service"
        if service.document is not None:
            problems.append(service.document.problem(("service",), message, hint))
        else:
            problems.append(Problem(service.file, 1, 1, message, hint))
    if problems:
        raise SpecError(problems)


def _operator(service: Service, to: Target, groups: list[dict[str, Any]]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": service.name}
    if to.namespace:
        metadata["namespace"] = to.namespace
    metadata["labels"] = {**MANAGED_BY, **to.labels}
    return {
        "apiVersion": OPERATOR_API_VERSION,
        "kind": "PrometheusRule",
        "metadata": metadata,
        "spec": {"groups": groups},
    }


def _thanos(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each group with its partial response strategy, after its interval."""
    out = []
    for group in groups:
        head = {k: v for k, v in group.items() if k != "rules"}
        out.append(
            {
                **head,
                "partial_response_strategy": PARTIAL_RESPONSE_STRATEGY,
                "rules": group["rules"],
            }
        )
    return out


def document(service: Service, to: Target) -> dict[str, Any]:
    """The file's content as data, in the target's shape."""
    groups = rule_groups(service)
    if to.format is not Format.PROMETHEUS:
        # One object per service carries its detectors too; Prometheus files keep them
        # in their sibling file (detectors.rules.rule_file_name).
        groups = groups + detector_groups(service.detectors)
    if to.format is Format.OPERATOR:
        return _operator(service, to, groups)
    if to.format is Format.MIMIR:
        # One ruler namespace per service by default: `mimirtool rules load` of one file
        # then replaces exactly that service's groups.
        return {"namespace": to.namespace or service.name, "groups": groups}
    if to.format is Format.THANOS:
        return {"groups": _thanos(groups)}
    return {"groups": groups}


def render_as(service: Service, to: Target) -> str:
    """The rule file for one SLO file in the target's format, byte-for-byte deterministic.

    The Prometheus format is exactly ``rules.render``."""
    return header(service.file) + dump_yaml(document(service, to))
