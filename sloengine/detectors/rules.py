"""Recording and alerting rules for detectors, as plain data (``sloengine.rules`` writes YAML).

Cost: the only range over raw series is the 5m rate of the numerator and the
denominator, summed by group, once every 5 minutes. The recent window and the baseline
window just before it (``offset <window>``) are sums over those recorded series: a 7d
baseline reads 2,016 recorded samples per group every 5 minutes, never 7 days of every
raw series. The 5m rates are recorded every 5m, so they tile time without overlap and
``sum_over_time(rate5m[W]) * 300`` is the count over W.

Zero traffic: a ratio divides by its denominator only where that is above zero, so a
quiet group has no ratio (never NaN) and no alert; ``min_events`` guards each window.
"""

from __future__ import annotations

from typing import Any

from sloengine import conventions as cv
from sloengine.detectors.model import Detector, Direction
from sloengine.durations import format_duration
from sloengine.model import Service
from sloengine.promql import labels as label_matchers
from sloengine.promql import number, quote
from sloengine.rules import as_written, group_template, header
from sloengine.yamlwriter import dump_yaml

Rule = dict[str, Any]
INTERVAL = cv.DETECTOR_INTERVAL_SECONDS
BASELINE_INTERVAL = cv.DETECTOR_BASELINE_INTERVAL_SECONDS


def ids(det: Detector) -> dict[str, str]:
    return {cv.SERVICE: det.service, cv.DETECTOR: det.name}


def sel(det: Detector) -> str:
    return "{" + label_matchers(ids(det)) + "}"


def _sum(det: Detector, series: str, offset: int | None = None) -> str:
    """Events (or dollars, tokens) over the recent window, or the baseline one before it."""
    if offset is None:
        return f"sum_over_time({series}{sel(det)}[{format_duration(det.window)}]) * {INTERVAL}"
    assert det.baseline is not None
    return (
        f"sum_over_time({series}{sel(det)}[{format_duration(det.baseline)}] "
        f"offset {format_duration(offset)}) * {INTERVAL}"
    )


def _ratio(numerator: str, denominator: str, det: Detector) -> str:
    # No denominator, no ratio: a quiet group neither fires nor reads NaN.
    return f"{numerator}{sel(det)} / ({denominator}{sel(det)} > 0)"


def _rule(record: str, expr: str, det: Detector) -> Rule:
    return {"record": record, "expr": expr, "labels": {**det.labels, **ids(det)}}


def _latest(series: str, det: Detector) -> str:
    """The newest value of a series the hourly baseline group records."""
    return f"last_over_time({series}{sel(det)}[{format_duration(2 * BASELINE_INTERVAL)}])"


def recording_rules(det: Detector) -> list[Rule]:
    """The 5-minute group's recording rules: base rates, recent sums, ratios and change."""
    base = cv.BASE_WINDOW
    rules: list[Rule] = [
        _rule(
            cv.DETECTOR_NUMERATOR_BASE,
            det.ratio.numerator.rate(det.keys, base, det.selector),
            det,
        ),
        _rule(
            cv.DETECTOR_DENOMINATOR_BASE,
            det.ratio.denominator.rate(det.keys, base, det.selector),
            det,
        ),
        _rule(cv.DETECTOR_NUMERATOR_RECENT, _sum(det, cv.DETECTOR_NUMERATOR_BASE), det),
        _rule(cv.DETECTOR_DENOMINATOR_RECENT, _sum(det, cv.DETECTOR_DENOMINATOR_BASE), det),
        _rule(
            cv.DETECTOR_RECENT,
            _ratio(cv.DETECTOR_NUMERATOR_RECENT, cv.DETECTOR_DENOMINATOR_RECENT, det),
            det,
        ),
    ]
    if det.baseline is None:
        return rules
    if det.version_label is not None:
        rules += _version_baseline_rules(det)
        numerator = f"{cv.DETECTOR_NUMERATOR_BASELINE}{sel(det)}"
        denominator = f"{cv.DETECTOR_DENOMINATOR_BASELINE}{sel(det)}"
    else:
        numerator = _latest(cv.DETECTOR_NUMERATOR_BASELINE, det)
        denominator = _latest(cv.DETECTOR_DENOMINATOR_BASELINE, det)
    rules += [
        # No baseline denominator, no ratio: a group new in the recent window never fires.
        _rule(cv.DETECTOR_BASELINE, f"{numerator} / ({denominator} > 0)", det),
        _rule(
            cv.DETECTOR_CHANGE,
            f"{cv.DETECTOR_RECENT}{sel(det)} / ({cv.DETECTOR_BASELINE}{sel(det)} > 0) - 1",
            det,
        ),
    ]
    return rules


