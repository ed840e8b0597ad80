"""The SLO.yaml contract (apiVersion sloengine/v1) as typed models.

Models check shape and ranges; checks that need the whole file or the SLI catalog
(unique names, preset coverage, PromQL) live in ``loading``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from sloengine import conventions as cv
from sloengine.conventions import Severity
from sloengine.durations import format_duration, parse_duration

NAME_PATTERN = r"^[a-z0-9]([a-z0-9_.-]*[a-z0-9])?$"
# A service names its rule file (<service>.rules.yml): well under 255 bytes.
MAX_NAME = 128
METRIC_PATTERN = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
PRESETS = ("llm", "otel", "vllm", "litellm")
# Counts PromQL compares exactly (a float holds every whole number up to 2**53).
MAX_EVENTS = 10**15


class SLIKind(StrEnum):
    """The SLI kinds an SLO can use; each is a field of :class:`SLI`."""

    RATIO = "ratio"
    HISTOGRAM = "histogram"
    SUCCESS_RATE = "success_rate"
    TTFT = "ttft"
    LATENCY = "latency"
    TPOT = "tpot"
    COST_PER_CALL = "cost_per_call"
    QUALITY = "quality"
    SPEND = "spend"


SLI_KINDS = tuple(k.value for k in SLIKind)


def _seconds(value: Any) -> Any:
    """Accept durations as Prometheus strings (``1s``, ``30d``) or plain seconds."""
    if isinstance(value, str):
        return parse_duration(value)
    return value


def _not_bool(value: Any) -> Any:
    """YAML reads ``true``/``yes`` as booleans, which would otherwise pass as 1.0."""
    if isinstance(value, bool):
        raise ValueError(f"{str(value).lower()} is not a number")
    return value


Number = Annotated[float, BeforeValidator(_not_bool)]
# For editors (`sloengine schema`): a duration is written as text or as seconds.
_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number"},
        {"type": "string", "pattern": "^([0-9]+([.][0-9]+)?(ms|y|w|d|h|m|s))+$"},
    ]
}
Seconds = Annotated[
    float,
    BeforeValidator(_seconds),
    BeforeValidator(_not_bool),
    WithJsonSchema(_DURATION_SCHEMA),
]

# Five nines: a 30d window then allows 26s of full outage and the fastest page fires
# within a second of one. A smaller budget is below what 1m evaluations of 5m rates can
# measure, and at 15 nines it rounds to zero and every burn rate divides by it.
MAX_OBJECTIVE = 99.999
# A year: the longest SLO window (and `for`) that means anything for paging.
MAX_WINDOW = 365 * 86400
# A request that takes longer than a day is not served by an SLO of this kind.
MAX_THRESHOLD = 86400


def _objective_bound(value: float) -> float:
    if MAX_OBJECTIVE < value < 100:  # 100 and more: the field's own bound says why
        raise PydanticCustomError(
            "objective_too_high",
            "{value} is more than {bound}",
            {"value": repr(value), "bound": MAX_OBJECTIVE},
        )
    return value


def _at_most(limit: float, spelled: str) -> Any:
    def check(value: float) -> float:
        if value > limit:
            raise ValueError(
                f"{format_duration(value) if value == round(value) else value} is longer than {spelled}"
            )
        return value

    return AfterValidator(check)


def _at_least_a_micro_dollar(value: float) -> float:
    if 0 < value < 0.000001:
        raise ValueError(f"{value!r} is less than a millionth of a dollar")
    return value


Objective = Annotated[Number, AfterValidator(_objective_bound)]
Window = Annotated[Seconds, _at_most(MAX_WINDOW, "365d")]

# `window: month`: the calendar month, the budget reset at 00:00 UTC on the 1st like a
# provider's invoice (spend SLOs only). Its burn-rate pairs are the default policy's
# shares of a 30-day month (1h/5m, 6h/30m, 1d/2h, 3d/6h): rules cannot change their
# windows with the month's length.
MONTH = "month"
MONTH_PAIR_SECONDS = 30 * 86400


def _month_or_duration(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    if isinstance(value, str) and value.strip() == MONTH:
        return MONTH
    return handler(value)


SLOWindow = Annotated[
    Window,
    Field(gt=0),
    WrapValidator(_month_or_duration),
    WithJsonSchema({"anyOf": [*_DURATION_SCHEMA["anyOf"], {"const": MONTH}]}),
]


class Model(BaseModel):
    # No inf or nan: an infinite window, budget or threshold is never what was meant.
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


class Route(Model):
    slack_channel: str | None = None


class Notify(Model):
    page: Route | None = None
    ticket: Route | None = None


class Runbooks(Model):
    base_url: str | None = None


class Metrics(Model):
    preset: Literal["llm", "otel", "vllm", "litellm"] = "llm"
    selector: str = ""


class SeveritySettings(Model):
    """How one severity's alerts behave: on or off, and how long a condition must hold."""

    enabled: bool = True
    for_: Annotated[Seconds, _at_most(MAX_WINDOW, "365d")] = Field(default=0.0, alias="for", ge=0)


