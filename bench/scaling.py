"""Generation scaling: ``sloengine generate`` for 10 to 10,000 SLOs, wall time and peak memory.

The SLOs come ten to a service file, one of every SLI kind (and a second ratio and
histogram), as a platform team's repository of many services would hold them. Each size
runs the real CLI in a fresh process, start-up included, as CI runs it.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.sloth import LiteralDumper
from sloengine import rules
from sloengine.loading import load_specs

PER_FILE = 10
SIZES = (10, 100, 1_000, 10_000)

_SLOS = """\
  - name: availability-{i}
    objective: 99.5
    sli: {{success_rate: {{include: [guardrail_rejections]}}}}
  - name: ttft-{i}
    objective: 95
    sli: {{ttft: {{threshold: 1s}}}}
  - name: latency-{i}
    objective: 99
    sli: {{latency: {{threshold: 5s}}}}
  - name: cost-{i}
    objective: 99
    sli: {{cost_per_call: {{threshold_usd: 0.1}}}}
  - name: spend-{i}
    sli: {{spend: {{budget_usd: 30000}}}}
  - name: quality-{i}
    objective: 95
    window: 7d
    sli: {{quality: {{min_score: 0.8}}}}
    alerting: {{min_events: 20}}
  - name: refusals-{i}
    objective: 98
    sli:
      ratio:
        errors: sum(rate(llm_guardrail_rejections_total{{service="svc-{i}"}}[{{{{window}}}}]))
        total: sum(rate(llm_requests_total{{service="svc-{i}"}}[{{{{window}}}}]))
    alerting: {{page: {{enabled: false}}}}
  - name: gateway-errors-{i}
    objective: 99.9
    window: 28d
    sli:
      ratio:
        errors: sum(rate(http_requests_total{{job="gw-{i}",code=~"5.."}}[{{{{window}}}}]))
        total: sum(rate(http_requests_total{{job="gw-{i}"}}[{{{{window}}}}]))
  - name: gateway-latency-{i}
    objective: 99
    sli:
      histogram: {{metric: http_request_duration_seconds, selector: 'job="gw-{i}"', threshold: 0.5}}
  - name: eu-availability-{i}
    objective: 99.9
    sli: {{success_rate: {{selector: 'region="eu"'}}}}
"""


def service_file(i: int) -> str:
    return (
        "apiVersion: sloengine/v1\n"
        f"service: svc-{i}\n"
        "labels: {team: platform}\n"
        f"metrics: {{preset: llm, selector: 'service=\"svc-{i}\"'}}\n"
        "slos:\n" + _SLOS.format(i=i)
    )


@dataclass
class Size:
    slos: int
    files: int
    seconds: list[float]
    peak_rss_mb: float
    rules: int
    output_mb: float

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


@dataclass
class Breakdown:
    """Where ``generate``'s time goes, in one process (seconds)."""

    slos: int
    startup: float  # a fresh ``sloengine --help``: interpreter and imports
    imports: list[tuple[str, float]]  # the costliest modules ``sloengine.cli`` imports
    load: float  # load_specs: read, validate, resolve
    build: float  # rule_groups: the rules as data
    emit: float  # render() minus rule_groups: the rules as YAML, as shipped
    emit_pure: float  # the same YAML through PyYAML's pure-Python emitter, for comparison
    libyaml: bool  # PyYAML here has libyaml


@dataclass
class ScalingResult:
    sizes: list[Size]
    breakdown: Breakdown | None


def _generate(inputs: Path, out: Path) -> tuple[float, float]:
    """One ``sloengine generate`` in a fresh process: wall seconds and peak RSS (MiB)."""
    if out.exists():
        shutil.rmtree(out)
    cli = Path(sys.executable).with_name("sloengine")
    started = time.monotonic()
    process = subprocess.Popen(
        [str(cli), "generate", str(inputs), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    took = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        err = process.stderr.read().decode() if process.stderr else ""
        raise RuntimeError(f"sloengine generate failed ({process.returncode}): {err[-2000:]}")
    if process.stderr:
        process.stderr.close()
    return took, usage.ru_maxrss / 1024  # Linux reports KiB


def run(work: Path, sizes: Sequence[int] = SIZES, repeats: int = 3) -> ScalingResult:
    results = []
    for n in sizes:
        inputs = work / f"slos-{n}"
        if inputs.exists():
            shutil.rmtree(inputs)
        inputs.mkdir(parents=True)
        files = max(1, n // PER_FILE)
        for i in range(files):
            (inputs / f"svc-{i}.yaml").write_text(service_file(i))
        out = work / f"rules-{n}"
        runs = [_generate(inputs, out) for _ in range(repeats if n < 10_000 else 1)]
        rules = sum(
            line.lstrip().startswith(("- record:", "- alert:"))
            for path in out.iterdir()
            for line in path.read_text().splitlines()
        )
        size = sum(p.stat().st_size for p in out.iterdir()) / 2**20
        results.append(Size(n, files, [r[0] for r in runs], max(r[1] for r in runs), rules, size))
    # The breakdown at 1,000 SLOs: the size of the target, and a tenth of the time at 10,000.
    at = 1_000 if 1_000 in sizes else max(sizes)
    return ScalingResult(results, breakdown(work / f"slos-{at}", at))


def costliest_imports(top: int = 3) -> list[tuple[str, float]]:
    """The modules ``sloengine.cli`` imports directly that take longest (``-X importtime``)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import sloengine.cli"],
        capture_output=True,
        text=True,
        check=True,
    )
    children = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2]
        # One level below the top: what sloengine.cli (and its package) import directly.
        if name.startswith("   ") and not name.startswith("    ") and name.strip()[0] != "_":
            children.append((name.strip(), int(parts[1]) / 1e6))
    return sorted(children, key=lambda kv: -kv[1])[:top]


def breakdown(inputs: Path, slos: int) -> Breakdown:
    cli = Path(sys.executable).with_name("sloengine")
    started = time.monotonic()
    subprocess.run([str(cli), "--help"], capture_output=True, check=True)
    startup = time.monotonic() - started

    t = time.monotonic()
    services = load_specs([str(inputs)])
    load = time.monotonic() - t
    t = time.monotonic()
    groups = [rules.rule_groups(service) for service in services]
    build = time.monotonic() - t
    t = time.monotonic()
    shipped = [rules.render(service) for service in services]
    emit = time.monotonic() - t - build
    t = time.monotonic()
    pure = [
        rules.header(service.file)
        + yaml.dump(
            {"groups": g},
            Dumper=LiteralDumper,
            sort_keys=False,
            width=1_000_000,
            allow_unicode=True,
            default_flow_style=False,
        )
        for service, g in zip(services, groups, strict=True)
    ]
    emit_pure = time.monotonic() - t
    if pure != shipped:
        raise RuntimeError("the pure-Python emitter wrote different rule files")
    return Breakdown(
        slos,
        startup,
        costliest_imports(),
        load,
        build,
        emit,
        emit_pure,
        bool(getattr(yaml, "__with_libyaml__", False)),
    )