def baseline_rules(det: Detector) -> list[Rule]:
    """The hourly group: the sums over the baseline window just before the recent one
    (per version too, for prompt_version_cost)."""
    if det.version_label is not None:
        names = (cv.DETECTOR_NUMERATOR_VERSION_BASELINE, cv.DETECTOR_DENOMINATOR_VERSION_BASELINE)
    else:
        names = (cv.DETECTOR_NUMERATOR_BASELINE, cv.DETECTOR_DENOMINATOR_BASELINE)
    return [
        _rule(names[0], _sum(det, cv.DETECTOR_NUMERATOR_BASE, det.window), det),
        _rule(names[1], _sum(det, cv.DETECTOR_DENOMINATOR_BASE, det.window), det),
    ]


def _version_baseline_rules(det: Detector) -> list[Rule]:
    """Each (group, version)'s baseline: the group's calls over the baseline window, less
    the version's own. A new version is compared with what the group cost before it
    appeared; a version already live in the baseline window is compared with the other
    versions, so its own cost never becomes the bar it is measured against."""
    version = det.version_label
    assert version is not None
    rules: list[Rule] = []
    for own, total, recent in (
        (
            cv.DETECTOR_NUMERATOR_VERSION_BASELINE,
            cv.DETECTOR_NUMERATOR_BASELINE,
            cv.DETECTOR_NUMERATOR_RECENT,
        ),
        (
            cv.DETECTOR_DENOMINATOR_VERSION_BASELINE,
            cv.DETECTOR_DENOMINATOR_BASELINE,
            cv.DETECTOR_DENOMINATOR_RECENT,
        ),
    ):
        latest = _latest(own, det)
        # A version new in the recent window has no baseline of its own: it leaves out 0.
        rules.append(
            _rule(
                total,
                f"sum without ({version}) ({latest})\n"
                f"- ignoring ({version}) group_right ()\n"
                f"({latest} or {recent}{sel(det)} * 0)",
                det,
            )
        )
    return rules


def alert_expr(det: Detector) -> str:
    recent_events = f"{cv.DETECTOR_DENOMINATOR_RECENT}{sel(det)} >= {det.min_events}"
    if det.direction is Direction.SHARE:
        return f"{cv.DETECTOR_RECENT}{sel(det)} > {number(det.threshold)}\nand {recent_events}"
    change = f"{cv.DETECTOR_CHANGE}{sel(det)}"
    compare = (
        f"{change} > {number(det.threshold)}"
        if det.direction is Direction.INCREASE
        else f"{change} < -{number(det.threshold)}"
    )
    baseline_events = f"{_latest(cv.DETECTOR_DENOMINATOR_BASELINE, det)} >= {det.min_events}"
    return f"{compare}\nand {recent_events}\nand {baseline_events}"


def template_query(det: Detector, series: str) -> str:
    """A Go template printing ``series`` of the alert's own group (Prometheus expands it)."""
    fixed = ", ".join(f"{k}={quote(v)}" for k, v in sorted(ids(det).items()))
    # %q quotes a label value as a Go string, which PromQL reads the same way.
    keys = "".join(f", {k}=%q" for k in det.keys)
    args = "".join(f" $labels.{k}" for k in det.keys)
    selector = f"{series}{{{fixed}{keys}}}".replace('"', '\\"')
    return (
        f'{{{{ with printf "{selector}"{args} | query }}}}'
        f'{{{{ . | first | value | printf "%.4g" }}}}{{{{ end }}}}'
    )


def _group_text(det: Detector) -> str:
    if not det.keys:
        return ""
    return " for " + group_template(det.keys)


# What each kind's ratio is called in alerts, pages and status, by its numerator's unit.
COMPARED = {
    "$": "cost per call ($)",
    "tokens": "tokens per call",
    "cached tokens": "cache hit ratio (cached / input tokens)",
    "calls over budget": "share of calls over their token budget",
}


def compared(det: Detector) -> str:
    return COMPARED[det.ratio.numerator_unit]


