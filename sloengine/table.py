"""The status table: every SLO's status as text for people, one block per SLO."""

from __future__ import annotations

from sloengine.detectors.verdict import DetectorStatus, events_text, firing_first, summary
from sloengine.model import group_text
from sloengine.promql import number
from sloengine.spec import SLIKind
from sloengine.status import Status


def _format_sli(status: Status) -> str:
    if status.sli is None:
        return "-"
    if status.kind == SLIKind.SPEND:
        return f"${status.sli:,.2f} spent"
    return f"{status.sli * 100:.3f}%"


def render_table(statuses: list[Status]) -> str:
    """Status as text: one block per SLO."""
    blocks = []
    for s in statuses:
        target = f"{number(s.objective)}%" if s.objective is not None else "budget"
        if s.error_budget_remaining is None:
            left = "-"
        else:
            units = ", ".join(f"{v:g} {k.replace('_', ' ')}" for k, v in s.budget_remaining.items())
            left = f"{s.error_budget_remaining * 100:.1f}% ({units})"
        group = group_text(s.group)
        lines = [
            f"{s.service}/{s.slo}"
            + (f" {{{group}}}" if group else "")
            + f"  [{s.state.upper()}]  health: {s.health}"
            + (f" ({s.mode} mode)" if s.mode else ""),
            f"  sli {_format_sli(s)} over {s.window} (objective {target}); budget left {left}",
        ]
        if s.burn_rates:
            lines.append("  burn: " + "  ".join(f"{w} {b:.2f}x" for w, b in s.burn_rates.items()))
        firing = [f"{p.severity} {p.long_window}/{p.short_window}" for p in s.pairs if p.active]
        if firing:
            lines.append("  over threshold: " + ", ".join(firing))
        if s.error_budget_remaining is not None and s.error_budget_remaining <= 0:
            lines.append("  budget exhausted: already spent")
        elif s.error_budget_remaining is not None:
            lines.append(f"  budget exhausted at: {s.exhaustion_at or 'never (not burning)'}")
        if s.error:
            lines.append(f"  error: {s.error}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def render_detector_table(statuses: list[DetectorStatus]) -> str:
    """Detector verdicts as text: one block per detector group, firing first."""
    blocks = []
    for s in firing_first(statuses):
        group = group_text(s.group)
        lines = [
            f"{s.service}/{s.detector}"
            + (f" {{{group}}}" if group else "")
            + f"  [{s.state.upper()}]  health: {s.health}"
            + (f" ({s.mode} mode)" if s.mode else "")
        ]
        if s.error:
            lines.append(f"  error: {s.error}")
        else:
            lines += [f"  {summary(s)}", f"  {events_text(s)}"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
