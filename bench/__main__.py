"""``python -m bench``: every registered benchmark part, results in bench/RESULTS.md.

python -m bench                    # every part: about two hours on 2 CPUs (see below)
python -m bench --quick            # a smoke test, under 10 minutes (results in bench/out/)
python -m bench --only cost,timing # refresh only those parts' sections of bench/RESULTS.md

A part is a module with ``run(out: Path, quick: bool)`` returning its result and
``markdown(result) -> str`` (its section, starting with its ``## `` title); register it
in PARTS. Each section of RESULTS.md carries the command, commit, date and load it was
measured with, and a run replaces only the sections of the parts it ran.

The parts' own durations in the runs of record, one after the other: cost about 40
minutes (timing runs beside it), scale about 32, the detectors' promtool replays about
25, cipath 8 or more, scaling a few.
"""

from __future__ import annotations

import argparse
import os
import pickle
import shlex
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import cipath, cost, detectors, report, scale, scaling, timing
from bench.progress import log
from sloengine.sim import launch

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Part:
    run: Callable[[Path, bool], Any]
    markdown: Callable[[Any], str]
    # Not timed itself: runs alongside the other parts' set-up (the cost part waits for
    # it to finish before it measures anything).
    background: bool = False


def _scaling(out: Path, quick: bool) -> scaling.ScalingResult:
    log("4. generation scaling")
    sizes = (10, 100, 1_000) if quick else scaling.SIZES
    return scaling.run(out / "scaling", sizes, repeats=1 if quick else 3)


PARTS: dict[str, Part] = {
    "cost": Part(cost.run, cost.markdown),  # cost and accuracy: one Prometheus, one month
    "timing": Part(timing.run, timing.markdown, background=True),
    "scaling": Part(_scaling, report.scaling_markdown),
    "cipath": Part(cipath.run, cipath.markdown),  # the generated promtool proofs, as CI runs them
    "detectors": Part(detectors.run, detectors.markdown),
    "scale": Part(scale.run, scale.markdown),  # 1,000/5,000 SLOs in Prometheus; 10,000 scheduled
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}"
    )
    parser.add_argument("--out", type=Path, default=HERE / "out", help="work directory")
    parser.add_argument("--results", type=Path, help="default bench/RESULTS.md (not --quick)")
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
        parser.error(f"unknown part(s) {sorted(unknown)}; choose from {', '.join(PARTS)}")
    results = args.results or (args.out / "RESULTS.md" if args.quick else HERE / "RESULTS.md")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.rerender:
        fresh = {}
        for name in only:
            saved = out / f"{name}.pickle"
            if saved.exists():
                with saved.open("rb") as fh:
                    fresh[name] = report.render_part(pickle.load(fh), PARTS[name].markdown)
        report.write_parts(results, fresh, list(PARTS))
        return 0
    if not launch.available():
        raise SystemExit(
            f"{launch.PROMETHEUS} or {launch.PROMTOOL} not found: install Debian's prometheus package"
        )

    started = time.monotonic()
    command = "python -m bench" + "".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:]))
    runs = {
        name: report.PartRun(name, command, args.quick, report.machine(), time.time())
        for name in only
    }

    def one(name: str) -> Any:
        pr = runs[name]
        pr.load.append(("at start", os.getloadavg()))
        t = time.monotonic()
        if name == "cost" and background:
            # Nothing else runs while rule costs are measured.
            pr.result = cost.run(out, args.quick, wait_for_background)
        else:
            pr.result = PARTS[name].run(out, args.quick)
        pr.seconds = time.monotonic() - t
        pr.stages = dict(getattr(pr.result, "stages", {}) or {})
        pr.load.append(("at the end", os.getloadavg()))
        with (out / f"{name}.pickle").open("wb") as fh:
            pickle.dump(pr, fh)
        return pr.result

    pool = ThreadPoolExecutor(max_workers=1)
    background: dict[str, Future[Any]] = {
        name: pool.submit(one, name) for name in only if PARTS[name].background
    }

    def wait_for_background() -> None:
        log("  waiting for the background parts to finish before measuring")
        for job in background.values():
            job.result()

    for name in only:
        if not PARTS[name].background:
            one(name)
    wait_for_background()
    pool.shutdown()
    fresh = {name: report.render_part(runs[name], PARTS[name].markdown) for name in only}
    report.write_parts(results, fresh, list(PARTS))
    log(f"all done in {(time.monotonic() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
