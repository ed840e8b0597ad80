"""Checks that need more than one field: objectives, presets, selectors, ratio PromQL,
policy windows, runbooks and duplicate SLO names."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from sloengine import promql, sli
from sloengine.budget import resolve_policy
from sloengine.durations import format_duration
from sloengine.errors import Problem
from sloengine.loading.hints import HINTS
from sloengine.spec import (
    SLO,
    HistogramSLI,
    Pair,
    PresetSLI,
    RatioSLI,
    SLIKind,
    SLOFile,
    SuccessRateSLI,
)
from sloengine.yamldoc import Document, KeyPath

MIN_PERIOD = 3600


def check_file(doc: Document, spec: SLOFile) -> list[Problem]:
    """Every problem in a file that passed pydantic, each once."""
    problems = selector_problems(doc, ("metrics", "selector"), spec.metrics.selector)
    for index, slo in enumerate(spec.slos):
        problems += check_slo(doc, spec, index, slo)
    problems += duplicate_names(doc, [slo.name for slo in spec.slos])
    # Imported here: the detectors' checks build on this module's helpers.
    from sloengine.detectors.checks import check_detectors

    problems += check_detectors(doc, spec)
    # SLOs sharing a file-level setting would each report the same problem with it.
    return list(dict.fromkeys(problems))


def duplicate_names(doc: Document, names: list[Any]) -> list[Problem]:
    """A problem at each SLO whose name an earlier SLO of the file has (names may be junk)."""
    seen: set[str] = set()
    problems = []
    for index, name in enumerate(names):
        if not isinstance(name, str):
            continue
        if name in seen:
            problems.append(
                doc.problem(
                    ("slos", index, "name"),
                    f"SLO name {name!r} is used twice in this service",
                    "SLO names are unique per service",
                )
            )
        seen.add(name)
    return problems


def check_slo(doc: Document, spec: SLOFile, index: int, slo: SLO) -> list[Problem]:
    """What is wrong with one SLO given its file's shared settings."""
    at = ("slos", index)
    problems: list[Problem] = []
    kind = slo.sli.kind
    kind_spec = slo.sli.spec
    here = (*at, "sli", kind)
    if kind == SLIKind.SPEND and slo.objective is not None:
        problems.append(
            doc.problem(
                (*at, "objective"),
                "a spend SLO has no objective",
                "its budget is sli.spend.budget_usd; remove objective",
            )
        )
    if kind != SLIKind.SPEND and slo.calendar_month:
        problems.append(
            doc.problem(
                (*at, "window"),
                f"window: month is for spend SLOs only, not {kind}",
                "a calendar month resets a dollar budget on the 1st, like an invoice; "
                "give this SLO a rolling window such as 30d or 28d",
            )
        )
    if kind != SLIKind.SPEND and slo.objective is None:
        problems.append(doc.problem(at, f"SLO {slo.name!r} needs an objective", HINTS["objective"]))
    preset = spec.metrics.preset
    if isinstance(kind_spec, PresetSLI):
        missing = sli.missing_metric(preset, kind)
        if missing is not None and not kind_spec.metric:
            problems.append(doc.problem(here, *missing))
        if (bound := sli.bound_problem(slo.sli, preset)) is not None:
            problems.append(doc.problem((*here, bound[0]), bound[1], bound[2]))
        if isinstance(kind_spec, SuccessRateSLI) and kind_spec.include and preset != "llm":
            problems.append(
                doc.problem(
                    (*here, "include"),
                    f"include is only available with the llm preset, not {preset}",
                    "count those failures in your request counter's bad matcher instead",
                )
            )
        problems += selector_problems(doc, (*here, "selector"), kind_spec.selector)
    if isinstance(kind_spec, HistogramSLI):
        problems += selector_problems(doc, (*here, "selector"), kind_spec.selector)
    if isinstance(kind_spec, RatioSLI):
        for key in ("errors", "good", "total"):
            expr = getattr(kind_spec, key)
            if expr is not None:
                problems += _ratio_problems(doc, (*here, key), expr)
    problems += _group_problems(doc, spec, index, slo)
    period = slo.period(spec.window)
    window_at = (*at, "window") if slo.window is not None else ("window",)
    problems += _policy_problems(doc, at, window_at, slo.policy, spec.policy, period)
    problems += runbook_problems(doc, (*at, "runbook"), slo.runbook, spec)
    return problems


def runbook_problems(
    doc: Document, path: KeyPath, runbook: str | None, spec: SLOFile
) -> list[Problem]:
    """A problem when a relative runbook has no runbooks.base_url to be joined with."""
    if runbook and not urlparse(runbook).scheme and not spec.runbooks.base_url:
        return [
            doc.problem(
                path,
                f"runbook {runbook!r} is relative but runbooks.base_url is not set",
                "set runbooks.base_url, or give an absolute URL",
            )
        ]
    return []


