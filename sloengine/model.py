"""Resolved SLOs: every default applied, every window and threshold concrete.

This is what rules, explain and the scheduler consume; nothing here reads files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from sloengine import promql
from sloengine import sli as catalog
from sloengine.budget import AlertWindow
from sloengine.conventions import Severity
from sloengine.detectors.model import Detector
from sloengine.durations import format_duration
from sloengine.spec import SLI, SLIKind
from sloengine.yamldoc import Document


def group_text(group: Mapping[str, str]) -> str:
    """``tenant=acme, model=m1``: one group of a grouped SLO, as alerts, pages, the status
    table and state keys name it ("" for an ungrouped SLO)."""
    return ", ".join(f"{label}={value}" for label, value in group.items())


@dataclass(frozen=True)
class Objective:
    service: str
    name: str
    file: str
    kind: SLIKind
    sli: SLI
    preset: str
    period: int  # SLO window, seconds
    interval: int  # rule evaluation interval, seconds
    objective: float | None  # target good ratio in (0, 1); None for spend
    error_budget: float  # allowed bad ratio (1 - objective); 1 for spend (burn = spend / budget)
    budget_usd: float | None
    windows: tuple[AlertWindow, ...]
    enabled: dict[Severity, bool]
    for_seconds: dict[Severity, int]
    min_events: int
    min_bad_events: int
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    runbook_url: str | None = None
    description: str = ""
    owner: str = ""
    channels: dict[Severity, str] = field(default_factory=dict)
    file_selector: str = ""  # metrics.selector, applied to every preset query
    # `window: month` (spend): the budget resets on the 1st at 00:00 UTC; ``period`` is
    # the 30-day month its burn-rate pairs read.
    calendar_month: bool = False
    # group_by: one SLI, budget and alert set per value of these labels; () = one for all.
    group_by: tuple[str, ...] = ()
    # Spend budgets per value of the one group label; other groups have budget_usd.
    budget_usd_by: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.service, self.name)

    @property
    def is_spend(self) -> bool:
        return self.kind == SLIKind.SPEND

    def queries(self, seconds: int) -> catalog.Queries:
        """PromQL for the bad and total per-second rates over ``seconds``, from raw series
        (one series per group for a grouped SLO)."""
        return catalog.queries(
            self.sli, self.preset, self.file_selector, format_duration(seconds), self.group_by
        )

    def in_group(self, group: Mapping[str, str]) -> Objective:
        """This SLO narrowed to one group's series (itself when ``group`` is empty)."""
        if not group:
            return self
        only = promql.labels(dict(group))
        return replace(
            self, file_selector=f"{self.file_selector}, {only}" if self.file_selector else only
        )

    def budget_for(self, group: Mapping[str, str]) -> float | None:
        """The spend budget of one group (every group's, for an ungrouped SLO)."""
        if self.budget_usd_by and self.group_by:
            return self.budget_usd_by.get(group.get(self.group_by[0], ""), self.budget_usd)
        return self.budget_usd

    def active_windows(self) -> list[AlertWindow]:
        return [w for w in self.windows if self.enabled.get(w.severity, True)]


@dataclass(frozen=True)
class Service:
    """One SLO.yaml file."""

    name: str
    file: str
    objectives: tuple[Objective, ...]
    description: str = ""
    owner: str = ""
    # The parsed file, for problems found later (live checks) to point into it.
    document: Document | None = field(default=None, compare=False, repr=False)
    detectors: tuple[Detector, ...] = ()
