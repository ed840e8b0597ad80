"""``python -m bench.backtest``: a 30-day backtest's wall time and Prometheus samples.

    python -m bench.backtest                 # 10 and 100 SLOs over 30 days
    python -m bench.backtest --slos 10       # just 10
    python -m bench.backtest --days 3        # a smoke test

One Prometheus holds ``--days`` of a simulated LLM service scraped every 30s
(sloengine.sim); N availability SLOs with different objectives read it. Per size it
reports the wall time of reading the history (range queries) and of replaying it
(status.judge + alerting.advance at every 1m step the replay's screen cannot tell
quiet), the range queries sent, the samples Prometheus loads for them (its
``stats=all`` of one SLO's queries, times N: every SLO here sends the same two), and
the peak RSS of the process. The first ``--before`` SLOs of each size are also replayed
judging every step (``replay(..., screen=False)``, the replay before the screen) on the
same histories, side by side, for the ratio. Results go to stdout and
bench/out/backtest.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from sloengine.backtest.history import chunks, first_point, read_history
from sloengine.backtest.replay import replay
from sloengine.loading import load_specs
from sloengine.model import Objective
from sloengine.prometheus import Prometheus
from sloengine.sim.backfill import backfill
from sloengine.sim.launch import prometheus_server
from sloengine.sim.traffic import example_scenario

HERE = Path(__file__).resolve().parent
SCRAPE = 30
STEP = 60


def slo_file(directory: Path, n: int) -> Path:
    lines = [
        "apiVersion: sloengine/v1",
        "service: chat-assistant",
        "metrics: {preset: llm, selector: 'service=\"chat-assistant\"'}",
        "window: 30d",
        "slos:",
    ]
    for i in range(n):
        objective = 99 + (i % 10) / 10
        lines += [
            f"  - name: availability-{i}",
            f"    objective: {objective:g}",
            "    sli: {success_rate: {}}",
        ]
    path = directory / f"bench-{n}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def samples_of(url: str, obj: Objective, since: float, until: float) -> int:
    """Samples Prometheus loads for one SLO's range queries (``stats=all`` on each chunk;
    Prometheus 2.42 has no counter of samples loaded)."""
    q = obj.queries(STEP)
    start = first_point(obj, since, STEP)
    end = int(until // STEP * STEP)
    total = 0
    for expr in (q.bad, q.total):
        if expr is None:
            continue
        for lo, hi in chunks(start, end, STEP):
            params = urllib.parse.urlencode(
                {"query": expr, "start": lo, "end": hi, "step": STEP, "stats": "all"}
            )
            with urllib.request.urlopen(f"{url}/api/v1/query_range?{params}", timeout=60) as a:
                stats = json.load(a)["data"]["stats"]["samples"]
            total += int(stats["totalQueryableSamples"])
    return total


def measure(url: str, path: Path, since: float, until: float, before: int) -> dict[str, float]:
    objectives = [o for s in load_specs([str(path)]) for o in s.objectives]
    prom = Prometheus(url, timeout=60)
    read_s = replay_s = screened_s = every_s = 0.0
    pages = 0
    for n, obj in enumerate(objectives):
        t = time.monotonic()
        histories = read_history(prom, obj, since, until, STEP)
        read_s += time.monotonic() - t
        t = time.monotonic()
        replays = [replay(obj, history, since) for history in histories]
        replay_s += time.monotonic() - t
        pages += sum(r.pages for r in replays)
        if n < before:
            # CPU seconds: the replay is pure computation, and the machine may be shared.
            t = time.process_time()
            again = [replay(obj, history, since) for history in histories]
            screened_s += time.process_time() - t
            t = time.process_time()
            judged = [replay(obj, history, since, screen=False) for history in histories]
            every_s += time.process_time() - t
            assert again == replays
            assert judged == replays, f"{obj.name}: the screen changed the replay"
    return {
        "slos": len(objectives),
        "read_s": read_s,
        "replay_s": replay_s,
        "requests": prom.requests,
        # Every SLO here sends the same two queries (only the objective differs).
        "samples": samples_of(url, objectives[0], since, until) * len(objectives),
        "pages": pages,
        "compared": min(before, len(objectives)),
        "screened_s": screened_s,
        "every_s": every_s,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backtest")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--slos", default="10,100", help="comma-separated SLO counts")
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument(
        "--before", type=int, default=10, help="SLOs per size also replayed judging every step"
    )
    args = parser.parse_args(argv)
    now = int(time.time()) // 3600 * 3600
    start = now - args.days * 86400
    scenario = example_scenario(start, days=args.days, base_rps=2, providers=1, features=1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t = time.monotonic()
        written = backfill(scenario, work / "tsdb", start, now, SCRAPE)
        print(f"backfilled {written:,} samples in {time.monotonic() - t:.0f}s", file=sys.stderr)
        with prometheus_server(work / "tsdb") as url:
            for n in (int(x) for x in args.slos.split(",")):
                result = measure(url, slo_file(work, n), start, now, args.before)
                rows.append(result)
                print(result, file=sys.stderr)
    table = [
        f"Backtest of {args.days} days at a {STEP}s step ({SCRAPE}s scrapes), "
        f"each SLO reading its window before the range too",
        "",
        "| SLOs | read (s) | replay (s) | total (s) | range queries | samples loaded (Prometheus's stats) | peak RSS (MB) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        table.append(
            f"| {r['slos']:.0f} | {r['read_s']:.1f} | {r['replay_s']:.1f} "
            f"| {r['read_s'] + r['replay_s']:.1f} | {r['requests']:.0f} | {r['samples']:,.0f} "
            f"| {r['rss_mb']:.0f} |"
        )
    table += [
        "",
        "Replay of the same histories (the first SLOs of each size), judging every step"
        " (before the screen) and screened, side by side, in CPU seconds:",
        "",
        "| SLOs compared | every step (CPU s) | screened (CPU s) | per SLO-month, every step "
        "| per SLO-month, screened | faster |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if not r["compared"]:
            continue
        months = r["compared"] * args.days / 30
        table.append(
            f"| {r['compared']:.0f} | {r['every_s']:.1f} | {r['screened_s']:.1f} "
            f"| {r['every_s'] / months:.2f} | {r['screened_s'] / months:.2f} "
            f"| {r['every_s'] / max(r['screened_s'], 1e-9):.1f}x |"
        )
    text = "\n".join(table) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "backtest.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
