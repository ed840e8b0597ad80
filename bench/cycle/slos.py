"""N equivalent SLOs, as SLO.yaml files for sloengine and as slo-generator configs.

Every SLO reads the simulator's ``llm_*`` series for one (provider, model, feature)
slice: success rate, time to first token, end-to-end latency or cost per call, in turn,
with thresholds and objectives varied so no two neighbours are alike. Slices of one
combination are the cheapest raw queries this data allows (2 to 14 series each), so the
raw-mode and slo-generator cycles below are as fast as they can be here: every ratio
against them is a lower bound.

sloengine reads bad and total events at every window its alerts and budget need (for
a 30d SLO with the default policy: 5m, 30m, 1h, 2h, 6h, 1d, 3d and 30d). The
slo-generator config asks for the same eight windows (one error-budget-policy step per
window, with the burn-rate threshold sloengine uses there), so both compute the same
numbers from the same series with the same number of queries per SLO (2 per window).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sloengine.sim.traffic import Scenario

SERVICE_LABEL = 'service="chat-assistant"'
PER_FILE = 10  # SLOs per SLO.yaml (one service each)
WINDOW = "30d"

# The default policy's windows at 30d and the burn rate each is checked against
# (long and short window of a pair share the pair's threshold; 6h serves two pairs).
STEPS: list[tuple[str, int, float]] = [
    ("5m", 300, 14.4),
    ("30m", 1800, 6),
    ("1h", 3600, 14.4),
    ("2h", 7200, 3),
    ("6h", 21600, 6),
    ("1d", 86400, 3),
    ("3d", 259200, 1),
    ("30d", 2592000, 1),
]

KINDS = ("success_rate", "ttft", "latency", "cost_per_call")
THRESHOLDS = {
    "ttft": (1.0, 2.0, 0.5, 1.5),  # seconds; all bucket bounds of the simulator
    "latency": (5.0, 3.0, 7.5, 10.0),
    "cost_per_call": (0.1, 0.05, 0.2, 0.02),
}
HISTOGRAM_METRIC = {
    "ttft": "llm_ttft_seconds",
    "latency": "llm_total_latency_seconds",
    "cost_per_call": "llm_cost_per_request_usd",
}
OBJECTIVES = (99.0, 99.5, 95.0, 99.9, 98.0)


@dataclass(frozen=True)
class Slo:
    service: str
    name: str
    kind: str
    selector: str  # the slice, e.g. provider="openai",model="gpt-4o",feature="chat"
    objective: float
    threshold: float | None


def plan(n: int, sim: Scenario) -> list[Slo]:
    """The first ``n`` SLOs; a larger plan extends a smaller one."""
    combos = sim.combos
    out = []
    for i in range(n):
        combo = combos[i % len(combos)]
        kind = KINDS[(i // len(combos)) % len(KINDS)]
        variant = i // (len(combos) * len(KINDS))
        selector = ",".join(f'{k}="{v}"' for k, v in combo.items())
        threshold = None
        if kind in THRESHOLDS:
            threshold = THRESHOLDS[kind][variant % len(THRESHOLDS[kind])]
        out.append(
            Slo(
                service=f"svc-{i // PER_FILE:04d}",
                name=f"{kind.replace('_', '-')}-{i % PER_FILE}",
                kind=kind,
                selector=selector,
                objective=OBJECTIVES[variant % len(OBJECTIVES)],
                threshold=threshold,
            )
        )
    return out


def _number(x: float) -> str:
    return f"{x:g}"


def _sli(slo: Slo) -> str:
    selector = json.dumps(slo.selector)  # a YAML double-quoted string
    if slo.kind == "success_rate":
        return f"{{success_rate: {{selector: {selector}}}}}"
    assert slo.threshold is not None
    if slo.kind == "cost_per_call":
        return (
            f"{{cost_per_call: {{threshold_usd: {_number(slo.threshold)}, selector: {selector}}}}}"
        )
    return f"{{{slo.kind}: {{threshold: {_number(slo.threshold)}s, selector: {selector}}}}}"


def write_sloengine(slos: list[Slo], out: Path, interval: str) -> list[Path]:
    """One SLO.yaml per service; returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    by_service: dict[str, list[Slo]] = {}
    for slo in slos:
        by_service.setdefault(slo.service, []).append(slo)
    files = []
    for service, members in by_service.items():
        lines = [
            "apiVersion: sloengine/v1",
            f"service: {service}",
            f"window: {WINDOW}",
            f"evaluation_interval: {interval}",
            "metrics:",
            "  preset: llm",
            f"  selector: '{SERVICE_LABEL}'",
            "slos:",
        ]
        for slo in members:
            lines += [
                f"  - name: {slo.name}",
                f"    objective: {_number(slo.objective)}",
                f"    sli: {_sli(slo)}",
            ]
        path = out / f"{service}.yaml"
        path.write_text("\n".join(lines) + "\n")
        files.append(path)
    return files


def slogen_shared_config(prometheus_url: str) -> str:
    """slo-generator's shared config: the Prometheus backend, no exporters, the 8 steps."""
    steps = [
        {
            "name": name,
            "window": seconds,
            "burn_rate_threshold": threshold,
            "alert": True,
            "message_alert": "burning",
            "message_ok": "on track",
        }
        for name, seconds, threshold in STEPS
    ]
    config = {
        "backends": {"prometheus": {"url": prometheus_url}},
        "exporters": {},
        "error_budget_policies": {"default": {"steps": steps}},
    }
    return json.dumps(config, indent=2)  # JSON is YAML


def _slogen_slo(slo: Slo) -> dict[str, object]:
    series = f"{{{SERVICE_LABEL},{slo.selector}}}"
    sli: dict[str, object]
    if slo.kind == "success_rate":
        method = "good_bad_ratio"
        # sloengine: bad = status="error", total = all; good = total - bad = status="ok".
        sli = {
            "filter_good": f'llm_requests_total{{{SERVICE_LABEL},{slo.selector},status="ok"}}',
            "filter_valid": f"llm_requests_total{series}",
        }
    else:
        assert slo.threshold is not None
        method = "distribution_cut"
        # good = the bucket at the threshold, valid = _count: sloengine's bad = count - bucket.
        sli = {
            "expression": f"{HISTOGRAM_METRIC[slo.kind]}_bucket{series}",
            "threshold_bucket": _number(slo.threshold),
        }
    return {
        "apiVersion": "sre.google.com/v2",
        "kind": "ServiceLevelObjective",
        "metadata": {
            "name": f"{slo.service}-{slo.name}",
            "labels": {"service_name": slo.service, "slo_name": slo.name},
        },
        "spec": {
            "description": f"{slo.kind} for {slo.selector}",
            "backend": "prometheus",
            "method": method,
            "exporters": [],
            "service_level_indicator": sli,
            "goal": round(slo.objective / 100, 6),
        },
    }


def write_slogen(slos: list[Slo], out: Path, prometheus_url: str) -> Path:
    """One slo-generator SLO config per SLO, and config.yaml; returns the SLO directory."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(slogen_shared_config(prometheus_url))
    configs = out / "slos"
    configs.mkdir(exist_ok=True)
    for slo in slos:
        path = configs / f"{slo.service}-{slo.name}.yaml"
        path.write_text(json.dumps(_slogen_slo(slo), indent=2))
    return configs