def _check_label_name(name: str) -> str:
    if not LABEL_NAME.match(name) or name.startswith("__"):
        raise ValueError(f"{name!r} is not a valid Prometheus label name")
    if name in cv.SLOENGINE_LABELS:
        raise ValueError(f"label {name!r} is set by sloengine and cannot be overridden")
    return name


# Checked per key, so an error points at the offending label, not at the whole mapping.
LabelName = Annotated[str, AfterValidator(_check_label_name)]


def _check_annotation_name(name: str) -> str:
    # promtool rejects annotation names that are not label names.
    if not LABEL_NAME.match(name):
        raise ValueError(f"{name!r} is not a valid Prometheus annotation name")
    return name


AnnotationName = Annotated[str, AfterValidator(_check_annotation_name)]
# Every rule of an SLO carries its labels: a page of text there is a page in every series.
LabelValue = Annotated[str, StringConstraints(max_length=1024)]
AnnotationValue = Annotated[str, StringConstraints(max_length=16384)]


def _check_metric_name(name: str) -> str:
    if name.endswith("_bucket"):
        raise ValueError(
            f"{name!r} is a bucket series: give the histogram's base name, "
            f"{name.removesuffix('_bucket')!r}"
        )
    return name


MetricName = Annotated[
    str, StringConstraints(pattern=METRIC_PATTERN), AfterValidator(_check_metric_name)
]


class Alerting(Model):
    page: SeveritySettings = SeveritySettings()
    ticket: SeveritySettings = SeveritySettings()
    labels: dict[LabelName, LabelValue] = {}
    annotations: dict[AnnotationName, AnnotationValue] = {}
    min_events: int = Field(default=0, ge=0, le=MAX_EVENTS)
    # A single bad event must not page a quiet service: alerts need more than this many
    # bad events in their long window.
    min_bad_events: int = Field(default=1, ge=0, le=MAX_EVENTS)


class Pair(Model):
    """One multi-window burn-rate alert: budget share consumed over a long window."""

    severity: Severity
    # Bounded below so "the whole budget lasts" stays a finite duration.
    budget_percent: Number | None = Field(default=None, ge=0.001, le=100)
    burn_rate: Number | None = Field(default=None, ge=0.001, le=1_000_000)
    long_window: str
    short_window: str

    @model_validator(mode="after")
    def _one_threshold(self) -> Pair:
        if (self.budget_percent is None) == (self.burn_rate is None):
            raise ValueError("give exactly one of budget_percent or burn_rate")
        return self

    @field_validator("long_window", "short_window")
    @classmethod
    def _window(cls, value: str) -> str:
        if not (_fraction(value) or _is_duration(value)):
            raise ValueError(
                f"{value!r} is neither a duration (1h) nor a share of the window (window/720)"
            )
        return value


def _fraction(text: str) -> int | None:
    match = re.fullmatch(r"window\s*/\s*(\d+)", text.strip())
    return int(match.group(1)) if match and int(match.group(1)) > 0 else None


def _is_duration(text: str) -> bool:
    try:
        return parse_duration(text) > 0
    except ValueError:
        return False


def resolve_window(text: str, period: float) -> float:
    """Seconds in a policy window written as a duration or as ``window/N``."""
    fraction = _fraction(text)
    return period / fraction if fraction else parse_duration(text)


class RatioSLI(Model):
    errors: str | None = None
    good: str | None = None
    total: str

    @model_validator(mode="after")
    def _errors_or_good(self) -> RatioSLI:
        if (self.errors is None) == (self.good is None):
            raise ValueError("give exactly one of errors or good, with total")
        return self


class HistogramSLI(Model):
    metric: MetricName
    selector: str = ""
    threshold: Number = Field(gt=0)


class PresetSLI(Model):
    """Fields every shorthand kind shares: override the preset's metric, narrow the selector."""

    metric: MetricName | None = None
    selector: str = ""


class SuccessRateSLI(PresetSLI):
    include: list[Literal["validation_errors", "guardrail_rejections"]] = []


class LatencySLI(PresetSLI):
    threshold: Annotated[Seconds, _at_most(MAX_THRESHOLD, "1d")] = Field(gt=0)


class CostPerCallSLI(PresetSLI):
    threshold_usd: Number = Field(gt=0)


class QualitySLI(PresetSLI):
    min_score: Number = Field(gt=0, le=1)


# A budget under a millionth of a dollar per window is zero spend per second.
BudgetUSD = Annotated[Number, AfterValidator(_at_least_a_micro_dollar), Field(gt=0)]


# Each listed group is a term of every burn-rate rule: past `validate --prometheus`'s
# 100-group warning, per-group budgets belong in an SLO of their own.
MAX_GROUP_BUDGETS = 100


