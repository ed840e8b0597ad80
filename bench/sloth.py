"""The baseline: Sloth-shaped rules for the same SLOs, written from Sloth's documented shapes.

Sloth cannot be built here, so this module writes the rule shapes its generated examples
show, for a 30d SLO on the four Workbook window pairs:

- per window ``w`` in 5m, 30m, 1h, 2h, 6h, 1d, 3d: ``slo:sli_error:ratio_rate<w>`` =
  ``(errors over w) / (total over w)``, both read from the raw series;
- the SLO window (30d) either *optimized*, an average of the recorded 5m *ratios*
  (``sum_over_time(...ratio_rate5m[30d]) / count_over_time(...ratio_rate5m[30d])``),
  or *exact*, the raw ratio over 30d like every other window;
- metadata (objective, budget, period, current and period burn, budget remaining, info);
- one page alert (14.4x over 1h and 5m, or 6x over 6h and 30m) and one ticket alert
  (3x over 1d and 2h, or 1x over 3d and 6h), each window compared with
  ``burn x (1 - objective)``.

Only the shapes come from Sloth; the code is this project's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from sloengine.promql import labels as label_matchers
from sloengine.promql import number

Mode = Literal["optimized", "exact"]
MODES: tuple[Mode, ...] = ("optimized", "exact")
WINDOW_PLACEHOLDER = "{{.window}}"

SLI_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
PERIOD = "30d"
PERIOD_DAYS = 30

# (severity, ((burn, long, short), (burn, long, short))): each alert ORs two pairs.
ALERT_PAIRS: tuple[tuple[str, tuple[tuple[float, str, str], ...]], ...] = (
    ("page", ((14.4, "1h", "5m"), (6, "6h", "30m"))),
    ("ticket", ((3, "1d", "2h"), (1, "3d", "6h"))),
)

ID, SERVICE, SLO, WINDOW, SEVERITY = (
    "sloth_id",
    "sloth_service",
    "sloth_slo",
    "sloth_window",
    "sloth_severity",
)
SLI_ERROR = "slo:sli_error:ratio_rate"

Rule = dict[str, Any]


@dataclass(frozen=True)
class SlothSLO:
    """One SLO as a Sloth user would write it: raw error and total queries with a window."""

    service: str
    name: str
    objective: float  # percent, e.g. 99.5
    errors: str  # PromQL with {{.window}} as the range
    total: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.service}-{self.name}"

    @property
    def error_budget(self) -> float:
        return round(1 - self.objective / 100, 12)

    def ids(self) -> dict[str, str]:
        return {ID: self.id, SERVICE: self.service, SLO: self.name}

    def selector(self) -> str:
        return "{" + label_matchers(self.ids()) + "}"


def raw_ratio(slo: SlothSLO, window: str) -> str:
    errors = slo.errors.replace(WINDOW_PLACEHOLDER, window)
    total = slo.total.replace(WINDOW_PLACEHOLDER, window)
    return f"({errors})\n/\n({total})"


def period_ratio(slo: SlothSLO, mode: Mode) -> str:
    if mode == "exact":
        return raw_ratio(slo, PERIOD)
    base = f"{SLI_ERROR}5m{slo.selector()}[{PERIOD}]"
    return f"sum_over_time({base})\n/ ignoring ({WINDOW})\ncount_over_time({base})"


def sli_rules(slo: SlothSLO, mode: Mode) -> list[Rule]:
    rules = []
    for window in (*SLI_WINDOWS, PERIOD):
        expr = period_ratio(slo, mode) if window == PERIOD else raw_ratio(slo, window)
        rules.append(
            {
                "record": f"{SLI_ERROR}{window}",
                "expr": expr,
                "labels": {**slo.labels, **slo.ids(), WINDOW: window},
            }
        )
    return rules


def meta_rules(slo: SlothSLO, mode: Mode) -> list[Rule]:
    sel, ids = slo.selector(), {**slo.labels, **slo.ids()}
    on = f"on({ID}, {SLO}, {SERVICE}) group_left"
    budget = f"slo:error_budget:ratio{sel}"
    records = [
        ("slo:objective:ratio", f"vector({number(slo.objective / 100)})"),
        ("slo:error_budget:ratio", f"vector(1-{number(slo.objective / 100)})"),
        ("slo:time_period:days", f"vector({PERIOD_DAYS})"),
        ("slo:current_burn_rate:ratio", f"{SLI_ERROR}5m{sel}\n/ {on}\n{budget}"),
        ("slo:period_burn_rate:ratio", f"{SLI_ERROR}{PERIOD}{sel}\n/ {on}\n{budget}"),
        ("slo:period_error_budget_remaining:ratio", f"1 - slo:period_burn_rate:ratio{sel}"),
    ]
    rules: list[Rule] = [{"record": r, "expr": e, "labels": ids} for r, e in records]
    info = {**ids, "sloth_mode": f"bench-{mode}", "sloth_objective": number(slo.objective)}
    rules.append({"record": "sloth_slo_info", "expr": "vector(1)", "labels": info})
    return rules


def alert_name(slo: SlothSLO) -> str:
    """Sloth takes alert names from the user; one per SLO, like ``ChatAssistantTtftBurn``."""
    words = re.split(r"[^A-Za-z0-9]+", slo.id)
    return "".join(w[:1].upper() + w[1:] for w in words if w) + "Burn"


def alert_rules(slo: SlothSLO) -> list[Rule]:
    sel = slo.selector()
    budget = number(slo.error_budget)
    rules = []
    for severity, pairs in ALERT_PAIRS:
        terms = []
        for burn, long_w, short_w in pairs:
            over = [
                f"max({SLI_ERROR}{w}{sel} > ({number(burn)} * {budget})) without ({WINDOW})"
                for w in (short_w, long_w)
            ]
            terms.append("(\n    " + "\n    and\n    ".join(over) + "\n)")
        rules.append(
            {
                "alert": alert_name(slo),
                "expr": "\nor\n".join(terms),
                "labels": {**slo.labels, SEVERITY: severity},
                "annotations": {"summary": f"{slo.id}: error budget burn ({severity})"},
            }
        )
    return rules


def rule_groups(slo: SlothSLO, mode: Mode, interval: str = "1m") -> list[Rule]:
    """Sloth's three groups for one SLO: SLI recordings, metadata, alerts."""
    return [
        {
            "name": f"sloth-slo-sli-recordings-{slo.id}",
            "interval": interval,
            "rules": sli_rules(slo, mode),
        },
        {
            "name": f"sloth-slo-meta-recordings-{slo.id}",
            "interval": interval,
            "rules": meta_rules(slo, mode),
        },
        {"name": f"sloth-slo-alerts-{slo.id}", "interval": interval, "rules": alert_rules(slo)},
    ]


class LiteralDumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, no anchors, on PyYAML's pure-Python emitter.

    The way Sloth prints its rules, and sloengine.rules' emitter settings (which use the
    C emitter when there is one).
    """

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


LiteralDumper.add_representer(str, _str)


def render(slos: list[SlothSLO], mode: Mode) -> str:
    """A rule file for ``slos``, as Sloth would generate it in ``mode``."""
    groups = [g for slo in slos for g in rule_groups(slo, mode)]
    return yaml.dump({"groups": groups}, Dumper=LiteralDumper, sort_keys=False, width=1_000_000)
