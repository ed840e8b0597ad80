"""Backtest reports: JSON, text and markdown; a policy change compared; known incidents.

Pure: replays in, documents out. The JSON shape is documented in the README
("Backtest"); text is for a terminal, markdown for a pull-request comment.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sloengine.backtest.replay import Episode, Incident, Replay, iso
from sloengine.conventions import MONTH_WINDOW
from sloengine.durations import format_duration
from sloengine.errors import Problem, SpecError
from sloengine.model import group_text
from sloengine.yamldoc import read_document

Key = tuple[str, str]
INCIDENT_FIELDS = ("name", "start", "end", "service", "slo")


# --------------------------------------------------------------------- known incidents


@dataclass(frozen=True)
class KnownIncident:
    """An incident the team knows it had; ``service`` and ``slo`` narrow which SLOs
    should have caught it (None: any)."""

    name: str
    start: float
    end: float
    service: str | None = None
    slo: str | None = None

    def concerns(self, key: Key) -> bool:
        return self.service in (None, key[0]) and self.slo in (None, key[1])


def parse_incidents(file: str, text: str) -> list[KnownIncident]:
    """Known incidents from YAML: a list (or ``incidents:`` holding one) of mappings with
    ``start`` and ``end`` (ISO 8601) and optional ``name``, ``service``, ``slo``."""
    doc = read_document(file, text)
    data = doc.data
    path: tuple[str | int, ...] = ()
    if isinstance(data, dict) and "incidents" in data:
        data, path = data["incidents"], ("incidents",)
    if not isinstance(data, list):
        raise SpecError(
            [
                doc.problem(
                    path,
                    "expected a list of incidents",
                    "write `- {name: outage, start: 2026-11-03T10:00:00Z, end: 2026-11-03T11:00:00Z}`",
                )
            ]
        )
    problems: list[Problem] = []
    out = []
    for index, item in enumerate(data):
        where = (*path, index)
        if not isinstance(item, dict):
            problems.append(doc.problem(where, "an incident is a mapping", "give start and end"))
            continue
        for extra in sorted(set(item) - set(INCIDENT_FIELDS), key=str):
            problems.append(
                doc.problem(
                    (*where, extra),
                    f"unknown field {extra!r}",
                    f"use {', '.join(INCIDENT_FIELDS)}",
                    key=True,
                )
            )
        times: dict[str, float] = {}
        for name in ("start", "end"):
            value = item.get(name)
            if value is None:
                problems.append(doc.problem(where, f"the incident has no {name}", _TIME_HINT))
                continue
            try:
                moment = datetime.fromisoformat(str(value))
            except ValueError:
                problems.append(
                    doc.problem((*where, name), f"{name} {value!r} is not a time", _TIME_HINT)
                )
                continue
            if moment.tzinfo is None:
                problems.append(
                    doc.problem((*where, name), f"{name} {value!r} has no time zone", _TIME_HINT)
                )
                continue
            times[name] = moment.timestamp()
        if len(times) == 2 and not times["end"] > times["start"]:
            problems.append(
                doc.problem((*where, "end"), "the incident ends before it starts", _TIME_HINT)
            )
            continue
        if len(times) == 2:
            out.append(
                KnownIncident(
                    str(item.get("name") or f"incident {index + 1}"),
                    times["start"],
                    times["end"],
                    _optional(item.get("service")),
                    _optional(item.get("slo")),
                )
            )
    if problems:
        raise SpecError(problems)
    return out


_TIME_HINT = "write ISO 8601 with a zone, e.g. 2026-11-03T10:00:00Z"


def _optional(value: Any) -> str | None:
    return None if value is None else str(value)


def _overlaps(i: Incident, start: float, end: float, until: float) -> bool:
    return i.opened_at <= end and (i.resolved_at or until) >= start


@dataclass(frozen=True)
class Detection:
    incident: KnownIncident
    detected_at: float | None  # when the first alert (page or ticket) of this SLO was open
    paged_at: float | None = None  # when it first paged

    @property
    def time_to_detect(self) -> float | None:
        return self._after(self.detected_at)

    @property
    def time_to_page(self) -> float | None:
        return self._after(self.paged_at)

    def _after(self, t: float | None) -> float | None:
        return None if t is None else max(0.0, t - self.incident.start)


def detections(r: Replay, known: Sequence[KnownIncident]) -> list[Detection]:
    """For each known incident this SLO should catch, when its alerts caught it."""
    out = []
    for k in known:
        if not k.concerns(r.key):
            continue
        caught = [i for i in r.incidents if _overlaps(i, k.start, k.end, r.until)]
        # An incident already open when this one starts is told again only by a page; a
        # page after this one ended was for something else.
        pages = [
            max(i.paged_at, k.start)
            for i in caught
            if i.paged_at is not None and i.paged_at <= k.end
        ]
        out.append(
            Detection(
                k,
                min((i.opened_at for i in caught), default=None),
                min(pages, default=None),
            )
        )
    return out


def pages_outside(r: Replay, known: Sequence[KnownIncident]) -> list[float]:
    """When this SLO paged with no known incident of its own going on."""
    mine = [k for k in known if k.concerns(r.key)]
    return [
        i.paged_at
        for i in r.incidents
        if i.paged_at is not None and not any(_overlaps(i, k.start, k.end, r.until) for k in mine)
    ]


def missed(replays: Sequence[Replay], known: Sequence[KnownIncident]) -> list[KnownIncident]:
    """Known incidents that no SLO in scope alerted on."""
    caught = {
        id(d.incident) for r in replays for d in detections(r, known) if d.detected_at is not None
    }
    return [k for k in known if id(k) not in caught]


# ------------------------------------------------------------------- comparing policies


@dataclass
class Change:
    """What a new policy does to one SLO's pages, against the old one on the same history."""

    added: list[float] = field(default_factory=list)  # pages only the new policy sends
    removed: list[float] = field(default_factory=list)  # pages only the old policy sent
    old_pages: int = 0


