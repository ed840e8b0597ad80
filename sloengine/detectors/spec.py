"""The ``detectors:`` entries of SLO.yaml as typed models (SPEC "Detectors").

Shapes and ranges only; which fields a kind takes and what a preset can serve are
checked with the whole file in :mod:`sloengine.detectors.checks`.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from sloengine.conventions import Severity
from sloengine.spec import (
    MAX_EVENTS,
    MAX_NAME,
    MAX_WINDOW,
    NAME_PATTERN,
    LabelName,
    LabelValue,
    Model,
    Seconds,
    _at_most,
)


class DetectorKind(StrEnum):
    """What a detector compares; each reads one ratio of two counters (see ``catalog``)."""

    COST_PER_CALL = "cost_per_call"  # dollars per call
    PROMPT_VERSION_COST = "prompt_version_cost"  # dollars per call, per prompt version
    CACHE_HIT_RATIO = "cache_hit_ratio"  # cached input tokens per input token
    TOKENS_PER_CALL = "tokens_per_call"  # input + output tokens per call
    TOKEN_BUDGET_BREACHES = "token_budget_breaches"  # calls over budget per call


_PERCENT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*%\s*$")


def _percent(value: Any) -> Any:
    """``20%`` as the fraction 0.2; a bare number is refused (is 20 a share or a percent?)."""
    if isinstance(value, str):
        match = _PERCENT.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a percentage such as 20%")
        return float(match.group(1)) / 100
    raise ValueError(f"{value!r} is not a percentage: write it with a % sign, e.g. 20%")


Percent = Annotated[
    float,
    BeforeValidator(_percent),
    WithJsonSchema({"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?%$"}),
]
DetectorWindow = Annotated[Seconds, _at_most(MAX_WINDOW, "365d")]
DEFAULT_VERSION_LABEL = "prompt_sha"
# Enough calls in each window that one expensive call cannot move the mean by the
# threshold; SPEC's example uses 200.
DEFAULT_MIN_EVENTS = 100


class Detector(Model):
    name: str = Field(pattern=NAME_PATTERN, max_length=MAX_NAME)
    kind: DetectorKind
    description: str = ""
    group_by: list[LabelName] = Field(default_factory=list)
    window: DetectorWindow = Field(gt=0)
    baseline: DetectorWindow | None = Field(default=None, gt=0)
    max_increase: Percent | None = Field(default=None, gt=0, le=100)
    max_decrease: Percent | None = Field(default=None, gt=0, lt=1)
    max_share: Percent | None = Field(default=None, gt=0, lt=1)
    min_events: int = Field(default=DEFAULT_MIN_EVENTS, ge=0, le=MAX_EVENTS)
    severity: Severity = Severity.TICKET
    runbook: str | None = None
    for_: DetectorWindow = Field(default=0.0, alias="for", ge=0)
    version_label: LabelName = DEFAULT_VERSION_LABEL
    selector: str = ""
    labels: dict[LabelName, LabelValue] = Field(default_factory=dict)
