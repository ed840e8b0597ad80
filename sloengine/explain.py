"""What each SLO's budget and alerts mean, in numbers an on-call engineer can check."""

from __future__ import annotations

from dataclasses import dataclass, field

from sloengine import conventions as cv
from sloengine.budget import budget_exhaustion_seconds, detection_seconds
from sloengine.conventions import Severity
from sloengine.durations import format_duration
from sloengine.model import Objective
from sloengine.promql import number
from sloengine.rules import budget_rules, recording_rules
from sloengine.spec import SLIKind


@dataclass(frozen=True)
class PairExplanation:
    severity: Severity
    enabled: bool
    burn_rate: float
    long_window: str
    short_window: str
    budget_consumed: float
    fires_after_seconds: float | None  # full outage (spend: spending at twice the threshold)
    budget_lasts_seconds: float | None


@dataclass(frozen=True)
class Explanation:
    service: str
    slo: str
    kind: str
    objective: float | None
    window: str
    budget: str  # the error budget in the SLO's own units
    pairs: list[PairExplanation]
    warnings: list[str] = field(default_factory=list)
    forecast: str = ""  # calendar months: when the month-end forecast pages
    group_by: list[str] = field(default_factory=list)
    # What grouping means and costs ("" for an ungrouped SLO).
    groups: str = ""


def _budget_text(obj: Objective) -> str:
    period = format_duration(obj.period)
    if obj.is_spend:
        per_day = (obj.budget_usd or 0) / obj.period * 86400
        if obj.calendar_month:
            return (
                f"${number(obj.budget_usd or 0)} per calendar month, reset at 00:00 UTC on the "
                f"1st (${per_day:,.2f} a day over a {period} month, which the pairs read)"
            )
        text = f"${number(obj.budget_usd or 0)} per {period} (${per_day:,.2f} a day)"
        labels = ", ".join(obj.group_by)
        if obj.budget_usd_by:
            own = "; ".join(
                f"${number(usd)} per {period} for {labels}={value}"
                for value, usd in sorted(obj.budget_usd_by.items())
            )
            text = f"{own}; {text} for every other {labels}"
        elif obj.group_by:
            text += f" for each {labels}"
        return text
    outage = obj.error_budget * obj.period
    return (
        f"{number(round(obj.error_budget * 100, 6))}% of events per {period}"
        f" = {format_duration(max(1, round(outage)))} of full outage"
    )


def _groups_text(obj: Objective) -> str:
    """What a grouped SLO is and costs: every recorded series and alert, per group value."""
    if not obj.group_by:
        return ""
    series = len([r for r in [*recording_rules(obj), *budget_rules(obj)] if "record" in r])
    alerts = len(obj.active_windows())
    labels = ", ".join(obj.group_by)
    return (
        f"one SLI, budget, set of burn rates and {alerts} alerts per value of {labels}: "
        f"{series} recorded series per group, so 100 groups are {series * 100} series; "
        "each group pages on its own"
    )


