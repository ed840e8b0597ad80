"""A month in production: raw history, recording-rule history, compacted blocks.

1. The simulator writes the raw series (1m resolution, ending now) into TSDB blocks.
2. A Prometheus over those blocks answers ``promtool tsdb create-blocks-from rules``
   for every recording rule that another rule reads over a range or at an offset:
   sloengine's 5m base rates, then (a second and third pass, once the first pass's
   blocks are in) its 1h and 1d tiles (``sloengine.rules.ranged_records``);
   Sloth-optimized's 5m ratio and Pyrra's performance-mode 5m increases. (All other
   recorded series are read only at the instant of evaluation, so their history cannot
   change what a rule costs.)
3. A Prometheus with ordinary block settings compacts everything, as a server that has
   run for a month would have, before anything is measured.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.slos import SERVICE
from sloengine.model import Objective
from sloengine.rules import ranged_passes
from sloengine.sim import client, launch
from sloengine.sim.backfill import backfill, backfill_rules, count_blocks
from sloengine.sim.traffic import Incident, Scenario, Scope, Traffic

DAY = 86400
HOUR = 3600
STEP = 60  # raw resolution: a 1m scrape interval
# Rules of the baselines whose history other rules read over a range (the rest read "now").
OTHER_RANGED = ("slo:sli_error:ratio_rate5m", "pyrra:increase5m")
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


def _stage(rule: dict[str, Any], passes: list[list[tuple[str, dict[str, str]]]]) -> int | None:
    """Which backfill pass a rule belongs to (0 first), or None when nothing reads its past:
    the base rates and the baselines' ranged rules first, then each tile in turn."""
    if rule.get("record") in OTHER_RANGED:
        return 0
    labels = rule.get("labels") or {}
    for i, records in enumerate(passes):
        for record, at in records:
            if rule.get("record") == record and all(labels.get(k) == v for k, v in at.items()):
                return i
    return None


def ranged_groups(
    rule_texts: Sequence[str], objectives: Sequence[Objective]
) -> list[list[dict[str, Any]]]:
    """The recording rules whose history other rules read, as groups, in passes: a pass
    reads only what the passes before it wrote.

    A group's rules keep sharing a group, so they share its evaluation instants, as they
    do on a live server (sloengine divides a bad rate by a total rate recorded together).
    """
    ranged = {(o.service, o.name): ranged_passes(o) for o in objectives}
    passes: list[list[dict[str, Any]]] = []
    for text in rule_texts:
        for group in yaml.safe_load(text)["groups"]:
            by_pass: dict[int, list[dict[str, Any]]] = {}
            for rule in group["rules"]:
                labels = rule.get("labels") or {}
                own = ranged.get((labels.get("service", ""), labels.get("slo", "")), [])
                stage = _stage(rule, own)
                if stage is not None:
                    by_pass.setdefault(stage, []).append(rule)
            for stage, rules in by_pass.items():
                while len(passes) <= stage:
                    passes.append([])
                passes[stage].append(
                    {"name": group["name"], "interval": group["interval"], "rules": rules}
                )
    return passes


def backfill_groups(
    server: launch.Server, groups: list[dict[str, Any]], start: int, end: int, work: Path
) -> None:
    """``promtool tsdb create-blocks-from rules``, a group per file, two files at a time."""
    work.mkdir(parents=True, exist_ok=True)
    jobs = []
    for i, group in enumerate(groups):
        rule_file = work / f"group-{i}.yml"
        rule_file.write_text(yaml.safe_dump({"groups": [group]}, width=1_000_000))
        jobs.append((rule_file, work / f"blocks-{i}"))

    def one(job: tuple[Path, Path]) -> None:
        rule_file, out = job
        backfill_rules(server.url, rule_file, start, end, 60, out)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(one, jobs))


def move_blocks(source: Path, tsdb: Path) -> int:
    moved = 0
    for directory in sorted(source.glob("blocks-*")):
        for block in directory.iterdir():
            if block.is_dir():
                block.rename(tsdb / block.name)
                moved += 1
    shutil.rmtree(source)
    return moved


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
    objectives: Sequence[Objective],
    log: Callable[[str], None] = print,
) -> Month:
    """Backfill ``days`` of raw and recording-rule history ending now, then compact it."""
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
    passes = ranged_groups(rule_texts, objectives)
    for i, groups in enumerate(passes):
        rules = sum(len(g["rules"]) for g in groups)
        log(f"  recording-rule history, pass {i + 1}/{len(passes)}: {rules} rules x {days}d at 1m")
        with running(tsdb, out / f"prometheus-backfill-{i}", compaction=False) as server:
            backfill_groups(server, groups, start, end, out / "rule-backfill")
        move_blocks(out / "rule-backfill", tsdb)
    month.seconds["rule backfill"] = time.monotonic() - t
    month.blocks_before_compaction = count_blocks(tsdb)

    t = time.monotonic()
    compact(tsdb, out / "prometheus-compact", log)
    month.seconds["compaction"] = time.monotonic() - t
    month.blocks = count_blocks(tsdb)
    return month
