"""Issue 15 at scale: Prometheus's cost at 1,000 and 5,000 SLOs, the scheduler at 10,000.

    python -m bench.scale            # the full run (about 25 minutes on 2 CPUs)
    python -m bench.scale --quick    # smaller sizes, a smoke test (a few minutes)
    python -m bench.scale --rerender # bench/out/scale.md again from the saved result

A part of the benchmark report: ``run(out, quick)`` measures and returns a ``Result``,
``markdown(result)`` renders it.

1. **Rule cost.** N SLOs, ten to a service file, the four kinds of bench/slos.py
   (availability, TTFT, latency, cost per call) with varied objectives and thresholds, all
   over the raw series of one simulated LLM service (bench/history.py's ``production``).
   sloengine's rules are ``sloengine generate``'s output (the real CLI, from the current
   sloengine/rules.py); Sloth-optimized's are bench/sloth.py's for the same SLOs and the
   same raw series. One TSDB holds the raw history and, for every recording rule another
   rule reads over a range (found in the generated files, whatever their shape), that
   rule's history: evaluated once per distinct expression with ``query_range`` (what
   ``promtool tsdb create-blocks-from rules`` does) and written for every SLO with
   ``promtool tsdb create-blocks-from openmetrics``, then compacted by Prometheus. Each
   rule set at each size then runs in a Prometheus of its own, one after the other;
   after every group's first evaluation, Prometheus's CPU seconds and its rule groups'
   evaluation time are read over a fixed window.
2. **Scheduler.** 10,000 SLOs (bench/scaling.py's mix of ten kinds a file) in recorded
   mode. Their recorded series are not computed from raw data: a static exposition of
   every SLO's bad and total rates at every window (and its 5m base rate, whose sample
   age the scheduler checks) is scraped by an otherwise empty Prometheus. Cycles run
   through bench/cycle's worker (``Engine.cycle()`` in a process of its own).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench import history, report, sloth
from bench.cost import per_minute
from bench.cycle import data as cycle_data
from bench.cycle.run import run_sloengine
from bench.markdown import table
from bench.scaling import service_file
from bench.slos import SERVICE, _histogram, _requests
from sloengine import conventions as cv
from sloengine.budget import month_bounds
from sloengine.durations import format_duration
from sloengine.evaluate import Evaluator
from sloengine.loading import load_specs
from sloengine.model import Objective
from sloengine.prometheus import Prometheus, Sample
from sloengine.promql import exposition_labels
from sloengine.sim import client, launch
from sloengine.sim.backfill import backfill, count_blocks
from sloengine.sim.exporter import serving, serving_exposition
from sloengine.windows import windows_of

HERE = Path(__file__).resolve().parent
Log = Callable[[str], None]

SIZES = (1_000, 5_000)
QUICK_SIZES = (100,)  # quick: one size, so no growth from one size to the next
HISTORY_DAYS = 1  # what a shared 2-CPU machine backfills for 5,000 SLOs in minutes
QUICK_HISTORY_DAYS = 1
WINDOW_SECONDS = 150.0  # one interval of sloengine's budget groups, 2.5 of a 1m group
QUICK_WINDOW_SECONDS = 20.0  # quick: a third of a 1m group's interval
SCHEDULER_SLOS = 10_000
QUICK_SCHEDULER_SLOS = 1_000
CYCLES = 6  # the first (alert rows created, first looks) and five steady ones
TARGET_CYCLE_SECONDS = 2.0
SCRAPE_INTERVAL, SCRAPE_TIMEOUT = "1m", "55s"  # the recorded series' exposition
# Quick: scraped every 15s, so the first scrape comes sooner (the idle rate is then 4
# scrapes a minute, not one).
QUICK_SCRAPE_INTERVAL, QUICK_SCRAPE_TIMEOUT = "15s", "14s"
IDLE_SECONDS = 30.0  # Prometheus's idle CPU rate (scraping) measured over this
QUICK_IDLE_SECONDS = 10.0  # quick: a noisier idle rate to subtract
# Seconds per scheduler query (`sloengine run --timeout`; the CLI's default is 10): the
# one query of every recorded series took Prometheus 18 s on the VM at a load of 40.
QUERY_TIMEOUT = 60.0
WARMUP_LIMIT = 240.0  # seconds to wait for every group's first evaluation
# Quick: every 1m group's first evaluation; budget groups (2m30s) not yet evaluated are
# measured as they come.
QUICK_WARMUP_LIMIT = 45.0
STEP = 60  # the rules' interval, and the base history's resolution
BLOCK = 7200  # promtool's block window; Prometheus compacts them before measuring
PER_FILE = 10
SLOENGINE = "sloengine"
OPTIMIZED = "sloth-optimized"
RULE_SETS = (SLOENGINE, OPTIMIZED)

# The four kinds over the simulator's series; a service file's SLOs take them in turn,
# with objectives and thresholds (all bucket bounds of the simulator) varied.
KINDS = ("availability", "ttft", "latency", "cost")
OBJECTIVES = {"availability": (99.5, 99.9), "ttft": (95, 97), "latency": (99, 98), "cost": (99,)}
THRESHOLDS = {"ttft": (1, 2), "latency": (5, 10), "cost": (0.1, 0.2)}
HISTOGRAMS = {
    "ttft": ("ttft", "threshold", "s", "llm_ttft_seconds"),
    "latency": ("latency", "threshold", "s", "llm_total_latency_seconds"),
    "cost": ("cost_per_call", "threshold_usd", "", "llm_cost_per_request_usd"),
}


# ---------------------------------------------------------------------------- results


@dataclass
class PromRun:
    """One rule set at one size in a Prometheus of its own."""

    rule_set: str
    slos: int
    files: int
    groups: int
    rules: int
    load_seconds: float  # start-up until every group had evaluated once
    window_seconds: float  # the measured window, after that
    cpu_per_minute: float  # process_cpu_seconds_total, per minute of the window
    group_seconds_per_minute: float  # prometheus_rule_group_duration_seconds_sum, per minute
    last_duration_per_minute: float  # sum over groups of last duration x evaluations/min
    evaluations: int  # group evaluations in the window
    missed: int  # skipped because the group's previous evaluation overran
    rss_mb: float
    series: int  # prometheus_tsdb_head_series at the end
    waiting: int = 0  # groups not evaluated once when the window began (WARMUP_LIMIT)


@dataclass
class RuleCost:
    sizes: tuple[int, ...]
    history_days: int
    runs: list[PromRun]
    raw_series: int
    raw_samples: int
    ranged: dict[str, list[str]]  # rule set -> the recorded series backfilled
    distinct: dict[str, int]  # rule set -> distinct expressions evaluated over the history
    history_series: int
    history_samples: int
    blocks_before: int
    blocks: int
    seconds: dict[str, float] = field(default_factory=dict)
    warmup_limit: float = WARMUP_LIMIT
    compacted: bool = True  # False: measured over promtool's 2h blocks (quick)


@dataclass
class QueryStat:
    expr: str
    series: int
    samples: int  # totalQueryableSamples
    eval_seconds: float  # Prometheus's evalTotalTime, median of 3
    bytes: int  # the JSON answer


@dataclass
class SchedulerResult:
    slos: int
    files: int
    series: int  # the recorded series the exposition serves
    cycles: list[dict[str, Any]]
    max_rss_mb: float
    rss_before_mb: float
    prometheus_cpu: float  # while the worker ran, idle rate subtracted
    idle_cpu_per_minute: float  # scraping the exposition, no scheduler
    worker_seconds: float
    queries: list[QueryStat]
    states: dict[str, int]
    health: dict[str, int]
    modes: dict[str, int]
    profile: str = ""
    scrape_interval: str = SCRAPE_INTERVAL
    idle_seconds: float = IDLE_SECONDS

    @property
    def steady(self) -> list[dict[str, Any]]:
        return self.cycles[1:] or self.cycles

    @property
    def median_seconds(self) -> float:
        return float(statistics.median(c["seconds"] for c in self.steady))


@dataclass
class Result:
    command: str
    quick: bool
    machine: dict[str, str]
    load: list[tuple[str, tuple[float, float, float]]]
    seconds: float = 0.0
    rules: RuleCost | None = None
    scheduler: SchedulerResult | None = None


# ------------------------------------------------------------------------ the SLO files


def choice(i: int, j: int) -> tuple[str, float, float | None]:
    """SLO ``j`` of service file ``i``: its kind, objective (percent) and threshold."""
    kind = KINDS[j % len(KINDS)]
    variant = (i + j // len(KINDS)) % 2
    objective = OBJECTIVES[kind][variant % len(OBJECTIVES[kind])]
    return kind, objective, THRESHOLDS[kind][variant] if kind in THRESHOLDS else None


def rule_cost_file(i: int) -> str:
    """Service file ``i`` of the rule-cost SLOs: ten SLOs over the one simulated service."""
    lines = [
        "apiVersion: sloengine/v1",
        f"service: svc-{i}",
        "window: 30d",
        f"metrics: {{preset: llm, selector: 'service=\"{SERVICE}\"'}}",
        "slos:",
    ]
    for j in range(PER_FILE):
        kind, objective, threshold = choice(i, j)
        if threshold is None:
            sli = "{success_rate: {include: [guardrail_rejections]}}"
        else:
            name, key, unit, _ = HISTOGRAMS[kind]
            sli = f"{{{name}: {{{key}: {threshold:g}{unit}}}}}"
        lines += [f"  - name: {kind}-{j}", f"    objective: {objective:g}", f"    sli: {sli}"]
    return "\n".join(lines) + "\n"


def sloth_slos(files: int) -> list[sloth.SlothSLO]:
    """The same SLOs as a Sloth user writes them, over the same raw series."""
    selector = f'service="{SERVICE}"'
    out = []
    for i in range(files):
        for j in range(PER_FILE):
            kind, objective, threshold = choice(i, j)
            if threshold is None:
                errors, total = _requests(
                    selector,
                    f'llm_requests_total{{{selector},status="error"}}',
                    f"llm_guardrail_rejections_total{{{selector}}}",
                )
            else:
                errors, total = _histogram(HISTOGRAMS[kind][3], selector, f"{threshold:g}")
            out.append(sloth.SlothSLO(f"svc-{i}", f"{kind}-{j}", objective, errors, total))
    return out


def generate(slo_dir: Path, out: Path) -> list[Path]:
    """``sloengine generate`` through the CLI, as users run it."""
    if out.exists():
        shutil.rmtree(out)
    cli = Path(sys.executable).with_name("sloengine")
    subprocess.run(
        [str(cli), "generate", str(slo_dir), "--out", str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return sorted(p.resolve() for p in out.glob("*.yml"))


# ------------------------------------------------------------------ part 1: rule cost


def _yaml(text: str) -> Any:
    """A rule file as data, through libyaml when PyYAML has it (5,000 SLOs' rules are
    tens of MB, minutes for the pure-Python loader)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _labels(pairs: dict[str, str]) -> str:
    return exposition_labels(sorted(pairs.items()))