def explain(obj: Objective) -> Explanation:
    pairs = []
    warnings = []
    for w in obj.windows:
        enabled = obj.enabled.get(w.severity, True)
        outage = 2 * w.burn_rate if obj.is_spend else 1.0
        fires = detection_seconds(w.burn_rate, w.long_seconds, obj.error_budget, outage)
        if fires is not None:
            fires += obj.for_seconds.get(w.severity, 0)
        pairs.append(
            PairExplanation(
                severity=w.severity,
                enabled=enabled,
                burn_rate=w.burn_rate,
                long_window=format_duration(w.long_seconds),
                short_window=format_duration(w.short_seconds),
                budget_consumed=w.budget_consumed,
                fires_after_seconds=fires,
                budget_lasts_seconds=budget_exhaustion_seconds(obj.period, w.burn_rate),
            )
        )
        if not enabled:
            continue
        if fires is None:
            warnings.append(
                f"the {w.severity} alert at {number(round(w.burn_rate, 4))}x can never fire: it needs"
                f" {number(round(w.burn_rate * obj.error_budget * 100, 4))}% bad events, more than a full"
                f" outage; raise the objective or lower this burn rate"
            )
        if w.clamped:
            warnings.append(
                f"a {w.severity} window under {cv.BASE_WINDOW} reads the {cv.BASE_WINDOW} base rate"
                f" window instead, so this alert fires and resets up to a few minutes later"
            )
        if obj.min_events and not obj.is_spend:
            per_hour = obj.min_events / (w.long_seconds / 3600)
            if obj.kind == SLIKind.QUALITY or per_hour > 60:
                warnings.append(
                    f"the {w.severity} alert over {format_duration(w.long_seconds)} stays silent below"
                    f" {number(round(per_hour, 1))} events an hour (min_events {obj.min_events});"
                    f" check the {'sampled eval' if obj.kind == SLIKind.QUALITY else 'request'} volume reaches it"
                )
    if obj.objective is not None and obj.objective < 0.01:
        percent = number(round(obj.objective * 100, 6))
        warnings.insert(
            0,
            f"objective {percent}% reads like a fraction: objectives are percent, "
            f"did you mean {number(round(obj.objective * 10000, 6))}?",
        )
    if obj.kind == SLIKind.QUALITY and not obj.min_events:
        warnings.append(
            "quality scores are sampled: with few evals an hour one low score burns a large share"
            " of the budget; set alerting.min_events"
        )
    return Explanation(
        service=obj.service,
        slo=obj.name,
        kind=obj.kind,
        objective=obj.objective,
        window=cv.MONTH_WINDOW if obj.calendar_month else format_duration(obj.period),
        budget=_budget_text(obj),
        pairs=pairs,
        warnings=list(dict.fromkeys(warnings)),
        group_by=list(obj.group_by),
        groups=_groups_text(obj),
        forecast=_forecast_text(obj),
    )


def _forecast_text(obj: Objective) -> str:
    if not obj.calendar_month or not obj.enabled.get(Severity.PAGE, True):
        return ""
    rate = format_duration(cv.FORECAST_WINDOW_SECONDS)
    return (
        f"page when the month-to-date plus the last {rate}'s spend rate until month end "
        f"passes ${number(obj.budget_usd or 0)}"
    )


def render_text(explanation: Explanation, obj: Objective) -> str:
    target = (
        f"budget ${number(obj.budget_usd or 0)} per {explanation.window}"
        + (
            f" (and budgets of their own: {', '.join(sorted(obj.budget_usd_by))})"
            if obj.budget_usd_by
            else ""
        )
        if obj.is_spend
        else f"objective {number(round((explanation.objective or 0) * 100, 6))}% over {explanation.window}"
    )
    lines = [
        f"{explanation.service}/{explanation.slo}: {explanation.kind}, {target}",
        f"  error budget: {explanation.budget}",
    ]
    if explanation.groups:
        lines.append(f"  per group: {explanation.groups}")
    fired = "fires after (2x spend)" if obj.is_spend else "fires after (full outage)"
    lines.append(f"  {'alert':<8}{'burn':>8}  {'long/short':<18}{'budget spent':>13}  {fired}")
    for p in explanation.pairs:
        fires = "never" if p.fires_after_seconds is None else _short(p.fires_after_seconds)
        state = "" if p.enabled else "  (disabled)"
        lines.append(
            f"  {p.severity:<8}{number(round(p.burn_rate, 2)) + 'x':>8}  "
            f"{p.long_window + ' / ' + p.short_window:<18}{number(round(p.budget_consumed * 100, 2)) + '%':>13}"
            f"  {fires}{state}"
        )
    if obj.is_spend:
        for p in explanation.pairs:
            hourly = p.burn_rate * (obj.budget_usd or 0) / obj.period * 3600
            lines.append(
                f"  {p.severity} at {number(round(p.burn_rate, 2))}x means spending over ${hourly:,.2f} an hour"
            )
    if explanation.forecast:
        lines.append(f"  forecast: {explanation.forecast}")
    lines += [f"  warning: {w}" for w in explanation.warnings]
    return "\n".join(lines)


def _short(seconds: float) -> str:
    whole = max(1, round(seconds))
    return format_duration(whole)
