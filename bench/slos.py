"""The SLOs every benchmark measures, as SLO.yaml for sloengine and as Sloth SLOs.

Both rule sets read the same raw series (the cost and accuracy benchmarks check that
their 5m error ratios agree), so the comparison is between rule shapes, not queries.
"""

from __future__ import annotations

from pathlib import Path

from bench.sloth import WINDOW_PLACEHOLDER, SlothSLO
from sloengine.loading import load_specs
from sloengine.model import Objective, Service

SERVICE = "chat-assistant"


def spec(service: str, slos: str) -> str:
    """An SLO.yaml for ``service`` with 30d SLOs over the simulator's llm metrics."""
    header = f"""\
apiVersion: sloengine/v1
service: {service}
window: 30d
metrics:
  preset: llm
  selector: 'service="{service}"'
slos:
"""
    return header + slos


# Four 30d SLOs over the simulator's llm metrics: every kind Sloth can express as a ratio.
COST_SLOS = spec(
    SERVICE,
    """\
  - name: availability
    objective: 99.5
    sli: {success_rate: {include: [guardrail_rejections]}}
  - name: ttft
    objective: 95
    sli: {ttft: {threshold: 1s}}
  - name: latency
    objective: 99
    sli: {latency: {threshold: 5s}}
  - name: cost-per-call
    objective: 99
    sli: {cost_per_call: {threshold_usd: 0.1}}
""",
)

# One grouped SLO for its cost per group: availability per (provider, feature), the
# simulator's 3 x 3 = 9 groups, as its own service so its series stay apart.
GROUPED_SERVICE = "chat-assistant-grouped"
GROUPED_SLOS = spec(
    SERVICE,
    """\
  - name: availability-by-provider-feature
    objective: 99.5
    sli: {success_rate: {include: [guardrail_rejections]}}
    group_by: [provider, feature]
""",
).replace(f"service: {SERVICE}\n", f"service: {GROUPED_SERVICE}\n", 1)

# One SLO for the alert-timing scenarios: 99.9% makes the four thresholds 1.44%, 0.6%,
# 0.3% and 0.1% errors, the Workbook's own example.
TIMING_SERVICE = "timing"
TIMING_SLOS = spec(
    TIMING_SERVICE,
    """\
  - name: availability
    objective: 99.9
    sli: {success_rate: {}}
""",
)


def load(text: str, directory: Path, name: str) -> Service:
    """Write an SLO file and load it with sloengine's own loader."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    (service,) = load_specs([str(path)])
    return service


# The same SLOs as a Sloth user writes them: plain sums of rates over the same raw series
# (sloengine adds ``or vector(0)`` so a counter not created yet reads as zero; a Sloth
# user would not, and a 0/0 at the first evaluation would poison Sloth's 30d average).
W = WINDOW_PLACEHOLDER


def _requests(selector: str, *bad: str) -> tuple[str, str]:
    errors = " + ".join(f"sum(rate({b}[{W}]))" for b in bad)
    return errors, f"sum(rate(llm_requests_total{{{selector}}}[{W}]))"


def _histogram(metric: str, selector: str, le: str) -> tuple[str, str]:
    count = f"sum(rate({metric}_count{{{selector}}}[{W}]))"
    within = f'sum(rate({metric}_bucket{{{selector},le="{le}"}}[{W}]))'
    return f"{count} - {within}", count


_SEL = f'service="{SERVICE}"'
SLOTH_QUERIES: dict[tuple[str, str], tuple[str, str]] = {
    (SERVICE, "availability"): _requests(
        _SEL,
        f'llm_requests_total{{{_SEL},status="error"}}',
        f"llm_guardrail_rejections_total{{{_SEL}}}",
    ),
    (SERVICE, "ttft"): _histogram("llm_ttft_seconds", _SEL, "1"),
    (SERVICE, "latency"): _histogram("llm_total_latency_seconds", _SEL, "5"),
    (SERVICE, "cost-per-call"): _histogram("llm_cost_per_request_usd", _SEL, "0.1"),
    (TIMING_SERVICE, "availability"): _requests(
        f'service="{TIMING_SERVICE}"',
        f'llm_requests_total{{service="{TIMING_SERVICE}",status="error"}}',
    ),
}


def as_sloth(obj: Objective, service: str | None = None) -> SlothSLO:
    """The same SLO for Sloth, named ``service`` (to load several variants side by side)."""
    errors, total = SLOTH_QUERIES[(obj.service, obj.name)]
    assert obj.objective is not None
    return SlothSLO(
        service=service or obj.service,
        name=obj.name,
        objective=round(obj.objective * 100, 9),
        errors=errors,
        total=total,
    )
