"""Every metric, label and alert name sloengine writes, spelled once."""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    """How `status` and `run` read an SLO's rates (see sloengine.evaluate)."""

    RECORDED = "recorded"  # the generated rules' series
    RAW = "raw"  # computed from the raw series
    AUTO = "auto"  # recorded where the rules are loaded, raw elsewhere


class Severity(StrEnum):
    """What an alert pair asks of people: a page now, or a ticket for working hours."""

    PAGE = "page"
    TICKET = "ticket"

    @property
    def rank(self) -> int:
        return 2 if self is Severity.PAGE else 1


# Labels on every generated series and alert.
SERVICE = "service"
SLO = "slo"
WINDOW = "window"
SEVERITY = "severity"
LONG_WINDOW = "long_window"
SHORT_WINDOW = "short_window"
DETECTOR = "detector"  # on every detector series and alert, in place of `slo`
SLOENGINE_LABELS = frozenset({SERVICE, SLO, WINDOW, SEVERITY, LONG_WINDOW, SHORT_WINDOW, DETECTOR})

# The base rate window: the only range over raw series. Every longer window is built from
# the two recorded base series, so raw data is read once per evaluation, 5 minutes deep.
BASE_WINDOW_SECONDS = 300
BASE_WINDOW = "5m"

# The SLO-window rules and budget metadata run in a group of their own, at most this often.
BUDGET_INTERVAL_SECONDS = 150

BAD_BASE = "sloengine:sli_bad:rate5m"  # bad events (or dollars, for spend) per second
TOTAL_BASE = "sloengine:sli_total:rate5m"  # all events per second
BAD_RATE = "sloengine:sli_bad:rate"  # {window=...}: bad events per second over the window
TOTAL_RATE = "sloengine:sli_total:rate"  # {window=...}: events per second over the window
BURN_RATE = "sloengine:slo_burn_rate"  # {window=...}: budget burn, 1 = exactly on budget

# Metadata: one query for `{__name__=~"sloengine:slo_.*"}` reads every SLO's state.
OBJECTIVE = "sloengine:slo_objective_ratio"
WINDOW_SECONDS = "sloengine:slo_window_seconds"
BUDGET_REMAINING = "sloengine:slo_error_budget_remaining"
CURRENT_BURN = "sloengine:slo_current_burn_rate"
BUDGET_USD = "sloengine:slo_budget_usd"

# Spend on a calendar month (`window: month`): dollars since 00:00 UTC on the 1st, and the
# month's end at the last day's rate. The forecast alert is the SLO's page with
# long_window="month" (and short_window the rate's window).
MONTH_TO_DATE = "sloengine:spend_month_to_date_usd"
MONTH_FORECAST = "sloengine:spend_month_forecast_usd"
MONTH_EVALUATED = "sloengine:spend_month_evaluated_seconds"  # when MONTH_TO_DATE last ran
# How far back the month-to-date finds its previous value: a gap in rule evaluation up to
# this long keeps the month's count (the gap's spend is read at the rate after it).
MONTH_LOOKBACK = "1d"
MONTH_WINDOW = "month"
FORECAST_WINDOW_SECONDS = 86400

ALERT_NAME = "SLOErrorBudgetBurn"

# Rule groups: one per SLO every evaluation interval, and its slower budget group.
GROUP_PREFIX = "sloengine"
BUDGET_SUFFIX = ":budget"


def group_name(service: str, slo: str) -> str:
    """The name of an SLO's evaluation-interval rule group."""
    return f"{GROUP_PREFIX}:{service}:{slo}"


def budget_group_name(service: str, slo: str) -> str:
    """The name of an SLO's budget group (the SLO window and budget metadata)."""
    return group_name(service, slo) + BUDGET_SUFFIX


def is_budget_group(name: str) -> bool:
    return name.endswith(BUDGET_SUFFIX)


def group_slo(name: str) -> tuple[str, str] | None:
    """(service, slo) of a group sloengine wrote, None for any other group.

    Service and SLO names cannot contain ``:``, so the name splits without ambiguity.
    """
    parts = name.removesuffix(BUDGET_SUFFIX).split(":")
    if len(parts) != 3 or parts[0] != GROUP_PREFIX:
        return None
    return parts[1], parts[2]


# Detectors (sloengine.detectors): per group, the numerator (dollars, tokens, breaches)
# and denominator (calls, input tokens) of the compared ratio, as 5m rates; their sums
# over the recent window and over the baseline window just before it; the two ratios
# and the change between them.
DETECTOR_NUMERATOR_BASE = "sloengine:detector_numerator:rate5m"
DETECTOR_DENOMINATOR_BASE = "sloengine:detector_denominator:rate5m"
DETECTOR_NUMERATOR_RECENT = "sloengine:detector_numerator:recent"
DETECTOR_DENOMINATOR_RECENT = "sloengine:detector_denominator:recent"
DETECTOR_NUMERATOR_BASELINE = "sloengine:detector_numerator:baseline"
DETECTOR_DENOMINATOR_BASELINE = "sloengine:detector_denominator:baseline"
# prompt_version_cost: a version's own sums over the baseline window, before the group's
# baseline leaves them out.
DETECTOR_NUMERATOR_VERSION_BASELINE = "sloengine:detector_numerator:version_baseline"
DETECTOR_DENOMINATOR_VERSION_BASELINE = "sloengine:detector_denominator:version_baseline"
DETECTOR_RECENT = "sloengine:detector_recent:ratio"
DETECTOR_BASELINE = "sloengine:detector_baseline:ratio"
DETECTOR_CHANGE = "sloengine:detector_change:ratio"  # recent / baseline - 1
DETECTOR_ALERT_NAME = "SLODetectorRegression"
# Detectors compare hours with days: one evaluation every base window reads each raw
# series once per 5m sample, and the sums over the windows stay exact (the 5m rates tile
# time without overlap).
DETECTOR_INTERVAL_SECONDS = BASE_WINDOW_SECONDS
# The baseline sums (days of 5m samples) change little in an hour: their own group runs
# hourly and the alerts read their newest value within two intervals.
DETECTOR_BASELINE_INTERVAL_SECONDS = 3600
DETECTOR_GROUP_PREFIX = "sloengine-detector"
BASELINE_SUFFIX = ":baseline"


def detector_group_name(service: str, detector: str) -> str:
    """The name of a detector's rule group (never read as an SLO's by :func:`group_slo`)."""
    return f"{DETECTOR_GROUP_PREFIX}:{service}:{detector}"


def detector_baseline_group_name(service: str, detector: str) -> str:
    """The name of a detector's hourly baseline group."""
    return detector_group_name(service, detector) + BASELINE_SUFFIX


def group_detector(name: str) -> tuple[str, str] | None:
    """(service, detector) of a detector group sloengine wrote, None for any other group."""
    parts = name.removesuffix(BASELINE_SUFFIX).split(":")
    if len(parts) != 3 or parts[0] != DETECTOR_GROUP_PREFIX:
        return None
    return parts[1], parts[2]


# Labels that name one person, request or conversation: grouping by them makes a series
# (and a budget, and a page) per individual. `group_by` refuses them (SPEC "Grouped SLOs").
IDENTIFIER_LABELS = frozenset(
    {
        "user_id",
        "user",
        "email",
        "request_id",
        "session_id",
        "trace_id",
        "span_id",
        "conversation_id",
        "thread_id",
        "message_id",
        "response_id",
        "call_id",
        "run_id",
        "completion_id",
    }
)


def identifier_label(label: str) -> bool:
    """True for a label that identifies an individual rather than a tenant or feature."""
    return label.lower() in IDENTIFIER_LABELS