def _group_problems(doc: Document, spec: SLOFile, index: int, slo: SLO) -> list[Problem]:
    """Group labels that clash with the SLO's own labels; per-group budgets without one
    group label to key them."""
    at = ("slos", index)
    problems = []
    own = {**spec.labels, **spec.alerting.labels, **(slo.alerting.labels if slo.alerting else {})}
    for i, label in enumerate(slo.group_by):
        if label in own:
            problems.append(
                doc.problem(
                    (*at, "group_by", i),
                    f"group_by: {label!r} is also set in labels ({label}: {own[label]!r}), "
                    "which would give every group that one value",
                    f"group by another label, or remove {label} from labels",
                )
            )
    spend = slo.sli.spend
    if spend is not None and spend.budget_usd_by and len(slo.group_by) != 1:
        got = f"group_by has {len(slo.group_by)}" if slo.group_by else "there is no group_by"
        problems.append(
            doc.problem(
                (*at, "sli", "spend", "budget_usd_by"),
                f"budget_usd_by keys are values of the one group_by label, but {got}",
                "group by one label, e.g. group_by: [feature], or set one budget_usd for all",
            )
        )
    if slo.group_by and slo.calendar_month:
        problems.append(
            doc.problem(
                (*at, "window"),
                "window: month cannot be grouped yet: the month-to-date runs for the whole SLO",
                "use a rolling window (e.g. 30d) with group_by, or one month SLO per group "
                "with a selector",
            )
        )
    return problems


def selector_problems(doc: Document, path: KeyPath, matchers: str) -> list[Problem]:
    """A problem when ``matchers`` is not a PromQL label-matcher list."""
    complaint = promql.check_selector(matchers)
    if complaint is None:
        return []
    return [
        doc.problem(
            path,
            f"invalid label matchers {matchers!r}: {complaint}",
            'write matchers as in PromQL: service="chat", model=~"gpt-.*"',
        )
    ]


def _ratio_problems(doc: Document, path: KeyPath, expr: str) -> list[Problem]:
    if promql.has_comment(expr):
        return [
            doc.problem(
                path,
                "the expression has a PromQL comment (#), which would hide the rest of the rule",
                "put the comment on its own YAML line above the key",
            )
        ]
    if not promql.WINDOW_PLACEHOLDER.search(expr):
        return [
            doc.problem(
                path,
                "the expression has no {{window}}",
                "write the range as [{{window}}], e.g. rate(x_total[{{window}}])",
            )
        ]
    try:
        node = promql.parse(promql.fill_window(expr, "5m"))
    except ValueError as exc:
        return [
            doc.problem(path, f"invalid PromQL: {exc}", "check brackets, quotes and function names")
        ]
    complaint = promql.dialect_problem(node)
    if complaint:
        return [
            doc.problem(
                path, f"invalid PromQL: {complaint}", "write PromQL as Prometheus 2 reads it"
            )
        ]
    if node.__class__.__name__ in ("NumberLiteral", "StringLiteral"):
        return [
            doc.problem(
                path,
                "the expression is a constant",
                "an SLI counts events: use rate() or increase() of a counter",
            )
        ]
    if node.__class__.__name__ in ("MatrixSelector", "SubqueryExpr"):
        return [
            doc.problem(
                path,
                "the expression is a range vector, not a rate",
                "wrap it in rate() or increase(), e.g. sum(rate(x_total[{{window}}]))",
            )
        ]
    try:
        # Generated rules sum the expression: it must give an instant vector.
        promql.parse(f"sum({promql.fill_window(expr, '5m')})")
    except ValueError as exc:
        return [
            doc.problem(
                path,
                f"the expression does not give an instant vector: {exc}",
                "an SLI counts events: use rate() or increase() of a counter",
            )
        ]
    return []


def _policy_problems(
    doc: Document,
    at: KeyPath,
    window_at: KeyPath,
    own: list[Pair] | None,
    shared: list[Pair] | None,
    period: float,
) -> list[Problem]:
    problems = []
    if period < MIN_PERIOD:
        spelled = format_duration(period) if period == round(period) else f"{period:g}s"
        problems.append(
            doc.problem(window_at, f"the SLO window {spelled} is shorter than 1h", HINTS["window"])
        )
        return problems
    pairs, base = (own, (*at, "policy")) if own is not None else (shared, ("policy",))
    for i, pair in enumerate(pairs or []):
        windows = resolve_policy([pair], period)[0]
        if windows.short_seconds > windows.long_seconds:
            problems.append(
                doc.problem(
                    (*base, i, "short_window"),
                    "the short window is longer than the long window",
                    "the short window confirms the long one is still burning: make it about 1/12 of the long window",
                )
            )
        if windows.long_seconds > period:
            problems.append(
                doc.problem(
                    (*base, i, "long_window"),
                    "the long window is longer than the SLO window",
                    "use a window no longer than the SLO window",
                )
            )
    return problems
