"""Resolved SLOs: every default applied, every window and threshold concrete.

This is what rules, explain and the scheduler consume; nothing here reads files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sloengine.budget import AlertWindow
from sloengine.spec import SLI
from sloengine.yamldoc import Document


@dataclass(frozen=True)
class Objective:
    service: str
    name: str
    file: str
    kind: str
    sli: SLI
    preset: str
    period: int  # SLO window, seconds
    interval: int  # rule evaluation interval, seconds
    objective: float | None  # target good ratio in (0, 1); None for spend
    error_budget: float  # allowed bad ratio (1 - objective); 1 for spend (burn = spend / budget)
    budget_usd: float | None
    bad_query: str  # per-second bad events (dollars for spend) over the base window
    total_query: str | None
    windows: tuple[AlertWindow, ...]
    enabled: dict[str, bool]
    for_seconds: dict[str, int]
    min_events: int
    min_bad_events: int
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    runbook_url: str | None = None
    description: str = ""
    owner: str = ""
    channels: dict[str, str] = field(default_factory=dict)
    file_selector: str = ""  # metrics.selector, applied to every preset query

    @property
    def is_spend(self) -> bool:
        return self.kind == "spend"

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
