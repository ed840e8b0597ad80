"""``python -m bench.detectors``: what the detectors cost Prometheus, and how fast they see.

    python -m bench.detectors            # 8 days of history (a 7d baseline is whole)
    python -m bench.detectors --quick    # 2 days: a smoke test

1. **Rule cost per minute**, beside the SLO rules of the same service
   (``slos/chat-assistant.yaml``: nine SLOs, five detectors), measured as
   ``bench/cost.py`` measures the SLO rules: one real Prometheus holding the simulated
   chatbot's raw history (``example_scenario``, 1m samples) and the history of the
   recorded series other rules read over a range or at an offset (the SLOs' tiles and
   the detectors' 5m rates and baselines, ``bench.history.recorded_history``); every
   rule's expression is run
   once through the query API with ``stats=all`` at the last instant (samples loaded,
   ``totalQueryableSamples``; evaluation time, the median of three), times its group's
   evaluations per minute (the detectors' groups run every 5m and hourly).
2. **Detection time** of each planted regression, replayed: the simulator's exact
   counters (steady traffic, a clean history as long as both windows, then the
   regression) are read at every minute after it begins over the detector's windows,
   as raw mode reads them, and judged by ``judge_detector``, the same decision ``run``
   makes; the first minute a regressed group fires is its detection time, against the
   bound the README gives (the window plus one 5m interval).
3. **A clean week** (20:1 day/night traffic with jitter, a tenfold one-hour spike, a new
   prompt version at the same cost) replayed every 5 minutes: every detector must stay
   silent.

Results: stdout and bench/out/detectors.md (bench/DETECTORS.md holds a full run).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import history
from bench.cost import per_minute
from bench.report import machine
from sloengine import conventions as cv
from sloengine import rules as slo_rules
from sloengine.detectors import rules as detector_rules
from sloengine.detectors.model import Detector
from sloengine.detectors.verdict import Group, group_of, judge_detector, raw_readings
from sloengine.loading import load_specs
from sloengine.model import Service
from sloengine.sim import client
from sloengine.sim.backfill import backfill
from sloengine.sim.traffic import (
    Baseline,
    Incident,
    Scenario,
    Scope,
    Traffic,
    example_scenario,
    series_at,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPEC = ROOT / "slos" / "chat-assistant.yaml"
DAY = 86400
STEP = 60
INTERVAL = cv.DETECTOR_INTERVAL_SECONDS
Log = Callable[[str], None]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------ rule cost


@dataclass
class RuleSetCost:
    name: str
    groups: int
    rules: int
    samples_per_minute: float
    seconds_per_minute: float
    by_part: dict[str, tuple[float, float]] = field(default_factory=dict)  # samples, seconds


@dataclass
class Result:
    quick: bool
    days: int
    series: int
    raw_samples: int
    slo: RuleSetCost
    detectors: RuleSetCost
    detection: list[tuple[str, str, str, float | None, int]]  # scenario, detector, window, s, bound
    clean_steps: int
    clean_alerts: dict[str, int]
    seconds: dict[str, float]
    machine: dict[str, str]


def _cost(
    name: str,
    groups: list[dict[str, Any]],
    url: str,
    at: float,
    part: Callable[[str], str],
) -> RuleSetCost:
    total = RuleSetCost(name, len(groups), 0, 0.0, 0.0)
    for group in groups:
        rate = per_minute(group)
        for rule in group["rules"]:
            samples, timings = 0, []
            for _ in range(3):
                data = client.query_data(url, rule["expr"], at, stats=True)
                samples = int(data["stats"]["samples"]["totalQueryableSamples"])
                timings.append(float(data["stats"]["timings"]["evalTotalTime"]))
            seconds = statistics.median(timings)
            total.rules += 1
            total.samples_per_minute += samples * rate
            total.seconds_per_minute += seconds * rate
            key = part(group["name"])
            s, t = total.by_part.get(key, (0.0, 0.0))
            total.by_part[key] = (s + samples * rate, t + seconds * rate)
    return total


def rule_cost(
    service: Service, out: Path, days: int, log: Log
) -> tuple[RuleSetCost, RuleSetCost, int, int]:
    tsdb = out / "detectors-tsdb"
    if tsdb.exists():
        import shutil

        shutil.rmtree(tsdb)
    end = int(time.time()) // STEP * STEP
    start = end - days * DAY
    scenario = example_scenario(start, days=days, service=service.name)
    log(f"  raw history: {scenario.series_count} series x {days}d at 1m")
    samples = backfill(scenario, tsdb, start, end, STEP)
    slo_groups = slo_rules.rule_groups(service)
    det_groups = detector_rules.rule_groups(service.detectors)
    history.recorded_history(
        tsdb, out / "detectors-history", slo_groups + det_groups, start, end, log
    )
    log("  measuring every rule's expression at the last instant")
    with history.running(tsdb, out / "detectors-measure", compaction=False) as server:
        slo = _cost("SLO rules", slo_groups, server.url, end, lambda g: g.split(":")[-1])
        det = _cost(
            "detector rules",
            det_groups,
            server.url,
            end,
            lambda g: (
                ("hourly baseline of " if g.endswith(cv.BASELINE_SUFFIX) else "")
                + (cv.group_detector(g) or ("", g))[1]
            ),
        )
    return slo, det, scenario.series_count, samples


# ----------------------------------------------------------------- detection replay

_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


class Counts:
    """The simulator's exact counters by (metric, labels), per instant, cached."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.cache: dict[float, list[tuple[str, dict[str, str], float]]] = {}

    def at(self, t: float) -> list[tuple[str, dict[str, str], float]]:
        if t not in self.cache:
            rows = []
            for key, value in series_at(self.scenario, max(t, self.scenario.origin)).items():
                name, _, rest = key.partition("{")
                rows.append((name, dict(_LABEL.findall(rest)), value))
            self.cache[t] = rows
        return self.cache[t]

    def by_group(self, det: Detector, names: tuple[str, ...], t: float) -> dict[Group, float]:
        out: dict[Group, float] = {}
        for name, labels, value in self.at(t):
            if name in names:
                group = group_of(det, labels)
                out[group] = out.get(group, 0.0) + value
        return out