def _snapshot(url: str) -> dict[str, Any]:
    """The figures read from Prometheus's /metrics, summed over groups where it says so."""
    snap: dict[str, Any] = {"at": time.monotonic(), "stamps": {}, "last": {}}
    sums = dict.fromkeys(
        (
            "process_cpu_seconds_total",
            "prometheus_rule_group_duration_seconds_sum",
            "prometheus_rule_group_iterations_total",
            "prometheus_rule_group_iterations_missed_total",
            "prometheus_rule_group_rules",
            "process_resident_memory_bytes",
            "prometheus_tsdb_head_series",
        ),
        0.0,
    )
    for (name, pairs), value in client.metrics(url).items():
        if name in sums:
            sums[name] += value
        group = dict(pairs).get("rule_group")
        if group is None:
            continue
        if name == "prometheus_rule_group_last_evaluation_timestamp_seconds":
            snap["stamps"][group] = value
        elif name == "prometheus_rule_group_last_duration_seconds":
            snap["last"][group] = value
    snap.update(sums)
    return snap


def measure_rules(
    tsdb: Path,
    work: Path,
    name: str,
    files: list[Path],
    slos: int,
    target: str,
    window: float,
    log: Log,
    warmup_limit: float = WARMUP_LIMIT,
    compaction: bool = True,
) -> PromRun:
    rates: dict[str, float] = {}
    for path in files:
        for group in _yaml(path.read_text())["groups"]:
            rates[f"{path};{group['name']}"] = per_minute(group)
    config = launch.config(
        rule_files=files, scrape=[target], scrape_interval="1m", keep_target_labels=True
    )
    started = time.monotonic()
    with history.running(tsdb, work, config, compaction=compaction) as server:
        while True:  # every group's first evaluation: cold caches, and late starters
            time.sleep(10)
            snap = _snapshot(server.url)
            done = sum(1 for g in rates if snap["stamps"].get(g, 0) > 0)
            if done == len(rates):
                break
            if time.monotonic() - started > warmup_limit:
                break  # measured anyway, and the groups still waiting are reported
        load_seconds = time.monotonic() - started
        waiting = len(rates) - done
        log(
            f"    {done} of {len(rates)} groups evaluated once after {load_seconds:.0f}s; measuring"
        )
        first = snap
        time.sleep(window)
        last = _snapshot(server.url)
    took = last["at"] - first["at"]

    def per_min(key: str) -> float:
        return float((last[key] - first[key]) / took * 60)

    return PromRun(
        rule_set=name,
        slos=slos,
        files=len(files),
        groups=len(rates),
        rules=int(last["prometheus_rule_group_rules"]),
        load_seconds=load_seconds,
        window_seconds=took,
        cpu_per_minute=per_min("process_cpu_seconds_total"),
        group_seconds_per_minute=per_min("prometheus_rule_group_duration_seconds_sum"),
        last_duration_per_minute=sum(last["last"].get(g, 0.0) * r for g, r in rates.items()),
        evaluations=int(
            last["prometheus_rule_group_iterations_total"]
            - first["prometheus_rule_group_iterations_total"]
        ),
        missed=int(
            last["prometheus_rule_group_iterations_missed_total"]
            - first["prometheus_rule_group_iterations_missed_total"]
        ),
        rss_mb=last["process_resident_memory_bytes"] / 2**20,
        series=int(last["prometheus_tsdb_head_series"]),
        waiting=waiting,
    )