def compare(old: Replay | None, new: Replay | None) -> Change:
    """Pages added or removed: a page with no page of the other policy overlapping it."""
    old_paged = [i for i in (old.incidents if old else []) if i.paged_at is not None]
    new_paged = [i for i in (new.incidents if new else []) if i.paged_at is not None]
    either = new or old
    until = either.until if either is not None else 0.0

    def lonely(i: Incident, others: list[Incident]) -> bool:
        assert i.paged_at is not None
        end = i.resolved_at or until
        return not any(_overlaps(o, i.paged_at, end, until) and o.paged_at for o in others)

    return Change(
        added=[i.paged_at for i in new_paged if i.paged_at is not None and lonely(i, old_paged)],
        removed=[i.paged_at for i in old_paged if i.paged_at is not None and lonely(i, new_paged)],
        old_pages=len(old_paged),
    )


# ------------------------------------------------------------------------------ output


@dataclass
class Entry:
    """One SLO's lines in the report: its replay, and the optional comparisons."""

    replay: Replay
    change: Change | None = None
    detections: list[Detection] = field(default_factory=list)
    outside: list[float] | None = None  # pages outside known incidents (with --incidents)


def _row_key(r: Replay) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """One replayed row: the SLO, and the group for a grouped SLO."""
    return (r.service, r.slo, tuple(sorted(r.group.items())))


def name(r: Replay) -> str:
    """``service/slo``, and ``service/slo {feature=chat}`` for a group, as status names it."""
    return f"{r.service}/{r.slo}" + (f" {{{group_text(r.group)}}}" if r.group else "")


def entries(
    replays: Sequence[Replay],
    old: Sequence[Replay] | None = None,
    known: Sequence[KnownIncident] | None = None,
) -> list[Entry]:
    by_key = {_row_key(r): r for r in old or []}
    out = []
    for r in replays:
        entry = Entry(r)
        if old is not None:
            entry.change = compare(by_key.get(_row_key(r)), r)
        if known is not None:
            entry.detections = detections(r, known)
            entry.outside = pages_outside(r, known)
        out.append(entry)
    return out