def _rates(det: Detector, counts: Counts, t: float) -> dict[str, dict[Group, float]]:
    """Per-second rates over the recent and baseline windows at ``t``, as raw mode reads
    them (``rules.raw_queries``' keys), from the exact counters."""

    def delta(names: tuple[str, ...], a: float, b: float) -> dict[Group, float]:
        lo, hi = counts.by_group(det, names, a), counts.by_group(det, names, b)
        return {g: (hi[g] - lo.get(g, 0.0)) / (b - a) for g in hi}

    recent = t - det.window
    out = {
        "numerator_recent": delta(det.ratio.numerator.names, recent, t),
        "denominator_recent": delta(det.ratio.denominator.names, recent, t),
    }
    if det.baseline is not None:
        out["numerator_baseline"] = delta(det.ratio.numerator.names, recent - det.baseline, recent)
        out["denominator_baseline"] = delta(
            det.ratio.denominator.names, recent - det.baseline, recent
        )
    return out


def firing(det: Detector, counts: Counts, t: float) -> list[dict[str, str]]:
    """The groups ``judge_detector`` fires at ``t``."""
    return [
        r.group
        for r in raw_readings(det, _rates(det, counts, t))
        if judge_detector(det, r, INTERVAL).active
    ]


# (scenario name, detector, incident, baseline overrides): each the seed articles' case.
PLANTED: list[tuple[str, str, Incident, dict[str, float]]] = [
    ("retry loop: cost per call +60%", "cost-per-call-change", Incident(0, 1, "retry_storm", 0.6), {}),
    ("new prompt_sha at 2x cost on one feature", "prompt-cost-regression", Incident(0, 1, "prompt_rollout", 1.0), {}),
    ("cache hit ratio 80% -> 50%", "cache-hit", Incident(0, 1, "cache_break", 0.375), {"cache_hit_ratio": 0.8}),
    ("tokens per call doubling", "tokens-per-call", Incident(0, 1, "token_growth", 1.0), {}),
    ("5% of calls over their token budget", "token-budget", Incident(0, 1, "token_budget_breaches", 0.05), {"token_budget_breach_rate": 0.0}),
]  # fmt: skip


