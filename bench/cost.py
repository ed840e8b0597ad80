"""Rule evaluation cost: the three rule sets in one real Prometheus after a month of history.

What is reported, per rule set:

- evaluation time per minute: Prometheus's own ``prometheus_rule_group_last_duration_seconds``,
  read after every evaluation of every group; the median per group over the measured
  evaluations, times the group's evaluations per minute (sloengine's budget groups run
  every 2m30s, every other group every minute), summed over the rule set's groups;
- samples touched per minute: every rule's expression run once through the query API with
  ``stats=all`` at one instant (``totalQueryableSamples``), times its group's
  evaluations per minute, summed;
- series created: the series the rule set's recording rules write (counted in the TSDB),
  and the samples each round of evaluations appends
  (``prometheus_rule_group_last_evaluation_samples``).
"""

from __future__ import annotations

import hashlib
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench import accuracy, history, rulesets
from bench.progress import log
from bench.rulesets import GROUPED, RuleSet
from sloengine import conventions as cv
from sloengine.durations import parse_duration
from sloengine.sim import client, launch
from sloengine.sim.exporter import serving
from sloengine.sim.launch import Server

Log = Callable[[str], None]
DAYS = 31  # of history: a 30d window over the last day
QUICK_DAYS = 2


@dataclass
class GroupSeries:
    rule_set: str
    slo: str
    durations: list[float] = field(default_factory=list)
    written: list[float] = field(default_factory=list)
    seen: set[float] = field(default_factory=set)
    per_minute: float = 1.0  # evaluations per minute: 60 / the group's interval
    wanted: int = 2  # evaluations to see, the cold first one included


@dataclass
class RuleCost:
    rule_set: str
    group: str
    name: str  # record or alert name, with its window
    samples: int  # per minute
    seconds: float  # median evaluation time the server reports for this rule, per minute


@dataclass
class SetCost:
    name: str
    groups: int
    rules: int
    eval_seconds: float  # per minute: sum over groups of median duration x evaluations/min
    eval_by_slo: dict[str, float]
    eval_spread: tuple[float, float]  # the same sum over each group's fastest / slowest run
    samples: int
    samples_by_slo: dict[str, int]
    series: int
    written_per_minute: float
    evaluations: int
    query_seconds: float  # the rules' expressions through the query API, median of 3


@dataclass
class CostResult:
    sets: dict[str, SetCost]
    rules: list[RuleCost]
    at: float
    measured_for: float
    groups: int = 0  # groups of the grouped SLO (sloengine-grouped)
    cold: bool = False  # the first (cold) evaluations counted (quick mode)
    rounds: int = 3  # query timings per rule expression


