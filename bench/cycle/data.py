"""The Prometheus every tool reads: a month of a simulated LLM service, then live traffic.

1. ``make_history``: ``days`` of the simulator's ``llm_*`` series at a 1m step, ending
   now, written with promtool straight into 54h blocks aligned as Prometheus's compactor
   aligns them (with a 45d retention, blocks grow to 10% of it: 2h, 6h, 18h, 54h). A server
   that has run for a month holds about that; 2h blocks, ``sloengine.sim.backfill``'s
   default, would make every 30d query read 360 blocks until Prometheus compacted them,
   which takes minutes here.
2. ``Prom``: one Prometheus over that TSDB for the whole benchmark. It scrapes the same
   simulated counters live (computed in closed form for the instant of the scrape, with
   the ``job``/``instance`` labels dropped, so the scraped series continue the backfilled
   ones), and loads or unloads rule files with ``/-/reload``: none while the raw-mode and
   slo-generator cycles run, the generated rules while the recorded-mode cycles run.
   Removed rule groups get staleness markers, so a smaller size never sees the recorded
   series of a larger one.

HTTP requests are counted by Prometheus itself (``prometheus_http_requests_total`` by
handler, read from ``/metrics``, which is not an API handler): no proxy sits between the
tools and the server, so nothing adds latency, and every tool is counted the same way.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.history import RETENTION, STEP
from sloengine.sim import client, launch
from sloengine.sim.backfill import backfill, count_blocks
from sloengine.sim.traffic import Scenario, example_scenario

BLOCK_SECONDS = 54 * 3600
SCRAPE_INTERVAL = "15s"

Log = Callable[[str], None]


def scenario(origin: int, days: int) -> Scenario:
    """The simulated chatbot: 2 providers x 2 models x 2 features, incidents in the past."""
    return example_scenario(origin, days=days, service="chat-assistant")


def make_history(tsdb: Path, days: int, log: Log, workers: int = 3) -> tuple[Scenario, int]:
    """Backfill ``days`` of raw series ending now; returns the scenario and sample count."""
    end = int(time.time()) // STEP * STEP
    start = end - days * 86400
    sim = scenario(start, days)
    if tsdb.exists():
        shutil.rmtree(tsdb)
    samples = backfill(sim, tsdb, start, end, STEP, workers=workers, block_seconds=BLOCK_SECONDS)
    log(f"  {samples:,} samples in {sim.series_count} series, {count_blocks(tsdb)} blocks")
    return sim, samples


@dataclass
class Prom:
    """A running Prometheus, the rules it has loaded, and the numbers the benchmark reads."""

    server: launch.Server
    scrape_target: str | None = None
    rule_files: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def _metrics(self, name: str) -> list[tuple[dict[str, str], float]]:
        return [
            (dict(labels), v) for (n, labels), v in client.metrics(self.url).items() if n == name
        ]

    def rss_bytes(self) -> int:
        return int(sum(v for _, v in self._metrics("process_resident_memory_bytes")))

    def cpu_seconds(self) -> float:
        return sum(v for _, v in self._metrics("process_cpu_seconds_total"))

    def rule_groups(self) -> dict[str, tuple[float, float]]:
        """Per loaded group: (last evaluation timestamp, last evaluation duration in s)."""
        metrics = client.metrics(self.url)
        last: dict[str, float] = {}
        duration: dict[str, float] = {}
        for (name, pairs), v in metrics.items():
            group = dict(pairs).get("rule_group")
            if group is None:
                continue
            if name == "prometheus_rule_group_last_evaluation_timestamp_seconds":
                last[group] = v
            elif name == "prometheus_rule_group_last_duration_seconds":
                duration[group] = v
        return {g: (t, duration.get(g, 0.0)) for g, t in last.items()}

    def rule_iterations(self) -> tuple[float, float]:
        """Group evaluations so far, and those skipped because the previous one overran."""
        done = sum(v for _, v in self._metrics("prometheus_rule_group_iterations_total"))
        missed = sum(v for _, v in self._metrics("prometheus_rule_group_iterations_missed_total"))
        return done, missed

    def load_rules(self, files: Sequence[Path]) -> None:
        """Replace the loaded rule files (none to unload every group) and reload."""
        self.rule_files = list(files)
        self.server.reload(_config(self.rule_files, self.scrape_target))

    def wait_evaluated(
        self, groups: int, since: float, log: Log, timeout: float, every: float = 10
    ) -> dict[str, tuple[float, float]]:
        """Wait until ``groups`` rule groups have each been evaluated after ``since``."""
        deadline = time.monotonic() + timeout
        said = 0.0
        while True:
            state = self.rule_groups()
            done = sum(1 for t, _ in state.values() if t >= since)
            if len(state) >= groups and done >= groups:
                return state
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"only {done} of {groups} rule groups evaluated after {timeout:.0f}s"
                )
            if time.monotonic() - said >= 30:
                log(f"    {done}/{groups} rule groups evaluated")
                said = time.monotonic()
            time.sleep(every)


@contextlib.contextmanager
def prometheus(
    tsdb: Path,
    work: Path,
    *,
    scrape_target: str | None = None,
    retention: str = RETENTION,
    timeout: float = 300,
) -> Iterator[Prom]:
    """Run Prometheus over ``tsdb`` until the block exits (SIGTERM, then SIGKILL)."""
    config = _config([], scrape_target)
    with launch.running(tsdb, config, workdir=work, retention=retention, timeout=timeout) as s:
        yield Prom(s, scrape_target)


def _config(rule_files: Sequence[Path], scrape_target: str | None) -> dict[str, Any]:
    return launch.config(
        rule_files=rule_files,
        scrape=[scrape_target] if scrape_target else [],
        scrape_interval=SCRAPE_INTERVAL,
    )