def detection(service: Service, log: Log) -> list[tuple[str, str, str, float | None, int]]:
    detectors = {d.name: d for d in service.detectors}
    out = []
    for name, detector, planted, overrides in PLANTED:
        det = detectors[detector]
        history_seconds = det.window + (det.baseline or 0) + 3600
        start = 10 * DAY  # any origin: the replay reads the model, not a clock
        begins = start + history_seconds
        # On one feature for a grouped detector (the other stays clean), on all traffic for
        # an ungrouped one.
        scope = Scope(feature="chat") if det.group_by else Scope()
        incident = replace(planted, start=begins, end=begins + 30 * DAY, scope=scope)
        scenario = Scenario(
            origin=start,
            traffic=Traffic(base_rps=2.0),
            providers=1,
            models_per_provider=2,
            features=2,
            labels={"service": service.name},
            incidents=(incident,),
            baseline=Baseline(**overrides),
            prompt_versions=incident.kind == "prompt_rollout",
        )
        counts = Counts(scenario)
        bound = det.window + INTERVAL
        fired: float | None = None
        for minute in range(0, bound // 60 + 61):
            t = begins + 60 * minute
            if any(g.get("feature") == "chat" for g in firing(det, counts, t)) or (
                not det.group_by and firing(det, counts, t)
            ):
                fired = t - begins
                break
        log(f"  {name}: {detector} fired after {fired}s (bound {bound}s)")
        out.append((name, detector, f"{det.window // 60}m", fired, bound))
    return out


def clean_week(service: Service, days: int, log: Log) -> tuple[int, dict[str, int]]:
    """Every detector judged every 5 minutes over ``days`` of clean traffic after a
    history as long as the longest baseline: the alerts each would raise."""
    longest = max(d.window + (d.baseline or 0) for d in service.detectors)
    origin = 10 * DAY
    begins = origin + longest + 3600
    end = begins + days * DAY
    spike = Incident(begins + 14 * 3600, begins + 15 * 3600, "traffic_surge", 10)
    # A new prompt version on one feature, at the same cost: no regression.
    rollout = Incident(begins + DAY, end + DAY, "prompt_rollout", 0.0, Scope(feature="chat"))
    scenario = Scenario(
        origin=origin,
        traffic=Traffic(base_rps=2.0, peak_to_trough=20, jitter=0.1),
        providers=2,
        models_per_provider=2,
        features=2,
        labels={"service": service.name},
        incidents=(spike, rollout),
        prompt_versions=True,
    )
    counts = Counts(scenario)
    alerts = {d.name: 0 for d in service.detectors}
    steps = 0
    for t in range(begins, end, INTERVAL):
        steps += 1
        for det in service.detectors:
            alerts[det.name] += len(firing(det, counts, t))
        if steps % 288 == 0:
            log(
                f"  clean traffic: day {steps // 288} of {days}, alerts so far {sum(alerts.values())}"
            )
    return steps, alerts


# ------------------------------------------------------------------------------ run


def run(out: Path, quick: bool) -> Result:
    out.mkdir(parents=True, exist_ok=True)
    (service,) = load_specs([str(SPEC)])
    days = 2 if quick else 8
    seconds: dict[str, float] = {}
    t = time.monotonic()
    log(f"rule cost: {days} days of the chatbot in one Prometheus")
    slo, det, series, samples = rule_cost(service, out, days, log)
    seconds["rule cost"] = time.monotonic() - t
    t = time.monotonic()
    log("detection time of each planted regression (replay)")
    found = detection(service, log)
    seconds["detection replay"] = time.monotonic() - t
    t = time.monotonic()
    week = 2 if quick else 7
    log(f"a clean {week}-day stretch, every 5 minutes (replay)")
    steps, alerts = clean_week(service, week, log)
    seconds["clean replay"] = time.monotonic() - t
    return Result(quick, days, series, samples, slo, det, found, steps, alerts, seconds, machine())


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3g}x" if b > 0 else "-"