class SpendSLI(PresetSLI):
    budget_usd: BudgetUSD
    # Per-group budgets of a grouped spend SLO: the value of its one group_by label ->
    # dollars per window; groups not listed have budget_usd.
    budget_usd_by: dict[LabelValue, BudgetUSD] = Field(default={}, max_length=MAX_GROUP_BUDGETS)


# The settings of one SLI kind: what `SLI.spec` holds for each kind.
KindSpec = (
    RatioSLI | HistogramSLI | SuccessRateSLI | LatencySLI | CostPerCallSLI | QualitySLI | SpendSLI
)


class SLI(Model):
    ratio: RatioSLI | None = None
    histogram: HistogramSLI | None = None
    success_rate: SuccessRateSLI | None = None
    ttft: LatencySLI | None = None
    latency: LatencySLI | None = None
    tpot: LatencySLI | None = None
    cost_per_call: CostPerCallSLI | None = None
    quality: QualitySLI | None = None
    spend: SpendSLI | None = None

    @model_validator(mode="before")
    @classmethod
    def _empty_kind(cls, data: Any) -> Any:
        # `success_rate:` with nothing after it is YAML null: the user meant {}.
        if isinstance(data, dict):
            return {k: {} if k in SLI_KINDS and v is None else v for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> SLI:
        given = [k for k in SLI_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            got = f"{len(given)}: {', '.join(given)}" if given else "none"
            raise ValueError(f"an SLI has exactly one kind, got {got}")
        return self

    @property
    def kind(self) -> SLIKind:
        return next(k for k in SLIKind if getattr(self, k) is not None)

    @property
    def spec(self) -> KindSpec:
        spec: KindSpec = getattr(self, self.kind)
        return spec


MAX_GROUP_LABELS = 4


def _check_group_label(name: str) -> str:
    if not LABEL_NAME.match(name) or name.startswith("__"):
        raise ValueError(f"{name!r} is not a valid Prometheus label name")
    if name in cv.SLOENGINE_LABELS:
        raise ValueError(
            f"label {name!r} is set by sloengine on every series; it cannot be a group"
        )
    if cv.identifier_label(name):
        raise PydanticCustomError(
            "identifier_group",
            "{name} identifies individuals: grouping by it makes a set of series, a budget "
            "and pages per individual",
            {"name": repr(name)},
        )
    return name


# One SLI, budget and alert set per value: a label with few values (tenant, feature, model).
GroupLabel = Annotated[str, AfterValidator(_check_group_label)]


def _unique_labels(names: list[str]) -> list[str]:
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{', '.join(map(repr, twice))} given more than once")
    return names


class SLO(Model):
    name: str = Field(pattern=NAME_PATTERN, max_length=MAX_NAME)
    description: str = ""
    objective: Objective | None = Field(default=None, gt=0, lt=100)
    window: SLOWindow | None = None
    sli: SLI
    runbook: str | None = None
    alerting: Alerting | None = None
    policy: list[Pair] | None = Field(default=None, min_length=1)
    # Each label multiplies the groups: four is already tenant x feature x model x region.
    group_by: Annotated[list[GroupLabel], AfterValidator(_unique_labels)] = Field(
        default=[], max_length=MAX_GROUP_LABELS
    )

    @property
    def calendar_month(self) -> bool:
        """``window: month``: the budget resets on the 1st of each month (UTC)."""
        return isinstance(self.window, str)

    def period(self, default: float) -> float:
        """Seconds of the SLO window; a calendar month's pairs read a 30-day month."""
        if self.calendar_month:
            return MONTH_PAIR_SECONDS
        return default if self.window is None else self.window


# The detectors package builds its models on the field types above.
from sloengine.detectors.spec import Detector  # noqa: E402


class SLOFile(Model):
    api_version: Literal["sloengine/v1"] = Field(alias="apiVersion")
    service: str = Field(pattern=NAME_PATTERN, max_length=MAX_NAME)
    description: str = ""
    owner: str = ""
    labels: dict[LabelName, LabelValue] = {}
    window: Window = Field(default=30 * 86400, gt=0)
    # At most the 5m base window: every event must fall inside some base-rate sample.
    evaluation_interval: Seconds = Field(default=60, ge=1, le=300)
    metrics: Metrics = Metrics()
    notify: Notify = Notify()
    runbooks: Runbooks = Runbooks()
    alerting: Alerting = Alerting()
    policy: list[Pair] | None = Field(default=None, min_length=1)
    slos: list[SLO] = Field(min_length=1)
    detectors: list[Detector] = []  # SPEC "Detectors"; checked in sloengine.detectors


def json_schema() -> dict[str, Any]:
    """The JSON Schema of an SLO file, from these models, for editors and CI linters.

    A guide, not the contract's last word: `sloengine validate` also checks what a schema
    cannot say (one SLI kind per SLO, PromQL, policy windows, bucket bounds).
    """
    out = SLOFile.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **out,
        "title": "sloengine SLO file (apiVersion sloengine/v1)",
    }