def alert_annotations(det: Detector) -> dict[str, str]:
    window = format_duration(det.window)
    group = _group_text(det)
    what = compared(det)
    if det.direction is Direction.SHARE:
        summary = f"{det.service} {det.name}: {what} above {number(det.threshold * 100)}%{group}"
        description = (
            f"{det.service}/{det.name}{group}: {what} is {{{{ $value | humanizePercentage }}}} "
            f"over the last {window}, above the allowed {number(det.threshold * 100)}%."
        )
    else:
        assert det.baseline is not None
        recent = template_query(det, cv.DETECTOR_RECENT)
        word = "up" if det.direction is Direction.INCREASE else "down"
        summary = (
            f"{det.service} {det.name}: {what} {word} {{{{ $value | humanizePercentage }}}}{group}"
        )
        description = (
            f"{det.service}/{det.name}{group}: {what} is {recent} over the last {window} "
            f"against a baseline of {template_query(det, cv.DETECTOR_BASELINE)} over the "
            f"{format_duration(det.baseline)} before it: a change of "
            f"{{{{ $value | humanizePercentage }}}} (the limit is "
            f"{'+' if word == 'up' else '-'}{number(det.threshold * 100)}%)."
        )
    out = {"summary": summary, "description": description}
    if det.runbook_url:
        out["runbook_url"] = as_written(det.runbook_url)
    return out


def alerting_rule(det: Detector) -> Rule:
    rule: Rule = {"alert": cv.DETECTOR_ALERT_NAME, "expr": alert_expr(det)}
    if det.for_seconds:
        rule["for"] = format_duration(det.for_seconds)
    rule["labels"] = {
        **{k: as_written(v) for k, v in det.labels.items()},
        **ids(det),
        cv.SEVERITY: det.severity.value,
    }
    rule["annotations"] = alert_annotations(det)
    return rule


def rule_groups(detectors: tuple[Detector, ...]) -> list[Rule]:
    """Per detector: every 5 minutes its rates, recent sums, ratios and alert; hourly,
    for detectors with a baseline, the sums over the baseline window."""
    groups: list[Rule] = []
    for det in detectors:
        groups.append(
            {
                "name": cv.detector_group_name(det.service, det.name),
                "interval": format_duration(INTERVAL),
                "rules": [*recording_rules(det), alerting_rule(det)],
            }
        )
        if det.baseline is not None:
            groups.append(
                {
                    "name": cv.detector_baseline_group_name(det.service, det.name),
                    "interval": format_duration(BASELINE_INTERVAL),
                    "rules": baseline_rules(det),
                }
            )
    return groups


def rule_file_name(service: str) -> str:
    """The detectors' rule file, beside the SLOs' ``<service>.rules.yml``."""
    return f"{service}.detectors.rules.yml"


def render(service: Service) -> str | None:
    """The detectors' rule file for one SLO file; None when it has no detectors."""
    if not service.detectors:
        return None
    return header(service.file) + dump_yaml({"groups": rule_groups(service.detectors)})


# ------------------------------------------------------------------ raw-mode queries


def raw_queries(det: Detector) -> dict[str, str]:
    """Per-second rates of the numerator and denominator over the recent window, and
    (with a baseline) over the baseline window just before it, per group and version,
    straight from the raw series: the same counters the recorded 5m rates read.

    Keys: ``numerator_recent``, ``denominator_recent``, ``numerator_baseline``,
    ``denominator_baseline``; a rate times its window is the count over it.
    """
    recent = format_duration(det.window)
    out = {
        "numerator_recent": det.ratio.numerator.rate(det.keys, recent, det.selector),
        "denominator_recent": det.ratio.denominator.rate(det.keys, recent, det.selector),
    }
    if det.baseline is not None:
        baseline = format_duration(det.baseline)
        for part, counters in (
            ("numerator", det.ratio.numerator),
            ("denominator", det.ratio.denominator),
        ):
            out[f"{part}_baseline"] = counters.rate(det.keys, baseline, det.selector, offset=recent)
    return out


def extra_by(det: Detector, group: dict[str, str], label: str, baseline: float | None) -> str:
    """What each value of ``label`` adds to a regressed group over the recent window:
    its numerator beyond what its calls would have cost at the group's baseline (for a
    cache, the hits lost; for a share, the calls over budget). For the page's first look."""
    window = format_duration(det.window)
    only = label_matchers(group)
    numerator = det.ratio.numerator.rate((label,), window, det.selector, only)
    if det.direction is Direction.SHARE or baseline is None:
        return numerator
    denominator = det.ratio.denominator.rate((label,), window, det.selector, only)
    at = number(baseline)
    if det.direction is Direction.INCREASE:
        return f"({numerator}) - ({denominator}) * {at}"
    return f"({denominator}) * {at} - ({numerator})"


def extra_what(det: Detector) -> str:
    """What :func:`extra_by` splits, as the page's first look names it."""
    if det.direction is Direction.SHARE:
        return "calls over budget"
    if det.direction is Direction.DECREASE:
        return "cache hits lost"
    return "extra tokens" if det.ratio.numerator_unit == "tokens" else "extra cost"