def as_json(items: Sequence[Entry]) -> list[dict[str, Any]]:
    """One object per SLO, the fields the README documents."""
    out = []
    for e in items:
        r = e.replay
        row: dict[str, Any] = {
            "service": r.service,
            "slo": r.slo,
            "group": r.group,
            "since": iso(r.since),
            "until": iso(r.until),
            "step_seconds": r.step,
            "episodes": [
                {
                    "severity": str(ep.severity),
                    "long_window": ep.long_window,
                    "short_window": ep.short_window,
                    "fired_at": iso(ep.fired_at),
                    "resolved_at": iso(ep.resolved_at),
                    "peak_burn": round(ep.peak_burn, 4),
                }
                for ep in r.episodes
            ],
            "pages": r.pages,
            "tickets": r.tickets,
            "pages_per_week": round(r.pages / r.weeks, 3),
            "tickets_per_week": round(r.tickets / r.weeks, 3),
            "firing_seconds": round(r.firing_seconds),
            "budget_remaining": [[iso(t), _round(v)] for t, v in r.budget],
            "budget_remaining_end": _round(r.budget_end),
            "breached_days": r.breached_days,
            "data_from": iso(r.data_from),
        }
        if e.change is not None:
            row["against"] = {
                "old_pages": e.change.old_pages,
                "pages_added": [iso(t) for t in e.change.added],
                "pages_removed": [iso(t) for t in e.change.removed],
            }
        if e.outside is not None:
            row["incidents"] = [
                {
                    "name": d.incident.name,
                    "start": iso(d.incident.start),
                    "end": iso(d.incident.end),
                    "detected_at": iso(d.detected_at),
                    "time_to_detect_seconds": _round(d.time_to_detect),
                    "paged_at": iso(d.paged_at),
                    "time_to_page_seconds": _round(d.time_to_page),
                }
                for d in e.detections
            ]
            row["pages_outside_incidents"] = [iso(t) for t in e.outside]
        out.append(row)
    return out


def render_json(items: Sequence[Entry]) -> str:
    return json.dumps(as_json(items), indent=2) + "\n"


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def _percent(v: float | None) -> str:
    return "no data" if v is None else f"{v * 100:.1f}%"


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    return format_duration(whole) if whole > 0 else "0s"


def _when(t: float | None) -> str:
    text = iso(t)
    return "still firing" if text is None else text.replace("+00:00", "Z")


def _resolved(t: float | None) -> str:
    return "still firing" if t is None else f"resolved {_when(t)}"


def render_text(items: Sequence[Entry], known: Sequence[KnownIncident] | None = None) -> str:
    lines: list[str] = []
    for e in items:
        r = e.replay
        lines.append(f"{name(r)}  {_when(r.since)} .. {_when(r.until)}")
        lines.append(
            f"  pages {r.pages} ({r.pages / r.weeks:.2f}/week), tickets {r.tickets} "
            f"({r.tickets / r.weeks:.2f}/week), firing {_span(r.firing_seconds)}"
        )
        lines.append(
            f"  budget remaining at the end {_percent(r.budget_end)}; breached on "
            f"{len(r.breached_days)} day(s)"
            + (f": {', '.join(r.breached_days)}" if r.breached_days else "")
        )
        for ep in r.episodes:
            lines.append(
                f"  {ep.severity:<6} {ep.long_window}/{ep.short_window}  fired {_when(ep.fired_at)}"
                f"  {_resolved(ep.resolved_at)}  peak {_peak(ep)}"
            )
        lines.extend(f"  {line}" for line in _extras(e))
        lines.append("")
    if known is not None:
        lines.extend(_missed_lines(items, known))
    return "\n".join(lines).rstrip("\n") + "\n"


def _peak(ep: Episode) -> str:
    """The highest long-window burn while it fired; for a calendar month's forecast page,
    the highest forecast as a share of the month's budget."""
    if ep.long_window == MONTH_WINDOW:
        return f"forecast {ep.peak_burn * 100:.0f}% of the budget"
    return f"burn {ep.peak_burn:.1f}x"


