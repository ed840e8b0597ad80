"""Resolved SLOs: every default applied, every window and threshold concrete.

This is what rules, explain and the scheduler consume; nothing here reads files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sloengine import sli as catalog
from sloengine.budget import AlertWindow
from sloengine.conventions import Severity
from sloengine.detectors.model import Detector
from sloengine.durations import format_duration
from sloengine.spec import SLI, SLIKind
from sloengine.yamldoc import Document


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

    @property
    def key(self) -> tuple[str, str]:
        return (self.service, self.name)

    @property
    def is_spend(self) -> bool:
        return self.kind == SLIKind.SPEND

    def queries(self, seconds: int) -> catalog.Queries:
        """PromQL for the bad and total per-second rates over ``seconds``, from raw series."""
        return catalog.queries(self.sli, self.preset, self.file_selector, format_duration(seconds))

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
