"""Prometheus recording and alerting rules for resolved SLOs, as plain data then YAML.

Cost and exactness: only the 5m base rates and the 1h window read the raw series. Every
other window is a sum of non-overlapping tiles read at offsets, each from the longest
shorter window that divides it (``windows.tile_terms``): 30m is six 5m base rates, 2h
two 1h windows, 6h three 2h ones, 1d four 6h ones, 3d three 1d ones and 30d ten 3d ones.
A 30d ratio reads 2 x 10 samples instead of every raw series for 30 days (or 2 x 43,200
recorded samples for an average), stays
event-weighted (a ratio is never averaged), and is exact: the tiles neither overlap nor
lag, so short windows reset and long windows fire on the Workbook's minute. Numerator
and denominator are summed apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sloengine import conventions as cv
from sloengine.budget import AlertWindow
from sloengine.conventions import Severity
from sloengine.durations import format_duration
from sloengine.errors import printable
from sloengine.model import Objective, Service, group_text
from sloengine.promql import labels as label_matchers
from sloengine.promql import number
from sloengine.windows import (
    alert_windows,
    raw_windows,
    tile_terms,
    tile_windows,
    tileable,
)
from sloengine.yamlwriter import dump_yaml

Rule = dict[str, Any]


def as_written(text: str) -> str:
    """User text for an alert's labels and annotations, which Prometheus expands as Go
    templates: each ``{{`` is written as a template printing ``{{``, so the page shows
    the text as written and nothing in it runs (``{{ query "up" }}`` would)."""
    return text.replace("{{", '{{ "{{" }}')


def _ids(obj: Objective) -> dict[str, str]:
    return {cv.SERVICE: obj.service, cv.SLO: obj.name}


def _sel(obj: Objective, **extra: str) -> str:
    return "{" + label_matchers({**_ids(obj), **extra}) + "}"


def window_rate(obj: Objective, base: str, seconds: int) -> str:
    """Per-second rate over ``seconds`` built from a recorded base-window rate, for an
    evaluation interval that does not divide 5m (tiles would overlap there).

    The base rate covers 5m and is recorded every interval i, so consecutive samples
    overlap: their average over W lags the true W-window by (5m - i) / 2. The newest
    and the oldest base samples correct the two edges of that lag, which makes alerts
    fire when the Workbook says they should rather than two minutes later.
    """
    series = base + _sel(obj)
    window = format_duration(seconds)
    lag = (cv.BASE_WINDOW_SECONDS - obj.interval) / 2
    average = f"avg_over_time({series}[{window}])"
    if lag <= 0:
        return average
    # Until the rules have run for W there is no sample W ago: nothing has left the window
    # yet, so the old edge needs no correction (``or {series}`` makes the term zero).
    edge = f"({series} - ({series} offset {window} or {series}))"
    return f"clamp_min({average} + {number(lag / seconds)} * {edge}, 0)"


def tile_series(obj: Objective, base: str, rate: str, tile: int) -> str:
    """The recorded series of one tile: the 5m base rate, or the 1h or 1d window."""
    if tile == cv.BASE_WINDOW_SECONDS:
        return base + _sel(obj)
    return rate + _sel(obj, window=format_duration(tile))


def tiled_rate(obj: Objective, base: str, rate: str, seconds: int) -> str:
    """Per-second rate over ``seconds`` as the sum of the tiles that cover it, newest first.

    Each tile is the rate over the ``tile`` seconds ending at its offset; the rules of a
    group evaluate on a grid of whole intervals, so ``offset`` reads the sample recorded
    exactly that long ago and the tiles meet without overlap. A tile with no sample at
    its offset (before the rules ran that long, or after a gap) counts as no events:
    ``or <tile> * 0`` keeps the sum (and a group's labels) instead of dropping it.
    """
    parts: list[tuple[int, list[str]]] = []  # (tile, terms)
    for tile, offset in tile_terms(obj, seconds):
        series = tile_series(obj, base, rate, tile)
        term = series
        if offset:
            term = f"({series} offset {format_duration(offset)} or {series} * 0)"
        if parts and parts[-1][0] == tile:
            parts[-1][1].append(term)
        else:
            parts.append((tile, [term]))
    if len(parts) == 1:
        return f"({' + '.join(parts[0][1])}) / {len(parts[0][1])}"
    weighted = [f"({' + '.join(terms)}) * {tile}" for tile, terms in parts]
    return f"({' + '.join(weighted)}) / {seconds}"


def window_count(obj: Objective, base: str, rate: str, seconds: int) -> str:
    """Events seen in the last ``seconds``, for the ``min_events`` guards.

    A long-window rate averages the base samples it has, so right after the rules are
    loaded it reads a few quiet hours as a whole day of that pace; one bad event would
    count as a dozen. Summing the samples counts only what was seen (a missing sample
    counts as no events, which errs towards not paging on thin data).
    """
    window = format_duration(seconds)
    if seconds in raw_windows(obj) or tileable(obj, seconds):  # counts only what was seen
        return f"{rate}{_sel(obj, window=window)} * {seconds}"
    return f"sum_over_time({base}{_sel(obj)}[{window}]) * {obj.interval}"


def per_group_budget(
    obj: Objective, series: str, window: str, term: Callable[[str, float], str]
) -> str:
    """``term(selector, budget)`` for each group with a spend budget of its own, then for
    every other group with the default budget.

    ``a or b`` keeps every series of ``a`` and adds those of ``b`` whose label set ``a``
    lacks: a group listed in budget_usd_by takes its own term, any other the default.
    """
    assert obj.budget_usd is not None
    label = obj.group_by[0]
    terms = [
        term(series + _sel(obj, window=window, **{label: value}), budget)
        for value, budget in sorted(obj.budget_usd_by.items())
    ]
    return " or ".join([*terms, term(series + _sel(obj, window=window), obj.budget_usd)])


def burn_expr(obj: Objective, window: str) -> str:
    """Burn rate over a recorded window: 1 spends exactly the budget over the SLO window."""
    bad = cv.BAD_RATE + _sel(obj, window=window)
    if obj.is_spend and obj.budget_usd_by:
        return per_group_budget(
            obj, cv.BAD_RATE, window, lambda sel, usd: f"{sel} / {number(usd / obj.period)}"
        )
    if obj.is_spend:
        assert obj.budget_usd is not None
        return f"{bad} / {number(obj.budget_usd / obj.period)}"
    total = cv.TOTAL_RATE + _sel(obj, window=window)
    # No traffic is a ratio of 0, not NaN: a quiet night neither pages nor hides a page.
    return f"({bad} / ({total} > 0) or {total} * 0) / {number(obj.error_budget)}"


def window_exprs(obj: Objective, seconds: int) -> tuple[str, str]:
    """PromQL for the bad and total rates over one window, as the recording rules compute
    them (total is "" for spend); the web page draws their history from the same."""
    if seconds == cv.BASE_WINDOW_SECONDS:
        return cv.BAD_BASE + _sel(obj), cv.TOTAL_BASE + _sel(obj)
    if seconds in raw_windows(obj):
        raw = obj.queries(seconds)
        return raw.bad, raw.total or ""
    if tileable(obj, seconds):
        return (
            tiled_rate(obj, cv.BAD_BASE, cv.BAD_RATE, seconds),
            tiled_rate(obj, cv.TOTAL_BASE, cv.TOTAL_RATE, seconds),
        )
    return window_rate(obj, cv.BAD_BASE, seconds), window_rate(obj, cv.TOTAL_BASE, seconds)


def _window_rules(obj: Objective, seconds: int, burn: bool = True) -> list[Rule]:
    """The bad rate, total rate and burn rate over one window (a tile no alert reads
    needs no burn rate)."""
    window = format_duration(seconds)
    at = {**obj.labels, **_ids(obj), cv.WINDOW: window}
    bad, total = window_exprs(obj, seconds)
    rules: list[Rule] = [{"record": cv.BAD_RATE, "expr": bad, "labels": at}]
    if not obj.is_spend:
        rules.append({"record": cv.TOTAL_RATE, "expr": total, "labels": at})
    if burn:
        rules.append({"record": cv.BURN_RATE, "expr": burn_expr(obj, window), "labels": at})
    return rules


def main_windows(obj: Objective) -> list[int]:
    """Windows recorded every evaluation interval: the alerts' and the roll-up tiles."""
    return sorted({*alert_windows(obj), *tile_windows(obj)})


def recording_rules(obj: Objective) -> list[Rule]:
    """The SLO's evaluation-interval group: the base rates and every alert window."""
    ids = {**obj.labels, **_ids(obj)}
    base = obj.queries(cv.BASE_WINDOW_SECONDS)
    rules: list[Rule] = [{"record": cv.BAD_BASE, "expr": base.bad, "labels": ids}]
    if base.total is not None:
        rules.append({"record": cv.TOTAL_BASE, "expr": base.total, "labels": ids})
    alerted = set(alert_windows(obj))
    for seconds in main_windows(obj):
        rules += _window_rules(obj, seconds, burn=seconds in alerted)
    active = obj.active_windows()
    current = min((w.long_seconds for w in active), default=obj.period)
    rules.append(
        {
            "record": cv.CURRENT_BURN,
            "expr": f"{cv.BURN_RATE}{_sel(obj, window=format_duration(current))}",
            "labels": ids,
        }
    )
    return rules


def budget_rules(obj: Objective) -> list[Rule]:
    """The SLO window and the budget metadata, for the slower budget group.

    No alert reads the SLO window, and a budget needs no fresher figure than every
    couple of minutes (without tiles a 30d window averages 43,200 base samples per
    series, by far the costliest rule).
    """
    rolling = obj.period not in main_windows(obj) and not obj.calendar_month
    rules = _window_rules(obj, obj.period) if rolling else []
    return rules + metadata_rules(obj, {**obj.labels, **_ids(obj)})


def budget_interval(obj: Objective) -> int:
    """Seconds between evaluations of the budget group: 2.5 evaluation intervals, at most
    2m30s (or the evaluation interval, when that is longer). Under the 5m look-back, so
    its series never go stale."""
    return min(math.ceil(obj.interval * 2.5), max(cv.BUDGET_INTERVAL_SECONDS, obj.interval))


def metadata_rules(obj: Objective, ids: dict[str, str]) -> list[Rule]:
    period = format_duration(obj.period)
    at = {**ids, cv.WINDOW: period}
    # A grouped SLO's constants are per group too (each group is an SLO of its own to a
    # dashboard): the group's SLO-window burn, times 0, plus the constant.
    burn = f"{cv.BURN_RATE}{_sel(obj, window=period)}"

    def constant(value: float | int) -> str:
        return f"{burn} * 0 + {number(value)}" if obj.group_by else f"vector({number(value)})"

    rules: list[Rule] = []
    if obj.objective is not None:
        rules.append({"record": cv.OBJECTIVE, "expr": constant(obj.objective), "labels": at})
    if obj.budget_usd_by:
        budget = per_group_budget(
            obj, cv.BAD_RATE, period, lambda sel, usd: f"{sel} * 0 + {number(usd)}"
        )
        rules.append({"record": cv.BUDGET_USD, "expr": budget, "labels": at})
    elif obj.budget_usd is not None:
        rules.append({"record": cv.BUDGET_USD, "expr": constant(obj.budget_usd), "labels": at})
    seconds = f"{burn} * 0 + {obj.period}" if obj.group_by else f"vector({obj.period})"
    rules.append({"record": cv.WINDOW_SECONDS, "expr": seconds, "labels": at})
    spent = burn
    if obj.calendar_month and obj.budget_usd is not None:  # the budget is this month's
        spent = f"{cv.MONTH_TO_DATE}{_sel(obj)} / {number(obj.budget_usd)}"
    rules.append({"record": cv.BUDGET_REMAINING, "expr": f"1 - {spent}", "labels": at})
    return rules


def alert_expr(obj: Objective, w: AlertWindow) -> str:
    long_w, short_w = format_duration(w.long_seconds), format_duration(w.short_seconds)
    threshold = number(round(w.burn_rate, 6))
    lines = [
        f"max without ({cv.WINDOW}) ({cv.BURN_RATE}{_sel(obj, window=long_w)}) > {threshold}",
        f"and ignoring ({cv.WINDOW}) {cv.BURN_RATE}{_sel(obj, window=short_w)} > {threshold}",
    ]
    if not obj.is_spend and obj.min_events > 0:
        total = window_count(obj, cv.TOTAL_BASE, cv.TOTAL_RATE, w.long_seconds)
        lines.append(f"and ignoring ({cv.WINDOW}) {total} >= {obj.min_events}")
    if not obj.is_spend and obj.min_bad_events > 0:
        # Counts come from extrapolated rates (one event can read as 1.25): half an event
        # of slack keeps "more than N bad events" exact for whole events.
        bad = window_count(obj, cv.BAD_BASE, cv.BAD_RATE, w.long_seconds)
        lines.append(f"and ignoring ({cv.WINDOW}) {bad} > {number(obj.min_bad_events + 0.5)}")
    return "\n".join(lines)


def _percent(ratio: float) -> str:
    return number(round(ratio * 100, 6))


# What Prometheus prints for the alert's value: the long window's burn rate.
VALUE_TEMPLATE = '{{ $value | printf "%.2f" }}'


def _same(text: str) -> str:
    return text


def group_template(labels: Sequence[str]) -> str:
    """``tenant={{ $labels.tenant }}``: an alert's group, spelled by Prometheus's templates
    (an SLO's group_by; a detector's group and prompt version)."""
    return group_text({label: f"{{{{ $labels.{label} }}}}" for label in labels})


def alert_annotations(
    obj: Objective,
    w: AlertWindow,
    *,
    value: str = VALUE_TEMPLATE,
    expanded: bool = False,
    group: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The alert's annotations as the rule writes them; with ``expanded``, as Prometheus
    sends them to Alertmanager: user text as written and ``value`` in the description.
    A grouped SLO's name the group: ``group``'s values when given (an alert sent for one
    group), else Prometheus's templates of the labels."""
    escape = _same if expanded else as_written
    long_w, short_w = format_duration(w.long_seconds), format_duration(w.short_seconds)
    period = format_duration(obj.period)
    rate = number(round(w.burn_rate, 4))
    lasts = format_duration(max(1, round(obj.period / w.burn_rate)))
    if obj.is_spend:
        assert obj.budget_usd is not None
        own = [
            f"${number(usd)} for {obj.group_by[0]}={as_written(v)}"
            for v, usd in sorted(obj.budget_usd_by.items())
        ]
        others = f", ${number(obj.budget_usd)} for any other" if own else ""
        target = f"budget {', '.join(own)}{others or '$' + number(obj.budget_usd)} per {period}"
        what = "spend"
    else:
        target = f"objective {_percent(obj.objective or 0)}% over {period}"
        what = "error budget"
    # Each group's alert names its own group.
    named = group_text(group) if group else group_template(obj.group_by)
    for_group = f" for {named}" if obj.group_by else ""
    summary = f"{obj.service} {obj.name}{for_group}: {what} burning over {rate}x for {long_w}"
    description = (
        f"{obj.service}/{obj.name}{for_group} ({target}) is burning its {what} at "
        f"{value}x over the last "
        f"{long_w}, and above {rate}x over the last {short_w}. "
        f"Firing means {_percent(w.budget_consumed)}% of the {period} budget went in {long_w}; "
        f"at {rate}x the whole budget lasts {lasts}."
    )
    out = {"summary": summary, "description": description}
    if obj.runbook_url:
        out["runbook_url"] = escape(obj.runbook_url)
    return {**{k: escape(v) for k, v in obj.annotations.items()}, **out}


def alert_labels(obj: Objective, w: AlertWindow, *, expanded: bool = False) -> dict[str, str]:
    """The alert's labels (without ``alertname``) as the rule writes them; with
    ``expanded``, as Prometheus sends them: user labels as written."""
    escape = _same if expanded else as_written
    return {
        **{k: escape(v) for k, v in obj.labels.items()},
        **_ids(obj),
        cv.SEVERITY: w.severity.value,
        cv.LONG_WINDOW: format_duration(w.long_seconds),
        cv.SHORT_WINDOW: format_duration(w.short_seconds),
    }


def alerting_rules(obj: Objective) -> list[Rule]:
    rules = []
    for w in obj.active_windows():
        rule: Rule = {"alert": cv.ALERT_NAME, "expr": alert_expr(obj, w)}
        if obj.for_seconds.get(w.severity, 0) > 0:
            rule["for"] = format_duration(obj.for_seconds[w.severity])
        rule["labels"] = alert_labels(obj, w)
        rule["annotations"] = alert_annotations(obj, w)
        rules.append(rule)
    return rules


# Seconds since 00:00 UTC on the 1st at the evaluation time (Unix time has no leap seconds).
SINCE_MONTH_START = "((day_of_month() - 1) * 86400 + time() % 86400)"


def month_rules(obj: Objective) -> list[Rule]:
    """Spend on a calendar month: dollars since the 1st, the forecast at month end, and the
    page when the forecast overshoots the budget (nothing for a rolling window).

    PromQL ranges are fixed, so no range reads "since the 1st". Month-to-date is a running
    sum instead, one sample per evaluation: the previous value plus the base rate times
    the seconds since the previous evaluation (kept as a value, so a gap or any
    evaluation spacing is counted right). When the previous evaluation was before 00:00
    on the 1st, the previous value is dropped and only the seconds since midnight count:
    the budget resets exactly at the boundary.
    """
    if not obj.calendar_month or obj.budget_usd is None:
        return []
    ids = {**obj.labels, **_ids(obj)}
    since, back = SINCE_MONTH_START, cv.MONTH_LOOKBACK
    mtd = cv.MONTH_TO_DATE + _sel(obj)
    previous = f"last_over_time({mtd}[{back}])"
    elapsed = f"(time() - last_over_time({cv.MONTH_EVALUATED}{_sel(obj)}[{back}]))"
    base = cv.BAD_BASE + _sel(obj)
    this_month = f"(({previous} unless on () {since} < on () {elapsed}) or on () vector(0))"
    seconds = f"({since} < on () {elapsed} or on () {elapsed})"  # the shorter of the two
    first = f"{base} * on () clamp_max({since}, {obj.interval})"  # no previous evaluation
    left = f"(days_in_month() * 86400 - {since})"
    rate = cv.BAD_RATE + _sel(obj, window=format_duration(cv.FORECAST_WINDOW_SECONDS))
    rules: list[Rule] = [
        {
            "record": cv.MONTH_TO_DATE,
            "expr": f"({this_month} + on () ({base} * on () {seconds})) or on () ({first})",
            "labels": ids,
        },
        # After the month-to-date, so that rule reads the previous evaluation's time.
        {"record": cv.MONTH_EVALUATED, "expr": "vector(time())", "labels": ids},
        {
            "record": cv.MONTH_FORECAST,
            "expr": f"{mtd} + on () ({rate} * on () {left})",
            "labels": ids,
        },
    ]
    if not obj.enabled.get(Severity.PAGE, True):
        return rules
    alert: Rule = {
        "alert": cv.ALERT_NAME,
        "expr": f"{cv.MONTH_FORECAST}{_sel(obj)} > {number(obj.budget_usd)}",
    }
    if obj.for_seconds.get(Severity.PAGE, 0) > 0:
        alert["for"] = format_duration(obj.for_seconds[Severity.PAGE])
    alert["labels"] = {
        **{k: as_written(v) for k, v in obj.labels.items()},
        **_ids(obj),
        cv.SEVERITY: Severity.PAGE.value,
        cv.LONG_WINDOW: cv.MONTH_WINDOW,
        cv.SHORT_WINDOW: format_duration(cv.FORECAST_WINDOW_SECONDS),
    }
    alert["annotations"] = month_annotations(obj)
    return [*rules, alert]


def month_annotations(obj: Objective) -> dict[str, str]:
    """The forecast page's summary and description: month-to-date, forecast, budget."""
    budget = number(obj.budget_usd or 0)
    spent = cv.MONTH_TO_DATE + "{" + label_matchers(_ids(obj)) + "}"
    # A template query of sloengine's own series; user text is escaped by as_written.
    mtd = (
        "{{ with query " + _go_string(spent) + ' }}{{ . | first | value | printf "%.2f" }}{{ end }}'
    )
    rate_window = format_duration(cv.FORECAST_WINDOW_SECONDS)
    out = {
        "summary": f"{obj.service} {obj.name}: spend heading over the ${budget} monthly budget",
        "description": (
            f"{obj.service}/{obj.name} has spent ${mtd} this month (since 00:00 UTC on the 1st); "
            f"at the last {rate_window}'s rate the month ends at "
            '${{ $value | printf "%.2f" }}, '
            f"over its budget of ${budget}."
        ),
    }
    if obj.runbook_url:
        out["runbook_url"] = as_written(obj.runbook_url)
    return {**{k: as_written(v) for k, v in obj.annotations.items()}, **out}


def _go_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rule_groups(service: Service) -> list[Rule]:
    """Two groups per SLO: the recording rules and the alerts that read them, in one pass
    every evaluation interval; then the SLO window and budget metadata, less often."""
    groups: list[Rule] = []
    for obj in service.objectives:
        groups.append(
            {
                "name": cv.group_name(obj.service, obj.name),
                "interval": format_duration(obj.interval),
                "rules": recording_rules(obj) + month_rules(obj) + alerting_rules(obj),
            }
        )
        groups.append(
            {
                "name": cv.budget_group_name(obj.service, obj.name),
                "interval": format_duration(budget_interval(obj)),
                "rules": budget_rules(obj),
            }
        )
    return groups


def header(source: str) -> str:
    return (
        f"# Generated by sloengine from {printable(source)}. Do not edit:\n"
        f"# change the SLO file and run `sloengine generate`.\n"
    )


def render(service: Service) -> str:
    """The rule file for one SLO file, byte-for-byte deterministic."""
    return header(service.file) + dump_yaml({"groups": rule_groups(service)})
