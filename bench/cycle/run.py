"""One evaluation cycle at 10 to 5,000 SLOs: sloengine recorded and raw, and slo-generator.

    python -m bench.cycle.run                # the full run, results in bench/cycle/RESULTS.md
    python -m bench.cycle.run --quick        # 10 and 100 SLOs over 3 days: a smoke test
    python -m bench.cycle.run --measure-all  # also measure raw and slo-generator at 5,000

Per size, on one Prometheus holding a month of a simulated LLM service (bench/cycle/data.py):

1. no rules loaded: sloengine ``--mode raw`` cycles, then slo-generator cycles over
   equivalent SLOs (bench/cycle/slos.py), each tool in a process of its own;
2. the rules sloengine generates for those SLOs loaded (``/-/reload``); once every group
   has been evaluated, sloengine ``--mode recorded`` cycles.

Each cycle reports its wall time, the HTTP requests Prometheus served to it (counted by
Prometheus itself) and the peak RSS of the process that ran it. Raw mode and
slo-generator cost the same per SLO whatever the number of SLOs (each SLO is its own 16
queries), so by default they are measured up to 1,000 SLOs and their 5,000-SLO figures are
the 1,000-SLO ones times five, marked as such; ``--measure-all`` measures them too (about
ten more minutes on 2 CPUs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/cycle/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import sloengine
from bench.cycle import data, slos
from bench.markdown import table
from sloengine.loading import load_specs
from sloengine.rules import render
from sloengine.sim import launch
from sloengine.sim.backfill import count_blocks
from sloengine.sim.exporter import serving

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SLOGEN_VENV = HERE / ".venv-slogen"
SLOGEN_REQUIREMENTS = HERE / "requirements-slogen.txt"
HISTORY = HERE / "history.json"  # one summary per full run, to show run-to-run variation
FULL_SIZES = (10, 100, 1000, 5000)
QUICK_SIZES = (10, 100)
INTERVAL = "1m"  # every SLO file's evaluation_interval: sloengine's default
RECORDED_CYCLES = 6  # the first (cold state) and five steady ones
RAW = "sloengine raw"
RECORDED = "sloengine recorded"
SLOGEN = "slo-generator"
TOOLS = (RECORDED, RAW, SLOGEN)

STARTED = time.monotonic()


def log(message: str) -> None:
    elapsed = time.monotonic() - STARTED
    print(f"[{elapsed:6.0f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class Measure:
    """One tool or mode at one size."""

    tool: str
    size: int
    cycles: list[dict[str, Any]] = field(default_factory=list)
    rss_before: int = 0
    max_rss: int = 0
    extrapolated_from: int | None = None  # size the figures were scaled from
    prometheus_cpu: float = 0.0  # Prometheus CPU seconds over the measured cycles
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def steady(self) -> list[dict[str, Any]]:
        """Cycles after the first when there are any (the first builds alert state)."""
        if self.tool == SLOGEN:
            return self.cycles  # stateless: every cycle is alike
        return self.cycles[1:] or self.cycles

    @property
    def seconds(self) -> float:
        return float(statistics.median(c["seconds"] for c in self.steady))

    @property
    def requests(self) -> float:
        return float(statistics.median(c["requests"] for c in self.steady))

    def scaled(self, size: int) -> Measure:
        factor = size / self.size
        cycles = [
            {**c, "seconds": c["seconds"] * factor, "requests": c["requests"] * factor}
            for c in self.cycles
        ]
        return Measure(self.tool, size, cycles, extrapolated_from=self.size)


def ensure_slogen(log_: Any) -> Path:
    """slo-generator in its own venv (never sloengine's), at the pinned versions."""
    python = SLOGEN_VENV / "bin" / "python"
    probe = [str(python), "-c", "import slo_generator.compute"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    log_(f"installing slo-generator into {SLOGEN_VENV.relative_to(ROOT)} ...")
    subprocess.run([sys.executable, "-m", "venv", str(SLOGEN_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-r", str(SLOGEN_REQUIREMENTS)], check=True
    )
    return python


def _worker(command: list[str]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_sloengine(
    prom: data.Prom,
    slo_dir: Path,
    mode: str,
    cycles: int,
    state: Path,
    size: int,
    profile: Path | None = None,
    timeout: float | None = None,
) -> Measure:
    if state.exists():
        state.unlink()
    cpu = prom.cpu_seconds()
    command = [
        sys.executable,
        "-m",
        "bench.cycle.sloengine_worker",
        str(slo_dir),
        prom.url,
        mode,
        str(cycles),
        str(state),
    ]
    if timeout is not None:  # seconds per query; the worker's default is the CLI's
        command += [str(profile or ""), str(timeout)]
    elif profile:
        command.append(str(profile))
    out = _worker(command)
    m = Measure(RECORDED if mode == "recorded" else RAW, size, out["cycles"])
    m.rss_before, m.max_rss = out["rss_before"], out["max_rss"]
    m.prometheus_cpu = prom.cpu_seconds() - cpu
    wrong = [c["modes"] for c in m.cycles if c["modes"] != {mode: size}]
    if wrong:  # an SLO read another way (or not at all) would make the timing meaningless
        m.notes["mode_mismatch"] = wrong
        log(f"    WARNING: not every status was in {mode} mode: {wrong}")
    return m


def run_slogen(python: Path, prom: data.Prom, work: Path, cycles: int, size: int) -> Measure:
    cpu = prom.cpu_seconds()
    out = _worker(
        [
            str(python),
            str(HERE / "slogen_worker.py"),
            str(work / "config.yaml"),
            str(work / "slos"),
            prom.url,
            str(cycles),
        ]
    )
    m = Measure(SLOGEN, size, out["cycles"])
    m.rss_before, m.max_rss = out["rss_before"], out["max_rss"]
    m.prometheus_cpu = prom.cpu_seconds() - cpu
    return m


def raw_cycles(size: int) -> int:
    return 3 if size <= 100 else 2


def slogen_cycles(size: int) -> int:
    return 3 if size <= 100 else 1


def measure_size(
    prom: data.Prom,
    sim: Any,
    size: int,
    work: Path,
    slogen_python: Path,
    measure_upto: int,
    previous: dict[tuple[str, int], Measure],
    profile: Path | None,
) -> list[Measure]:
    work.mkdir(parents=True, exist_ok=True)
    plan = slos.plan(size, sim)
    slo_dir = work / "slos"
    files = slos.write_sloengine(plan, slo_dir, INTERVAL)
    started = time.perf_counter()
    services = load_specs([str(slo_dir)])
    rules_dir = work / "rules"
    rules_dir.mkdir(exist_ok=True)
    rule_files = []
    for service in services:
        path = rules_dir / f"{service.name}.rules.yml"
        path.write_text(render(service))
        rule_files.append(path)
    generate_seconds = time.perf_counter() - started
    objectives = sum(len(s.objectives) for s in services)
    assert objectives == size, (objectives, size)
    log(f"{size} SLOs in {len(files)} SLO.yaml, rules generated in {generate_seconds:.1f}s")
    slos.write_slogen(plan, work / "slogen", prom.url)
    out: list[Measure] = []

    prom.load_rules([])  # raw mode and slo-generator: no sloengine rules in Prometheus
    if size <= measure_upto:
        log(f"  sloengine raw: {raw_cycles(size)} cycles")
        raw = run_sloengine(prom, slo_dir, "raw", raw_cycles(size), work / "raw.db", size)
        log(f"    {raw.seconds:.2f}s, {raw.requests:.0f} requests per cycle")
        log(f"  slo-generator: {slogen_cycles(size)} cycles")
        gen = run_slogen(slogen_python, prom, work / "slogen", slogen_cycles(size), size)
        log(f"    {gen.seconds:.2f}s, {gen.requests:.0f} requests per cycle")
    else:
        base = max(s for (t, s) in previous if t == RAW)
        raw, gen = previous[(RAW, base)].scaled(size), previous[(SLOGEN, base)].scaled(size)
        log(f"  raw mode and slo-generator: scaled from {base} SLOs (--measure-all measures)")
    out += [raw, gen]

    reload_at = time.time()
    cpu = prom.cpu_seconds()
    done0, missed0 = prom.rule_iterations()
    prom.load_rules(rule_files)
    reloaded = time.time() - reload_at
    log(
        f"  {len(rule_files)} rule files loaded in {reloaded:.0f}s; waiting for every group's first evaluation"
    )
    prom.wait_evaluated(size, reload_at, log, timeout=900)
    first_round = time.time() - reload_at
    log(f"    all {size} groups evaluated {first_round:.0f}s after the reload")
    rec = run_sloengine(
        prom, slo_dir, "recorded", RECORDED_CYCLES, work / "recorded.db", size, profile
    )
    log(f"    recorded: {rec.seconds:.3f}s, {rec.requests:.0f} requests per steady cycle")
    done, missed = prom.rule_iterations()
    loaded = time.time() - reload_at
    rec.notes |= {
        "reload_seconds": reloaded,
        "first_evaluation_seconds": first_round,
        "rules": sum(
            1 for line in _lines(rule_files) if line.lstrip().startswith(("- record:", "- alert:"))
        ),
        "prometheus_rss": prom.rss_bytes(),
        "prometheus_cpu_per_minute": (prom.cpu_seconds() - cpu) / loaded * 60,
        "seconds_loaded": loaded,
        "group_evaluations": done - done0,
        "group_evaluations_missed": missed - missed0,
        "generate_seconds": generate_seconds,
    }
    if profile and profile.exists():
        rec.notes["profile"] = str(profile)
    out.append(rec)
    return out


def _lines(files: list[Path]) -> list[str]:
    return [line for f in files for line in f.read_text().splitlines()]


# ------------------------------------------------------------------------------ report


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f}" if n else "n/a"


def _secs(s: float) -> str:
    if s >= 100:
        return f"{s:,.0f}"
    if s >= 10:
        return f"{s:.1f}"
    if s >= 1:
        return f"{s:.2f}"
    return f"{s:.3f}"


def _split(cycle: dict[str, Any]) -> str:
    """Requests of a sloengine cycle as evaluate + first look."""
    evaluate = cycle["evaluate_requests"]
    return f"{evaluate:,} + {cycle['requests'] - evaluate:,}"


def _ratio(x: float) -> str:
    return f"{x:,.0f}x" if x >= 10 else f"{x:.1f}x"


def machine() -> dict[str, str]:
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    slogen = ""
    python = SLOGEN_VENV / "bin" / "python"
    if python.exists():
        slogen = subprocess.run(
            [str(python), "-m", "pip", "freeze"], capture_output=True, text=True, check=False
        ).stdout
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "prometheus": f"prometheus, {launch.version()}",
        "sloengine": getattr(sloengine, "__version__", "0.1.0"),
        "slo-generator": next(
            (x for x in slogen.splitlines() if x.lower().startswith("slo-generator==")), "?"
        ),
        "prometheus-http-client": next(
            (x for x in slogen.splitlines() if x.startswith("prometheus-http-client==")), "?"
        ),
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def report(results: dict[str, Any], measures: list[Measure]) -> str:
    by = {(m.tool, m.size): m for m in measures}
    sizes = sorted({m.size for m in measures})
    lines = [
        "# One scheduler evaluation cycle: sloengine (recorded, raw) vs slo-generator",
        "",
        f"Generated by `{results['command']}` (bench/cycle/run.py) on {results['date']}; "
        f"the whole run took {results['runtime_seconds'] / 60:.1f} minutes.",
        "",
        "## Results",
        "",
        "Seconds, requests and peak RSS per cycle; `vs slo-generator` is slo-generator's "
        "figure divided by this row's (how many times faster, how many times fewer requests), "
        "both measured in this run. Rows marked * are extrapolated (see below).",
        "",
    ]
    rows: list[list[object]] = []
    for size in sizes:
        gen = by.get((SLOGEN, size))
        for tool in TOOLS:
            m = by.get((tool, size))
            if m is None:
                continue
            mark = "*" if m.extrapolated_from else ""
            vs_t = vs_r = "n/a"
            if gen and tool != SLOGEN:
                vs_t = _ratio(gen.seconds / m.seconds)
                vs_r = _ratio(gen.requests / m.requests)
            rows.append(
                [
                    f"{size:,}",
                    tool + mark,
                    _secs(m.seconds),
                    f"{m.requests:,.0f}",
                    _mb(m.max_rss),
                    vs_t,
                    vs_r,
                ]
            )
    header = ["SLOs", "tool / mode", "s per cycle", "requests per cycle", "peak RSS (MB)"]
    header += ["vs slo-generator: time", "vs slo-generator: requests"]
    lines += [table(header, rows, "rlrrrrr"), "", "## Targets", ""]
    lines += results["targets"]
    if results.get("history"):
        lines += [
            "",
            "## Run-to-run variation",
            "",
            "Every full run on this machine (bench/cycle/history.json), seconds per steady "
            "cycle; * extrapolated from 1,000 SLOs. The machine is shared with other jobs, "
            "and their load moves the raw-mode and slo-generator figures by 2x and the "
            "5,000-SLO recorded figure by more; the ratios at 1,000 SLOs move much less.",
            "",
            history_table(results["history"]),
        ]
    lines += [
        "",
        "## Details",
        "",
        "Per cycle: *evaluate* is `Evaluator.evaluate` alone (reading and judging every "
        "SLO), *in query* the time inside `Prometheus.query` (HTTP, JSON decoding, samples; "
        "summed over threads, so it can exceed the wall time in raw mode); *first look* "
        "requests are the scheduler's queries for the label values behind a page or "
        "escalation, made only on the cycle an incident opens or escalates.",
        "",
    ]
    rows = []
    for size in sizes:
        for tool in TOOLS:
            m = by.get((tool, size))
            if m is None or m.extrapolated_from:
                continue
            first = m.cycles[0]
            steady = [c["seconds"] for c in m.steady]
            if tool == SLOGEN:
                first_requests = f"{first['requests']:,}"
                evaluate = in_query = "n/a"
                requests = f"{m.requests:,.0f}"
            else:
                first_requests = _split(first)
                evaluate = _secs(statistics.median(c["evaluate_seconds"] for c in m.steady))
                in_query = _secs(statistics.median(c["query_seconds"] for c in m.steady))
                requests = " / ".join(dict.fromkeys(_split(c) for c in m.steady))
            rows.append(
                [
                    f"{size:,}",
                    tool,
                    len(m.cycles),
                    _secs(first["seconds"]),
                    first_requests,
                    f"{_secs(min(steady))}-{_secs(max(steady))}",
                    evaluate,
                    in_query,
                    requests,
                    _mb(m.rss_before),
                    f"{m.prometheus_cpu / len(m.cycles):.1f}",
                ]
            )
    header = ["SLOs", "tool / mode", "cycles", "first cycle s"]
    header += ["first cycle requests (evaluate + first look)", "steady s min-max"]
    header += ["steady evaluate s", "steady in query s"]
    header += ["steady requests (evaluate + first look)", "RSS before cycles (MB)"]
    header += ["Prometheus CPU s per cycle (while the worker ran)"]
    lines += [
        table(header, rows, "rlrrrrrrrrr"),
        "",
        "What recorded mode moves into Prometheus: the generated rules of that size, from "
        "their reload until the recorded cycles ended. They had run for a minute or two, so "
        "their long windows averaged little history; after a month they read more samples. "
        "Every group runs every minute (`evaluation_interval: 1m`); a *missed* evaluation "
        "is one Prometheus skipped because the group's previous one was still running.",
        "",
    ]
    rows = []
    for size in sizes:
        m = by.get((RECORDED, size))
        if m is None:
            continue
        n = m.notes
        rows.append(
            [
                f"{size:,}",
                f"{n['rules']:,}",
                f"{n['reload_seconds']:.1f}",
                f"{n['first_evaluation_seconds']:.0f}",
                f"{n['prometheus_cpu_per_minute']:.1f}",
                f"{n['group_evaluations']:,.0f} ({n['group_evaluations_missed']:,.0f})",
                _mb(n["prometheus_rss"]),
            ]
        )
    header = ["SLOs", "rules", "reload (s)", "first evaluation of every group after reload (s)"]
    header += ["Prometheus CPU with the rules loaded (s per minute)"]
    header += ["group evaluations (missed)", "Prometheus RSS (MB)"]
    lines.append(table(header, rows, "rrrrrrr"))
    lines += ["", "Statuses per mode (from the last cycle):", ""]
    for size in sizes:
        for tool in (RECORDED, RAW):
            m = by.get((tool, size))
            if m is None or m.extrapolated_from:
                continue
            c = m.cycles[-1]
            lines.append(
                f"- {size:,} {tool}: modes {c['modes']}, health {c['health']}, states {c['states']}"
            )
        gen = by.get((SLOGEN, size))
        if gen and not gen.extrapolated_from:
            c = gen.cycles[-1]
            lines.append(
                f"- {size:,} slo-generator: {c['reports']:,} step reports, "
                f"{c['with_events']:,} with events, {c['alerts']:,} over their step's threshold"
            )
    biggest = max((m for m in measures if m.tool == RECORDED), key=lambda m: m.size, default=None)
    if biggest:
        steady = biggest.steady
        looks = biggest.cycles[0]["requests"] - biggest.cycles[0]["evaluate_requests"]
        lines += [
            "",
            f"Where a recorded cycle's time goes at {biggest.size:,} SLOs: of "
            f"{_secs(biggest.seconds)}s per steady cycle, "
            f"{_secs(statistics.median(c['evaluate_seconds'] for c in steady))}s is "
            "`Evaluator.evaluate`, of which "
            f"{_secs(statistics.median(c['query_seconds'] for c in steady))}s is inside "
            f"`Prometheus.query` (Prometheus selecting and serialising {biggest.size * 16:,} "
            "series, HTTP, JSON decoding, samples); the rest is judging every SLO, the SQLite "
            "state and the scheduler's per-SLO gauges. The first cycle took "
            f"{_secs(biggest.cycles[0]['seconds'])}s: it made {looks:,} first-look queries "
            "one after another (7 for every SLO already burning) in "
            f"{_secs(biggest.cycles[0].get('first_look_seconds', 0))}s, wrote every alert "
            "row, and delivered a notification per new incident (two SQLite transactions "
            f"each, `synchronous=FULL`) in {_secs(biggest.cycles[0].get('deliver_seconds', 0))}s.",
        ]
    profiled = [m for m in measures if m.notes.get("profile")]
    for m in profiled:
        top = Path(m.notes["profile"]).read_text().splitlines()
        start = next((i for i, line in enumerate(top) if "ncalls" in line), 0)
        lines += [
            "",
            f"One more recorded cycle at {m.size:,} SLOs under cProfile (not timed; the "
            "top of `sort_stats('cumulative')`, profiler overhead included):",
            "",
            "```text",
            *[line.rstrip()[:160] for line in top[start : start + 28]],
            "```",
        ]
    m_ = results["machine"]
    lines += [
        "",
        "## Set-up",
        "",
        f"- Machine: {m_['nproc']} CPUs ({m_['cpu']}), {m_['memory']} RAM, Linux "
        f"{m_['kernel']}, Python {m_['python']}; load average at the end {m_['loadavg']} "
        "(the machine is shared: other jobs ran during the benchmark).",
        f"- Prometheus: `{m_['prometheus']}` (Debian), retention 45d, scraping the simulator "
        "every 15s.",
        f"- sloengine {m_['sloengine']} (this checkout); `{m_['slo-generator']}` with "
        f"`{m_['prometheus-http-client']}` in its own venv (bench/cycle/.venv-slogen, pinned "
        "in bench/cycle/requirements-slogen.txt).",
        f"- Data: {results['history_days']} days of the simulated LLM service "
        f"({results['series']} raw series, {results['samples']:,} samples at a 1m step, in "
        f"{results['blocks']} blocks of up to 54h) ending when the run started, then scraped "
        "live.",
    ]
    lines += results["method"]
    return "\n".join(lines) + "\n"


METHOD = [
    "",
    "## Method",
    "",
    "- **SLOs.** Size N is the first N of one list (bench/cycle/slos.py): ten SLOs per "
    "SLO.yaml, 30d window, default burn-rate policy, `evaluation_interval: 1m`; success "
    "rate, TTFT, latency and cost per call in turn, each over one (provider, model, "
    "feature) slice of the simulated service, thresholds and objectives varied. All load "
    "through `sloengine.loading.load_specs` (what `sloengine validate` runs). The "
    "slo-generator configs are the same SLOs: `good_bad_ratio` (good = "
    '`status="ok"`, valid = all requests) and `distribution_cut` (good = the threshold '
    "bucket, valid = `_count`), with one error-budget-policy step per window sloengine "
    "reads (5m, 30m, 1h, 2h, 6h, 1d, 3d, 30d) at the burn rate sloengine checks there. "
    "So both tools compute bad and total events at the same 8 windows from the same "
    "series: 16 queries per SLO each in raw mode and in slo-generator.",
    "- **A cycle.** sloengine: `Engine.cycle()` from the scheduler (`sloengine run`): "
    "evaluate every SLO (`Evaluator`, concurrency 8), advance alert state in SQLite, "
    "deliver notifications (a console notifier writing to memory), update its metrics. "
    "The first cycle of a process creates every alert row and takes a *first look* "
    "(a few extra queries) for every SLO already burning; it is shown apart, and the "
    "main table uses the median of the later cycles. slo-generator: `compute()` for every "
    "SLO config, as `slo-generator compute -f DIR` runs them (sequentially; it has no "
    "concurrency, and its Prometheus client opens a new connection per query), no "
    "exporters. Both run in a warm process of their own; imports and config loading are "
    "not timed.",
    "- **Requests** are counted by Prometheus (`prometheus_http_requests_total` on its "
    "`/api/` handlers, read from `/metrics` before and after each cycle): no proxy sits in "
    "the path, and both tools are counted the same way. For sloengine they match its own "
    "counter (`Prometheus.requests`) exactly. *Prometheus CPU* is its "
    "`process_cpu_seconds_total` over the worker's run divided by its cycles (in recorded "
    "mode it includes the rule evaluation going on meanwhile).",
    "- **Peak RSS** is the worker process's `ru_maxrss` (interpreter, imports and loaded "
    "SLOs included); the details table shows the RSS before the first cycle.",
    "- **Recorded mode** is measured with the generated rules loaded for that size only "
    "(`/-/reload`; the groups of other sizes are unloaded and their series marked stale), "
    "after every group has been evaluated at least once (per-group "
    "`prometheus_rule_group_last_evaluation_timestamp_seconds`); every status of every "
    "cycle is checked to be in recorded mode (listed above). Raw mode and slo-generator run "
    "with no sloengine rules loaded.",
    "- **Extrapolation.** Raw mode and slo-generator issue 16 queries per SLO whatever the "
    "number of SLOs, each over that SLO's own series, so their cost is linear in N; unless "
    "`--measure-all` is given, their 5,000-SLO rows are the 1,000-SLO measurements times "
    "five (marked *; no RSS is claimed for them).",
]


def summary(results: dict[str, Any], by: dict[tuple[str, int], Measure]) -> dict[str, Any]:
    """The figures of this run that the run-to-run table compares."""
    sizes: dict[str, Any] = {}
    for (tool, size), m in sorted(by.items(), key=lambda x: (x[0][1], x[0][0])):
        entry = sizes.setdefault(str(size), {})
        entry[tool] = {
            "seconds": round(m.seconds, 4),
            "requests": m.requests,
            "extrapolated": m.extrapolated_from is not None,
        }
        if tool == RECORDED:
            entry["recorded_first_cycle_seconds"] = round(m.cycles[0]["seconds"], 3)
            entry["group_evaluations"] = m.notes.get("group_evaluations")
            entry["group_evaluations_missed"] = m.notes.get("group_evaluations_missed")
    return {
        "date": results["date"],
        "command": results["command"],
        "runtime_minutes": round(results["runtime_seconds"] / 60, 1),
        "loadavg_end": results["machine"]["loadavg"],
        "sizes": sizes,
    }


def history_table(history: list[dict[str, Any]]) -> str:
    def cell(run: dict[str, Any], size: int, tool: str) -> str:
        m = run["sizes"].get(str(size), {}).get(tool)
        if not m:
            return "n/a"
        return _secs(m["seconds"]) + ("*" if m["extrapolated"] else "")

    def ratio(run: dict[str, Any], size: int) -> str:
        entry = run["sizes"].get(str(size), {})
        if RECORDED not in entry or SLOGEN not in entry:
            return "n/a"
        star = "*" if entry[SLOGEN]["extrapolated"] else ""
        return _ratio(entry[SLOGEN]["seconds"] / entry[RECORDED]["seconds"]) + star

    def extra(run: dict[str, Any], size: int) -> str:
        entry = run["sizes"].get(str(size), {})
        first = entry.get("recorded_first_cycle_seconds")
        missed, done = entry.get("group_evaluations_missed"), entry.get("group_evaluations")
        text = "n/a" if first is None else _secs(first)
        if done:
            text += f"; {missed:,.0f} of {done:,.0f} missed"
        return text

    header = ["run (UTC)", "command", "minutes", "load avg at end"]
    rows: list[list[object]] = []
    for size in (1000, 5000):
        header += [f"{name} {size:,}" for name in ("recorded", "raw", "slo-generator")]
        header.append(f"ratio {size:,}")
    header.append("5,000: first recorded cycle s; group evaluations missed")
    for run in history:
        row: list[object] = [run["date"], f"`{run['command']}`", run["runtime_minutes"]]
        row.append(run["loadavg_end"])
        for size in (1000, 5000):
            row += [cell(run, size, tool) for tool in (RECORDED, RAW, SLOGEN)] + [ratio(run, size)]
        rows.append([*row, extra(run, 5000)])
    return table(header, rows, "llrl" + "r" * 8 + "l")


def targets(by: dict[tuple[str, int], Measure]) -> list[str]:
    out = []
    rec = by.get((RECORDED, 1000))
    gen = by.get((SLOGEN, 1000))
    if rec:
        ok = rec.seconds < 1
        out.append(
            f"- Recorded mode, 1,000 SLOs in under a second: **{'met' if ok else 'missed'}** "
            f"({_secs(rec.seconds)}s per steady cycle, slowest steady cycle "
            f"{_secs(max(c['seconds'] for c in rec.steady))}s)."
        )
    recs = sorted((s, m) for (t, s), m in by.items() if t == RECORDED)
    if recs:
        reads = {s: sorted({c["evaluate_requests"] for c in m.cycles}) for s, m in recs}
        constant = len({tuple(v) for v in reads.values()}) == 1 and all(
            len(v) == 1 for v in reads.values()
        )
        shown = ", ".join(f"{s:,}: {'/'.join(map(str, v))}" for s, v in reads.items())
        extra = {
            s: sorted({c["requests"] - c["evaluate_requests"] for c in m.steady}) for s, m in recs
        }
        looks = ", ".join(f"{s:,}: {'/'.join(map(str, v))}" for s, v in extra.items())
        out.append(
            f"- Constant request count in recorded mode: **{'met' if constant else 'missed'}** "
            f"for the evaluation: requests to read and judge every SLO, in every cycle "
            f"measured, by size: {shown}. A scheduler cycle adds a *first look* (7 queries) "
            "for each SLO whose incident opens or escalates in that cycle, which is rare after "
            "the first cycle but grows with how many SLOs start burning at once (first-look "
            f"requests in the steady cycles, by size: {looks}; first cycles in the details)."
        )
    if rec and gen:
        ratio = gen.seconds / rec.seconds
        ok = ratio >= 50
        out.append(
            f"- Recorded mode at least 50x faster than slo-generator at 1,000 SLOs: "
            f"**{'met' if ok else 'missed'}** ({_ratio(ratio)}: {_secs(gen.seconds)}s vs "
            f"{_secs(rec.seconds)}s)."
        )
    for size in sorted({s for (_, s) in by}):
        r, g = by.get((RECORDED, size)), by.get((SLOGEN, size))
        if r and g and size != 1000:
            out.append(
                f"  - at {size:,} SLOs: {_ratio(g.seconds / r.seconds)}"
                f"{' (slo-generator extrapolated)' if g.extrapolated_from else ''}"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cycle.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10 and 100 SLOs, 3 days of data")
    parser.add_argument("--sizes", help="comma-separated SLO counts (default 10,100,1000,5000)")
    parser.add_argument("--days", type=int, help="days of history (default 30, quick 3)")
    parser.add_argument(
        "--measure-all", action="store_true", help="measure raw and slo-generator at 5,000 too"
    )
    parser.add_argument("--out", type=Path, default=HERE / "out", help="work directory")
    parser.add_argument("--results", type=Path, help="default bench/cycle/RESULTS.md")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else None
    sizes = sizes or list(QUICK_SIZES if args.quick else FULL_SIZES)
    days = args.days or (3 if args.quick else 30)
    measure_upto = max(sizes) if args.measure_all else min(max(sizes), 1000)
    results_path = args.results or (
        args.out / "RESULTS-quick.md" if args.quick else HERE / "RESULTS.md"
    )
    command = "python -m bench.cycle.run" + (" " + shlex.join(argv or sys.argv[1:])).rstrip()

    if not launch.available():
        raise SystemExit(
            f"{launch.PROMETHEUS} or {launch.PROMTOOL} not found: install Debian's prometheus package"
        )
    slogen_python = ensure_slogen(log)
    args.out.mkdir(parents=True, exist_ok=True)

    log(f"backfilling {days} days of the simulated service ...")
    tsdb = args.out / "tsdb"
    sim, samples = data.make_history(tsdb, days, log)
    blocks = count_blocks(tsdb)
    measures: list[Measure] = []
    by: dict[tuple[str, int], Measure] = {}
    with (
        serving(sim) as target,
        data.prometheus(tsdb, args.out / "prometheus", scrape_target=target) as prom,
    ):
        log(f"Prometheus on {prom.url}, scraping the simulator at {target}")
        time.sleep(35)  # two scrapes, so the newest 5m window has live samples
        for size in sizes:
            profile = args.out / f"profile-recorded-{size}.txt" if size == max(sizes) else None
            for m in measure_size(
                prom, sim, size, args.out / f"n{size}", slogen_python, measure_upto, by, profile
            ):
                measures.append(m)
                by[(m.tool, m.size)] = m
        prom.load_rules([])

    results: dict[str, Any] = {
        "command": command,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "runtime_seconds": time.monotonic() - STARTED,
        "history_days": days,
        "series": sim.series_count,
        "samples": samples,
        "blocks": blocks,
        "machine": machine(),
        "targets": targets(by),
        "method": METHOD,
    }
    if not args.quick and 1000 in sizes:
        history = json.loads(HISTORY.read_text()) if HISTORY.exists() else []
        history.append(summary(results, by))
        HISTORY.write_text(json.dumps(history, indent=1) + "\n")
        results["history"] = history
    (args.out / "results.json").write_text(
        json.dumps({**results, "measures": [m.__dict__ for m in measures]}, indent=1, default=str)
    )
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(report(results, measures))
    log(f"results in {results_path}")
    print(results_path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
