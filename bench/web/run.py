"""How long the web page takes to render: the overview of 1,000 SLOs and a detail page.

    python -m bench.web.run            # results in bench/web/RESULTS.md
    python -m bench.web.run --quick    # fewer repeats, results printed only

What is timed is everything after the readings: the statuses judged from rates
(:func:`sloengine.status.judge`, as every cycle does) are given, and each repeat builds
the view and renders the HTML (:mod:`sloengine.web.views`, :mod:`sloengine.web.pages`).
The detail page draws its three charts from as many points as the shell reads for a
30d SLO in recorded mode (120 over the window, a day at 5m for each alert window).
Prometheus's own query time is not included: it is the scheduler cycle's (bench/cycle).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sloengine.conventions import Mode
from sloengine.explain import explain, render_text
from sloengine.loading import load_specs
from sloengine.model import Objective
from sloengine.status import Rates, Status, judge
from sloengine.web.app import DAY, DAY_STEP, WINDOW_POINTS
from sloengine.web.pages import render_detail, render_overview
from sloengine.web.views import Filters, Note, RatePoint, charts, definition, detail, overview
from sloengine.windows import alert_windows, windows_of

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SLO_FILE = ROOT / "slos" / "chat-assistant.yaml"
TARGET_MS = 200.0
NOW = 1_767_225_600.0


def objectives(count: int) -> list[Objective]:
    """``count`` SLOs: the example chatbot's, repeated over as many services as it takes."""
    (service,) = load_specs([str(SLO_FILE)])
    base = service.objectives
    return [
        dataclasses.replace(base[i % len(base)], service=f"service-{i // len(base):04d}")
        for i in range(count)
    ]


def statuses(objs: list[Objective]) -> list[Status]:
    """Each SLO judged from rates that put one in ten over its page threshold."""
    out = []
    for i, obj in enumerate(objs):
        bad_share = obj.error_budget * (20 if i % 10 == 0 else 0.5)
        rates = {w: 10.0 * bad_share for w in windows_of(obj)}
        total = None if obj.is_spend else {w: 10.0 for w in windows_of(obj)}
        if obj.is_spend:
            rates = {
                w: (obj.budget_usd or 0) / obj.period * (3 if i % 10 == 0 else 0.5)
                for w in windows_of(obj)
            }
        out.append(judge(obj, Rates(rates, total, Mode.RECORDED), NOW))
    return out


def timed(render: Callable[[], str], repeats: int) -> tuple[float, float, float, int]:
    """(median CPU ms, worst CPU ms, median wall ms, bytes) of ``repeats`` renders after
    one warm-up. CPU time is this process's own: on a shared machine wall time also
    counts the time other processes held the CPUs."""
    size = len(render().encode())
    cpu, wall = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        render()
        cpu.append((time.process_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    return statistics.median(cpu), max(cpu), statistics.median(wall), size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.web.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="5 repeats, print only")
    parser.add_argument("--slos", type=int, default=1000)
    args = parser.parse_args(argv)
    repeats = 5 if args.quick else 30
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    objs = objectives(args.slos)
    judged = statuses(objs)
    by_key = {o.key: o for o in objs}

    def render_overview_page() -> str:
        return render_overview(overview(judged, by_key, Filters(), NOW))

    obj, status = objs[0], judged[0]
    text = SLO_FILE.read_text(encoding="utf-8")
    (service,) = load_specs([str(SLO_FILE)])
    step = obj.period // WINDOW_POINTS
    window = [RatePoint(NOW - step * k, 0.01, 1.0) for k in range(WINDOW_POINTS, -1, -1)]
    day = {
        w: [
            RatePoint(NOW - DAY + DAY_STEP * k, 0.01 * (k % 7), 1.0)
            for k in range(DAY // DAY_STEP + 1)
        ]
        for w in alert_windows(obj)
    }
    notes = [
        Note(f"{obj.service}/{obj.name}/{k}", kind, NOW - 3600 * k, "page", 1, NOW, None)
        for k in range(20)
        for kind in ("firing", "resolved")
    ]

    def render_detail_page() -> str:
        return render_detail(
            detail(
                obj,
                [status],
                explanation=render_text(explain(obj), obj),
                source=definition(text, service.document, obj.name),
                drawn=charts(obj, window, day, NOW - obj.period, NOW - DAY, NOW),
                notes=notes,
                evaluated_at=NOW,
            )
        )

    rows = [
        (f"overview, {args.slos:,} SLOs", *timed(render_overview_page, repeats)),
        (
            f"detail page (3 charts, {len(window) + sum(map(len, day.values())):,} points, 20 incidents)",
            *timed(render_detail_page, repeats),
        ),
    ]
    lines = [
        "# Web page render time",
        "",
        "Generated by `python -m bench.web.run`; do not edit by hand.",
        "",
        f"- Machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}",
        f"- sloengine: commit {_commit()}",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Repeats: {repeats} after one warm-up; view model and HTML, from judged statuses",
        "",
        f"- Load average (1/5/15 min) at start: {load}",
        "",
        f"| page | CPU median | CPU worst | wall median | size | target {TARGET_MS:.0f} ms (CPU worst) |",
        "|---|---|---|---|---|---|",
    ]
    for name, median, worst, wall, size in rows:
        verdict = "**met**" if worst < TARGET_MS else "missed"
        lines.append(
            f"| {name} | {median:.1f} ms | {worst:.1f} ms | {wall:.1f} ms | {size / 1024:,.0f} KiB | {verdict} |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    if not args.quick:
        (HERE / "RESULTS.md").write_text(report, encoding="utf-8")
    return 0


def _commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    return done.stdout.strip() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
