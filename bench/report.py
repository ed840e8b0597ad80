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
from typing import Any

from bench.accuracy import AccuracyResult
from bench.cost import CostResult
from bench.markdown import table
from bench.rulesets import EXACT, GROUPED, NAMES, OPTIMIZED, SLOENGINE
from bench.scaling import ScalingResult
from bench.timing import SEVERITIES, CaseResult
from bench.timing import Result as TimingResult
from sloengine.sim import launch

ROOT = Path(__file__).resolve().parent.parent
Target = tuple[str, str, bool | None]  # what, the figure, met (None: only reported)


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


# The set each ratio target compares against, and its bound.
COST_TARGETS = (
    ("evaluation time per minute", "eval_seconds", OPTIMIZED, 0.3),
    ("samples touched per minute", "samples", OPTIMIZED, 0.15),
    ("samples touched per minute", "samples", EXACT, 0.02),
)


def _cost_section(cost: CostResult) -> tuple[str, list[Target]]:
    sets = cost.sets
    ours = sets[SLOENGINE]
    rows = []
    for name in (*NAMES, GROUPED):
        if name not in sets:
            continue
        s = sets[name]
        lo, hi = s.eval_spread
        rows.append(
            [
                name,
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
                    ratio(ours.eval_seconds, sets[name].eval_seconds),
                    ratio(ours.samples, sets[name].samples),
                    ratio(ours.series, sets[name].series),
                ]
                for name in NAMES[1:]
                if name in sets
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
    ]
    if GROUPED in sets and cost.groups:
        g, per_slo = sets[GROUPED], len(ours.eval_by_slo)
        body += [
            "",
            f"Grouped SLO (`sloengine-grouped`: availability `group_by: [provider, feature]`, "
            f"{cost.groups} groups, in the same Prometheus), per group per minute:",
            "",
            table(
                ["", "evaluation time", "samples touched", "series created"],
                [
                    [
                        f"the grouped SLO, all {cost.groups} groups",
                        ms(g.eval_seconds),
                        count(g.samples),
                        count(g.series),
                    ],
                    [
                        "per group",
                        ms(g.eval_seconds / cost.groups),
                        count(g.samples / cost.groups),
                        count(g.series / cost.groups),
                    ],
                    [
                        "an ungrouped sloengine SLO, for comparison (mean of four)",
                        ms(ours.eval_seconds / per_slo),
                        count(ours.samples / per_slo),
                        count(ours.series / per_slo),
                    ],
                ],
            ),
        ]
    body += [
        "",
        "Where the samples go (the five costliest rules of each set, over all four SLOs):",
        "",
        _top_rules(cost),
    ]
    targets = [
        _at_most(
            f"{what}: at most {bound}x {name}",
            getattr(ours, attr),
            getattr(sets[name], attr),
            bound,
        )
        for what, attr, name, bound in COST_TARGETS
    ]
    if GROUPED in sets and cost.groups:
        g = sets[GROUPED]
        targets.append(
            (
                f"grouped SLO ({cost.groups} groups): cost per group per minute",
                f"{ms(g.eval_seconds / cost.groups)}, {count(g.samples / cost.groups)} samples",
                None,
            )
        )
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
            cell = acc.cells.get((slo, window, name))
            row.append("—" if cell is None else f"{pct(cell.last)} / {pct(cell.worst)}")
        rows.append(row)

    def worst_of(windows: tuple[str, ...]) -> tuple[float, bool]:
        ours = [c.worst for (_, w, n), c in acc.cells.items() if n == SLOENGINE and w in windows]
        known = [abs(w) for w in ours if w is not None]
        return max(known, default=float("inf")), any(w is None for w in ours)

    short_worst, short_nan = worst_of(("1d", "3d"))
    month_worst, month_nan = worst_of(("30d",))
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
            "hours are overstated several-fold. Pyrra records only the SLO window's "
            "increases (its alert windows, 1d1h43m and 4d6h51m for 30d, are burn rates of "
            "their own, read raw like Sloth's), so it has a 30d row only; its performance "
            "mode sums the recorded 5m increases at the 5m-aligned instants of a subquery "
            "(`[30d:5m]`).",
            "",
            "Sanity check, the two rule sets read the same events: their 5m error ratios agree "
            "within "
            + ", ".join(f"{slo} {gap:.1e}" for slo, gap in acc.agreement_5m.items())
            + " (relative).",
        ]
    )
    targets: list[Target] = [
        (
            "sloengine within 0.1% (relative) of the truth over 30d",
            f"worst {month_worst * 100:.3f}%" + (" (NaN somewhere)" if month_nan else ""),
            month_worst <= 0.001 and not month_nan,
        ),
        (
            "sloengine within 0.5% (relative) of the truth over 1d and 3d",
            f"worst {short_worst * 100:.3f}%" + (" (NaN somewhere)" if short_nan else ""),
            short_worst <= 0.005 and not short_nan,
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
            "detection on the formula's minute (no +1)",
            f"worst {worst_detect:+d}m" if worst_detect < 10**9 else "an expected alert missed",
            worst_detect == 0,
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


def _accuracy_notes(acc: AccuracyResult) -> list[str]:
    errors = [
        abs(w)
        for (_, window, n), c in acc.cells.items()
        if n == SLOENGINE and window == "30d" and (w := c.worst) is not None
    ]
    if max(errors, default=0.0) <= 0.001:
        return []
    return [
        "**sloengine's 30d error is over 0.1%.** Its windows are sums of tiles, each a "
        "`rate()` over the raw series at its own instant; a live server scrapes out of "
        "phase with the rules, so each tile misses the scrape interval between its first "
        "sample and the previous tile's last and extrapolates it from the rest. That is "
        "unbiased, but on sparse bad events it is sampling noise: twelve 5m tiles an hour "
        "leave one interval in five to extrapolation, a raw 1h tile one in sixty (the "
        "rules read the 1h tile raw since commit 18cdcdd). A shorter history (quick mode) "
        "has fewer bad events and more noise."
    ]


def _cost_notes(cost: CostResult) -> list[str]:
    """Why a cost target was missed and what would close it; where sloengine's cost goes."""
    notes: list[str] = []
    sets = cost.sets
    ours, opt = sets[SLOENGINE], sets[OPTIMIZED]
    mine = [r for r in cost.rules if r.rule_set == SLOENGINE]
    raw = [
        r
        for r in mine
        if r.name.startswith(("sloengine:sli_bad:rate5m", "sloengine:sli_total:rate5m"))
        or (r.name.endswith("{window=1h}") and "burn" not in r.name)
    ]
    raw_samples = sum(r.samples for r in raw)
    notes.append(
        "**Where sloengine's cost goes.** Its rules that read raw series (the 5m base "
        f"rates, and the 1h tile in rules since commit 18cdcdd) touch {raw_samples:,} of "
        f"its {ours.samples:,} samples a minute ({raw_samples / max(1, ours.samples):.0%}); "
        "every other window is a sum of non-overlapping tiles read at offsets, two samples "
        "per tile and series (the tile and its zero fill), so a 30d window reads 120 "
        "samples (ten 3d tiles). Time is spent per selector and per rule as much as per "
        "sample: each offset term seeks into a chunk of its own, and a rule group's own "
        "evaluation (writing every rule's result) costs several times its expressions "
        f"through the query API. {ours.rules} rules against Sloth-optimized's {opt.rules}."
    )
    for what, attr, name, bound in COST_TARGETS:
        mine_v, theirs = getattr(ours, attr), getattr(sets[name], attr)
        if mine_v > bound * theirs:
            notes.append(
                f"**{what} against {name}** ({ratio(mine_v, theirs)}, target {bound}x, "
                "missed). What would close it: fewer rules per SLO (the 5m window's copies "
                "of the base rates could be read directly, and the current burn rate is a "
                "copy too) and fewer selectors per term (each offset term carries a second "
                "selector for its zero fill)."
            )
    notes.append(
        f"**Series created**: sloengine writes {ours.series} series for four SLOs, "
        f"{ratio(ours.series, opt.series)} Sloth's {opt.series}: a bad rate, a total rate "
        "and a burn rate per window where Sloth records one ratio, plus metadata. No target; "
        "it is the cost of event weighting (a ratio cannot be averaged, its two halves can)."
    )
    return notes


def _timing_notes(t: TimingResult) -> list[str]:
    notes: list[str] = []
    outage = next((c for c in t.cases if c.case.key == "outage"), None)
    if outage:
        ours_first = outage.runs[SLOENGINE][0].first["page"]
        ref_first = outage.reference.first["page"]
        if ours_first is not None and ref_first is not None and ours_first > ref_first:
            notes.append(
                f"**The fastest page is late** (a full outage pages at {ours_first}m, the "
                f"formula at {ref_first}m)."
            )
    zero = [c for c in t.cases if c.case.key in ("zero", "trickle")]
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
    notes.append(
        "Pyrra is not in this table: its pairs are its own (14x over 1h4m/5m with `for: 2m`, "
        "7x over 6h26m/32m, ... for 30d), so the Workbook formula above is not its reference."
    )
    return notes


def _scaling_notes(s: ScalingResult) -> list[str]:
    notes: list[str] = []
    if s.breakdown:
        b = s.breakdown
        by_n = {x.slos: x for x in s.sizes}
        measured = by_n.get(b.slos)
        if measured and measured.median >= 2:
            slow = [(n, sec) for n, sec in b.imports if not n.startswith(("click", "yaml"))]
            names = " and ".join(f"`{n}` ({sec:.2f} s)" for n, sec in slow[:2])
            notes.append(
                f"**Generation time** ({measured.median:.2f} s for {b.slos:,} SLOs, target "
                f"under 2 s, missed by {measured.median - 2:.2f} s). The rest: start-up "
                f"{b.startup:.2f} s, of which {names} are imported by every command; "
                f"validation and resolution {b.load:.2f} s; rule data {b.build:.2f} s; YAML "
                f"emit {b.emit:.2f} s."
            )
    return notes


# --------------------------------------------------------------------- parts and file


@dataclass
class PartRun:
    """One part's measurement, with what made it: RESULTS.md keeps a section per part."""

    name: str
    command: str
    quick: bool
    machine: dict[str, str]
    started: float
    result: Any = None
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    load: list[tuple[str, tuple[float, float, float]]] = field(default_factory=list)


def part_header(pr: PartRun) -> str:
    lines = [
        f"- Command (from the repository root): `{pr.command}`; this part took "
        f"{pr.seconds / 60:.1f} min"
        + (
            " (" + ", ".join(f"{k} {v:.0f} s" for k, v in pr.stages.items()) + ")"
            if pr.stages
            else ""
        ),
        f"- sloengine: commit {pr.machine['commit']}; date: {pr.machine['date']}",
        "- Machine: "
        + f"{pr.machine['cpus']} CPUs ({pr.machine['cpu']}), {pr.machine['memory']} memory, "
        + f"Linux {pr.machine['kernel']}, Python {pr.machine['python']}, "
        + f"Prometheus {pr.machine['prometheus']}; a shared, noisy VM",
    ]
    if pr.load:
        lines.append(
            "- Load average (1/5/15 min): "
            + "; ".join(f"{k} {a:.2f}/{b:.2f}/{c:.2f}" for k, (a, b, c) in pr.load)
        )
    if pr.quick:
        lines += [
            "",
            "**Quick mode**: a few days of history, fewer evaluations, fewer scenarios and "
            "sizes. The 30d windows read only the history there is; these figures are a smoke "
            "test, not the results.",
        ]
    return "\n".join(lines)


def section(title: str, intro: str, made: tuple[str, list[Target]], notes: list[str]) -> str:
    """A part's markdown: its title, what was measured, its targets, its body and notes."""
    body, targets = made
    out = [f"## {title}", "", intro, ""]
    if targets:
        out += [
            table(["target", "result", ""], [[a, b, verdict(c)] for a, b, c in targets]),
            "",
        ]
    out.append(body)
    if notes:
        out += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(out)


def cost_markdown(result: Any) -> str:
    """Sections 1 and 2: rule cost and long-window accuracy (they share one Prometheus)."""
    m, cost, acc = result.month, result.cost, result.accuracy
    days = (m.end - m.start) / 86400
    evaluations = cost.sets[OPTIMIZED].evaluations
    intro = (
        f"One Prometheus holds {days:.0f} days of a simulated LLM service: "
        f"{m.scenario.series_count:,} raw series (3 providers x 2 models x 3 features; "
        "requests by status, guardrail and validation counters, spend, and four histograms "
        f"with their buckets) at 1m resolution, {m.raw_samples:,} samples, 20:1 day/night "
        "traffic. The recording rules whose history other rules read over a range or at an "
        "offset (sloengine's 5m base rates and raw 1h tile, then each roll-up tile once the "
        "tiles it sums are in; Sloth-optimized's 5m ratio; Pyrra's performance-mode 5m "
        f"increases), {len(m.recorded.layers) if m.recorded else 0} dependency layers "
        "as `sloengine.lookback.plan` orders them, were evaluated over the whole history "
        "on each rule's own grid (`query_range`, as `promtool tsdb create-blocks-from "
        "rules` evaluates them) and written as blocks, and "
        + (
            f"Prometheus compacted the {m.blocks_before_compaction:,} backfilled blocks into "
            f"{m.blocks} before anything was measured."
            if m.compacted
            else f"the {m.blocks_before_compaction:,} backfilled 2h blocks were measured as "
            "they are, not compacted (quick mode)."
        )
        + " The raw series then continue live: Prometheus scrapes the same "
        "simulated counters every minute. It loads every rule set for the same four 30d "
        "SLOs (availability, TTFT, latency, cost per call) side by side, at each set's own "
        "intervals (sloengine 1m, its budget groups 2m30s; Sloth 1m; Pyrra 30s, its "
        "increase groups 2m30s), and reports its own "
        "`prometheus_rule_group_last_duration_seconds` after every evaluation "
        + (
            f"(at least {evaluations} of every group, the cold first one included (quick "
            "mode), over "
            if cost.cold
            else f"({evaluations} evaluations of every 1m group after its first, over "
        )
        + f"{cost.measured_for / 60:.1f} min). Samples touched are each rule's expression run "
        "through `/api/v1/query?stats=all` at one instant. Both are per minute of wall "
        "clock: a group's figure times its evaluations per minute."
    )
    first = section("1. Rule evaluation cost", intro, _cost_section(cost), _cost_notes(cost))
    intro = (
        "The same month (20:1 day/night traffic; incidents mostly in the quiet hours, "
        "e.g. a provider outage at 02:00-04:00 UTC last night, a TTFT slowdown two nights "
        "ago; two in the busy afternoon). Each rule set's own recording expressions for "
        "the window are evaluated over the backfilled history and compared with the "
        "simulator's exact event counts for the same window."
    )
    second = section("2. Long-window accuracy", intro, _accuracy_section(acc), _accuracy_notes(acc))
    return first + "\n\n" + second


def timing_markdown(result: Any) -> str:
    intro = (
        "One SLO, availability 99.9% over 30d (thresholds 14.4x 1h/5m and 6x 6h/30m page, "
        "3x 1d/2h and 1x 3d/6h ticket), 1,000 requests a minute unless the scenario says "
        "otherwise, three clean days before every incident and seven hours after it. "
        "Each scenario runs through `promtool test rules` with a check at every minute."
    )
    return section(
        "3. Alert timing and precision", intro, _timing_section(result), _timing_notes(result)
    )


def scaling_markdown(result: Any) -> str:
    intro = (
        "`sloengine generate DIR --out OUT` in a fresh process, ten SLOs of mixed kinds "
        "per service file; wall time is the median of three runs (one at 10,000), peak "
        "RSS from `wait4`."
    )
    return section("4. Generation scaling", intro, _scaling_section(result), _scaling_notes(result))


TITLE = [
    "# Benchmarks (issues #5 and #15)",
    "",
    "Generated by the benchmark itself; do not edit by hand. Each part is a section with "
    "the command, commit, date and load it was measured with: `python -m bench` runs "
    "every part, `python -m bench --only PART` refreshes only that part's section. Run "
    "on their own, parts write their own files beside this one: `python -m bench.scale` "
    "SCALE.md (rule cost at 1,000 and 5,000 SLOs, the scheduler at 10,000), "
    "`python -m bench.cipath` CIPATH.md (the generated promtool proofs as CI runs them), "
    "`python -m bench.detectors` DETECTORS.md; `python -m bench.backtest` (not a part of "
    "`python -m bench`) writes BACKTEST.md.",
]
BEGIN, END = "<!-- bench part: {} -->", "<!-- end of bench part: {} -->"


def blocks_of(text: str) -> dict[str, str]:
    """The part sections of an existing RESULTS.md, by part name."""
    out = {}
    for chunk in text.split("<!-- bench part: ")[1:]:
        name, _, rest = chunk.partition(" -->\n")
        body, found, _ = rest.partition(END.format(name))
        if found:
            out[name] = body.strip("\n")
    return out


def write_parts(path: Path, fresh: dict[str, str], order: list[str]) -> None:
    """Replace the sections of ``fresh`` parts in ``path``, keep every other part's."""
    old = blocks_of(path.read_text(encoding="utf-8")) if path.exists() else {}
    blocks = {**old, **fresh}
    names = [n for n in order if n in blocks] + [n for n in blocks if n not in order]
    parts = list(TITLE)
    for name in names:
        parts += ["", BEGIN.format(name), blocks[name], END.format(name)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)


def render_part(pr: PartRun, markdown: Any) -> str:
    """A part's section: its markdown with the header of what made it after the title."""
    text: str = markdown(pr.result)
    title, _, rest = text.partition("\n")
    return f"{title}\n\n{part_header(pr)}\n{rest}"
