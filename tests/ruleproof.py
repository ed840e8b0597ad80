"""Run the promtool proofs ``sloengine generate --tests`` writes, a file per call, in parallel.

Each SLO's (and each detector's) cases are files of their own that load its own rules
alone (``<service>.<slo>.test.yml`` beside ``<service>.<slo>.rules.yml``, and a file per
part that loads only the rules its cases read), so a service's proofs take time linear
in its SLOs. promtool runs the files it is given one after another; here a pool runs
one promtool per file, largest first, so the cores stay busy until the last file ends.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml
from click.testing import CliRunner

from sloengine.cli import cli
from sloengine.detectors.ruletests import DETECTOR_SUFFIX
from sloengine.inputs import plan
from sloengine.loading import load_specs
from sloengine.rules import rule_groups
from sloengine.ruletests import TEST_SUFFIX, file_stem, slo_files


@dataclass(frozen=True)
class Proof:
    service: str
    name: str
    files: int
    cases: int
    returncode: int
    output: str


def generate(paths: list[str], work: Path) -> Path:
    """``sloengine generate PATHS --out WORK/rules --tests WORK/tests``; the tests directory."""
    tests = work / "tests"
    done = CliRunner().invoke(
        cli, ["generate", *paths, "--out", str(work / "rules"), "--tests", str(tests)]
    )
    assert done.exit_code == 0, done.output
    return tests


# Go's collector at a quarter of its default frequency: promtool's evaluations allocate
# a great deal, and this cuts its CPU time by a sixth to a quarter (measured on the
# chatbot's quality proof and a 1d SLO's) for about twice the memory (some 120 MB).
PROMTOOL_ENV = {**os.environ, "GOGC": "400"}


def run_promtool(*test_files: Path) -> tuple[int, str]:
    """One ``promtool test rules`` call over ``test_files`` (in one directory)."""
    (directory,) = {f.parent for f in test_files}
    done = subprocess.run(
        ["promtool", "test", "rules", *(f.name for f in test_files)],
        cwd=directory,
        env=PROMTOOL_ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def run_all(jobs: dict[tuple[str, str], list[Path]]) -> dict[tuple[str, str], Proof]:
    """Each test file in its own promtool call, as many at once as there are cores (the
    largest first); a proof per key, over all its files."""
    files = [path for paths in jobs.values() for path in paths if path.is_file()]
    order = sorted(files, key=lambda path: -path.stat().st_size)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = dict(zip(order, pool.map(run_promtool, order), strict=True))
    proofs = {}
    for key, paths in jobs.items():
        missing = [path.name for path in paths if path not in results]
        done = [results[path] for path in paths if path in results]
        cases = sum(
            len(yaml.safe_load(path.read_text())["tests"]) for path in paths if path in results
        )
        code = 1 if missing or not paths else max((c for c, _ in done), default=0)
        output = "".join(out for _, out in done) + "".join(
            f"generate wrote no {m}\n" for m in missing
        )
        if not paths:
            output += "no proof files for it\n"
        proofs[key] = Proof(*key, len(done), cases, code, output)
    return proofs


def prove(
    paths: list[str], work: Path | None = None, rewrite: Callable[[str], str] = str
) -> dict[tuple[str, str], Proof]:
    """Generate rules and proofs for ``paths`` and run every SLO's test file with promtool.

    ``rewrite`` edits the generated test files first (to vary the inputs).
    """
    tests = generate(paths, Path(work or tempfile.mkdtemp(prefix="sloengine-proof-")))
    jobs = {}
    for service in load_specs(paths):
        groups = rule_groups(service)
        for obj in service.objectives:
            planned = {} if plan(obj).reason else slo_files(service, obj, groups)
            names = [n for n in planned if n.endswith(TEST_SUFFIX)]
            for path in (tests / name for name in names):
                if path.is_file():
                    path.write_text(rewrite(path.read_text()))
            jobs[(service.name, obj.name)] = [tests / name for name in names]
    return run_all(jobs)


def prove_detectors(paths: list[str], work: Path | None = None) -> dict[tuple[str, str], Proof]:
    """Generate every detector's rules and proofs for ``paths``; run each detector's file."""
    tests = generate(paths, Path(work or tempfile.mkdtemp(prefix="sloengine-detector-proof-")))
    jobs = {
        (service.name, det.name): [
            tests / (file_stem(service.name, det.name) + DETECTOR_SUFFIX + TEST_SUFFIX)
        ]
        for service in load_specs(paths)
        for det in service.detectors
    }
    return run_all(jobs)
