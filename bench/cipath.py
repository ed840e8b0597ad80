"""``python -m bench.cipath``: the CI path, a service's generated promtool proofs in one call.

    python -m bench.cipath            # the chatbot, and 5, 10, 20, 40 SLOs of one service
    python -m bench.cipath --quick    # the chatbot, and 5, 10, 20 SLOs
    python -m bench.cipath --jobs 4   # four promtool calls at a time: CPU seconds only

``sloengine generate --tests DIR`` writes each SLO's proof beside its own rule groups, and
the README's CI recipe runs them in one call, ``promtool test rules DIR/*.test.yml``.
This times that call (wall time, and the CPU seconds promtool spent, which another
process on the machine does not inflate as much) for the example chatbot
(``slos/chat-assistant.yaml``: its SLOs, month and detector proofs) and for services of
5 to 40 SLOs. Linear time doubles with the SLO count: the table gives the ratio per
doubling. The layout before (one test file per service, every case evaluating every
rule group of the service) is rebuilt from the same cases for the small services, where
running it is cheap; for the chatbot it would take many minutes, so the figure before is
the last one measured in the project's history, named as such. Results go to stdout and
bench/out/cipath.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from click.testing import CliRunner

from bench.markdown import table
from bench.report import machine
from sloengine.cli import cli
from sloengine.formats import Format, file_name
from sloengine.inputs import plan
from sloengine.loading import load_specs
from sloengine.rules import render
from sloengine.ruletests import TEST_SUFFIX, proof_file, slo_tests
from sloengine.sim import launch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHATBOT = ROOT / "slos" / "chat-assistant.yaml"
SIZES = (5, 10, 20, 40)
QUICK_SIZES = (5, 10, 20)
BEFORE_SIZES = (5, 10)  # the old layout grows with the square: only where it is cheap
# The scaling services' SLOs: the chatbot's kinds in turn, on a 1d window so that a
# service of 40 runs in minutes (each SLO's cost grows with its longest alert window).
SCALING_WINDOW = "1d"
KINDS = (
    "{success_rate: {}}",
    "{ttft: {threshold: 1s}}",
    "{latency: {threshold: 5s}}",
    "{cost_per_call: {threshold_usd: 0.1}}",
)
# The chatbot's proofs in the old layout were never timed in one call: the last figure
# measured (README at d3c5e0d, "Wiring it into a service repo's CI") was per SLO.
CHATBOT_BEFORE = (
    "not run (one service-wide file takes many minutes); last measured figure, README at "
    "d3c5e0d: a service of 7 SLOs on a 30d window took about two and a half minutes per "
    "SLO run alone and far more run together (so one call over its old file: over 17 "
    "minutes); the project's tests split the file per SLO (tests/ruleproof.py), and the "
    "proofs still took about 6.5 of CI's 9.5 minutes (commit ff7f446)"
)


@dataclass(frozen=True)
class Timed:
    """One ``promtool test rules`` call: what it ran and how long it took."""

    label: str
    slos: int
    files: int
    cases: int
    wall: float  # seconds
    cpu: float  # promtool's user + system seconds
    ok: bool
    output: str = ""  # promtool's output when it failed


@dataclass
class Result:
    quick: bool
    machine: dict[str, str]
    chatbot: Timed
    after: list[Timed]
    before: list[Timed]
    jobs: int = 1
    chatbot_before: str = CHATBOT_BEFORE
    load: list[tuple[str, tuple[float, float, float]]] = field(default_factory=list)


def promtool(directory: Path, files: list[str]) -> tuple[float, float, int, str]:
    """One promtool call over ``files`` in ``directory``: wall, CPU, exit code, output.
    The CPU seconds are that process's own (``wait4``), whatever runs beside it."""
    start = time.monotonic()
    proc = subprocess.Popen(
        [launch.PROMTOOL, "test", "rules", *files],
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - start
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode, output


def _cases(directory: Path, files: list[str]) -> int:
    return sum(len(yaml.safe_load((directory / f).read_text())["tests"]) for f in files)


def generated(spec: Path, work: Path) -> tuple[Path, list[str]]:
    """``sloengine generate SPEC --out WORK/rules --tests WORK/tests``: the tests directory
    and its test files, as the README's CI recipe globs them."""
    tests = work / "tests"
    done = CliRunner().invoke(
        cli, ["generate", str(spec), "--out", str(work / "rules"), "--tests", str(tests)]
    )
    if done.exit_code != 0:
        raise SystemExit(f"generate failed: {done.output}")
    return tests, sorted(p.name for p in tests.glob("*" + TEST_SUFFIX))


def old_layout(spec: Path, work: Path) -> tuple[Path, list[str]]:
    """The layout before: one test file for the service, every SLO's cases against the
    service's whole rule file (the same cases the per-SLO files hold)."""
    (service,) = load_specs([str(spec)])
    work.mkdir(parents=True)
    rule_file = file_name(service, Format.PROMETHEUS)
    (work / rule_file).write_text(render(service))
    cases = [case for obj in service.objectives for case in slo_tests(obj, plan(obj))]
    text = proof_file(service, service.name, rule_file, "1m", cases)
    (work / "service.test.yml").write_text(text)
    return work, ["service.test.yml"]


def timed(label: str, slos: int, directory: Path, files: list[str]) -> Timed:
    wall, cpu, code, output = promtool(directory, files)
    cases = _cases(directory, files)
    return Timed(label, slos, len(files), cases, wall, cpu, code == 0, "" if code == 0 else output)


def service_file(directory: Path, n: int) -> Path:
    """One service of ``n`` SLOs: the chatbot's kinds in turn, each its own objective."""
    lines = [
        "apiVersion: sloengine/v1",
        f"service: ci-{n}",
        "metrics: {preset: llm, selector: 'service=\"chat-assistant\"'}",
        f"window: {SCALING_WINDOW}",
        "slos:",
    ]
    for i in range(n):
        objective = 99 + (i % 10) / 10
        lines.append(
            f"  - {{name: slo-{i}, objective: {objective:g}, sli: {KINDS[i % len(KINDS)]}}}"
        )
    path = directory / f"ci-{n}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(out: Path, quick: bool, jobs: int = 1) -> Result:
    """Every measurement; ``jobs`` promtool calls at a time (1: wall times mean what they
    say; more: only the CPU seconds do, each call's own)."""
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="cipath-", dir=out))
    load = [("at start", os.getloadavg())]
    (chatbot,) = load_specs([str(CHATBOT)])
    calls: list[tuple[str, str, int, Path, list[str]]] = []  # kind, label, SLOs, dir, files
    tests, files = generated(CHATBOT, work / "chatbot")
    if jobs == 1:
        calls.append(("chatbot", "chatbot", len(chatbot.objectives), tests, files))
    else:
        # promtool runs the files of a call one after another: the call's CPU is the sum
        # of the files' (measured a file a call, at the same time).
        calls += [("chatbot", f"chatbot {f}", len(chatbot.objectives), tests, [f]) for f in files]
    for n in QUICK_SIZES if quick else SIZES:
        spec = service_file(work, n)
        tests, files = generated(spec, work / f"after-{n}")
        calls.append(("after", f"{n} SLOs", n, tests, files))
        if n in BEFORE_SIZES:
            directory, files = old_layout(spec, work / f"before-{n}")
            calls.append(("before", f"{n} SLOs", n, directory, files))

    def measure(call: tuple[str, str, int, Path, list[str]]) -> Timed:
        kind, label, n, directory, files = call
        log(f"CI path: {kind} {label}: {len(files)} files in one promtool call")
        t = timed(label, n, directory, files)
        verdict = "pass" if t.ok else "FAIL"
        log(f"CI path: {kind} {label}: {t.wall:.1f} s wall, {t.cpu:.1f} s CPU, {verdict}")
        return t

    def cost(call: tuple[str, str, int, Path, list[str]]) -> float:
        # Bytes of cases, times the groups each case evaluates (all n in the old layout).
        kind, _, n, directory, files = call
        return sum((directory / f).stat().st_size for f in files) * (n if kind == "before" else 1)

    # The costliest first, so that the last to finish is not a long one started late.
    calls.sort(key=cost, reverse=True)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(measure, calls))
    load.append(("at end", os.getloadavg()))
    by_kind: dict[str, list[Timed]] = {"chatbot": [], "after": [], "before": []}
    for call, result in zip(calls, results, strict=True):
        by_kind[call[0]].append(result)
    for rows in by_kind.values():
        rows.sort(key=lambda t: t.slos)
    parts = by_kind["chatbot"]
    chat = parts[0]
    if len(parts) > 1:
        chat = Timed(
            "chatbot (the sum of a call per file)",
            chat.slos,
            sum(t.files for t in parts),
            sum(t.cases for t in parts),
            max(t.wall for t in parts),
            sum(t.cpu for t in parts),
            all(t.ok for t in parts),
            "".join(t.output for t in parts),
        )
    return Result(quick, machine(), chat, by_kind["after"], by_kind["before"], jobs, load=load)