def _labels(pairs: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return dict(pairs)


def _rule_name(rule: dict[str, Any]) -> str:
    name = str(rule.get("record") or rule.get("alert"))
    window = (rule.get("labels") or {}).get("window") or (rule.get("labels") or {}).get(
        "sloth_window"
    )
    if rule.get("alert"):
        labels = rule.get("labels") or {}
        severity = labels.get("severity") or labels.get("sloth_severity")
        long_window = labels.get("long_window") or labels.get("long")
        return f"alert {severity}" + (f" {long_window}" if long_window else "")
    return f"{name}{{window={window}}}" if window and not name.endswith(str(window)) else name


def watch(
    server: Server, sets: dict[str, RuleSet], evaluations: int, log: Log, cold: bool = False
) -> tuple[dict[str, GroupSeries], dict[tuple[str, str, int], list[float]]]:
    """Poll /metrics and /api/v1/rules until every group evaluated ``evaluations`` + 1 times
    (a slower group: as many minutes' worth, at least twice).

    The first evaluation after start-up is dropped: it runs on cold caches. ``cold``
    (quick mode) keeps it and waits for ``evaluations`` of every group, the first
    included: a 2m30s group's first comes within one interval, its third within three.
    """
    skip = 0 if cold else 1  # evaluations dropped at the start of each group and rule
    intervals = {
        f"{rs.file};{group['name']}": per_minute(group)
        for rs in sets.values()
        for group in yaml.safe_load(rs.text)["groups"]
    }
    by_key: dict[str, GroupSeries] = {}
    for rs in sets.values():
        for group, slo in rs.groups.items():
            key = f"{rs.file};{group}"
            rate = intervals[key]
            slower = max(1 + skip, math.ceil(evaluations * rate))
            wanted = skip + (evaluations if rate >= 1 else slower)
            by_key[key] = GroupSeries(rs.name, slo, per_minute=rate, wanted=wanted)
    rule_times: dict[tuple[str, str, int], list[float]] = {}
    rule_seen: dict[tuple[str, str, int], str] = {}
    last_report = 0.0
    while any(len(g.seen) < g.wanted for g in by_key.values()):
        time.sleep(2)
        metrics = client.metrics(server.url)
        stamps: dict[str, float] = {}
        durations: dict[str, float] = {}
        written: dict[str, float] = {}
        for (name, pairs), value in metrics.items():
            rule_group = _labels(pairs).get("rule_group", "")
            if rule_group not in by_key:
                continue
            if name == "prometheus_rule_group_last_evaluation_timestamp_seconds":
                stamps[rule_group] = value
            elif name == "prometheus_rule_group_last_duration_seconds":
                durations[rule_group] = value
            elif name == "prometheus_rule_group_last_evaluation_samples":
                written[rule_group] = value
        for rule_group, stamp in stamps.items():
            g = by_key[rule_group]
            if stamp <= 0 or stamp in g.seen or rule_group not in durations:
                continue
            g.seen.add(stamp)
            if len(g.seen) > skip:  # drop the cold first evaluation (unless ``cold``)
                g.durations.append(durations[rule_group])
                g.written.append(written.get(rule_group, 0.0))
        for loaded in client.rule_groups(server.url):
            for i, rule in enumerate(loaded["rules"]):
                rule_key = (str(loaded["file"]), str(loaded["name"]), i)
                evaluated_at = str(rule.get("lastEvaluation"))
                previous = rule_seen.get(rule_key)
                if previous != evaluated_at:
                    # Skip a rule's first evaluation, like its group's: cold caches.
                    warm = previous is not None and not previous.startswith("0001-")
                    if (warm or cold) and not evaluated_at.startswith("0001-"):
                        rule_times.setdefault(rule_key, []).append(float(rule["evaluationTime"]))
                    rule_seen[rule_key] = evaluated_at
        behind = sum(len(g.seen) < g.wanted for g in by_key.values())
        if time.monotonic() - last_report > 60:
            log(f"  evaluations: {behind} of {len(by_key)} groups still measuring")
            last_report = time.monotonic()
    return by_key, rule_times


def samples_touched(
    server: Server, sets: dict[str, RuleSet], at: float, rounds: int = 3
) -> dict[tuple[str, str, int], tuple[int, list[float]]]:
    """Each rule's expression through the query API at ``at``: samples, and ``rounds``
    timings.

    The rounds interleave the rule sets, so a noisy moment hits all of them alike.
    """
    out: dict[tuple[str, str, int], tuple[int, list[float]]] = {}
    for _round in range(rounds):
        for rs in sets.values():
            for group in yaml.safe_load(rs.text)["groups"]:
                for i, rule in enumerate(group["rules"]):
                    data = client.query_data(server.url, rule["expr"], at, stats=True)
                    samples = int(data["stats"]["samples"]["totalQueryableSamples"])
                    seconds = float(data["stats"]["timings"]["evalTotalTime"])
                    key = (str(rs.file), group["name"], i)
                    previous = out.get(key, (samples, []))
                    out[key] = (samples, [*previous[1], seconds])
    return out


def series_created(server: Server, rs: RuleSet) -> int:
    if rs.is_sloengine:
        expr = f'count({{__name__=~"sloengine:.+", service="{rs.service}"}})'
    elif rs.name.startswith("pyrra"):
        expr = f'count({{__name__=~"pyrra:.+", slo=~"{rs.service}-.+"}})'
    else:
        expr = f'count({{__name__=~"slo:.+|sloth_slo_info", sloth_service="{rs.service}"}})'
    return int(client.scalar(server.url, expr) or 0)


def per_minute(group: dict[str, Any]) -> float:
    """How many times a minute a rule group (as written in its file) is evaluated."""
    return 60 / parse_duration(str(group.get("interval", "1m")))


def measure(
    server: Server,
    sets: dict[str, RuleSet],
    evaluations: int,
    log: Log = log,
    cold: bool = False,
    rounds: int = 3,
) -> CostResult:
    """``cold``: keep every group's first evaluation (see ``watch``); ``rounds``: query
    timings per rule expression."""
    started = time.monotonic()
    groups, rule_times = watch(server, sets, evaluations, log, cold)
    measured_for = time.monotonic() - started
    at = float(int(time.time()))
    log("  samples touched: every rule's expression with stats=all")
    touched = samples_touched(server, sets, at, rounds)
    result = CostResult({}, [], at, measured_for, cold=cold, rounds=rounds)
    if GROUPED in sets:
        base = f'{cv.TOTAL_BASE}{{service="{sets[GROUPED].service}"}}'
        result.groups = int(client.scalar(server.url, f"count({base})", at) or 0)
    for rs in sets.values():
        mine = [g for g in groups.values() if g.rule_set == rs.name]
        by_slo: dict[str, float] = {}
        for g in mine:
            by_slo[g.slo] = by_slo.get(g.slo, 0.0) + statistics.median(g.durations) * g.per_minute
        samples_by_slo: dict[str, int] = {}
        query_seconds = 0.0
        rules = 0
        for group in yaml.safe_load(rs.text)["groups"]:
            slo = rs.groups[group["name"]]
            rate = per_minute(group)
            for i, rule in enumerate(group["rules"]):
                key = (str(rs.file), group["name"], i)
                once, timings = touched[key]
                samples = round(once * rate)
                samples_by_slo[slo] = samples_by_slo.get(slo, 0) + samples
                query_seconds += statistics.median(timings) * rate
                rules += 1
                evaluated = rule_times.get(key) or [0.0]
                result.rules.append(
                    RuleCost(
                        rs.name,
                        group["name"],
                        _rule_name(rule),
                        samples,
                        statistics.median(evaluated) * rate,
                    )
                )
        result.sets[rs.name] = SetCost(
            name=rs.name,
            groups=len(mine),
            rules=rules,
            eval_seconds=sum(by_slo.values()),
            eval_by_slo=by_slo,
            eval_spread=(
                sum(min(g.durations) * g.per_minute for g in mine),
                sum(max(g.durations) * g.per_minute for g in mine),
            ),
            samples=sum(samples_by_slo.values()),
            samples_by_slo=samples_by_slo,
            series=series_created(server, rs),
            written_per_minute=sum(statistics.median(g.written) * g.per_minute for g in mine),
            evaluations=min(len(g.durations) for g in mine),
            query_seconds=query_seconds,
        )
    return result


@dataclass
class CostPart:
    """The cost part's result: the month of history, rule cost and long-window accuracy."""

    month: history.Month
    cost: CostResult
    accuracy: accuracy.AccuracyResult
    rules_sha: str
    stages: dict[str, float]


def run(out: Path, quick: bool, before_measuring: Callable[[], None] | None = None) -> CostPart:
    """Build the month, load every rule set into one Prometheus, measure cost, then accuracy.

    ``before_measuring`` runs once the history is built, before anything is timed (the
    caller waits there for background work that would share the CPUs).
    """
    # Quick: 2 days, the 1d windows whole over the measured last day (the 3d and 30d
    # windows read only those 2 days; a 3d window over the last day needs 4).
    days = QUICK_DAYS if quick else DAYS
    log(f"1+2. cost and accuracy: building {days} days of history")
    service, sets = rulesets.build(out / "rules")
    sha = hashlib.sha256(sets[rulesets.SLOENGINE].text.encode()).hexdigest()[:12]
    ranged = (rulesets.SLOENGINE, rulesets.OPTIMIZED, rulesets.PYRRA_PERFORMANCE, rulesets.GROUPED)
    # Quick: no compaction; measured over promtool's 2h blocks, not a month's compacted ones.
    month = history.build(out, days, [sets[n].text for n in ranged], log, compaction=not quick)
    stages = dict(month.seconds)
    if before_measuring is not None:
        before_measuring()
    log("  measuring the rule sets side by side")
    with serving(month.scenario) as target:
        # The simulator's series carry their own job and instance, as the history does.
        config = launch.config(
            rule_files=[rs.file for rs in sets.values()],
            scrape=[target],
            scrape_interval="1m",
            keep_target_labels=True,
        )
        with history.running(month.tsdb, out / "prometheus", config, compaction=not quick) as s:
            t = time.monotonic()
            # Quick: one evaluation of every group, its cold first one (not 5 warm ones),
            # and one query timing per rule (not the median of 3).
            cost = measure(s, sets, 1 if quick else 5, log, cold=quick, rounds=1 if quick else 3)
            stages["cost measurement"] = time.monotonic() - t
            log("  accuracy: window ratios against the exact event counts")
            t = time.monotonic()
            acc = accuracy.measure(s, service, sets, month.scenario, month.end)
            stages["accuracy"] = time.monotonic() - t
    return CostPart(month, cost, acc, sha, stages)


def markdown(result: CostPart) -> str:
    from bench import report

    return report.cost_markdown(result)
