"""RESULTS.md: the tables, the targets met or missed, and how the figures were made."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.accuracy import AccuracyResult
from bench.cost import CostResult
from bench.history import Month
from bench.markdown import table
from bench.rulesets import EXACT, NAMES, OPTIMIZED, SLOENGINE
from bench.scaling import ScalingResult
from bench.timing import SEVERITIES, CaseResult
from bench.timing import Result as TimingResult
from sloengine.sim import launch

ROOT = Path(__file__).resolve().parent.parent
Target = tuple[str, str, bool | None]  # what, the figure, met (None: only reported)


@dataclass
class Run:
    command: str
    quick: bool
    started: float
    machine: dict[str, str]
    seconds: float = 0.0
    month: Month | None = None
    cost: CostResult | None = None
    accuracy: AccuracyResult | None = None
    timing: TimingResult | None = None
    scaling: ScalingResult | None = None
    rules_sha: str = ""
    stages: dict[str, float] = field(default_factory=dict)
    results: Path = ROOT / "bench" / "RESULTS.md"
    load: list[tuple[str, tuple[float, float, float]]] = field(default_factory=list)


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def machine() -> dict[str, str]:
    cpu = ""
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as fh:
        kib = int(fh.readline().split()[1])
    dirty = _git("status", "--porcelain", "--", "sloengine")
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{kib / 2**20:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "prometheus": launch.version(),
        "commit": _git("rev-parse", "--short", "HEAD")
        + (" + uncommitted changes in sloengine/" if dirty else ""),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# ------------------------------------------------------------------------ formatting


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def count(n: float) -> str:
    return f"{n:,.0f}"


def ratio(a: float, b: float) -> str:
    if not b:
        return "—"
    r = a / b
    return f"{r:.3f}x" if r < 0.1 else f"{r:.2f}x"


def _at_most(what: str, ours: float, theirs: float, factor: float = 1.0) -> Target:
    """A target met when ours is no more than ``factor`` times theirs; the figure is the ratio."""
    return (what, ratio(ours, theirs), ours <= factor * theirs)


def pct(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "NaN"
    return f"{x * 100:+.{digits}f}%"


def minutes(m: int | float | None) -> str:
    if m is None:
        return "—"
    if isinstance(m, float) and not m.is_integer():
        return f"{m:.2f}m"
    m = int(m)
    if m >= 120:
        h, r = divmod(m, 60)
        return f"{h}h{r:02d}m"
    return f"{m}m"


def verdict(ok: bool | None) -> str:
    if ok is None:
        return "reported"
    return "**met**" if ok else "**missed**"


# ------------------------------------------------------------------------- sections


def _cost_section(run: Run, cost: CostResult) -> tuple[str, list[Target]]:
    sets = cost.sets
    ours, opt, exact = sets[SLOENGINE], sets[OPTIMIZED], sets[EXACT]
    rows = []
    for s in (ours, opt, exact):
        lo, hi = s.eval_spread
        rows.append(
            [
                s.name,
                s.groups,
                s.rules,
                f"{ms(s.eval_seconds)} ({ms(lo)} to {ms(hi)})",
                ms(s.query_seconds),
                count(s.samples),
                count(s.series),
                count(s.written_per_minute),
            ]
        )
    body = [
        table(
            [
                "rule set",
                "groups",
                "rules",
                "evaluation time per minute, median (fastest to slowest)",
                "same expressions via query API",
                "samples touched per minute",
                "series created",
                "samples written per minute",
            ],
            rows,
        ),
        "",
        table(
            ["sloengine vs", "evaluation time", "samples touched", "series created"],
            [
                [
                    name,
                    ratio(ours.eval_seconds, s.eval_seconds),
                    ratio(ours.samples, s.samples),
                    ratio(ours.series, s.series),
                ]
                for name, s in ((OPTIMIZED, opt), (EXACT, exact))
            ],
        ),
        "",
        "Per SLO (evaluation time per minute, median / samples touched per minute):",
        "",
        table(
            ["SLO", *NAMES],
            [
                [slo]
                + [
                    f"{ms(sets[n].eval_by_slo[slo])} / {count(sets[n].samples_by_slo[slo])}"
                    for n in NAMES
                ]
                for slo in ours.eval_by_slo
            ],
        ),
        "",
        "Where the samples go (the five costliest rules of each set, for one SLO "
        "and over all four):",
        "",
        _top_rules(cost),
    ]
    targets = [
        _at_most(
            "evaluation time at most 0.2x Sloth-exact", ours.eval_seconds, exact.eval_seconds, 0.2
        ),
        _at_most(
            "evaluation time no more than Sloth-optimized", ours.eval_seconds, opt.eval_seconds
        ),
        _at_most("samples touched at most 0.2x Sloth-exact", ours.samples, exact.samples, 0.2),
        _at_most("samples touched no more than Sloth-optimized", ours.samples, opt.samples),
    ]
    return "\n".join(body), targets


def _top_rules(cost: CostResult) -> str:
    rows = []
    for name in NAMES:
        totals: dict[str, tuple[int, float]] = {}
        for r in cost.rules:
            if r.rule_set == name:
                samples, seconds = totals.get(r.name, (0, 0.0))
                totals[r.name] = (samples + r.samples, seconds + r.seconds)
        top = sorted(totals.items(), key=lambda kv: -kv[1][0])[:5]
        for rule, (samples, seconds) in top:
            rows.append([name, f"`{rule}`", count(samples), ms(seconds)])
    return table(
        ["rule set", "rule (all four SLOs)", "samples per minute", "evaluation time per minute"],
        rows,
    )


def _accuracy_section(acc: AccuracyResult) -> tuple[str, list[Target]]:
    rows = []
    for slo, window in acc.truth_at_end:
        row: list[object] = [slo, window, f"{acc.truth_at_end[(slo, window)] * 100:.4f}%"]
        for name in NAMES:
            cell = acc.cells[(slo, window, name)]
            row.append(f"{pct(cell.last)} / {pct(cell.worst)}")
        rows.append(row)
    ours = [c.worst for (_, _, n), c in acc.cells.items() if n == SLOENGINE]
    worst_ours = max((abs(w) for w in ours if w is not None), default=float("inf"))
    nan_ours = any(w is None for w in ours)
    opt30 = [c.worst for (_, w, n), c in acc.cells.items() if n == OPTIMIZED and w == "30d"]
    worst_opt = max((abs(w) for w in opt30 if w is not None), default=float("nan"))
    body = "\n".join(
        [
            table(
                [
                    "SLO",
                    "window",
                    "true error ratio (now)",
                    *(f"{n}: now / worst of the day" for n in NAMES),
                ],
                rows,
            ),
            "",
            "Relative error of each rule set's window ratio against the exact event count "
            f"(`now` = the end of the history; `worst` = the largest of {len(acc.instants)} "
            "instants two hours apart over the last day). Sloth computes 1d and 3d from raw "
            "series in both modes; the modes differ only at 30d. Instants fall between "
            "scrapes, as a rule group's do, so even raw `rate()` (Sloth's 1d and 3d) misses "
            "the events between a window's edge and the sample nearest it: a floor of a few "
            "tenths of a percent for every rule set on the sparse bad events of these SLOs. "
            "Sloth-optimized's 30d averages 5m *ratios*: a quiet-hour window carries a "
            "twentieth of a busy one's events but the same weight, so incidents in the quiet "
            "hours are overstated several-fold.",
            "",
            "Sanity check, the two rule sets read the same events: their 5m error ratios agree "
            "within "
            + ", ".join(f"{slo} {gap:.1e}" for slo, gap in acc.agreement_5m.items())
            + " (relative).",
        ]
    )
    targets: list[Target] = [
        (
            "sloengine within 0.5% (relative) of the truth over 1d, 3d and 30d",
            f"worst {worst_ours * 100:.3f}%" + (" (NaN somewhere)" if nan_ours else ""),
            worst_ours <= 0.005 and not nan_ours,
        ),
        (
            "report how far Sloth-optimized is (30d)",
            f"worst {worst_opt * 100:+.1f}%",
            None,
        ),
    ]
    return body, targets


def _timing_section(t: TimingResult) -> tuple[str, list[Target]]:
    rows = []
    worst_detect, worst_reset_over, false_pages = 0, 0, 0
    for cr in t.cases:
        ref = cr.reference
        for name in ("formula", SLOENGINE, "sloth"):
            o = ref if name == "formula" else cr.runs[name][0]
            cells: list[object] = [cr.case.title if name == "formula" else "", name]
            for severity in SEVERITIES:
                first = o.first[severity]
                text = minutes(first)
                if name == "formula" and severity in cr.workbook:
                    text += f" (Workbook {minutes(cr.workbook[severity])})"
                if name != "formula" and severity in cr.case.expect:
                    want = ref.first[severity]
                    if first is not None and want is not None:
                        text += f" ({first - want:+d})"
                        worst_detect = max(worst_detect, abs(first - want))
                    elif first is None:
                        text += " (missed)"
                        worst_detect = max(worst_detect, 10**9)
                cells.append(text)
            for severity in SEVERITIES:
                reset = o.reset[severity]
                text = minutes(reset)
                if o.still_firing[severity]:
                    text = "still firing"
                bound = cr.reset_bound[severity]
                if name != "formula" and reset is not None and severity in cr.case.expect:
                    worst_reset_over = max(worst_reset_over, reset - bound)
                cells.append(text)
            cells.append(f"{o.false[PAGE_]} / {o.episodes[PAGE_]}")
            cells.append(f"{o.false[TICKET_]} / {o.episodes[TICKET_]}")
            if name == SLOENGINE:
                false_pages += o.false[PAGE_]
            cells.append(_budget(cr, name, 1 - t.objective))
            rows.append(cells)
    body = "\n".join(
        [
            table(
                [
                    "scenario",
                    "rules",
                    "time to page",
                    "time to ticket",
                    "page reset",
                    "ticket reset",
                    "false / all pages",
                    "false / all tickets",
                    "budget left after",
                ],
                rows,
            ),
            "",
            "Times are minutes after the incident starts (detection) or ends (reset), on "
            "promtool's 1m evaluation grid; `(+n)` is the difference from the formula row. "
            "The formula row is the Workbook rule evaluated every minute on the exact event "
            "counts (both windows of a pair above its burn rate); for a step incident it fires "
            "at the first evaluation after the Workbook's detection time, shown in brackets. "
            "A false page is a firing episode with no overlap with the formula's firing "
            "minutes (widened by one interval) in a scenario where that severity is expected; "
            "where it is not expected, every episode is false.",
            "",
            *[f"- *{cr.case.title}*: {cr.case.note}." for cr in t.cases if cr.case.note],
            f"- Sloth's alert rules are {'identical' if t.identical_alerts else 'NOT identical'} "
            "in its optimized and exact modes (only the 30d SLI differs), so one Sloth run "
            "covers both; its three groups are evaluated in file order, its best case.",
            f"- promtool runs took {t.seconds:.0f} s in all ({len(t.cases)} scenarios x 2 rule "
            "sets, two at a time).",
        ]
    )
    targets: list[Target] = [
        (
            "detection within one evaluation interval of the formula",
            f"worst {worst_detect:+d}m" if worst_detect < 10**9 else "an expected alert missed",
            worst_detect <= 1,
        ),
        (
            "reset within the short window plus one interval",
            f"worst {worst_reset_over:+d}m against that bound",
            worst_reset_over <= 0,
        ),
        ("zero false pages", f"{false_pages} false pages", false_pages == 0),
    ]
    return body, targets


PAGE_, TICKET_ = SEVERITIES


def _budget(cr: CaseResult, name: str, error_budget: float) -> str:
    if name == "formula":
        total = sum(cr.case.total)
        bad = sum(cr.case.bad)
        return f"{1 - bad / total / error_budget:.3f}" if total else "—"
    left = cr.runs[name][1].budget_left
    return "NaN" if left is None or left != left else f"{left:.3f}"


def _scaling_section(s: ScalingResult) -> tuple[str, list[Target]]:
    rows = []
    prev = s.sizes[0]
    for size in s.sizes:
        per = size.median / size.slos * 1000
        rows.append(
            [
                count(size.slos),
                count(size.files),
                count(size.rules),
                f"{size.output_mb:.1f} MB",
                f"{size.median:.2f} s",
                f"{per:.2f} ms",
                f"{size.peak_rss_mb:.0f} MiB",
                f"{size.median / prev.median:.1f}x" if prev is not size else "",
            ]
        )
        prev = size
    body = [
        table(
            [
                "SLOs",
                "files",
                "rules written",
                "output",
                "wall time (median)",
                "per SLO",
                "peak RSS",
                "time vs the row above",
            ],
            rows,
        )
    ]
    by_n = {x.slos: x for x in s.sizes}
    targets: list[Target] = []
    if 1000 in by_n:
        targets.append(
            (
                "1,000 SLOs in under 2 seconds",
                f"{by_n[1000].median:.2f} s",
                by_n[1000].median < 2,
            )
        )
    if 1000 in by_n and 10000 in by_n:
        growth = by_n[10000].median / by_n[1000].median
        targets.append(("linear (10,000 vs 1,000 SLOs: 10x)", f"{growth:.1f}x", growth <= 11))
    b = s.breakdown
    if b:
        measured = by_n.get(b.slos)
        imports = ", ".join(f"`{name}` {sec:.2f}" for name, sec in b.imports[:2])
        body += [
            "",
            f"Where the time goes for {count(b.slos)} SLOs (one process; PyYAML "
            f"{'with' if b.libyaml else 'without'} libyaml):",
            "",
            table(
                ["phase", "seconds"],
                [
                    [
                        f"start-up: `sloengine --help` (slowest imports: {imports})",
                        f"{b.startup:.2f}",
                    ],
                    ["load_specs: read, validate, resolve", f"{b.load:.2f}"],
                    ["rule_groups: the rules as data", f"{b.build:.2f}"],
                    ["YAML emit, as shipped", f"{b.emit:.2f}"],
                    [
                        "the whole CLI run, for reference (median, table above)",
                        "—" if measured is None else f"{measured.median:.2f}",
                    ],
                    [
                        "for comparison: the same YAML through PyYAML's pure-Python emitter "
                        "(byte-identical)",
                        f"{b.emit_pure:.2f}",
                    ],
                ],
            ),
        ]
    return "\n".join(body), targets


def _notes(run: Run) -> list[str]:
    """Why a target was missed and what would close it; what else the runs showed."""
    notes: list[str] = []
    if run.cost:
        sets = run.cost.sets
        ours, exact, opt = sets[SLOENGINE], sets[EXACT], sets[OPTIMIZED]
        mine = [r for r in run.cost.rules if r.rule_set == SLOENGINE]
        per_rule = sum(r.seconds for r in mine) or 1.0
        period = [r for r in mine if r.name.endswith("{window=30d}")]
        share = sum(r.seconds for r in period) / per_rule
        samples_share = sum(r.samples for r in period) / max(1, ours.samples)
        without = ours.eval_seconds * (1 - share)
        raw_short = [
            r for r in mine if any(r.name.endswith(f"{{window={w}}}") for w in ("2h", "6h"))
        ]
        per_sample = (ours.eval_seconds / max(1, ours.samples)) / (
            exact.eval_seconds / max(1, exact.samples)
        )
        met = ours.eval_seconds <= 0.2 * exact.eval_seconds
        notes.append(
            "**Evaluation time against Sloth-exact** "
            f"({ratio(ours.eval_seconds, exact.eval_seconds)}, target 0.2x, "
            + ("met" if met else "missed")
            + "). sloengine touches "
            f"{ratio(ours.samples, exact.samples)} of Sloth-exact's samples a minute, but each "
            f"of its samples costs {per_sample:.1f} times as much time: Sloth-exact's are raw "
            "counter samples that `rate()` barely computes with, while most of sloengine's go "
            "through `avg_over_time` arithmetic in its two 30d SLO-window rules (43,200 "
            f"recorded 5m rates each), {share:.0%} of its evaluation time and "
            f"{samples_share:.0%} of its samples. No alert reads the 30d window, so those "
            "rules and the budget metadata run in a budget group of their own every 2m30s, "
            "not every minute: a budget figure at most 2m30s old. The previous run, with "
            "everything in one group every minute, "
            "measured 0.25x. Without the SLO-window rules sloengine would be at about "
            f"{ratio(without, exact.eval_seconds)} of Sloth-exact and "
            f"{ratio(without, opt.eval_seconds)} of Sloth-optimized. The raw 2h and 6h short "
            f"windows are the next cost ({sum(r.samples for r in raw_short):,} samples a "
            "minute over four SLOs), the price of exact resets."
        )
        notes.append(
            f"**Series created**: sloengine writes {ours.series} series for four SLOs, "
            f"{ratio(ours.series, opt.series)} Sloth's {opt.series}: a bad rate, a total rate "
            "and a burn rate per window where Sloth records one ratio, plus metadata. No target; "
            "it is the cost of event weighting (a ratio cannot be averaged, its two halves can)."
        )
    if run.timing:
        outage = next((c for c in run.timing.cases if c.case.key == "outage"), None)
        if outage:
            ours_first = outage.runs[SLOENGINE][0].first["page"]
            ref_first = outage.reference.first["page"]
            if ours_first is not None and ref_first is not None and ours_first > ref_first:
                notes.append(
                    f"**The fastest page is one interval late** (a full outage pages at "
                    f"{ours_first}m, the formula at {ref_first}m, Sloth at "
                    f"{outage.runs['sloth'][0].first['page']}m; inside the target). sloengine's "
                    "1h window averages the recorded 5m rates, and in the first minutes of a "
                    "step the newest 5m rate holds only part of it: after one minute of full "
                    "outage the 1h window reads 0.99% bad (the truth is 1.67%, the threshold "
                    "1.44%); after two minutes it reads 2.3% (truth 3.3%) and fires. Once the "
                    "step is 5m old the lag correction has caught up to within about 1/61 (the "
                    "61 samples of a 1h range: 8.25% against 8.33% at 5m, 16.45% against 16.67% "
                    "at 10m), so only a detection time under about 2m (a full outage on the "
                    "14.4x pair) lands a minute late. Reading the page pair's 1h long window "
                    "from raw series, as the short windows are, would remove it for a few "
                    "thousand samples more per evaluation."
                )
        zero = [c for c in run.timing.cases if c.case.key in ("zero", "trickle")]
        nan = [c.case.title for c in zero if _budget(c, "sloth", 1) == "NaN"]
        if nan:
            notes.append(
                "**Sloth's budget goes NaN** after "
                + " and after ".join(nan)
                + ": one 5m window without requests records 0/0 = NaN in "
                "`slo:sli_error:ratio_rate5m`, and the optimized 30d average of it stays NaN "
                "for 30 days (the exact mode reads raw counters and recovers). sloengine "
                "records 0, not NaN, with no traffic."
            )
    if run.scaling and run.scaling.breakdown:
        b = run.scaling.breakdown
        by_n = {x.slos: x for x in run.scaling.sizes}
        measured = by_n.get(b.slos)
        if measured and measured.median >= 2:
            slow = [(n, sec) for n, sec in b.imports if not n.startswith(("click", "yaml"))]
            names = " and ".join(f"`{n}` ({sec:.2f} s)" for n, sec in slow[:2])
            notes.append(
                f"**Generation time** ({measured.median:.2f} s for {b.slos:,} SLOs, target "
                f"under 2 s, missed by {measured.median - 2:.2f} s). The YAML emitter is no "
                f"longer the bottleneck: emitting through libyaml takes {b.emit:.2f} s where "
                f"PyYAML's pure-Python emitter took {b.emit_pure:.2f} s (sloengine switched "
                "during this work; the node graph is still built in Python, which is most of "
                f"what is left of it). The rest: start-up {b.startup:.2f} s, of which "
                f"{names} are imported by every command though `generate` uses neither; "
                f"validation and resolution {b.load:.2f} s; rule data {b.build:.2f} s. What "
                "would close it: import the scheduler and Slack modules only in the commands "
                "that use them, and emit the few fixed shapes of a rule file without the "
                "generic representer."
                + (
                    " The growth is linear; memory grows at 10,000 SLOs because every "
                    "rendered file is held until the all-or-nothing write."
                    if 10_000 in by_n
                    else ""
                )
            )
    return notes


def render(run: Run) -> str:
    parts = [
        "# Benchmarks (issue #5)",
        "",
        "Generated by the benchmark itself; do not edit by hand.",
        "",
        f"- Command (from the repository root): `{run.command}`",
        f"- Total runtime: {run.seconds / 60:.1f} min ("
        + ", ".join(f"{k} {v:.0f} s" for k, v in run.stages.items())
        + ")",
        "- Machine: "
        + f"{run.machine['cpus']} CPUs ({run.machine['cpu']}), {run.machine['memory']} memory, "
        + f"Linux {run.machine['kernel']}, Python {run.machine['python']}, "
        + f"Prometheus {run.machine['prometheus']}; a shared, noisy VM",
        f"- sloengine: commit {run.machine['commit']}; the measured rules are "
        f"`sloengine generate`'s output for bench/slos.py (sha256 {run.rules_sha})",
        f"- Date: {run.machine['date']}",
    ]
    if run.load:
        parts.append(
            "- Load average (1/5/15 min): "
            + "; ".join(f"{k} {a:.2f}/{b:.2f}/{c:.2f}" for k, (a, b, c) in run.load)
        )
    if run.quick:
        parts += [
            "",
            "**Quick mode**: a few days of history, fewer evaluations, fewer scenarios and "
            "sizes. The 30d windows read only the history there is; these figures are a smoke "
            "test, not the results.",
        ]
    targets: list[Target] = []
    sections: list[str] = []
    if run.cost and run.month:
        m = run.month
        days = (m.end - m.start) / 86400
        intro = (
            f"One Prometheus ({run.machine['prometheus']}) holds {days:.0f} days of a simulated "
            f"LLM service: {m.scenario.series_count:,} raw series (3 providers x 2 models x 3 "
            "features; requests by status, guardrail and validation counters, spend, and four "
            "histograms with their buckets) at 1m resolution, "
            f"{m.raw_samples:,} samples, 20:1 day/night traffic. The recording rules that "
            "other rules read over a range (sloengine's two 5m rates, Sloth-optimized's 5m "
            "ratio) were backfilled over the whole history with `promtool tsdb "
            "create-blocks-from rules`, and Prometheus compacted the "
            f"{m.blocks_before_compaction:,} backfilled blocks into {m.blocks} before anything "
            "was measured. The raw series then continue live: Prometheus scrapes the same "
            "simulated counters every minute. It loads the three rule sets for the same four "
            "30d SLOs (availability, TTFT, latency, cost per call) side by side, every group "
            "on a 1m interval except sloengine's budget groups (the 30d window and budget "
            "metadata, every 2m30s), and reports its own "
            "`prometheus_rule_group_last_duration_seconds` after every evaluation "
            f"({run.cost.sets[OPTIMIZED].evaluations} evaluations of every 1m group after its "
            f"first, {run.cost.sets[SLOENGINE].evaluations} of every 2m30s one, "
            f"over {run.cost.measured_for / 60:.1f} min). Samples touched are each rule's "
            "expression run through `/api/v1/query?stats=all` at one instant. Both are per "
            "minute of wall clock: a group's figure times its evaluations per minute."
        )
        _add_section(
            sections, targets, "## 1. Rule evaluation cost", intro, _cost_section(run, run.cost)
        )
    if run.accuracy:
        intro = (
            "The same month (20:1 day/night traffic; incidents mostly in the quiet hours, "
            "e.g. a provider outage at 02:00-04:00 UTC last night, a TTFT slowdown two nights "
            "ago; two in the busy afternoon). Each rule set's own recording expressions for "
            "the window are evaluated over the backfilled history and compared with the "
            "simulator's exact event counts for the same window."
        )
        _add_section(
            sections, targets, "## 2. Long-window accuracy", intro, _accuracy_section(run.accuracy)
        )
    if run.timing:
        intro = (
            "One SLO, availability 99.9% over 30d (thresholds 14.4x 1h/5m and 6x 6h/30m page, "
            "3x 1d/2h and 1x 3d/6h ticket), 1,000 requests a minute unless the scenario says "
            "otherwise, three clean days before every incident and seven hours after it. "
            "Each scenario runs through `promtool test rules` with a check at every minute."
        )
        _add_section(
            sections,
            targets,
            "## 3. Alert timing and precision",
            intro,
            _timing_section(run.timing),
        )
    if run.scaling:
        intro = (
            "`sloengine generate DIR --out OUT` in a fresh process, ten SLOs of mixed kinds "
            "per service file; wall time is the median of three runs (one at 10,000), peak "
            "RSS from `wait4`."
        )
        _add_section(
            sections, targets, "## 4. Generation scaling", intro, _scaling_section(run.scaling)
        )
    parts += [
        "",
        "## Targets",
        "",
        table(["target", "result", ""], [[a, b, verdict(c)] for a, b, c in targets]),
    ]
    for line in sections:
        if line.startswith("## "):
            parts.append("")
        parts.append(line)
    notes = _notes(run)
    if notes:
        parts += ["", "## Notes: missed targets, and what else the runs showed", ""]
        for note in notes:
            parts += [f"- {note}"]
    return "\n".join(parts) + "\n"


def _add_section(
    sections: list[str],
    targets: list[Target],
    title: str,
    intro: str,
    made: tuple[str, list[Target]],
) -> None:
    """A section (title, what was measured, its body) and the targets it checked."""
    body, checked = made
    targets += checked
    sections += [title, "", intro, "", body]


def write(run: Run, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(run), encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)