def rule_cost(out: Path, quick: bool, log: Log, sizes: tuple[int, ...] | None = None) -> RuleCost:
    sizes = sizes or (QUICK_SIZES if quick else SIZES)
    days = QUICK_HISTORY_DAYS if quick else HISTORY_DAYS
    window = QUICK_WINDOW_SECONDS if quick else WINDOW_SECONDS
    warmup = QUICK_WARMUP_LIMIT if quick else WARMUP_LIMIT
    seconds: dict[str, float] = {}
    largest = max(sizes)
    slo_root = out / "slos"
    if slo_root.exists():
        shutil.rmtree(slo_root)
    files: dict[tuple[str, int], list[Path]] = {}
    t = time.monotonic()
    for n in sizes:
        slo_dir = slo_root / str(n)
        slo_dir.mkdir(parents=True)
        for i in range(n // PER_FILE):
            (slo_dir / f"svc-{i}.yaml").write_text(rule_cost_file(i))
        files[(SLOENGINE, n)] = generate(slo_dir, out / "rules" / f"{SLOENGINE}-{n}")
        objectives = [o for s in load_specs([str(slo_dir)]) for o in s.objectives]
        assert len(objectives) == n, (len(objectives), n)
        sloth_file = (out / "rules" / f"{OPTIMIZED}-{n}.rules.yml").resolve()
        sloth_file.write_text(sloth.render(sloth_slos(n // PER_FILE), "optimized"))
        files[(OPTIMIZED, n)] = [sloth_file]
    seconds["generate"] = time.monotonic() - t

    tsdb = out / "tsdb"
    if tsdb.exists():
        shutil.rmtree(tsdb)
    end = int(time.time()) // STEP * STEP
    start = end - days * history.DAY
    scenario = history.production(end, days)
    t = time.monotonic()
    log(f"  raw history: {scenario.series_count} series x {days}d at 1m")
    raw_samples = backfill(scenario, tsdb, start, end, STEP)
    seconds["raw backfill"] = time.monotonic() - t

    t = time.monotonic()
    ranged: dict[str, list[str]] = {}
    distinct: dict[str, int] = {}
    history_samples = history_series = 0
    for rs in RULE_SETS:
        groups = [g for p in files[(rs, largest)] for g in _yaml(p.read_text())["groups"]]
        log(f"  recorded history of {rs}'s rules for {largest:,} SLOs")
        done = history.recorded_history(tsdb, out / f"history-{rs}", groups, start, end, log)
        ranged[rs] = [name for layer in done.layers for name in layer]
        distinct[rs] = done.expressions
        history_samples += done.samples
        history_series += done.series
    seconds["recorded history"] = time.monotonic() - t
    blocks_before = count_blocks(tsdb)
    if not quick:  # quick: measured over promtool's 2h blocks, not compacted ones
        t = time.monotonic()
        history.compact(tsdb, out / "prometheus-compact", log)
        seconds["compaction"] = time.monotonic() - t

    runs = []
    t = time.monotonic()
    with serving(scenario) as target:
        for n in sizes:
            for rs in RULE_SETS:
                log(f"  {rs} at {n:,} SLOs")
                run = measure_rules(
                    tsdb,
                    out / f"prometheus-{rs}-{n}",
                    rs,
                    files[(rs, n)],
                    n,
                    target,
                    window,
                    log,
                    warmup,
                    compaction=not quick,
                )
                log(
                    f"    {run.rules:,} rules, {run.cpu_per_minute:.1f} CPU s/min, "
                    f"{run.group_seconds_per_minute:.1f} s of group evaluation/min, "
                    f"{run.missed} missed"
                )
                runs.append(run)
    seconds["measuring"] = time.monotonic() - t
    return RuleCost(
        sizes=tuple(sizes),
        history_days=days,
        runs=runs,
        raw_series=scenario.series_count,
        raw_samples=raw_samples,
        ranged=ranged,
        distinct=distinct,
        history_series=history_series,
        history_samples=history_samples,
        blocks_before=blocks_before,
        blocks=count_blocks(tsdb),
        seconds=seconds,
        warmup_limit=warmup,
        compacted=not quick,
    )


# ------------------------------------------------------------------ part 2: scheduler


def recorded_exposition(objectives: list[Objective], now: float, seed: int = 15) -> str:
    """What the generated rules would record for every SLO, as a scrape serves it: bad and
    total rates at every window the scheduler reads, the 5m base rate (whose age it
    checks) and, for calendar months, the month to date. Most SLOs burn slowly; one in a
    hundred burns fast enough to page and a few more to open a ticket."""
    rng = random.Random(seed)
    lines = []
    for obj in objectives:
        ids = {cv.SERVICE: obj.service, cv.SLO: obj.name}
        total = 5.0 + 20 * rng.random()
        draw = rng.random()
        fast = 20.0 if draw < 0.01 else 4.0 if draw < 0.05 else 0.0
        slow = 0.2 + 0.6 * rng.random()
        budget = obj.error_budget if not obj.is_spend else 1.0
        per_second = total * budget if not obj.is_spend else spend_per_second(obj)
        for seconds in windows_of(obj):
            burn = fast if fast and seconds <= 86400 else slow
            window = {**ids, cv.WINDOW: format_duration(seconds)}
            lines.append(f"{cv.BAD_RATE}{{{_labels(window)}}} {per_second * burn!r}")
            if not obj.is_spend:
                lines.append(f"{cv.TOTAL_RATE}{{{_labels(window)}}} {total!r}")
        lines.append(f"{cv.BAD_BASE}{{{_labels(ids)}}} {per_second * (fast or slow)!r}")
        if obj.calendar_month:
            spent = per_second * slow * (now - month_bounds(now)[0])
            lines.append(f"{cv.MONTH_TO_DATE}{{{_labels(ids)}}} {spent!r}")
    return "\n".join(lines) + "\n"


def spend_per_second(obj: Objective) -> float:
    """Dollars a second that spend exactly the budget over the SLO's window."""
    assert obj.budget_usd is not None
    return obj.budget_usd / obj.period


class _Recording(Prometheus):
    """A Prometheus client that keeps the expressions it was asked."""

    def __init__(self, url: str) -> None:
        super().__init__(url, timeout=60)
        self.asked: list[str] = []

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        self.asked.append(expr)
        return super().query(expr, at)


def query_stats(url: str, objectives: list[Objective]) -> list[QueryStat]:
    """The scheduler's own queries (as the evaluator sends them), with Prometheus's stats."""
    recording = _Recording(url)
    Evaluator(recording, mode=cv.Mode.RECORDED).recorded_rates(objectives, time.time())
    out = []
    for expr in sorted(recording.asked):  # asked at once, so in either order
        timings = []
        for _ in range(3):
            at = time.time()
            data = client.query_data(url, expr, at, stats=True)
            timings.append(float(data["stats"]["timings"]["evalTotalTime"]))
        body = json.dumps(
            {
                "status": "success",
                "data": {"resultType": data["resultType"], "result": data["result"]},
            }
        )
        out.append(
            QueryStat(
                expr,
                len(data["result"]),
                int(data["stats"]["samples"]["totalQueryableSamples"]),
                statistics.median(timings),
                len(body),
            )
        )
    return out


def scheduler(out: Path, quick: bool, log: Log) -> SchedulerResult:
    n = QUICK_SCHEDULER_SLOS if quick else SCHEDULER_SLOS
    interval, timeout = (
        (QUICK_SCRAPE_INTERVAL, QUICK_SCRAPE_TIMEOUT)
        if quick
        else (SCRAPE_INTERVAL, SCRAPE_TIMEOUT)
    )
    idle = QUICK_IDLE_SECONDS if quick else IDLE_SECONDS
    work = out / "scheduler"
    if work.exists():
        shutil.rmtree(work)
    slo_dir = work / "slos"
    slo_dir.mkdir(parents=True)
    files = n // PER_FILE
    for i in range(files):
        (slo_dir / f"svc-{i}.yaml").write_text(service_file(i))
    objectives = [o for s in load_specs([str(slo_dir)]) for o in s.objectives]
    assert len(objectives) == n, (len(objectives), n)
    text = recorded_exposition(objectives, time.time())
    body = text.encode()
    series = text.count("\n")
    log(f"  {n:,} SLOs: {series:,} recorded series served ({len(body) / 2**20:.0f} MB)")
    with serving_exposition(lambda: body) as target:
        config = launch.config(scrape=[target], scrape_interval=interval)
        # 14 MB a scrape: on a loaded machine the default 10s timeout loses scrapes, and
        # the series go stale.
        config["scrape_configs"][0]["scrape_timeout"] = timeout
        with launch.running(work / "tsdb", config, workdir=work / "prometheus", timeout=120) as s:
            prom = cycle_data.Prom(s)
            while (
                client.scalar(s.url, f"count({{__name__=~'{cv.BAD_RATE}|{cv.BAD_BASE}'}})") or 0
            ) < 1:
                time.sleep(2)
            time.sleep(20)  # a second scrape: the base rate's age is that of a live series
            idle_from, idle_cpu = time.monotonic(), prom.cpu_seconds()
            time.sleep(idle)
            idle_rate = (prom.cpu_seconds() - idle_cpu) / (time.monotonic() - idle_from)
            log(f"    idle Prometheus (scraping): {idle_rate * 60:.1f} CPU s/min")
            profile = work / "profile.txt"
            started = time.monotonic()
            measure = run_sloengine(
                prom, slo_dir, "recorded", CYCLES, work / "state.db", n, profile, QUERY_TIMEOUT
            )
            worker_seconds = time.monotonic() - started
            log("    the scheduler's queries with stats=all")
            stats = query_stats(s.url, objectives)
    last = measure.cycles[-1]
    return SchedulerResult(
        slos=n,
        files=files,
        series=series,
        cycles=measure.cycles,
        max_rss_mb=measure.max_rss / 2**20,
        rss_before_mb=measure.rss_before / 2**20,
        prometheus_cpu=measure.prometheus_cpu - idle_rate * worker_seconds,
        idle_cpu_per_minute=idle_rate * 60,
        worker_seconds=worker_seconds,
        queries=stats,
        states=last["states"],
        health=last["health"],
        modes=last["modes"],
        profile=profile.read_text() if profile.exists() else "",
        scrape_interval=interval,
        idle_seconds=idle,
    )


# ------------------------------------------------------------------------------- run


PARTS = ("scheduler", "rules")  # the scheduler first: the shorter part


def run(
    out: Path,
    quick: bool,
    log: Log | None = None,
    parts: tuple[str, ...] = PARTS,
    sizes: tuple[int, ...] | None = None,
) -> Result:
    """The parts, one after the other (nothing else of the benchmark runs meanwhile)."""
    say = log or _log
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    command = "python -m bench.scale" + (" --quick" if quick else "")
    if tuple(parts) != PARTS:
        command += f" --only {','.join(parts)}"
    if sizes:
        command += f" --sizes {','.join(str(n) for n in sizes)}"
    result = Result(command, quick, report.machine(), [("at start", os.getloadavg())])
    for part in parts:
        if part == "scheduler":
            say("scale 2: the scheduler in recorded mode")
            result.scheduler = scheduler(out, quick, say)
        else:
            say("scale 1: Prometheus's cost of the rules")
            result.rules = rule_cost(out, quick, say, sizes)
        result.load.append((f"after the {part} part", os.getloadavg()))
        result.seconds = time.monotonic() - started
        save(result, out)  # a part's figures survive a later part's failure
    result.seconds = time.monotonic() - started
    return result


def save(result: Result, out: Path) -> None:
    """The result so far, to re-render without measuring (``--rerender``)."""
    with (out / "scale.pickle").open("wb") as fh:
        pickle.dump(result, fh)
    (out / "scale.json").write_text(json.dumps(asdict(result), indent=1, default=str))


class _Unpickler(pickle.Unpickler):
    """Reads results saved by ``python -m bench.scale`` before it saved them as bench.scale's."""

    def find_class(self, module: str, name: str) -> Any:
        return super().find_class("bench.scale" if module == "__main__" else module, name)


def _load(saved: Path) -> Result:
    with saved.open("rb") as fh:
        result: Result = _Unpickler(fh).load()
    return result


def merged(result: Result, before: Result) -> Result:
    """``result`` with the parts it did not measure taken from the run saved before it
    (``--only`` re-measures a part and keeps the others). Each section names the run it
    comes from: its command, commit, start and length."""
    rules_run = result if result.rules else before
    scheduler_run = result if result.scheduler else before
    if rules_run is scheduler_run or not (rules_run.rules and scheduler_run.scheduler):
        return result
    runs = ((rules_run, "section 1"), (scheduler_run, "section 2"))
    # Already in backticks (the header quotes a single run's command itself).
    command = " and ".join(
        f"`{r.command}` ({which}: from {r.machine['date']}, {r.seconds / 60:.0f} min)"
        for r, which in runs
    )
    return Result(
        command=command,
        quick=before.quick or result.quick,
        machine=dict(
            result.machine,
            commit=", ".join(f"{r.machine['commit']} ({which})" for r, which in runs),
            date=", ".join(f"{r.machine['date']} ({which})" for r, which in runs),
        ),
        load=[(f"{which}, {what}", load) for r, which in runs for what, load in r.load],
        seconds=before.seconds + result.seconds,
        rules=rules_run.rules,
        scheduler=scheduler_run.scheduler,
    )


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -------------------------------------------------------------------------- markdown


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def _met(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def _rules_markdown(rc: RuleCost, quick: bool) -> list[str]:
    by = {(r.rule_set, r.slos): r for r in rc.runs}
    rows = []
    for r in rc.runs:
        rows.append(
            [
                f"{r.slos:,}",
                r.rule_set,
                f"{r.rules:,}",
                f"{r.groups:,}",
                f"{r.cpu_per_minute:.1f}",
                f"{r.group_seconds_per_minute:.1f}",
                f"{r.last_duration_per_minute:.1f}",
                f"{r.evaluations:,} ({r.missed:,})",
                f"{r.rss_mb:,.0f}",
                f"{r.load_seconds:.0f}",
            ]
        )
    header = [
        "SLOs",
        "rule set",
        "rules loaded",
        "groups",
        "Prometheus CPU s per minute",
        "rule evaluation s per minute",
        "sum of last durations per minute",
        "group evaluations (missed)",
        "RSS (MiB)",
        "start to every group evaluated (s)",
    ]
    ratios = []
    targets = []
    for n in rc.sizes:
        mine, theirs = by.get((SLOENGINE, n)), by.get((OPTIMIZED, n))
        if mine is None or theirs is None:
            continue
        ratios.append(
            [
                f"{n:,}",
                _ratio(mine.cpu_per_minute, theirs.cpu_per_minute),
                _ratio(mine.group_seconds_per_minute, theirs.group_seconds_per_minute),
                _ratio(mine.last_duration_per_minute, theirs.last_duration_per_minute),
                _ratio(mine.rules, theirs.rules),
            ]
        )
        targets.append(
            f"- {n:,} SLOs, sloengine at most Sloth-optimized's CPU: "
            f"{_met(mine.cpu_per_minute <= theirs.cpu_per_minute)} "
            f"({mine.cpu_per_minute:.1f} against {theirs.cpu_per_minute:.1f} CPU s per minute)"
        )
    window = rc.runs[0].window_seconds if rc.runs else 0.0
    days = rc.history_days
    return [
        "## 1. Prometheus's cost of the rules at "
        + " and ".join(f"{n:,}" for n in rc.sizes)
        + " SLOs",
        "",
        *targets,
        "",
        table(header, rows, "rlrrrrrrrr"),
        "",
        table(
            [
                "SLOs",
                "sloengine vs Sloth-optimized: CPU",
                "rule evaluation",
                "sum of last durations",
                "rules",
            ],
            ratios,
            "rrrrr",
        ),
        "",
        f"- **SLOs**: ten to a service file (`svc-0`, `svc-1`, ...), availability, TTFT, "
        "latency and cost per call in turn with two objectives and thresholds each, every one "
        f"over the raw series of one simulated LLM service ({rc.raw_series:,} series: 3 "
        "providers x 2 models x 3 features, bench/history.py's `production`; 20:1 day/night "
        "traffic), scraped live every minute during the runs. Both rule sets read the same raw "
        "series: sloengine's are `sloengine generate`'s output (the CLI, from this checkout's "
        "sloengine/rules.py), Sloth-optimized's bench/sloth.py's for the same SLOs. A smaller "
        "size's SLOs are the first files of the larger one.",
        f"- **History**: {days} days of raw series at 1m ({rc.raw_samples:,} samples), and "
        "of every recording rule another rule reads over a range or at an offset (found in the "
        f"generated files: sloengine {', '.join(f'`{x}`' for x in rc.ranged.get(SLOENGINE, []))}; "
        f"Sloth-optimized {', '.join(f'`{x}`' for x in rc.ranged.get(OPTIMIZED, []))}) for "
        f"the largest size's SLOs at the rules' 1m step: {rc.history_series:,} series, "
        f"{rc.history_samples:,} samples. Each distinct expression (SLOs of one kind and "
        "threshold share one) was evaluated once with `query_range` over the raw history, as "
        "`promtool tsdb create-blocks-from rules` does, and written for every SLO with "
        f"`promtool tsdb create-blocks-from openmetrics` (sloengine {rc.distinct.get(SLOENGINE, 0)}, "
        f"Sloth-optimized {rc.distinct.get(OPTIMIZED, 0)} expressions); Prometheus then "
        + (
            f"compacted the {rc.blocks_before:,} blocks into {rc.blocks:,}."
            if rc.compacted
            else f"measured the {rc.blocks_before:,} 2h blocks as they are, not compacted "
            "(quick mode)."
        ),
        f"- **What the history does not cover**: windows longer than {days}d. Every window "
        f"up to {days}d reads whole history in both rule sets; longer ones read what there is: "
        f"sloengine's 3d and 30d windows (`avg_over_time` of its two 5m rates) and "
        f"Sloth-optimized's 30d (`sum_over_time`/`count_over_time` of its 5m ratio) read "
        f"{days}d of recorded history, Sloth-optimized's 3d reads {days}d of the raw series. "
        "Both sets' figures are therefore low by the cost of the samples not there yet: after "
        f"a month, the 30d rules of both read {30 / days:.0f}x the samples they read here "
        "(sloengine's two series every 2m30s, Sloth-optimized's one series twice every "
        f"minute), the 3d rules {3 / days:.1f}x.",
        f"- **Measured**: each rule set at each size in a Prometheus of its own over that TSDB, "
        "one after the other. After every rule group had been evaluated once (the cold first "
        f"evaluations and start-up are not measured), a window of {window:.0f}s: Prometheus's "
        "`process_cpu_seconds_total` (all its work: rules, the scrape, the TSDB) and "
        "`prometheus_rule_group_duration_seconds_sum` (the time its groups took) per minute; "
        "and, at the window's end, each group's `prometheus_rule_group_last_duration_seconds` "
        "times its evaluations per minute, summed. A *missed* evaluation is one Prometheus "
        "skipped because that group's previous one was still running. Prometheus evaluates "
        "every group concurrently, so on a busy machine a group's duration is wall time that "
        "includes waiting behind the others for a CPU: the two duration columns then "
        "overstate the work, and the CPU column is the figure to compare."
        + "".join(
            f" {r.rule_set} at {r.slos:,}: {r.waiting:,} of {r.groups:,} groups had not "
            f"been evaluated once after {rc.warmup_limit:.0f}s and were measured as they came."
            for r in rc.runs
            if r.waiting
        ),
        "",
    ]


def _scheduler_markdown(s: SchedulerResult) -> list[str]:
    steady = [c["seconds"] for c in s.steady]
    median = s.median_seconds
    requests = sorted({c["evaluate_requests"] for c in s.steady})
    first = s.cycles[0]
    rows = [
        [
            f"{s.slos:,}",
            f"{s.series:,}",
            f"{median:.2f}",
            f"{min(steady):.2f}-{max(steady):.2f}",
            f"{statistics.median(c['evaluate_seconds'] for c in s.steady):.2f}",
            f"{statistics.median(c['query_seconds'] for c in s.steady):.2f}",
            f"{first['seconds']:.1f}",
            ", ".join(str(r) for r in requests),
            f"{first['evaluate_requests']:,} + {first['requests'] - first['evaluate_requests']:,}",
            f"{s.max_rss_mb:,.0f}",
            f"{s.prometheus_cpu / len(s.cycles):.2f}",
        ]
    ]
    header = [
        "SLOs",
        "recorded series",
        "s per steady cycle (median)",
        "min-max",
        "of which evaluate",
        "of which in query",
        "first cycle s",
        "requests per steady cycle",
        "first cycle requests (evaluate + first look)",
        "peak RSS (MiB)",
        "Prometheus CPU s per cycle",
    ]
    queries = [
        [
            f"`{q.expr}`",
            f"{q.series:,}",
            f"{q.samples:,}",
            f"{q.eval_seconds * 1000:.0f} ms",
            f"{q.bytes / 2**20:.1f} MB",
        ]
        for q in s.queries
    ]
    return [
        f"## 2. The scheduler at {s.slos:,} SLOs in recorded mode",
        "",
        f"- Under {TARGET_CYCLE_SECONDS:g} s a cycle: {_met(median < TARGET_CYCLE_SECONDS)} "
        f"({median:.2f} s, the median of {len(steady)} steady cycles)",
        f"- A constant number of requests: {_met(len(requests) == 1 and requests[0] <= 2)} "
        f"({', '.join(str(r) for r in requests)} per cycle to read and judge every SLO)",
        f"- Peak RSS: {s.max_rss_mb:,.0f} MiB (reported; {s.rss_before_mb:,.0f} MiB after "
        "loading the SLO files, before the first cycle)",
        f"- Prometheus's own cost of the scheduler's queries: {s.prometheus_cpu / len(s.cycles):.2f} "
        "CPU s per cycle (reported)",
        "",
        table(header, [*rows], "rrrrrrrrrrr"),
        "",
        "The scheduler's queries, each run three more times with `stats=all` after the "
        "cycles (Prometheus's `evalTotalTime`, median):",
        "",
        table(["query", "series", "samples", "evaluation", "answer"], queries, "lrrrr"),
        "",
        f"- **SLOs**: {s.files:,} service files of bench/scaling.py's ten kinds (success rate, "
        "TTFT, latency, cost per call, spend, quality over 7d, a ratio, a 28d ratio, a "
        "histogram, a selector), as `sloengine run` loads them.",
        f"- **Recorded series, written directly**: not computed from raw data. A static "
        f"exposition of {s.series:,} series (every SLO's `{cv.BAD_RATE}` and "
        f"`{cv.TOTAL_RATE}` at every window it reads, its `{cv.BAD_BASE}`, whose sample age "
        f"the scheduler checks) is scraped every {s.scrape_interval} by an otherwise empty "
        "Prometheus. One SLO "
        "in a hundred burns fast enough to page, four in a hundred enough for a ticket.",
        "- **A cycle** is `Engine.cycle()` (bench/cycle/sloengine_worker.py, in a process of "
        f"its own, `--timeout {QUERY_TIMEOUT:g}`): read and judge every SLO, advance alert state in SQLite, deliver (to a "
        "console notifier writing nowhere), update the gauges. The first cycle creates every "
        "alert row and takes a *first look* (a few raw queries) at every SLO that opens an "
        "incident, so it is reported apart. Requests are counted by Prometheus "
        "(`prometheus_http_requests_total`). The evaluator sends its two queries at once: "
        "*of which in query* is the time inside both (HTTP, JSON decoding, samples), summed, "
        "so it can exceed the wall time they took.",
        f"- **Prometheus's cost**: its `process_cpu_seconds_total` over the worker's run "
        f"({s.worker_seconds:.0f}s, start-up included) less its idle rate over "
        f"{s.idle_seconds:.0f}s just before "
        f"({s.idle_cpu_per_minute:.1f} CPU s per minute, scraping), per cycle.",
        f"- Last cycle: modes {s.modes}, health {s.health}, states {s.states}.",
        "",
        "One more cycle under cProfile (not timed; `sort_stats('cumulative')`, top):",
        "",
        "```text",
        *s.profile.strip().splitlines()[:45],
        "```",
        "",
    ]


def markdown(result: Result) -> str:
    """The results as Markdown: bench/SCALE.md for a full run."""
    m = result.machine
    loads = "; ".join(f"{what} {a:.2f}/{b:.2f}/{c:.2f}" for what, (a, b, c) in result.load)
    stages = ""
    if result.rules:
        stages = ", ".join(f"{k} {v:.0f} s" for k, v in result.rules.seconds.items())
    lines = [
        "# Issue 15 at scale: rule cost at "
        + (" and ".join(f"{n:,}" for n in result.rules.sizes) if result.rules else "")
        + " SLOs, the scheduler at "
        + (f"{result.scheduler.slos:,}" if result.scheduler else "")
        + " SLOs",
        "",
        "Generated by the benchmark itself (bench/scale.py); do not edit by hand.",
        "",
        "- Command (from the repository root): "
        + (result.command if result.command.startswith("`") else f"`{result.command}`"),
        f"- Total runtime: {result.seconds / 60:.1f} min" + (f" ({stages})" if stages else ""),
        f"- Machine: {m['cpus']} CPUs ({m['cpu']}), {m['memory']} memory, Linux {m['kernel']}, "
        f"Python {m['python']}, Prometheus {m['prometheus']}; a shared, noisy VM",
        f"- sloengine: commit {m['commit']}",
        f"- Date: {m['date']}",
        f"- Load average (1/5/15 min): {loads}",
        "",
    ]
    if result.rules:
        lines += _rules_markdown(result.rules, result.quick)
    if result.scheduler:
        lines += _scheduler_markdown(result.scheduler)
    return "\n".join(lines).rstrip() + "\n"


# ------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a smoke test")
    parser.add_argument("--out", type=Path, default=HERE / "out", help="work directory")
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(PARTS)}")
    parser.add_argument("--sizes", help="comma-separated SLO counts for the rule cost")
    parser.add_argument(
        "--rerender", action="store_true", help="rewrite scale.md from the saved result"
    )
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    saved, rendered = out / "scale.pickle", out / "scale.md"
    if args.rerender:
        result = _load(saved)
    else:
        if not launch.available():
            raise SystemExit(f"{launch.PROMETHEUS} or {launch.PROMTOOL} not found")
        parts = tuple(args.only.split(",")) if args.only else PARTS
        unknown = set(parts) - set(PARTS)
        if unknown:
            parser.error(f"unknown part(s) {sorted(unknown)}; choose from {', '.join(PARTS)}")
        before = _load(saved) if args.only and saved.exists() else None
        sizes = tuple(int(n) for n in args.sizes.split(",")) if args.sizes else None
        result = run(out, args.quick, parts=parts, sizes=sizes)
        if before is not None:
            result = merged(result, before)
            save(result, out)
    rendered.write_text(markdown(result))
    _log(f"wrote {rendered}")
    return 0


if __name__ == "__main__":
    # Through the module, so the saved result's classes are bench.scale's, not __main__'s,
    # and the report (which imports bench.scale) can read it.
    from bench.scale import main as module_main

    raise SystemExit(module_main())
