"""Imported SLOs through the real consumer: promtool accepts the rules generated from
every Sloth and OpenSLO fixture, and an imported Sloth SLO alerts on the same scenarios
as Sloth's own rules for it (bench/sloth.py writes Sloth's documented rule shapes)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from conftest import ROOT

from sloengine.cli import cli

sys.path.insert(0, str(ROOT))
from bench.sloth import SlothSLO, alert_name
from bench.sloth import render as sloth_rules

FIXTURES = ROOT / "tests" / "fixtures"


def sloengine(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_promtool_accepts_the_rules_of_every_imported_fixture(
    promtool: str, tmp_path: Path
) -> None:
    slos, rules = tmp_path / "slos", tmp_path / "rules"
    for path in sorted((FIXTURES / "sloth").glob("*.yml")):
        if path.name != "k8s-checkout.yml":  # the same service as checkout.yml
            sloengine("import", "sloth", str(path), "--out", str(slos))
    sloengine(
        "import",
        "openslo",
        *map(str, sorted((FIXTURES / "openslo").glob("*.yaml"))),
        "--out",
        str(slos),
    )
    sloengine("generate", str(slos), "--out", str(rules))
    files = sorted(map(str, rules.glob("*.yml")))
    # checkout, printer-queue, api-server, search, suggest; web-shop
    assert len(files) == 6
    result = subprocess.run(
        [promtool, "check", "rules", *files], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _requests(metric: str, job: str) -> Callable[[int, int], list[dict[str, str]]]:
    """Good and bad requests per minute of an HTTP counter (code 200 and 500)."""

    def series(good: int, bad: int) -> list[dict[str, str]]:
        selector = f'job="{job}",' if job else ""
        return [
            {"series": f'{metric}{{{selector}code="{code}"}}', "values": f"0+{n}x{MINUTES}"}
            for code, n in (("200", good), ("500", bad))
        ]

    return series


MINUTES = 300
Scenario = tuple[str, int, int, str, bool, bool]
# (scenario, good, bad, when to look, page fires, ticket fires)
PER_MILLE: list[Scenario] = [
    ("an outage (10% errors, 100x)", 900, 100, "30m", True, True),
    ("a slow burn (0.5% errors, 5x), no page", 995, 5, "3h", False, True),
    ("half the budget's pace (0.05% errors)", 1999, 1, "4h", False, False),
]
# (fixture, SLO, the input series for (good, bad), the scenarios). Not printer-queue.yml:
# Sloth's own 3d rule for a subquery SLI loads more samples than promtool allows.
SAME_AS_SLOTH: list[tuple[str, str, Callable[[int, int], list[dict[str, str]]], list[Scenario]]] = [
    (
        "checkout.yml",
        "requests-availability",
        _requests("http_requests_total", "checkout"),
        PER_MILLE,
    ),
    ("api-server.yml", "requests-availability", _requests("api_request_total", ""), PER_MILLE),
]


def _firing(severity: str, baseline: SlothSLO) -> list[str]:
    """For Sloth's rules and sloengine's: 1 while they have a firing alert of the severity."""
    return [
        f'sgn(count(ALERTS{{alertname="{alert_name(baseline)}",alertstate="firing",'
        f'sloth_severity="{severity}"}}))',
        f'sgn(count(ALERTS{{alertname="SLOErrorBudgetBurn",alertstate="firing",'
        f'service="{baseline.service}",slo="{baseline.name}",severity="{severity}"}}))',
    ]


@pytest.mark.parametrize(
    ("fixture", "name", "series", "scenarios"),
    SAME_AS_SLOTH,
    ids=[f"{case[0]} {case[1]}" for case in SAME_AS_SLOTH],
)
def test_an_imported_sloth_slo_alerts_when_sloths_own_rules_do(
    promtool: str,
    tmp_path: Path,
    fixture: str,
    name: str,
    series: Callable[[int, int], list[dict[str, str]]],
    scenarios: list[Scenario],
) -> None:
    source = FIXTURES / "sloth" / fixture
    spec = yaml.safe_load(source.read_text())
    (slo,) = [s for s in spec["slos"] if s["name"] == name]
    events = slo["sli"]["events"]
    baseline = SlothSLO(
        service=spec["service"],
        name=name,
        objective=slo["objective"],
        errors=events["error_query"],
        total=events["total_query"],
        labels=spec["labels"],
    )
    # Sloth's optimized form: its exact 30d ratio over the subquery SLIs loads more samples
    # than promtool allows, and no alert reads the 30d ratio.
    (tmp_path / "sloth.rules.yml").write_text(sloth_rules([baseline], "optimized"))
    sloengine("import", "sloth", str(source), "--out", str(tmp_path / "slos"))
    sloengine("generate", str(tmp_path / "slos"), "--out", str(tmp_path))
    tests = []
    for _, good, bad, at, page, ticket in scenarios:
        cases: list[dict[str, Any]] = [
            {
                "expr": query,
                "eval_time": at,
                "exp_samples": [{"labels": "{}", "value": 1}] if fires else [],
            }
            for severity, fires in (("page", page), ("ticket", ticket))
            for query in _firing(severity, baseline)
        ]
        tests.append(
            {"interval": "1m", "input_series": series(good, bad), "promql_expr_test": cases}
        )
    test = {
        "rule_files": ["sloth.rules.yml", f"{baseline.service}.rules.yml"],
        "evaluation_interval": "1m",
        "tests": tests,
    }
    (tmp_path / "same.test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = subprocess.run(
        [promtool, "test", "rules", "same.test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
