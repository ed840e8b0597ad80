"""``python -m bench.cipath``: the CI path, a service's generated promtool proofs in one call.

    python -m bench.cipath            # the chatbot, and 5, 10, 20, 40 SLOs of one service
    python -m bench.cipath --quick    # the chatbot, and 5, 10 SLOs (no old layout)
    python -m bench.cipath --jobs 4   # four promtool calls at a time: CPU seconds only

``sloengine generate --tests DIR`` writes each SLO's proof beside its own rule groups, and
the README's CI recipe runs them in one call, ``promtool test rules DIR/*.test.yml``.
This times that call (wall time, and the CPU seconds promtool spent, which another
process on the machine does not inflate as much) for the example chatbot
(``slos/chat-assistant.yaml``: its SLOs, month and detector proofs) and for services of
5 to 40 SLOs. Linear time doubles with the SLO count: the table gives the ratio per
doubling. Beside the chatbot's proofs as generated (each case in a file that loads only
the rules it reads and steps as wide as they allow), ``--chatbot-before`` times the same
cases in the layout before (per SLO one file stepping 1m over all its rules) in the same
run: many minutes, as each spend pair's steady burns then step 1m through three days. For the small services, the layout before that (one test file per service,
every case evaluating every rule group of the service) is rebuilt from the same cases.
Results go to stdout, bench/out/cipath.md and, with the command, commit and machine that
made them, bench/CIPATH.md.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from click.testing import CliRunner

from bench import report
from bench.markdown import table
from bench.report import machine
from sloengine import conventions as cv
from sloengine.cli import cli
from sloengine.detectors.ruletests import DETECTOR_SUFFIX
from sloengine.formats import Format, file_name
from sloengine.inputs import plan
from sloengine.loading import load_specs
from sloengine.rules import render, rule_groups
from sloengine.ruletests import (
    RULES_SUFFIX,
    TEST_SUFFIX,
    file_stem,
    own_rules,
    proof_file,
    slo_tests,
)
from sloengine.sim import launch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHATBOT = ROOT / "slos" / "chat-assistant.yaml"
SIZES = (5, 10, 20, 40)
QUICK_SIZES = (5, 10)  # quick: no 20 (one doubling, 5 -> 10, not two)
BEFORE_SIZES = (5, 10)  # the old layout grows with the square: only where it is cheap
QUICK_BEFORE_SIZES: tuple[int, ...] = ()  # quick: no old layout (82 s at 5, 320 s at 10)
# The scaling services' SLOs: the chatbot's kinds in turn, on a 1d window so that a
# service of 40 runs in minutes (each SLO's cost grows with its longest alert window).
SCALING_WINDOW = "1d"
KINDS = (
    "{success_rate: {}}",
    "{ttft: {threshold: 1s}}",
    "{latency: {threshold: 5s}}",
    "{cost_per_call: {threshold_usd: 0.1}}",
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
    # The same chatbot proofs in the layout before (per SLO one 1m file, all its rules);
    # None when not run (--quick).
    chatbot_before: Timed | None = None
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


def chatbot_before(work: Path) -> tuple[Path, list[str]]:
    """The chatbot's proofs in the layout before they were split by the rules they read:
    per SLO one test file of all its cases stepping 1m against all its rules (the same
    cases), and the same detector files."""
    tests, files = generated(CHATBOT, work)
    for name in files:
        if DETECTOR_SUFFIX not in name:
            (tests / name).unlink()
    for path in tests.glob("*" + RULES_SUFFIX):
        if DETECTOR_SUFFIX not in path.name:
            path.unlink()
    (service,) = load_specs([str(CHATBOT)])
    groups = rule_groups(service)
    for obj in service.objectives:
        p = plan(obj)
        if p.reason:
            continue
        stem, what = file_stem(obj.service, obj.name), f"{obj.service}/{obj.name}"
        own = [g for g in groups if cv.group_slo(g["name"]) == (obj.service, obj.name)]
        service_file = file_name(service, Format.PROMETHEUS)
        (tests / (stem + RULES_SUFFIX)).write_text(own_rules(service, what, own, service_file))
        text = proof_file(service, what, stem + RULES_SUFFIX, "1m", slo_tests(obj, p))
        (tests / (stem + TEST_SUFFIX)).write_text(text)
    return tests, sorted(p.name for p in tests.glob("*" + TEST_SUFFIX))


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


def run(
    out: Path,
    quick: bool,
    jobs: int = 1,
    sizes: tuple[int, ...] | None = None,
    before_sizes: tuple[int, ...] | None = None,
    with_before: bool = False,
) -> Result:
    """Every measurement; ``jobs`` promtool calls at a time (1: wall times mean what they
    say; more: only the CPU seconds do, each call's own)."""
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="cipath-", dir=out))
    load = [("at start", os.getloadavg())]
    (chatbot,) = load_specs([str(CHATBOT)])
    calls: list[tuple[str, str, int, Path, list[str]]] = []  # kind, label, SLOs, dir, files
    tests, files = generated(CHATBOT, work / "chatbot")
    layouts = [("chatbot", tests, files)]
    if with_before:
        layouts.append(("chatbot-before", *chatbot_before(work / "chatbot-before")))
    for kind, directory, names in layouts:
        if jobs == 1:
            calls.append((kind, kind, len(chatbot.objectives), directory, names))
        else:
            # promtool runs the files of a call one after another: the call's CPU is the
            # sum of the files' (measured a file a call, at the same time).
            calls += [(kind, f"{kind} {f}", len(chatbot.objectives), directory, [f]) for f in names]
    old_sizes = before_sizes
    if old_sizes is None:
        old_sizes = QUICK_BEFORE_SIZES if quick else BEFORE_SIZES
    for n in sizes or (QUICK_SIZES if quick else SIZES):
        spec = service_file(work, n)
        tests, files = generated(spec, work / f"after-{n}")
        calls.append(("after", f"{n} SLOs", n, tests, files))
        if n in old_sizes:
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
    by_kind: dict[str, list[Timed]] = {
        "chatbot": [],
        "chatbot-before": [],
        "after": [],
        "before": [],
    }
    for call, result in zip(calls, results, strict=True):
        by_kind[call[0]].append(result)
    for rows in by_kind.values():
        rows.sort(key=lambda t: t.slos)
    before = _one_call(by_kind["chatbot-before"]) if by_kind["chatbot-before"] else None
    return Result(
        quick,
        machine(),
        _one_call(by_kind["chatbot"]),
        by_kind["after"],
        by_kind["before"],
        jobs,
        before,
        load=load,
    )


