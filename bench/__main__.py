"""``python -m bench``: every benchmark of issue #5, results in bench/RESULTS.md.

python -m bench            # the full run (about 20 minutes on 2 CPUs)
python -m bench --quick    # a smoke test in a few minutes (results in bench/out/)
python -m bench --only timing,scaling
"""

from __future__ import annotations

import argparse
import os
import pickle
import shlex
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from bench import accuracy, cost, history, report, rulesets, scaling, timing
from sloengine.sim import launch
from sloengine.sim.exporter import serving

HERE = Path(__file__).resolve().parent
PARTS = ("cost", "timing", "scaling")  # cost includes accuracy: they share one Prometheus


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}"
    )
    parser.add_argument("--out", type=Path, default=HERE / "out", help="work directory")
    parser.add_argument("--results", type=Path, help="default bench/RESULTS.md (full runs)")
    parser.add_argument(
        "--rerender",
        action="store_true",
        help="rewrite the results file from the last run's saved figures (no measuring)",
    )
    args = parser.parse_args(argv)
    args.out = args.out.resolve()  # rule files are named by absolute path, as Prometheus does
    only = [p for p in args.only.split(",") if p]
    unknown = set(only) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {sorted(unknown)}; choose from {PARTS}")
    complete = not args.quick and set(only) == set(PARTS)
    results = args.results or (HERE / "RESULTS.md" if complete else args.out / "RESULTS.md")
    saved = args.out / "run.pickle"
    if args.rerender:
        with saved.open("rb") as fh:
            previous: report.Run = pickle.load(fh)
        report.write(previous, args.results or previous.results)
        return 0
    if not launch.available():
        raise SystemExit(
            f"{launch.PROMETHEUS} or {launch.PROMTOOL} not found: install Debian's prometheus package"
        )

    started = time.monotonic()
    command = "python -m bench" + "".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:]))
    run = report.Run(command, args.quick, time.time(), report.machine())
    run.load.append(("at start", os.getloadavg()))
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    # promtool's alert-timing runs are not timed themselves, so they share the CPUs with
    # building the month of history; nothing else runs while rule costs are measured.
    pool = ThreadPoolExecutor(max_workers=1)
    timing_job: Future[timing.Result] | None = None
    if "timing" in only:
        log("3. alert timing: scenarios through promtool test rules (in the background)")
        keys = ("outage",) if args.quick else ()
        timing_job = pool.submit(timing.run, out / "timing", only=keys, workers=os.cpu_count() or 2)

    if "cost" in only:
        t = time.monotonic()
        days = 4 if args.quick else 31
        log(f"1+2. cost and accuracy: building {days} days of history")
        service, sets = rulesets.build(out / "rules")
        run.rules_sha = report.sha(sets[rulesets.SLOENGINE].text)
        texts = [sets[rulesets.SLOENGINE].text, sets[rulesets.OPTIMIZED].text]
        month = history.build(out, days, texts, log)
        run.month = month
        run.stages.update(month.seconds)
        if timing_job is not None:
            log("  waiting for the alert-timing runs to finish before measuring")
            run.timing = timing_job.result()
            run.stages["alert timing (alongside the history)"] = run.timing.seconds
        log("  measuring the three rule sets side by side")
        with serving(month.scenario) as target:
            # The simulator's series carry their own job and instance, as the history does.
            config = launch.config(
                rule_files=[rs.file for rs in sets.values()],
                scrape=[target],
                scrape_interval="1m",
                keep_target_labels=True,
            )
            with history.running(month.tsdb, out / "prometheus", config) as s:
                t_measure = time.monotonic()
                run.cost = cost.measure(s, sets, 1 if args.quick else 5, log)
                run.load.append(("while measuring cost", os.getloadavg()))
                run.stages["cost measurement"] = time.monotonic() - t_measure
                log("  accuracy: window ratios against the exact event counts")
                t_acc = time.monotonic()
                run.accuracy = accuracy.measure(s, service, sets, month.scenario, month.end)
                run.stages["accuracy"] = time.monotonic() - t_acc
        log(f"  done in {time.monotonic() - t:.0f} s")

    if timing_job is not None and run.timing is None:
        run.timing = timing_job.result()
        run.stages["alert timing"] = run.timing.seconds
    pool.shutdown()

    if "scaling" in only:
        t = time.monotonic()
        log("4. generation scaling")
        sizes = (10, 100, 1_000) if args.quick else scaling.SIZES
        run.scaling = scaling.run(out / "scaling", sizes, repeats=1 if args.quick else 3)
        run.stages["generation scaling"] = time.monotonic() - t
        log(f"  done in {time.monotonic() - t:.0f} s")

    run.seconds = time.monotonic() - started
    run.results = results
    with saved.open("wb") as fh:
        pickle.dump(run, fh)
    report.write(run, results)
    log(f"all done in {run.seconds / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