def _extras(e: Entry) -> list[str]:
    out = []
    r = e.replay
    if r.partial:
        out.append(
            "no events at all in the history read"
            if r.data_from is None
            else f"no events before {_when(r.data_from)} (the windows, read from "
            f"{_when(r.read_from)}, count nothing earlier)"
        )
    if e.change is not None:
        c = e.change
        out.append(
            f"against the old policy: {len(c.added)} page(s) added, {len(c.removed)} removed"
            f" (old policy paged {c.old_pages} time(s))"
        )
        out.extend(f"  page added at {_when(t)}" for t in c.added)
        out.extend(f"  page removed at {_when(t)}" for t in c.removed)
    for d in e.detections:
        if d.detected_at is None:
            out.append(f"incident {d.incident.name!r}: not detected")
        else:
            paged = "never paged" if d.paged_at is None else f"paged after {_span(d.time_to_page)}"
            out.append(
                f"incident {d.incident.name!r}: detected after {_span(d.time_to_detect)}, {paged}"
            )
    if e.outside is not None:
        out.append(f"pages outside known incidents: {len(e.outside)}")
        out.extend(f"  page at {_when(t)}" for t in e.outside)
    return out


def _missed_lines(items: Sequence[Entry], known: Sequence[KnownIncident]) -> list[str]:
    gone = missed([e.replay for e in items], known)
    if not gone:
        return [f"every known incident ({len(known)}) was detected"]
    return [f"missed incidents: {len(gone)}"] + [
        f"  {k.name}  {_when(k.start)} .. {_when(k.end)}" for k in gone
    ]


# GitHub refuses a comment body over 65,536 characters.
MARKDOWN_LIMIT = 65_536


def render_markdown(
    items: Sequence[Entry],
    known: Sequence[KnownIncident] | None = None,
    *,
    limit: int = MARKDOWN_LIMIT,
) -> str:
    """A pull-request comment: one summary table, then each SLO's episodes, leaving out
    the episodes of the last SLOs (and saying so) when it would be over ``limit``."""
    if not items:
        return "### sloengine backtest\n\nNo SLOs.\n"
    first = items[0].replay
    compared = any(e.change for e in items)
    head = [
        "### sloengine backtest",
        "",
        f"{_when(first.since)} .. {_when(first.until)}, step {_span(first.step)}",
        "",
        "| SLO | pages/week | tickets/week | firing | budget left | days breached |"
        + (" pages vs old |" if compared else ""),
        "|---|---:|---:|---:|---:|---:|" + ("---|" if compared else ""),
    ]
    for e in items:
        r = e.replay
        row = (
            f"| `{name(r)}` | {r.pages / r.weeks:.2f} | {r.tickets / r.weeks:.2f} "
            f"| {_span(r.firing_seconds)} | {_percent(r.budget_end)} | {len(r.breached_days)} |"
        )
        if e.change is not None:
            row += f" +{len(e.change.added)} / -{len(e.change.removed)} |"
        head.append(row)
    tail = [] if known is None else ["", *_bullets(_missed_lines(items, known))]
    sections = [_details(e) for e in items]
    sections = [x for x in sections if x]
    size = len("\n".join(head + tail)) + 400  # room for the note on what was left out
    kept = []
    for section in sections:
        size += len(section) + 1
        if size > limit:
            break
        kept.append(section)
    lines = head + kept
    if len(kept) < len(sections):
        lines += [
            "",
            f"_The episodes of {len(sections) - len(kept)} more SLO(s) are left out: a "
            f"GitHub comment holds at most {limit:,} characters (`--format text` or `json` "
            "has them all)._",
        ]
    return "\n".join(lines + tail) + "\n"


def _details(e: Entry) -> str:
    """One SLO's collapsed section: its episodes and the extra lines ("" for none)."""
    r = e.replay
    extras = _extras(e)
    if not r.episodes and not extras:
        return ""
    lines = ["", f"<details><summary><code>{name(r)}</code></summary>"]
    if r.episodes:
        lines += [
            "",
            "| severity | pair | fired | resolved | peak |",
            "|---|---|---|---|---:|",
        ]
        lines += [
            f"| {ep.severity} | {ep.long_window}/{ep.short_window} | {_when(ep.fired_at)} "
            f"| {_when(ep.resolved_at)} | {_peak(ep)} |"
            for ep in r.episodes
        ]
    if extras:
        lines += ["", *_bullets(extras)]
    return "\n".join([*lines, "", "</details>"])


def _bullets(lines: Sequence[str]) -> list[str]:
    """Text lines as a markdown list; an indented line is an item of the one above."""
    return [f"  - {x.strip()}" if x.startswith("  ") else f"- {x}" for x in lines]