def _one_call(parts: list[Timed]) -> Timed:
    """A layout's files measured a call each, as the one call over them all would spend."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    return Timed(
        f"{first.label.split()[0]} (the sum of a call per file)",
        first.slos,
        sum(t.files for t in parts),
        sum(t.cases for t in parts),
        max(t.wall for t in parts),
        sum(t.cpu for t in parts),
        all(t.ok for t in parts),
        "".join(t.output for t in parts),
    )


def _per_doubling(rows: list[Timed]) -> dict[int, str]:
    """CPU time at n SLOs over CPU time at n / 2 (2.0 is linear, 4.0 quadratic)."""
    cpu = {t.slos: t.cpu for t in rows}
    return {n: f"{cpu[n] / cpu[n // 2]:.2f}" for n in cpu if n // 2 in cpu and cpu[n // 2] > 0}


def _target(t: Timed, jobs: int) -> str:
    """Under 60 s: the call's wall time when it ran alone, its CPU seconds otherwise."""
    if jobs == 1:
        return "under 60 s wall: " + ("met" if t.ok and t.wall < 60 else "missed")
    return "under 60 s CPU: " + ("met" if t.ok and t.cpu < 60 else "missed")


def markdown(result: Result) -> str:
    chat = result.chatbot
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
            ["layout", "SLOs", "files", "cases", "wall (s)", "CPU (s)", "promtool", "target"],
            [
                [
                    label,
                    t.slos,
                    t.files,
                    t.cases,
                    f"{t.wall:.1f}",
                    f"{t.cpu:.1f}",
                    "pass" if t.ok else "FAIL",
                    _target(t, result.jobs) if t is chat else "",
                ]
                for label, t in (
                    ("after: split by the rules each case reads", chat),
                    ("before: per SLO one 1m file, all its rules", result.chatbot_before),
                )
                if t is not None
            ],
            "lrrrrrll",
        ),
        "",
        "Both layouts hold the same cases, from one generator, and the same five detector "
        "files; before, each SLO's cases were one file stepping 1m over all its rules"
        + (
            f": {result.chatbot_before.cpu / chat.cpu:.1f} times the CPU."
            if result.chatbot_before is not None and chat.cpu > 0
            else " (not run: `--chatbot-before`)."
        ),
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
        "After: per SLO its own test and rule files and one pair per part (the alerts' "
        "cases, each pair's outage), one promtool call over the service's `*.test.yml`. "
        "Before: one test file for the service, every case evaluating every "
        "rule group of the service (the same cases), run only at "
        + (", ".join(str(t.slos) for t in result.before) or "no size (not run)")
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
    if result.chatbot_before is not None and not result.chatbot_before.ok:
        failed.append(result.chatbot_before)
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
    parser.add_argument(
        "--sizes", help=f"comma-separated service sizes (default {','.join(map(str, SIZES))})"
    )
    parser.add_argument(
        "--before-sizes",
        help="sizes also run in the service-wide layout (default "
        f"{','.join(map(str, BEFORE_SIZES))}, --quick none; "
        "'' for none)",
    )
    parser.add_argument(
        "--chatbot-before",
        action="store_true",
        help="also time the chatbot's cases in the 1m layout (each spend pair's steady "
        "burns then step 1m through three days: many minutes)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        help="where the section goes, with what made it (default bench/CIPATH.md; "
        "--quick: OUT/CIPATH.md)",
    )
    args = parser.parse_args(argv)
    if not launch.available():
        raise SystemExit(f"{launch.PROMTOOL} not found: install Debian's prometheus package")
    started, clock = time.time(), time.monotonic()
    sizes = tuple(int(n) for n in args.sizes.split(",")) if args.sizes else None
    before_sizes = (
        None
        if args.before_sizes is None
        else tuple(int(n) for n in args.before_sizes.split(",") if n)
    )
    result = run(
        args.out.resolve(), args.quick, args.jobs, sizes, before_sizes, args.chatbot_before
    )
    text = markdown(result)
    (args.out / "cipath.md").write_text(text)
    print(text)
    words = sys.argv[1:] if argv is None else argv
    made = report.PartRun(
        "cipath",
        "python -m bench.cipath" + "".join(f" {shlex.quote(w)}" for w in words),
        args.quick,
        result.machine,
        started,
        result,
        time.monotonic() - clock,
        load=result.load,
    )
    results = args.results or (args.out / "CIPATH.md" if args.quick else HERE / "CIPATH.md")
    results.write_text(report.render_part(made, markdown))
    ok = all(t.ok for t in [result.chatbot, *result.after, *result.before])
    ok = ok and (result.chatbot_before is None or result.chatbot_before.ok)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
