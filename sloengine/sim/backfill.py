"""History written straight into a TSDB with promtool: the simulated raw series
(``create-blocks-from openmetrics``) and recording rules (``create-blocks-from rules``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sloengine.errors import UnavailableError
from sloengine.sim.launch import PROMTOOL, PROMTOOL_HINT, prometheus_server
from sloengine.sim.openmetrics import sample_times, write_samples
from sloengine.sim.traffic import Scenario

# promtool cuts blocks at multiples of 2h since the epoch and re-parses its whole input
# once per block, so backfill feeds it one file per block window (see backfill()).
BLOCK_SECONDS = 7200


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