def _ms(x: float) -> str:
    return f"{x * 1000:.1f} ms"


def markdown(result: Result) -> str:
    r = result
    m = r.machine
    lines = [
        "# Detectors: rule cost and detection time (`python -m bench.detectors`)",
        "",
        f"Measured {m['date']} on {m['cpus']} CPUs ({m['cpu']}, {m['memory']}), Prometheus "
        f"{m['prometheus']}, commit {m['commit']}{' (quick run)' if r.quick else ''}.",
        "",
        "## Rule cost per minute of wall clock",
        "",
        f"`slos/chat-assistant.yaml` (nine SLOs, five detectors) over {r.days} days of the "
        f"simulated chatbot ({r.series:,} raw series, {r.raw_samples:,} samples at 1m), "
        "with the history of every recorded series another rule reads over a range "
        "backfilled. Each rule's expression run at the last instant with `stats=all`, times "
        "its group's evaluations per minute (SLO groups every minute or 2m30s, detector "
        "groups every 5m, baselines hourly).",
        "",
        "| rule set | groups | rules | samples loaded / min | evaluation time / min |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in (r.slo, r.detectors):
        lines.append(
            f"| {s.name} | {s.groups} | {s.rules} | {_n(s.samples_per_minute)} | "
            f"{_ms(s.seconds_per_minute)} |"
        )
    lines += [
        "",
        f"The five detectors together cost {_ratio(r.detectors.samples_per_minute, r.slo.samples_per_minute)} "
        f"the samples and {_ratio(r.detectors.seconds_per_minute, r.slo.seconds_per_minute)} "
        "the evaluation time of the nine SLOs' rules.",
        "",
        "| detector group | samples / min | evaluation time / min |",
        "|---|---:|---:|",
    ]
    for part, (samples, seconds) in sorted(r.detectors.by_part.items()):
        lines.append(f"| {part} | {_n(samples)} | {_ms(seconds)} |")
    lines += [
        "",
        "## Detection time of each planted regression",
        "",
        "Replayed with `judge_detector` on the simulator's exact counters (steady traffic, "
        "2 requests a second over two features; after a clean history as long as both "
        "windows, the regression on `feature=chat` for a grouped detector, on all traffic "
        "for an ungrouped one), every minute, as raw mode reads them.",
        "",
        "| regression | detector | window | fired after | bound (window + 5m) |",
        "|---|---|---:|---:|---:|",
    ]
    for name, detector, window, fired, bound in r.detection:
        after = "did not fire" if fired is None else f"{fired / 60:.0f}m"
        ok = fired is not None and fired <= bound
        lines.append(
            f"| {name} | {detector} | {window} | {after} | {bound // 60}m {'ok' if ok else 'MISSED'} |"
        )
    total = sum(r.clean_alerts.values())
    lines += [
        "",
        "## Clean traffic",
        "",
        f"{r.clean_steps:,} evaluations every 5 minutes ({r.clean_steps * 5 / 1440:.0f} days) of "
        "20:1 day/night traffic with jitter, a tenfold one-hour spike and a new prompt "
        f"version at the same cost on one feature: **{total} alerts** "
        f"({', '.join(f'{k} {v}' for k, v in sorted(r.clean_alerts.items()))}).",
        "",
        "Wall time: " + ", ".join(f"{k} {v:.0f}s" for k, v in r.seconds.items()) + ".",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.detectors", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="2 days of history, a smoke test")
    parser.add_argument("--out", type=Path, default=HERE / "out", help="work directory")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    result = run(out, args.quick)
    text = markdown(result)
    (out / "detectors.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
