"""History written straight into a TSDB with promtool: the simulated raw series
(``create-blocks-from openmetrics``) and recording rules (``create-blocks-from rules``,
or each rule's range query written as OpenMetrics: ``evaluate_rules`` and
``write_series``)."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sloengine.errors import UnavailableError
from sloengine.promql import exposition_labels
from sloengine.sim import client
from sloengine.sim.launch import PROMTOOL, PROMTOOL_HINT, prometheus_server
from sloengine.sim.openmetrics import sample_times, write_samples
from sloengine.sim.traffic import Scenario

# promtool cuts blocks at multiples of 2h since the epoch and re-parses its whole input
# once per block, so backfill feeds it one file per block window (see backfill()).
BLOCK_SECONDS = 7200
MAX_POINTS = 10_000  # per series and query_range (Prometheus refuses over 11,000)


def backfill(
    scenario: Scenario,
    tsdb_dir: str | os.PathLike[str],
    start: int,
    end: int,
    step: int,
    *,
    promtool: str = PROMTOOL,
    workers: int | None = None,
    block_seconds: int = BLOCK_SECONDS,
) -> int:
    """Create TSDB blocks in ``tsdb_dir`` for the samples ``write_openmetrics`` writes.

    promtool reads its whole input into memory and re-parses all of it for every block,
    so one big file costs quadratic time. Each block window (``block_seconds``, aligned
    on the epoch as Prometheus's compactor aligns blocks) therefore gets its own file and
    promtool run (several at once), into its own staging directory; the blocks are then
    moved into ``tsdb_dir``. Returns the number of samples.
    """
    model = scenario.compiled
    target = Path(tsdb_dir)
    target.mkdir(parents=True, exist_ok=True)
    windows: dict[int, list[int]] = {}
    for t in sample_times(start, end, step):
        windows.setdefault(t - t % block_seconds, []).append(t)
    binary = shutil.which(promtool) or promtool

    def one(staging: Path, block: int, times: list[int]) -> int:
        source, out = staging / f"{block}.om", staging / str(block)
        with source.open("w", encoding="utf-8") as fh:
            count = write_samples(model, fh, times)
        run = subprocess.run(
            [
                binary,
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "--quiet",
                f"--max-block-duration={block_seconds // 3600}h",
                str(source),
                str(out),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        source.unlink()
        if run.returncode != 0:
            raise UnavailableError(
                f"promtool failed on the {block} window: {run.stderr.strip()[-2000:]}",
                PROMTOOL_HINT,
            )
        for made in out.iterdir():
            made.rename(target / made.name)
        return count

    # Staging lives inside tsdb_dir so the final renames stay on one filesystem.
    with tempfile.TemporaryDirectory(prefix=".backfill-", dir=target) as tmp:
        # promtool mostly waits on fsync, so run more of them than there are CPUs.
        pool_size = workers or min(16, 4 * (os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=pool_size) as pool:
            jobs = [pool.submit(one, Path(tmp), b, ts) for b, ts in windows.items()]
            return sum(job.result() for job in jobs)


def backfill_rules(
    url: str, rule_file: str | os.PathLike[str], start: int, end: int, interval: int, out: Path
) -> int:
    """Evaluate ``rule_file`` every ``interval`` seconds over [start, end] against the
    Prometheus at ``url`` and write the results as TSDB blocks into ``out``
    (``promtool tsdb create-blocks-from rules``). Returns the number of blocks written;
    raises UnavailableError with promtool's complaint when it fails.

    promtool evaluates block by block (2h from the epoch), each group on its own grid (an
    offset within its interval from a hash of the group's name and file), and gives up on
    a rule, silently, at the first block in which no evaluation falls after the start: a
    range starting late in its block records nothing for a slow group, or, if the file's
    name moves the grid, nothing at all. The range therefore starts on its block's first
    second, where every block holds an evaluation of every group.
    """
    start -= start % BLOCK_SECONDS
    done = subprocess.run(
        [
            shutil.which(PROMTOOL) or PROMTOOL,
            "tsdb",
            "create-blocks-from",
            "rules",
            "--quiet",
            f"--url={url}",
            f"--start={start}",
            f"--end={end}",
            f"--eval-interval={interval}s",
            f"--output-dir={out}",
            str(rule_file),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise UnavailableError(
            f"promtool could not backfill the rules: {done.stderr[-2000:]}", PROMTOOL_HINT
        )
    return count_blocks(out) if out.is_dir() else 0


def add_rule_history(
    tsdb_dir: Path, rule_file: Path, start: int, end: int, interval: int, work: Path
) -> int:
    """Evaluate ``rule_file`` over [start, end] against the data in ``tsdb_dir`` (on a
    Prometheus of its own) and add the results to it as blocks; returns their number.
    Raises UnavailableError when promtool wrote none: every caller wants the history, and
    a silent gap would show up much later as a window reading short."""
    blocks = work / f"blocks-{rule_file.stem}"
    with prometheus_server(tsdb_dir) as url:
        written = backfill_rules(url, rule_file, start, end, interval, blocks)
    if not written:
        raise UnavailableError(
            f"promtool wrote no blocks for {rule_file.name} over [{start}, {end}]: "
            "none of its rules returned a sample",
            "check that the raw series (and the layers the rules read) cover that range",
        )
    for block in blocks.iterdir():
        block.rename(tsdb_dir / block.name)
    return written


def count_blocks(tsdb_dir: Path) -> int:
    """The finished blocks in a TSDB directory (each has its meta.json)."""
    return sum(1 for p in tsdb_dir.iterdir() if p.is_dir() and (p / "meta.json").exists())


@dataclass
class RecordedSeries:
    """One series a recording rule records: its name, labels and (time, value) points."""

    name: str
    labels: dict[str, str]
    points: list[tuple[int, float]]


def evaluate_rules(
    url: str, rules: Sequence[tuple[dict[str, Any], int]], start: int, end: int
) -> tuple[list[RecordedSeries], int]:
    """Each (recording rule, interval)'s series over [start, end] on its grid (``start``
    plus whole intervals), as promtool's rule backfill evaluates it, from the Prometheus
    at ``url``; each distinct (expression, interval) evaluated once (SLOs over the same
    raw series and threshold share one). Returns the series and the number of distinct
    expressions."""
    exprs = sorted({(str(rule["expr"]), step) for rule, step in rules})

    def one(job: tuple[str, int]) -> list[dict[str, Any]]:
        expr, step = job
        merged: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
        at = start
        while at <= end:
            until = min(end, at + step * (MAX_POINTS - 1))
            for s in client.query_range(url, expr, at, until, step):
                key = tuple(sorted(s["metric"].items()))
                merged.setdefault(key, {"metric": s["metric"], "values": []})["values"] += s[
                    "values"
                ]
            at = until + step
        return list(merged.values())

    with ThreadPoolExecutor(max_workers=2) as pool:
        values = dict(zip(exprs, pool.map(one, exprs), strict=True))
    out = []
    for rule, step in rules:
        for s in values[(str(rule["expr"]), step)]:
            labels = {k: v for k, v in s["metric"].items() if k != "__name__"}
            labels.update(rule.get("labels") or {})
            points = [(int(float(t)), float(v)) for t, v in s["values"]]
            out.append(RecordedSeries(str(rule["record"]), labels, points))
    return out, len(exprs)


def write_series(series: list[RecordedSeries], tsdb: Path, work: Path) -> int:
    """The series added to ``tsdb`` as blocks: one OpenMetrics file and promtool run per
    2h window, all series together (promtool's own rule backfill writes a block per rule
    per 2h: thousands, past the open-file limit). ``work`` is removed afterwards.
    Returns the samples written."""
    work.mkdir(parents=True, exist_ok=True)
    # Each series' points split by block window once (they come oldest first).
    windows: dict[int, list[tuple[RecordedSeries, list[tuple[int, float]]]]] = {}
    for s in series:
        for window, points in itertools.groupby(
            s.points, key=lambda p: p[0] - p[0] % BLOCK_SECONDS
        ):
            windows.setdefault(window, []).append((s, list(points)))
    keys = {id(s): f"{s.name}{{{exposition_labels(sorted(s.labels.items()))}}} " for s in series}

    def one(window: int) -> int:
        source, out = work / f"{window}.om", work / str(window)
        written = 0
        with source.open("w", encoding="utf-8") as fh:
            by_name: dict[str, list[str]] = {}
            for s, points in windows[window]:
                key = keys[id(s)]
                by_name.setdefault(s.name, []).append(
                    "".join(f"{key}{v!r} {t}\n" for t, v in points)
                )
                written += len(points)
            for name, chunks in by_name.items():  # a family's samples stay together
                fh.write(f"# TYPE {name} gauge\n")
                fh.write("".join(chunks))
            fh.write("# EOF\n")
        subprocess.run(
            [
                shutil.which(PROMTOOL) or PROMTOOL,
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "--quiet",
                "--max-block-duration=2h",
                str(source),
                str(out),
            ],
            check=True,
            capture_output=True,
        )
        source.unlink()
        for made in out.iterdir():
            made.rename(tsdb / made.name)
        out.rmdir()
        return written

    with ThreadPoolExecutor(max_workers=2) as pool:
        total = sum(pool.map(one, sorted(windows)))
    shutil.rmtree(work)
    return total
