"""Run generated ``promtool test rules`` files one SLO at a time, in parallel.

promtool evaluates every rule group of a file at every step of every test case, so a
service with n SLOs costs n^2 when its test file runs whole. The groups are independent
(two per SLO, none reads another SLO's series), so running each SLO's test cases against
its own groups alone proves the same thing in 1/n of the time.
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

from sloengine import conventions as cv
from sloengine.detectors import rules as detector_rules
from sloengine.detectors import ruletests as detector_tests
from sloengine.loading import load_specs
from sloengine.rules import render
from sloengine.ruletests import render_tests


@dataclass(frozen=True)
class Proof:
    service: str
    slo: str
    cases: int
    returncode: int
    output: str


def _split(service: str, rules_text: str, tests_text: str, work: Path) -> list[tuple[str, Path]]:
    rules = yaml.safe_load(rules_text)
    tests = yaml.safe_load(tests_text)
    jobs = []
    by_slo: dict[str, list[dict[str, object]]] = {}
    for group in rules["groups"]:
        # An SLO's alert group and its budget group (``...:<slo>:budget``) go together.
        owner = cv.group_slo(group["name"])
        assert owner is not None, group["name"]
        slo = owner[1]
        by_slo.setdefault(slo, []).append(group)
    for slo, groups in by_slo.items():
        prefix = f"{service}/{slo}:"
        cases = [case for case in tests["tests"] if case["name"].startswith(prefix)]
        if not cases:
            continue
        directory = work / slo
        directory.mkdir()
        (directory / "rules.yml").write_text(yaml.safe_dump({"groups": groups}))
        (directory / "test.yml").write_text(
            yaml.safe_dump(
                {
                    "rule_files": ["rules.yml"],
                    "evaluation_interval": tests["evaluation_interval"],
                    "tests": cases,
                },
                width=1_000_000,
            )
        )
        jobs.append((slo, directory / "test.yml"))
    return jobs


def _run(test_file: Path) -> tuple[int, str]:
    done = subprocess.run(
        ["promtool", "test", "rules", test_file.name],
        cwd=test_file.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def prove(
    paths: list[str], work: Path | None = None, rewrite: Callable[[str], str] = str
) -> dict[tuple[str, str], Proof]:
    """Generate rules and tests for ``paths`` and run every SLO's tests with promtool.

    ``rewrite`` edits the generated test text first (to vary the inputs).
    """
    root = Path(work or tempfile.mkdtemp(prefix="sloengine-proof-"))
    planned = []
    for service in load_specs(paths):
        service_dir = root / service.name
        service_dir.mkdir(parents=True)
        text = rewrite(render_tests(service, "rules.yml"))
        for slo, test_file in _split(service.name, render(service), text, service_dir):
            cases = sum(1 for _ in yaml.safe_load(test_file.read_text())["tests"])
            planned.append((service.name, slo, cases, test_file))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(lambda job: _run(job[3]), planned))
    return {
        (svc, slo): Proof(svc, slo, cases, code, out)
        for (svc, slo, cases, _), (code, out) in zip(planned, results, strict=True)
    }


def prove_detectors(paths: list[str], work: Path | None = None) -> dict[tuple[str, str], Proof]:
    """Generate every detector's rules and tests for ``paths``; run each detector's cases
    against its own groups (a file of n detectors would cost n^2 run whole)."""
    root = Path(work or tempfile.mkdtemp(prefix="sloengine-detector-proof-"))
    planned = []
    for service in load_specs(paths):
        rules_text = detector_rules.render(service)
        if rules_text is None:
            continue
        groups = yaml.safe_load(rules_text)["groups"]
        tests = yaml.safe_load(detector_tests.render_tests(service, "rules.yml"))
        for det in service.detectors:
            own = [g for g in groups if cv.group_detector(g["name"]) == (service.name, det.name)]
            cases = [
                c for c in tests["tests"] if c["name"].startswith(f"{service.name}/{det.name}:")
            ]
            directory = root / service.name / det.name
            directory.mkdir(parents=True)
            (directory / "rules.yml").write_text(yaml.safe_dump({"groups": own}))
            # One file per case: the cases run in parallel, the longest sets the pace.
            for i, case in enumerate(cases):
                test_file = directory / f"{i}.test.yml"
                doc = {**tests, "rule_files": ["rules.yml"], "tests": [case]}
                test_file.write_text(yaml.safe_dump(doc, width=1_000_000))
                planned.append((service.name, det.name, test_file))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(lambda job: _run(job[2]), planned))
    proofs: dict[tuple[str, str], Proof] = {}
    for (svc, name, _), (code, out) in zip(planned, results, strict=True):
        seen = proofs.get((svc, name))
        count = (seen.cases if seen else 0) + 1
        worst = seen.returncode if seen and seen.returncode else code
        output = (seen.output if seen else "") + out
        proofs[(svc, name)] = Proof(svc, name, count, worst, output)
    return proofs
