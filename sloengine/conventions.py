"""Every metric, label and alert name sloengine writes, spelled once."""

from __future__ import annotations

# Evaluation modes of `status` and `run` (see sloengine.evaluate).
RECORDED, RAW, AUTO = "recorded", "raw", "auto"

# Labels on every generated series and alert.
SERVICE = "service"
SLO = "slo"
WINDOW = "window"
SEVERITY = "severity"
LONG_WINDOW = "long_window"
SHORT_WINDOW = "short_window"
SLOENGINE_LABELS = frozenset({SERVICE, SLO, WINDOW, SEVERITY, LONG_WINDOW, SHORT_WINDOW})

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

ALERT_NAME = "SLOErrorBudgetBurn"
PAGE = "page"
TICKET = "ticket"
