"""A resolved detector: every default applied, the ratio it reads, its threshold."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sloengine.conventions import Severity
from sloengine.detectors.catalog import Ratio
from sloengine.detectors.spec import DetectorKind


class Direction(StrEnum):
    """Which way a detector's ratio must move to fire."""

    INCREASE = "increase"  # recent above baseline x (1 + threshold)
    DECREASE = "decrease"  # recent below baseline x (1 - threshold)
    SHARE = "share"  # recent above threshold, no baseline


DIRECTIONS = {
    DetectorKind.COST_PER_CALL: Direction.INCREASE,
    DetectorKind.PROMPT_VERSION_COST: Direction.INCREASE,
    DetectorKind.TOKENS_PER_CALL: Direction.INCREASE,
    DetectorKind.CACHE_HIT_RATIO: Direction.DECREASE,
    DetectorKind.TOKEN_BUDGET_BREACHES: Direction.SHARE,
}
# The field that holds each direction's threshold in SLO.yaml.
THRESHOLD_FIELDS = {
    Direction.INCREASE: "max_increase",
    Direction.DECREASE: "max_decrease",
    Direction.SHARE: "max_share",
}


@dataclass(frozen=True)
class Detector:
    service: str
    name: str
    file: str
    kind: DetectorKind
    preset: str
    ratio: Ratio
    window: int  # seconds of the recent window
    baseline: int | None  # seconds of the baseline window before it; None for a share
    threshold: float  # a fraction: 0.2 for 20%
    min_events: int  # denominator units (calls, input tokens) in each window
    severity: Severity
    for_seconds: int = 0
    group_by: tuple[str, ...] = ()
    version_label: str | None = None  # prompt_version_cost only
    selector: str = ""  # metrics.selector and the detector's own, for every query
    labels: dict[str, str] = field(default_factory=dict)
    runbook_url: str | None = None
    description: str = ""
    owner: str = ""
    channels: dict[Severity, str] = field(default_factory=dict)  # the file's notify

    @property
    def direction(self) -> Direction:
        return DIRECTIONS[self.kind]

    @property
    def keys(self) -> tuple[str, ...]:
        """The labels of one compared series: the group, and the version if any."""
        return self.group_by + ((self.version_label,) if self.version_label else ())
