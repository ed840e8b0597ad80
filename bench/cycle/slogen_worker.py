"""Measure slo-generator cycles; runs with the Python of bench/cycle/.venv-slogen.

``python slogen_worker.py CONFIG SLO_DIR PROMETHEUS_URL CYCLES`` prints one JSON object.
A cycle is what ``slo-generator compute -f SLO_DIR -c CONFIG`` does after loading its
configs: ``compute()`` for every SLO config in turn (slo-generator has no concurrency),
each querying every error-budget-policy step. No exporter runs. The process is warm
(imports and config loading are outside the timed cycle), as sloengine's scheduler is.

Standard library, slo_generator and bench/cycle/probe.py only: this file must not
import sloengine.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script with slo-generator's Python
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from slo_generator import utils  # type: ignore[import-not-found]
from slo_generator.compute import compute  # type: ignore[import-not-found]

from bench.cycle.probe import api_requests, max_rss_bytes


def main(argv: list[str]) -> int:
    config_path, slo_dir, url, cycles = argv[0], argv[1], argv[2], int(argv[3])
    config = utils.load_config(config_path)
    slo_configs = utils.load_configs(slo_dir, kind="ServiceLevelObjective")
    rss_before = max_rss_bytes()
    out: dict[str, Any] = {"slos": len(slo_configs), "rss_before": rss_before, "cycles": []}
    for _ in range(cycles):
        before = api_requests(url)
        started = time.perf_counter()
        reports: list[dict[str, Any]] = []
        for slo_config in slo_configs:
            reports += compute(slo_config, config, timestamp=time.time()) or []
        seconds = time.perf_counter() - started
        served = api_requests(url) - before
        out["cycles"].append(
            {
                "seconds": seconds,
                "requests": served,
                "reports": len(reports),
                "with_events": sum(1 for r in reports if r.get("events_count")),
                "alerts": sum(1 for r in reports if r.get("alert")),
            }
        )
    out["max_rss"] = max_rss_bytes()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