def _per_doubling(rows: list[Timed]) -> dict[int, str]:
    """CPU time at n SLOs over CPU time at n / 2 (2.0 is linear, 4.0 quadratic)."""
    cpu = {t.slos: t.cpu for t in rows}
    return {n: f"{cpu[n] / cpu[n // 2]:.2f}" for n in cpu if n // 2 in cpu and cpu[n // 2] > 0}


def markdown(result: Result) -> str:
    chat = result.chatbot
    verdict = "pass" if chat.ok else "FAIL"
    lines = [
        "# CI path: a service's generated promtool proofs in one call",
        "",
        "`sloengine generate SLO.yaml --out rules/ --tests rule-tests/` then "
        "`promtool test rules rule-tests/*.test.yml`, as the README's CI recipe runs it. "
        "Wall time is the call's; CPU is that promtool process's user + system seconds "
        f"(`python -m bench.cipath{' --quick' if result.quick else ''}"
        f"{f' --jobs {result.jobs}' if result.jobs > 1 else ''}`)."
        + (
            f" The calls ran {result.jobs} at a time, so their wall times include waiting "
            "for each other (and for whatever else the machine ran): only the CPU seconds "
            "compare. The chatbot's files ran a call each: its CPU is their sum (what one "
            "call over them spends, promtool running its files one after another), its "
            "wall time the longest file's."
            if result.jobs > 1
            else ""
        ),
        "",
        "## The example chatbot",
        "",
        table(
            ["service", "SLOs", "files", "cases", "wall (s)", "CPU (s)", "promtool", "target"],
            [
                [
                    "chat-assistant (slos/)",
                    chat.slos,
                    chat.files,
                    chat.cases,
                    f"{chat.wall:.1f}",
                    f"{chat.cpu:.1f}",
                    verdict,
                    (
                        "under 60 s: " + ("met" if chat.ok and chat.wall < 60 else "missed")
                        if result.jobs == 1
                        else f"under 60 s: not judged at --jobs {result.jobs}"
                    ),
                ]
            ],
            "lrrrrrll",
        ),
        "",
        f"Before: {result.chatbot_before}.",
        "",
        f"## One service of n SLOs ({SCALING_WINDOW} window, the chatbot's kinds in turn)",
        "",
    ]
    before = {t.slos: t for t in result.before}
    after_doubling = _per_doubling(result.after)
    before_doubling = _per_doubling(result.before)
    rows = []
    for t in result.after:
        b = before.get(t.slos)
        rows.append(
            [
                t.slos,
                t.files,
                t.cases,
                f"{t.wall:.1f}",
                f"{t.cpu:.1f}",
                f"{t.cpu / t.slos:.2f}",
                after_doubling.get(t.slos, ""),
                "pass" if t.ok else "FAIL",
                f"{b.wall:.1f}" if b else "not run",
                f"{b.cpu:.1f}" if b else "",
                before_doubling.get(t.slos, ""),
                ("pass" if b.ok else "FAIL") if b else "",
            ]
        )
    lines += [
        table(
            [
                "SLOs",
                "files",
                "cases",
                "after: wall (s)",
                "CPU (s)",
                "CPU per SLO",
                "x per doubling",
                "promtool",
                "before: wall (s)",
                "CPU (s)",
                "x per doubling",
                "promtool",
            ],
            rows,
            "rrrrrrrlrrrl",
        ),
        "",
        "After: a test file and a rule file per SLO, one promtool call over the service's "
        "`*.test.yml`. Before: one test file for the service, every case evaluating every "
        "rule group of the service (the same cases), run only at "
        + ", ".join(str(n) for n in BEFORE_SIZES)
        + " SLOs. A ratio per doubling of 2 is linear, 4 quadratic.",
        "",
        "## Machine",
        "",
        table(["", ""], [[k, v] for k, v in result.machine.items()]),
        "",
        "Load average (1, 5, 15 min): "
        + "; ".join(f"{when} {a:.2f}, {b:.2f}, {c:.2f}" for when, (a, b, c) in result.load)
        + ".",
    ]
    failed = [t for t in [chat, *result.after, *result.before] if not t.ok]
    for t in failed:
        lines += ["", f"promtool failed on {t.label}:", "", "```", t.output[-2000:], "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cipath", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{', '.join(map(str, QUICK_SIZES))} SLOs only"
    )
    parser.add_argument("--out", type=Path, default=HERE / "out", help="work directory")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="promtool calls at a time (default 1; more: only the CPU seconds compare)",
    )
    args = parser.parse_args(argv)
    if not launch.available():
        raise SystemExit(f"{launch.PROMTOOL} not found: install Debian's prometheus package")
    result = run(args.out.resolve(), args.quick, args.jobs)
    text = markdown(result)
    (args.out / "cipath.md").write_text(text)
    print(text)
    ok = result.chatbot.ok and all(t.ok for t in [*result.after, *result.before])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
