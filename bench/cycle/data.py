"""The Prometheus every tool reads: a month of a simulated LLM service, then live traffic.

1. ``make_history``: ``days`` of the simulator's ``llm_*`` series at a 1m step, ending
   now, written with promtool straight into 54h blocks aligned as Prometheus's compactor
   aligns them (with a 45d retention, blocks grow to 10% of it: 2h, 6h, 18h, 54h). A server
   that has run for a month holds about that; 2h blocks, as ``sloengine.simulate.backfill``
   writes them, would make every 30d query read 360 blocks until Prometheus compacted them,
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
import json
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sloengine import localprom
from sloengine.simulate import Scenario, example_scenario, series_at, write_openmetrics

PROMETHEUS = "prometheus"
PROMTOOL = "promtool"
BLOCK_SECONDS = 54 * 3600
STEP = 60
RETENTION = "45d"  # enough for a 30d SLO; blocks compact up to 10% of it (4.5d), as usual
SCRAPE_INTERVAL = "15s"
API_PREFIX = "/api/"

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
    staging = tsdb / ".staging"
    staging.mkdir(parents=True)
    windows = []
    lo = start
    while lo <= end:
        hi = min(end, (lo // BLOCK_SECONDS + 1) * BLOCK_SECONDS - STEP)
        windows.append((lo, hi))
        lo = hi + STEP

    def one(window: tuple[int, int]) -> int:
        lo, hi = window
        source, blocks = staging / f"{lo}.om", staging / str(lo)
        with source.open("w", encoding="utf-8") as fh:
            count = write_openmetrics(sim, fh, lo, hi, STEP)
        done = subprocess.run(
            [
                PROMTOOL,
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "--quiet",
                f"--max-block-duration={BLOCK_SECONDS // 3600}h",
                str(source),
                str(blocks),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        source.unlink()
        if done.returncode != 0:
            raise RuntimeError(f"promtool failed on [{lo}, {hi}]: {done.stderr.strip()[-500:]}")
        for made in blocks.iterdir():
            made.rename(tsdb / made.name)
        return count

    with ThreadPoolExecutor(max_workers=workers) as pool:
        samples = sum(pool.map(one, windows))
    shutil.rmtree(staging)
    log(f"  {samples:,} samples in {sim.series_count} series, {_blocks(tsdb)} blocks")
    return sim, samples


def _blocks(tsdb: Path) -> int:
    return sum(1 for p in tsdb.iterdir() if p.is_dir() and (p / "meta.json").exists())


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Prometheus text exposition as (name, labels, value) rows."""
    out = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match:
            name, labels, value = match.groups()
            out.append((name, dict(_LABEL.findall(labels or "")), float(value)))
    return out


def _get(url: str, timeout: float = 120) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
        return body


@dataclass
class Prom:
    """A running Prometheus: its URL, config, and the numbers the benchmark reads."""

    url: str
    config_file: Path
    log_file: Path
    scrape_target: str | None = None
    process: subprocess.Popen[bytes] | None = None
    rule_files: list[str] = field(default_factory=list)

    def metrics(self) -> list[tuple[str, dict[str, str], float]]:
        return parse_metrics(_get(f"{self.url}/metrics").decode())

    def api_requests(self) -> int:
        """HTTP requests served on the query API so far (every handler under /api/)."""
        return int(
            sum(
                v
                for name, labels, v in self.metrics()
                if name == "prometheus_http_requests_total"
                and labels.get("handler", "").startswith(API_PREFIX)
            )
        )

    def rss_bytes(self) -> int:
        for name, _, v in self.metrics():
            if name == "process_resident_memory_bytes":
                return int(v)
        return 0

    def cpu_seconds(self) -> float:
        for name, _, v in self.metrics():
            if name == "process_cpu_seconds_total":
                return v
        return 0.0

    def rule_groups(self) -> dict[str, tuple[float, float]]:
        """Per loaded group: (last evaluation timestamp, last evaluation duration in s)."""
        last: dict[str, float] = {}
        duration: dict[str, float] = {}
        for name, labels, v in self.metrics():
            group = labels.get("rule_group")
            if group is None:
                continue
            if name == "prometheus_rule_group_last_evaluation_timestamp_seconds":
                last[group] = v
            elif name == "prometheus_rule_group_last_duration_seconds":
                duration[group] = v
        return {g: (t, duration.get(g, 0.0)) for g, t in last.items()}

    def rule_iterations(self) -> tuple[float, float]:
        """Group evaluations so far, and those skipped because the previous one overran."""
        done = missed = 0.0
        for name, _, v in self.metrics():
            if name == "prometheus_rule_group_iterations_total":
                done += v
            elif name == "prometheus_rule_group_iterations_missed_total":
                missed += v
        return done, missed

    def write_config(self) -> None:
        config: dict[str, Any] = {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": "1m"},
            "rule_files": self.rule_files,
            "scrape_configs": [],
        }
        if self.scrape_target:
            config["scrape_configs"].append(
                {
                    "job_name": "simulated-llm-service",
                    "static_configs": [{"targets": [self.scrape_target]}],
                    # The scraped series must be the backfilled ones, continued.
                    "metric_relabel_configs": [{"action": "labeldrop", "regex": "job|instance"}],
                }
            )
        self.config_file.write_text(json.dumps(config))  # JSON is YAML

    def load_rules(self, files: Sequence[Path]) -> None:
        """Replace the loaded rule files (none to unload every group) and reload."""
        self.rule_files = [str(f.resolve()) for f in files]
        self.write_config()
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=600) as response:
            response.read()

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
    work.mkdir(parents=True, exist_ok=True)
    port = localprom.free_port()
    log_file = work / "prometheus.log"
    prom = Prom(
        url=f"http://127.0.0.1:{port}",
        config_file=work / "prometheus.yml",
        log_file=log_file,
        scrape_target=scrape_target,
    )
    prom.write_config()
    with log_file.open("ab") as log:
        process = prom.process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={prom.config_file}",
                f"--storage.tsdb.path={tsdb.resolve()}",
                f"--storage.tsdb.retention.time={retention}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        while process.poll() is None and not localprom.ready(prom.url, timeout=2):
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus not ready after {timeout}s; see {log_file}")
            time.sleep(0.1)
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited ({process.returncode}); see {log_file}")
        yield prom
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def live_exporter(sim: Scenario) -> Iterator[str]:
    """Serve the simulated service's /metrics on a free loopback port; yields host:port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            values = series_at(sim, time.time())
            body = "".join(
                f"{key} {v if isinstance(v, int) else repr(v)}\n" for key, v in values.items()
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
