"""``promtool test rules`` cases that prove each generated alert fires when it should.

Per SLO: for every page and ticket pair, a steady burn just above its threshold fires
it and one just below does not; a full outage after a clean history fires it within
one evaluation interval of the Workbook's detection time; it resets within its short
window once the outage ends; a single bad event in a trickle of traffic fires nothing;
zero traffic fires nothing and leaves the budget whole.

promtool evaluates every rule a test file loads at every step from 0 to the case's last
check, so each file loads only the rules its checks read (their dependency closure, from
the PromQL), and steps as far apart as those rules allow: every offset at which one of
them reads a recorded series is a whole number of steps, none reads a recorded series
over a range, every series it reads is recorded earlier in the same evaluation, and no
alert waits (``for``). On that grid every recorded value is the one a 1m evaluation
records at the same instant, so a check on it proves what it proves at 1m; a check off
it moves, with the whole scenario, to a test group of its own whose first phase is longer
by the minutes that put the check on an evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from sloengine import conventions as cv
from sloengine.budget import AlertWindow, detection_seconds
from sloengine.conventions import Severity
from sloengine.durations import format_duration, parse_duration
from sloengine.errors import printable
from sloengine.formats import Format, file_name
from sloengine.inputs import ALL, BAD, GOOD, Plan, plan
from sloengine.lookback import Read, reads, selects
from sloengine.model import Objective, Service
from sloengine.promql import labels as label_matchers
from sloengine.promql import number
from sloengine.rules import Rule, header, rule_groups
from sloengine.windows import exact
from sloengine.yamlwriter import dump_yaml

EVENTS_PER_MINUTE = 1000.0
ABOVE, BELOW = 1.1, 0.9
MINUTE = 60
# The widest step a proof file takes: an hour, so that a 3d window's clean history is
# 73 evaluations rather than 4,330.
WIDEST_STEP = 3600


@dataclass(frozen=True)
class Phase:
    minutes: int
    bad_ratio: float  # share of events that are bad; for spend, the burn rate
    events: float = EVENTS_PER_MINUTE


@dataclass(frozen=True)
class Check:
    """A PromQL check: ``query`` at ``at`` minutes after the start gives ``samples``."""

    query: str
    at: int
    samples: list[dict[str, Any]]


@dataclass(frozen=True)
class Case:
    """One scenario: the plan's series over phases (per group of labels, None for the
    default group) and the checks on what the rules make of them. ``part`` names the
    proof file it goes to ("" for the SLO's own, which loads all its rules)."""

    name: str
    inputs: list[tuple[list[Phase], dict[str, str] | None]]
    checks: list[Check]
    part: str = ""


def _values(phases: list[Phase], role: str, obj: Objective) -> str:
    """Expanding notation for one series over consecutive phases."""
    parts = []
    value = 0.0
    first = True
    for ph in phases:
        step = _increment(ph, role, obj)
        if first:
            parts.append(f"{number(value)}+{number(step)}x{ph.minutes}")
            first = False
        else:
            parts.append(f"{number(value + step)}+{number(step)}x{ph.minutes - 1}")
        value += step * ph.minutes
    return " ".join(parts)


def _increment(ph: Phase, role: str, obj: Objective) -> float:
    if obj.is_spend:
        # Dollars per minute that burn the budget at ``bad_ratio`` times the allowed pace.
        assert obj.budget_usd is not None
        return round(ph.bad_ratio * obj.budget_usd / obj.period * 60, 9) if ph.events else 0.0
    bad = round(ph.events * ph.bad_ratio, 9)
    return {GOOD: round(ph.events - bad, 9), BAD: bad, ALL: ph.events}.get(role, 0.0)


def _inputs(
    p: Plan, phases: list[Phase], obj: Objective, group: dict[str, str] | None = None
) -> list[dict[str, str]]:
    """The plan's series over ``phases``, in one group (by default :func:`a_group`)."""
    labels = a_group(obj) if group is None else group
    return [
        {
            "series": (replace(s, labels={**s.labels, **labels}) if labels else s).notation(),
            "values": _values(phases, s.role, obj),
        }
        for s in p.series
    ]


def a_group(obj: Objective, value: str = "other") -> dict[str, str]:
    """One group of a grouped SLO ({} for an ungrouped one): every group label set to
    ``value``, which is never a key of budget_usd_by (so the default budget applies)."""
    while value in obj.budget_usd_by:
        value += "_"
    return dict.fromkeys(obj.group_by, value)


def _alert_labels(
    obj: Objective, w: AlertWindow, group: dict[str, str] | None = None
) -> dict[str, str]:
    return {
        **obj.labels,
        **(a_group(obj) if group is None else group),
        "alertname": cv.ALERT_NAME,
        "alertstate": "firing",
        cv.SERVICE: obj.service,
        cv.SLO: obj.name,
        cv.SEVERITY: w.severity.value,
        cv.LONG_WINDOW: format_duration(w.long_seconds),
        cv.SHORT_WINDOW: format_duration(w.short_seconds),
    }


def _alerts_query(obj: Objective, w: AlertWindow | None = None) -> str:
    wanted = {cv.SERVICE: obj.service, cv.SLO: obj.name, "alertstate": "firing"}
    if w is not None:
        wanted |= {cv.SEVERITY: w.severity.value, cv.LONG_WINDOW: format_duration(w.long_seconds)}
    # A calendar month's forecast page has its own proof (month_test).
    month = f', {cv.LONG_WINDOW}!="{cv.MONTH_WINDOW}"' if obj.calendar_month else ""
    return "ALERTS{" + label_matchers({"alertname": cv.ALERT_NAME, **wanted}) + month + "}"


def _expect(
    obj: Objective, firing: list[AlertWindow], group: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    return [
        {"labels": "ALERTS{" + label_matchers(_alert_labels(obj, w, group)) + "}", "value": 1}
        for w in sorted(firing, key=lambda w: (w.severity, w.long_seconds))
    ]


def _minutes(seconds: float) -> int:
    return math.ceil(seconds / 60)


def _check(query: str, at_minutes: int, samples: list[dict[str, Any]]) -> Check:
    return Check(query, at_minutes, samples)


# The parts (proof files besides the SLO's own) that cases go to.
ALERTS_PART = "alerts"


def pair_part(w: AlertWindow) -> str:
    """The part of one pair's cases (its outage; for spend, its steady burns)."""
    return f"{w.severity.value}-{format_duration(w.long_seconds)}"


def test_group(
    case: Case, p: Plan, obj: Objective, shift: int = 0, note: str = ""
) -> dict[str, Any]:
    """The case as a promtool test group, its first phase ``shift`` minutes longer and
    every check as much later."""
    inputs = []
    for phases, group in case.inputs:
        if shift:
            phases = [replace(phases[0], minutes=phases[0].minutes + shift), *phases[1:]]
        inputs += _inputs(p, phases, obj, group)
    return {
        "name": case.name + note,
        "interval": "1m",
        "input_series": inputs,
        "promql_expr_test": [
            {"expr": c.query, "eval_time": f"{c.at + shift}m", "exp_samples": c.samples}
            for c in case.checks
        ],
    }


def stepped(case: Case, p: Plan, obj: Objective, step: int) -> list[dict[str, Any]]:
    """The case as test groups evaluated every ``step`` seconds: the checks that land on
    an evaluation in one group; each other minute's checks in a group whose first phase
    is longer by the minutes that bring them onto one."""
    every = step // MINUTE
    if every == 1:
        return [test_group(case, p, obj)]
    by_shift: dict[int, list[Check]] = {}
    for c in case.checks:
        by_shift.setdefault(-c.at % every, []).append(c)
    groups = []
    for shift, checks in sorted(by_shift.items()):
        note = f" (evaluated every {format_duration(step)}"
        if shift:
            note += f"; the first phase {shift}m longer, the checks as much later"
        groups.append(test_group(replace(case, checks=checks), p, obj, shift, note + ")"))
    return groups


def _settle(obj: Objective) -> int:
    """Minutes after which every rule sees steady data and every ``for`` has passed."""
    return 30 + max(_minutes(s) for s in obj.for_seconds.values())


def _spend_cases(
    obj: Objective,
    name: str,
    at: int,
    inputs: Callable[[int], list[tuple[list[Phase], dict[str, str] | None]]],
    expected: Callable[[AlertWindow], list[dict[str, Any]]],
) -> list[Case]:
    """Spend has no denominator to cancel a half-empty window: a window's rate is the
    pace only once it holds a whole window of spending. So each pair is checked on its
    own, ``at`` minutes after its long window is full, in its pair's file: ``inputs``
    the series over so many minutes, ``expected`` the pair's samples."""
    cases = []
    for o in obj.active_windows():
        when = at + _minutes(o.long_seconds)
        cases.append(
            Case(
                f"{name}: the {o.severity} alert over {format_duration(o.long_seconds)}, "
                f"after {format_duration(when * 60)}",
                inputs(when + 5),
                [_check(_alerts_query(obj, o), when, expected(o))],
                pair_part(o),
            )
        )
    return cases


def _steady_inputs(
    ratio: float, events: float
) -> Callable[[int], list[tuple[list[Phase], dict[str, str] | None]]]:
    return lambda minutes: [([Phase(minutes, ratio, events)], None)]


def _steady_expected(
    obj: Objective, firing: list[AlertWindow]
) -> Callable[[AlertWindow], list[dict[str, Any]]]:
    return lambda o: _expect(obj, [o] if o in firing else [])


def steady_tests(obj: Objective, p: Plan) -> list[Case]:
    groups = []
    active = obj.active_windows()
    for w in active:
        for factor, word in ((ABOVE, "above"), (BELOW, "below")):
            ratio = factor * w.burn_rate * obj.error_budget
            if ratio > 1 and not obj.is_spend:  # a spend burn is dollars, not a share
                continue
            at = _settle(obj)
            events = max(EVENTS_PER_MINUTE, obj.min_events)
            firing = [o for o in active if o.burn_rate < factor * w.burn_rate]
            name = (
                f"{obj.service}/{obj.name}: a steady {number(round(factor * w.burn_rate, 4))}x burn, "
                f"{word} the {w.severity} threshold {number(round(w.burn_rate, 4))}x over "
                f"{format_duration(w.long_seconds)}, "
                + ("fires it" if word == "above" else "does not fire it")
            )
            if obj.is_spend:
                groups += _spend_cases(
                    obj, name, at, _steady_inputs(ratio, events), _steady_expected(obj, firing)
                )
                continue
            phases = [Phase(at + 5, ratio, events)]
            groups.append(
                Case(
                    name,
                    [(phases, None)],
                    [_check(_alerts_query(obj), at, _expect(obj, firing))],
                    ALERTS_PART,
                )
            )
    return groups


def outage_tests(obj: Objective, p: Plan) -> list[Case]:
    """Per pair: a full outage after a clean history as long as its long window, then
    recovery (each pair its own case, so that its file loads its rules alone)."""
    active = obj.active_windows()
    if not active:
        return []
    outage = 1.0 if not obj.is_spend else 2 * max(w.burn_rate for w in active)
    cases = []
    for w in active:
        seconds = detection_seconds(w.burn_rate, w.long_seconds, obj.error_budget, outage)
        if seconds is None:
            continue
        seconds += obj.for_seconds.get(w.severity, 0)
        history = _minutes(w.long_seconds) + 10
        length = _minutes(seconds) + 10
        recovery = _minutes(w.short_seconds) + 10
        phases = [Phase(history, 0.0), Phase(length, outage), Phase(recovery, 0.0)]
        query = _alerts_query(obj, w)
        checks = [_check(query, history, [])]
        # Evaluations land on whole intervals: tiled windows fire at the first evaluation
        # after the Workbook's time and not before; an averaged window (one tiles cannot
        # build) may lag by one interval.
        if exact(obj):
            quiet_at = history + _minutes(seconds) - 1
            fire_at = history + math.floor(seconds / 60) + 1
        else:
            quiet_at = history + math.floor(seconds / 60) - 1
            fire_at = history + _minutes(seconds) + 1
        if quiet_at > history:
            checks.append(_check(query, quiet_at, []))
        checks.append(_check(query, fire_at, _expect(obj, [w])))
        reset_at = (
            history
            + length
            + _minutes(w.short_seconds)
            + 1
            + _minutes(obj.for_seconds.get(w.severity, 0))
        )
        checks.append(_check(query, reset_at, []))
        long, short = format_duration(w.long_seconds), format_duration(w.short_seconds)
        cases.append(
            Case(
                f"{obj.service}/{obj.name}: a full outage after a clean "
                f"{format_duration(history * 60)} fires the {w.severity} alert over {long} "
                f"and {short} within one interval of the Workbook's detection time, and it "
                "resets within its short window after recovery",
                [(phases, None)],
                checks,
                pair_part(w),
            )
        )
    return cases


def low_traffic_test(obj: Objective, p: Plan) -> Case | None:
    """Ten events an hour and a single bad one: no alert (``min_bad_events``/``min_events``)."""
    if obj.is_spend or (obj.min_bad_events < 1 and obj.min_events <= 10):
        return None
    trickle = 10 / 60
    longest = _minutes(max(w.long_seconds for w in obj.windows))
    before = 60
    after = min(longest, 6 * 60) + 10
    phases = [Phase(before, 0.0, trickle), Phase(1, 1.0, 1.0), Phase(after, 0.0, trickle)]
    times = sorted({before + m for m in (1, 2, 5, 10, 30, 60, after - 5) if m < after})
    return Case(
        f"{obj.service}/{obj.name}: ten events an hour with a single bad one fires nothing",
        [(phases, None)],
        [_check(_alerts_query(obj), at, []) for at in times],
        ALERTS_PART,
    )


def zero_test(obj: Objective, p: Plan) -> Case:
    at = _settle(obj) + 30
    phases = [Phase(at + 5, 0.0, 0.0)]
    ids = {cv.SERVICE: obj.service, cv.SLO: obj.name}
    remaining = {**obj.labels, **a_group(obj), **ids, cv.WINDOW: format_duration(obj.period)}
    return Case(
        f"{obj.service}/{obj.name}: zero traffic fires nothing and leaves the whole budget",
        [(phases, None)],
        [
            _check(_alerts_query(obj), at, []),
            _check(
                f"{cv.BUDGET_REMAINING}{{{label_matchers(ids)}}}",
                at,
                [{"labels": f"{cv.BUDGET_REMAINING}{{{label_matchers(remaining)}}}", "value": 1}],
            ),
        ],
    )


# January 1970 has 31 days and February 28: promtool's clock starts at 00:00 UTC on
# 1 January 1970, so its first month boundary is at 31d. The month test steps an hour at
# a time (its own file): the running month-to-date counts the seconds between
# evaluations, so any step proves it, and 744 steps reach February where a minute's
# step would take 44,640.
_JANUARY, _FEBRUARY = 31, 28
MONTH_STEP = "1h"


def month_test(obj: Objective, p: Plan) -> Case | None:
    """A calendar month's budget resets at 00:00 UTC on the 1st, and the forecast pages
    when the month would end over budget and not when it would end under it.

    One steady rate across the boundary, the budget over 29.5 days: January (31 days)
    ends over the budget, so its forecast pages; February (28 days) ends under it.
    """
    if not obj.calendar_month or obj.budget_usd is None or p.reason:
        return None
    if not obj.enabled.get(Severity.PAGE, True):
        return None
    budget, day = obj.budget_usd, 86400
    phase = Phase(_JANUARY * 24 * 60 + 65, 30 / 29.5)  # budget / 29.5 days, per 30d
    rate = _increment(phase, BAD, obj) / 60  # dollars a second, as the input series spends
    boundary = _JANUARY * 24 * 60  # minutes
    ids = {cv.SERVICE: obj.service, cv.SLO: obj.name}
    mtd = f"{cv.MONTH_TO_DATE}{{{label_matchers(ids)}}}"
    forecast = f"{cv.MONTH_FORECAST}{{{label_matchers(ids)}}}"
    wanted = {"alertname": cv.ALERT_NAME, **ids, "alertstate": "firing"}
    query = "ALERTS{" + label_matchers({**wanted, cv.LONG_WINDOW: cv.MONTH_WINDOW}) + "}"
    paged = {
        **obj.labels,
        **wanted,
        cv.SEVERITY: Severity.PAGE.value,
        cv.LONG_WINDOW: cv.MONTH_WINDOW,
        cv.SHORT_WINDOW: format_duration(cv.FORECAST_WINDOW_SECONDS),
    }
    own = label_matchers({**obj.labels, **ids})
    recorded = f"{cv.MONTH_TO_DATE}{{{own}}}"
    true = [{"labels": f"{{{own}}}", "value": 1}]

    def exactly(expr: str, expected: float) -> str:
        # promtool compares values exactly: compare the ratio to a billionth instead.
        return f"abs({expr} / {number(expected)} - 1) < bool 1e-9"

    january = boundary - 24 * 60  # 31 January, 00:00
    checks = [
        _check(query, january, [{"labels": "ALERTS{" + label_matchers(paged) + "}", "value": 1}]),
        _check(exactly(mtd, rate * january * 60), january, true),
        _check(exactly(forecast, rate * _JANUARY * day), january, true),
        _check(mtd, boundary, [{"labels": recorded, "value": 0}]),
        _check(exactly(mtd, rate * 3600), boundary + 60, true),
        _check(exactly(forecast, rate * _FEBRUARY * day), boundary + 60, true),
        _check(query, boundary + 60, []),
    ]
    return Case(
        f"{obj.service}/{obj.name}: a steady ${number(round(rate * day, 2))} a day pages "
        f"in January ({_JANUARY} days end over the ${number(budget)} budget), the budget "
        f"resets at 00:00 UTC on 1 February, and February ({_FEBRUARY} days) ends under it",
        [([phase], None)],
        checks,
    )


def _apart(active: list[AlertWindow], ratio: float) -> dict[str, float]:
    """Two burns, ``hot`` and ``hot * ratio``, that fire different pairs, each at least
    10% from every threshold so that which pairs fire does not hang on a rounding."""
    thresholds = sorted({w.burn_rate for w in active})
    candidates = [t * f for t in reversed(thresholds) for f in (1.25, 1.5, 2.0, 3.0)]

    def clear(burn: float) -> bool:
        return all(abs(burn / t - 1) >= 0.1 for t in thresholds)

    def fired(burn: float) -> set[float]:
        return {t for t in thresholds if t < burn}

    for hot in candidates:
        if clear(hot) and clear(hot * ratio) and fired(hot) != fired(hot * ratio):
            return {"hot": hot, "calm": hot * ratio}
    hot = ABOVE * thresholds[-1]
    return {"hot": hot, "calm": hot * ratio}


def groups_test(obj: Objective, p: Plan) -> list[Case]:
    """A grouped SLO: one group burning, another clean at the same traffic; only the
    burning group's alerts fire, each with its group's labels. For per-group spend
    budgets, a group with a budget of its own and one on the default spend the same
    dollars: each fires exactly the pairs its own budget's burn crosses."""
    active = obj.active_windows()
    if not obj.group_by or not active or any(g in s.labels for s in p.series for g in obj.group_by):
        return []
    at = _settle(obj)
    events = max(EVENTS_PER_MINUTE, obj.min_events)
    hot, calm = a_group(obj, "burning"), a_group(obj, "clean")
    if obj.is_spend and obj.budget_usd_by:
        # The group whose own budget is furthest from the default shows it best.
        assert obj.budget_usd is not None
        default = obj.budget_usd
        value, own = max(obj.budget_usd_by.items(), key=lambda kv: abs(math.log(kv[1] / default)))
        calm = dict.fromkeys(obj.group_by, value)
        burns = _apart(active, default / own)
        # Equal dollars: the second group spends what the first does, against its own budget.
        spent = {"hot": burns["hot"], "calm": burns["hot"]}
        what = f"the same spend burns the default budget at {number(round(burns['hot'], 4))}x and {value}'s own at {number(round(burns['calm'], 4))}x"
    else:
        top = max(w.burn_rate for w in active)
        burning = min(1.0, ABOVE * top * obj.error_budget) if not obj.is_spend else ABOVE * top
        burns = {"hot": burning / obj.error_budget, "calm": 0.0}
        spent = {"hot": burning, "calm": 0.0}
        what = "one group burning and another clean"

    def inputs(minutes: int) -> list[tuple[list[Phase], dict[str, str] | None]]:
        return [
            ([Phase(minutes, spent["hot"], events)], hot),
            ([Phase(minutes, spent["calm"], events)], calm),
        ]

    def expected(pairs: list[AlertWindow]) -> list[dict[str, Any]]:
        return [
            *_expect(obj, [w for w in pairs if w.burn_rate < burns["hot"]], hot),
            *_expect(obj, [w for w in pairs if w.burn_rate < burns["calm"]], calm),
        ]

    name = f"{obj.service}/{obj.name}: {what}: only the burning pairs of each group fire, with its labels"
    if obj.is_spend:
        return _spend_cases(obj, name, at, inputs, lambda o: expected([o]))
    return [
        Case(name, inputs(at + 5), [_check(_alerts_query(obj), at, expected(active))], ALERTS_PART)
    ]


def slo_cases(obj: Objective, p: Plan) -> list[Case]:
    """Every one-minute case of one SLO (its month-boundary proof is :func:`month_test`)."""
    cases = steady_tests(obj, p) + outage_tests(obj, p)
    for case in (low_traffic_test(obj, p), zero_test(obj, p)):
        if case is not None:
            cases.append(case)
    return cases + groups_test(obj, p)


def slo_tests(obj: Objective, p: Plan) -> list[dict[str, Any]]:
    """Every case of :func:`slo_cases` as one test group stepping 1m (the layout before
    proofs were split by the rules they read)."""
    return [test_group(case, p, obj) for case in slo_cases(obj, p)]


# The files of one SLO's proof, beside each other in the tests directory: the SLO's own
# rule groups and the cases that read all of them; per part (the steady, trickle and
# grouped cases, which read the alerts; each pair's outage) the rules those cases read
# and the cases; for a calendar month the month-boundary case. promtool steps a whole
# file at one interval. One promtool call over ``DIR/*.test.yml`` runs them all.
RULES_SUFFIX = ".rules.yml"
TEST_SUFFIX = ".test.yml"
MONTH_SUFFIX = ".month.test.yml"


def file_stem(service: str, name: str) -> str:
    """The shared start of an SLO's (or a detector's) proof files."""
    return f"{service}.{name}"


def proof_file(
    service: Service,
    what: str,
    rule_file: str,
    interval: str,
    cases: list[dict[str, Any]],
    order: list[str] | None = None,
) -> str:
    """A promtool test file of ``cases`` for ``what`` (an SLO or a detector) that loads
    ``rule_file`` (its own groups, beside it), evaluating the groups in ``order``."""
    doc: dict[str, Any] = {"rule_files": [rule_file], "evaluation_interval": interval}
    if order and len(order) > 1:
        doc["group_eval_order"] = order
    doc["tests"] = cases
    head = (
        f"# Generated by sloengine from {printable(service.file)}: promtool test rules for "
        f"{printable(what)}, against its rule groups in {printable(rule_file)}.\n"
    )
    return head + dump_yaml(doc)


def own_rules(
    service: Service, what: str, groups: list[Rule], rule_file: str, part: str = ""
) -> str:
    """The rule file of ``what``'s groups alone, exactly as ``rule_file`` (the one
    Prometheus loads) holds them: its proofs evaluate no other SLO's rules. With
    ``part``, only the rules that part's cases read, in the same groups and order."""
    which = (
        f"The rules of {printable(what)} that its {printable(part)} proofs read, as"
        if part
        else f"The rule groups of {printable(what)}"
    )
    return (
        header(service.file) + f"# {which} in {printable(rule_file)}, for its promtool "
        "tests alone: load the service's rule file into Prometheus, not this one.\n"
        + dump_yaml({"groups": groups})
    )


def _as_series(rule: Rule) -> Rule:
    """A rule as the series it writes: a recording rule as itself, an alert as ALERTS."""
    if "record" in rule:
        return rule
    return {
        "record": "ALERTS",
        "labels": {**(rule.get("labels") or {}), "alertname": rule["alert"]},
    }


class _Rules:
    """One SLO's rules in evaluation order (group by group) and what each one reads."""

    def __init__(self, groups: list[Rule]) -> None:
        self.groups = groups
        self.rules = [rule for group in groups for rule in group["rules"]]
        self._series = [_as_series(rule) for rule in self.rules]
        self.reads = [
            [(read, self.targets(read)) for read in reads(str(rule["expr"]))] for rule in self.rules
        ]

    def targets(self, read: Read) -> list[int]:
        """The rules whose series a selector can select."""
        return [i for i, series in enumerate(self._series) if selects(read, series)]

    def closure(self, queries: Iterable[str]) -> set[int]:
        """The rules the queries read, and every rule those read, transitively."""
        wanted: set[int] = set()
        todo = [t for q in queries for read in reads(q) for t in self.targets(read)]
        while todo:
            i = todo.pop()
            if i not in wanted:
                wanted.add(i)
                todo += [t for _, targets in self.reads[i] for t in targets]
        return wanted

    def step(self, chosen: set[int]) -> int:
        """The widest evaluation step (seconds) at which the chosen rules record, at each
        evaluation, what a 1m evaluation records at that instant: every offset at which
        one reads a recorded series is a whole number of steps; no range of recorded
        samples, no series recorded later in the evaluation (or by the rule itself) and
        no ``for`` is read, as those hang on every evaluation in between."""
        offsets = [WIDEST_STEP]
        for i in sorted(chosen):
            if parse_duration(str(self.rules[i].get("for", "0s"))) > 0:
                return MINUTE
            for read, targets in self.reads[i]:
                if not targets:  # a raw series: the input, at every minute
                    continue
                if read.ranged or max(targets) >= i:
                    return MINUTE
                offsets.append(read.back)
        step = math.gcd(*offsets)
        return step if step % MINUTE == 0 else MINUTE

    def subset(self, chosen: set[int]) -> list[Rule]:
        """The groups with the chosen rules only, in order; groups left empty go."""
        out, i = [], 0
        for group in self.groups:
            kept = [r for n, r in enumerate(group["rules"], i) if n in chosen]
            i += len(group["rules"])
            if kept:
                out.append({**group, "rules": kept})
        return out


def slo_files(service: Service, obj: Objective, groups: list[Rule]) -> dict[str, str]:
    """The proof files of one SLO whose series can be planned, from the service's rule
    ``groups``: file name to text."""
    p = plan(obj)
    what = f"{obj.service}/{obj.name}"
    stem = file_stem(obj.service, obj.name)
    service_file = file_name(service, Format.PROMETHEUS)
    own = _Rules([g for g in groups if cv.group_slo(g["name"]) == (obj.service, obj.name)])
    parts: dict[str, list[Case]] = {"": []}  # the SLO's own files first
    for case in slo_cases(obj, p):
        parts.setdefault(case.part, []).append(case)
    files: dict[str, str] = {}
    everything = set(range(len(own.rules)))
    for part, cases in parts.items():
        if not cases:
            continue
        chosen = own.closure(c.query for case in cases for c in case.checks) if part else everything
        name = f"{stem}.{part}" if part else stem
        kept = own.subset(chosen)
        step = own.step(chosen)
        files[name + RULES_SUFFIX] = own_rules(service, what, kept, service_file, part)
        tests = [group for case in cases for group in stepped(case, p, obj, step)]
        order = [g["name"] for g in kept]
        files[name + TEST_SUFFIX] = proof_file(
            service, what, name + RULES_SUFFIX, format_duration(step), tests, order
        )
    month = month_test(obj, p)
    if month is not None:
        files[stem + MONTH_SUFFIX] = proof_file(
            service,
            f"{what} across a month boundary",
            stem + RULES_SUFFIX,
            MONTH_STEP,
            [test_group(month, p, obj)],
            [g["name"] for g in own.groups],
        )
    return files


def render_files(service: Service) -> dict[str, str]:
    """The promtool proof files of a service: file name (in the tests directory) to text.

    Per SLO, ``<service>.<slo>.rules.yml`` (its two groups) with ``<service>.<slo>.test.yml``
    (the cases that read the budget); per part, ``<service>.<slo>.<part>.rules.yml`` (the
    rules its cases read) with ``<service>.<slo>.<part>.test.yml``: ``alerts`` (steady
    burns, a trickle, groups) and ``outage-<severity>-<long window>`` per pair; for a
    calendar month, ``<service>.<slo>.month.test.yml``. Each file evaluates one SLO's
    rules only, so a service's proofs take time linear in its SLOs. An SLO whose series
    cannot be planned has none (:func:`untested` says why).
    """
    groups = rule_groups(service)
    files: dict[str, str] = {}
    for obj in service.objectives:
        if not plan(obj).reason:
            files |= slo_files(service, obj, groups)
    return files


def untested(service: Service) -> list[str]:
    """``service/slo: reason`` for each SLO that gets no generated proofs."""
    return [
        f"{obj.service}/{obj.name}: {reason}"
        for obj in service.objectives
        if (reason := plan(obj).reason)
    ]
