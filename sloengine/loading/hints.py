"""The hint each field's problems carry: what a valid value looks like."""

from __future__ import annotations

from sloengine.spec import SLI_KINDS

HINTS = {
    "apiVersion": "the first line of an SLO file is `apiVersion: sloengine/v1`",
    "service": "lowercase letters, digits and _ . - (starting and ending with a letter or digit)",
    "name": "lowercase letters, digits and _ . - (starting and ending with a letter or digit)",
    "objective": "a percentage between 0 and 100, e.g. 99.5",
    "window": "a duration such as 30d, 28d or 7d",
    "evaluation_interval": "a duration from 1s to 5m, such as 1m or 30s",
    "for": "a duration such as 0m or 5m",
    "threshold": "a duration such as 1s or 500ms, or seconds as a number",
    "threshold_usd": "dollars per call as a number, e.g. 0.10",
    "min_score": "a score in (0, 1], e.g. 0.8",
    "budget_usd": "dollars allowed per window, e.g. 30000",
    "preset": "one of llm, otel, vllm, litellm",
    "sli": "exactly one of: " + ", ".join(SLI_KINDS),
    "labels": "a mapping of label names to string values, e.g. team: assistant",
    "annotations": "a mapping of annotation names to string values",
    "slos": "a list of SLOs, each with name, objective and sli",
    "min_events": "a whole number of events, e.g. 100",
    "long_window": "a duration (1h) or a share of the SLO window (window/720)",
    "short_window": "a duration (5m) or a share of the SLO window (window/8640)",
    "policy": "a list of pairs, each with severity, long_window, short_window "
    "and one of budget_percent or burn_rate",
    "metric": "a Prometheus metric name; for a histogram its base name, without _bucket or _count",
    "ratio": "errors (or good) and total, each PromQL with [{{window}}] as the range",
    "total": "PromQL counting all events, e.g. sum(rate(requests_total[{{window}}]))",
    "burn_rate": "a multiple of the budget-neutral rate from 0.001 to 1000000, e.g. 14.4",
    "budget_percent": "a share of the budget from 0.001 to 100 percent, e.g. 2",
    "group_by": "a list of labels with few values, e.g. [tenant] or [feature, model]",
    "budget_usd_by": "a mapping of group values to dollars per window, e.g. {chat: 20000}",
    "include": "the llm preset can add validation_errors and guardrail_rejections",
}
OBJECTIVE_BOUND_HINT = (
    "at most 99.999: five nines over 30d is 26s of full outage, and the fastest page "
    "fires within a second of one; a smaller budget is below what 1m evaluations of 5m "
    "rates can measure"
)
HISTOGRAM_THRESHOLD_HINT = "the bucket bound as a plain number, e.g. 0.5 for the 500ms bucket"
LABEL_NAME_HINT = "label names are letters, digits and _, not starting with a digit or __"
LABEL_KEY_TYPE_HINT = "quote it: YAML reads 1, on, yes and true as numbers or booleans"
IDENTIFIER_GROUP_HINT = (
    "group by tenant or feature instead; to find one user's failures, query the raw series"
)
RESERVED_LABEL_HINT = (
    "sloengine sets service, slo, severity, window, long_window and short_window; pick another name"
)
