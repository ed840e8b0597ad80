"""Measure sloengine scheduler cycles in a process of their own; prints one JSON object.

``python -m bench.cycle.sloengine_worker SLO_DIR PROMETHEUS_URL MODE CYCLES STATE_DB [PROFILE [TIMEOUT]]``

A cycle is ``Engine.cycle()``, what ``sloengine run`` does every interval: evaluate every
SLO (``Evaluator`` in ``recorded`` or ``raw`` mode, the CLI's default concurrency of 8),
advance alert state in SQLite, deliver pages (to a console notifier writing nowhere) and
update its /metrics gauges. The first cycle also creates every alert row, so later cycles
are reported apart from it. Loading and validating the SLO files is outside the timing.

Per cycle it reports the requests of the evaluation itself apart from the rest (the
scheduler's *first look* at the label values behind a new page), and the time spent
inside ``Prometheus.query`` (HTTP, JSON decoding, samples), summed over threads. With
PROFILE, one more cycle runs under cProfile afterwards (not timed) and its top functions
by cumulative time are written there.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections import Counter
from typing import Any

from bench.cycle.probe import api_requests, max_rss_bytes
from sloengine.conventions import Mode
from sloengine.evaluate import Evaluator
from sloengine.loading import load_specs
from sloengine.notify import ConsoleNotifier
from sloengine.prometheus import Prometheus
from sloengine.scheduler import Engine, keep_loaded
from sloengine.state import Store
from sloengine.status import Status


def main(argv: list[str]) -> int:
    slo_dir, url, mode, cycles, state = argv[0], argv[1], argv[2], int(argv[3]), argv[4]
    profile = argv[5] if len(argv) > 5 and argv[5] else None
    timeout = float(argv[6]) if len(argv) > 6 else 10.0  # the CLI's default
    objectives = [o for s in load_specs([slo_dir]) for o in s.objectives]
    prom = Prometheus(url, timeout=timeout)
    evaluator = Evaluator(prom, mode=Mode(mode), concurrency=8)
    evaluate_seconds: list[float] = []
    evaluate_requests: list[int] = []
    in_query = [0.0]
    last: list[Status] = []
    inner = evaluator.evaluate
    inner_query = prom.query

    def timed(objs: Any, now: float | None = None) -> list[Status]:
        started, before = time.perf_counter(), prom.requests
        result = inner(objs, now)
        evaluate_seconds.append(time.perf_counter() - started)
        evaluate_requests.append(prom.requests - before)
        last[:] = result
        return result

    def timed_query(expr: str, at: float | None = None) -> Any:
        started = time.perf_counter()
        try:
            return inner_query(expr, at)
        finally:
            in_query[0] += time.perf_counter() - started

    evaluator.evaluate = timed  # type: ignore[method-assign,assignment]
    prom.query = timed_query  # type: ignore[method-assign]
    engine = Engine(objectives, evaluator, Store(state), ConsoleNotifier(io.StringIO()))
    phases: dict[str, float] = {}

    def phase(name: str, method: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - started

        return wrapped

    # The scheduler's other phases: first looks for new pages, delivery from the outbox.
    engine.first_looks = phase("first_look_seconds", engine.first_looks)  # type: ignore[method-assign]
    engine.deliver = phase("deliver_seconds", engine.deliver)  # type: ignore[method-assign]
    keep_loaded()  # as `sloengine run` does before its first cycle
    rss_before = max_rss_bytes()
    out: dict[str, Any] = {"slos": len(objectives), "rss_before": rss_before, "cycles": []}
    for _ in range(cycles):
        served_before, own_before = api_requests(url), prom.requests
        in_query[0] = 0.0
        phases.clear()
        started = time.perf_counter()
        engine.cycle()
        seconds = time.perf_counter() - started
        out["cycles"].append(
            {
                "seconds": seconds,
                "evaluate_seconds": evaluate_seconds[-1],
                "query_seconds": in_query[0],
                "requests": api_requests(url) - served_before,
                "own_requests": prom.requests - own_before,
                "evaluate_requests": evaluate_requests[-1],
                "first_look_seconds": phases.get("first_look_seconds", 0.0),
                "deliver_seconds": phases.get("deliver_seconds", 0.0),
                "modes": dict(Counter(s.mode or "none" for s in last)),
                "health": dict(Counter(s.health for s in last)),
                "states": dict(Counter(s.state for s in last)),
            }
        )
    out["max_rss"] = max_rss_bytes()
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(engine.cycle)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(40)
        with open(profile, "w", encoding="utf-8") as fh:
            fh.write(text.getvalue())
    engine.store.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
