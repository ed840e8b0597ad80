"""A month in production: raw history, recording-rule history, compacted blocks.

1. The simulator writes the raw series (1m resolution, ending now) into TSDB blocks.
2. Every recording rule that another rule reads over a range or at an offset gets its
   history, in the dependency layers ``sloengine.lookback.plan`` finds from the PromQL
   (the plan of ``sloengine backfill``): sloengine's 5m base rates and raw 1h tile, then
   each roll-up tile once the tiles it sums are in; Sloth-optimized's 5m ratio; Pyrra's
   performance-mode 5m increases. A layer is each rule's expression evaluated by a
   Prometheus over the blocks so far, at the rule's interval (``query_range``, exactly
   what ``promtool tsdb create-blocks-from rules`` asks), written as one block per 2h
   for all its series (promtool's rule backfill writes one per rule per 2h: thousands
   of blocks, past the open-file limit). (All other recorded series are read only at
   the instant of evaluation, so their history cannot change what a rule costs.)
3. A Prometheus with ordinary block settings compacts everything, as a server that has
   run for a month would have, before anything is measured.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.slos import SERVICE
from sloengine import lookback
from sloengine.sim import client, launch
from sloengine.sim.backfill import backfill, count_blocks, evaluate_rules, write_series
from sloengine.sim.traffic import Incident, Scenario, Scope, Traffic

DAY = 86400
HOUR = 3600
STEP = 60  # raw resolution: a 1m scrape interval
RETENTION = "45d"  # enough for a 30d SLO; blocks compact up to 10% of it, like production

# (kind, nights before the last one, start hour UTC, hours, intensity, provider or None).
# Traffic peaks at 15:00 UTC and is 20 times lower at 03:00: most incidents hit the quiet
# hours, where averaging 5m ratios over-weights them; two hit the busy afternoon.
INCIDENTS: tuple[tuple[str, int, float, float, float, str | None], ...] = (
    ("error_rate", 0, 2, 2, 0.5, "openai"),
    ("ttft_slowdown", 2, 1, 3, 0.3, None),
    ("latency_slowdown", 5, 2, 2, 0.2, None),
    ("guardrail_rejections", 9, 3, 2, 0.1, None),
    ("cost_spike", 13, 1, 4, 0.15, None),
    ("error_rate", 18, 14, 1, 0.05, None),
    ("ttft_slowdown", 24, 15, 1, 0.1, None),
)


def last_night(end: int) -> int:
    """Midnight (UTC) of the most recent night whose incident window ended an hour ago."""
    midnight = end - end % DAY
    return midnight if midnight + 5 * HOUR <= end else midnight - DAY


def production(end: int, days: int) -> Scenario:
    """The simulated LLM service: 3 providers x 2 models x 3 features (1,350 raw series)."""
    origin = end - days * DAY
    night = last_night(end)
    incidents = []
    for kind, back, hour, hours, intensity, provider in INCIDENTS:
        start = night - back * DAY + int(hour * HOUR)
        if start - DAY < origin:
            continue  # a short (quick) history keeps only the recent incidents
        incidents.append(
            Incident(
                start,
                start + int(hours * HOUR),
                kind,  # type: ignore[arg-type]
                intensity,
                Scope(provider=provider),
            )
        )
    return Scenario(
        origin=origin,
        traffic=Traffic(base_rps=50, peak_to_trough=20, peak_hour_utc=15, jitter=0.1),
        providers=3,
        models_per_provider=2,
        features=3,
        labels={"service": SERVICE, "job": "llm", "instance": "simulator"},
        incidents=tuple(incidents),
        seed=5,
    )


@dataclass
class Month:
    scenario: Scenario
    start: int
    end: int
    tsdb: Path
    raw_samples: int
    blocks_before_compaction: int = 0
    blocks: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    recorded: Recorded | None = None
    compacted: bool = True  # False: measured over promtool's 2h blocks (quick mode)


@dataclass
class Recorded:
    """What ``recorded_history`` wrote."""

    layers: list[list[str]]  # the records of each layer, in order
    expressions: int
    samples: int
    skipped: list[str]
    series: int = 0


def recorded_history(
    tsdb: Path,
    work: Path,
    groups: Sequence[dict[str, Any]],
    start: int,
    end: int,
    log: Callable[[str], None] = print,
) -> Recorded:
    """History for every recorded series some rule reads over a range or at an offset,
    layer by layer (``sloengine.lookback.plan``): each layer evaluated by a Prometheus
    over the blocks written so far."""
    plan = lookback.plan(list(groups))
    done = Recorded([], 0, 0, [f"{s.record}: {s.reason}" for s in plan.skipped])
    for i, layer in enumerate(plan.layers):
        rules = [(rule, p.interval) for p in layer for rule in p.rules]
        names = sorted({str(rule["record"]) for rule, _ in rules})
        log(f"  recorded history, layer {i + 1}/{len(plan.layers)}: {len(rules)} rules {names}")
        with running(tsdb, work / f"prometheus-history-{i}", compaction=False) as server:
            series, exprs = evaluate_rules(server.url, rules, start, end)
        done.samples += write_series(series, tsdb, work / "history-blocks")
        done.series += len(series)
        done.layers.append(names)
        done.expressions += exprs
    return done


def compact(tsdb: Path, work: Path, log: Callable[[str], None]) -> None:
    """Let Prometheus compact the backfilled blocks, and wait until it is done."""
    with running(tsdb, work) as server:
        stable, last = 0, None
        while stable < 3:
            time.sleep(5)
            m = client.metrics(server.url)
            triggered = m.get(("prometheus_tsdb_compactions_triggered_total", ()), 0)
            done = m.get(("prometheus_tsdb_compactions_total", ()), 0)
            busy = any(".tmp" in p.name for p in tsdb.iterdir())
            now = (done, m.get(("prometheus_tsdb_blocks_loaded", ()), 0))
            stable = stable + 1 if triggered >= 1 and not busy and now == last else 0
            last = now
            log(f"  compacting: {int(done)} compactions, {int(now[1])} blocks")


def running(
    tsdb: Path, work: Path, config: dict[str, Any] | None = None, compaction: bool = True
) -> contextlib.AbstractContextManager[launch.Server]:
    """A Prometheus over the month's TSDB with production's retention (and compaction)."""
    # Without compaction every block stays the 2h that promtool writes.
    fixed = ["--storage.tsdb.min-block-duration=2h", "--storage.tsdb.max-block-duration=2h"]
    return launch.running(
        tsdb,
        config or {},
        workdir=work,
        retention=RETENTION,
        extra_args=[] if compaction else fixed,
        timeout=300,
    )


def build(
    out: Path,
    days: int,
    rule_texts: Sequence[str],
    log: Callable[[str], None] = print,
    compaction: bool = True,
) -> Month:
    """Backfill ``days`` of raw and recording-rule history ending now, then compact it
    (``compaction=False``: leave promtool's 2h blocks as they are)."""
    tsdb = out / "tsdb"
    if tsdb.exists():
        shutil.rmtree(tsdb)
    end = int(time.time()) // STEP * STEP
    start = end - days * DAY
    scenario = production(end, days)
    month = Month(scenario, start, end, tsdb, 0)

    t = time.monotonic()
    log(f"  raw history: {scenario.series_count} series x {days}d at 1m")
    month.raw_samples = backfill(scenario, tsdb, start, end, STEP)
    month.seconds["raw backfill"] = time.monotonic() - t

    t = time.monotonic()
    groups = [g for text in rule_texts for g in yaml.safe_load(text)["groups"]]
    month.recorded = recorded_history(tsdb, out, groups, start, end, log)
    month.seconds["rule backfill"] = time.monotonic() - t
    month.blocks_before_compaction = count_blocks(tsdb)
    month.compacted = compaction
    if compaction:
        t = time.monotonic()
        compact(tsdb, out / "prometheus-compact", log)
        month.seconds["compaction"] = time.monotonic() - t
    month.blocks = count_blocks(tsdb)
    return month
