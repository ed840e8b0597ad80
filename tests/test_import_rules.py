"""Imported SLOs through the real consumer: promtool accepts the rules generated from
every Sloth and OpenSLO fixture, and an imported Sloth SLO alerts on the same scenarios
as Sloth's own rules for it (bench/sloth.py writes Sloth's documented rule shapes)."""

from __future__ import annotations

import subprocess
import sys
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


def _scenario(good_per_min: int, bad_per_min: int, minutes: int) -> list[dict[str, str]]:
    return [
        {
            "series": f'http_requests_total{{job="checkout",code="{code}"}}',
            "values": f"0+{per_min}x{minutes}",
        }
        for code, per_min in (("200", good_per_min), ("500", bad_per_min))
    ]


def _firing(severity: str, sloth_alert: str) -> list[tuple[str, str]]:
    """(which rules, query): 1 while that rule set has a firing alert of the severity."""
    return [
        (
            "sloth",
            f'sgn(count(ALERTS{{alertname="{sloth_alert}",alertstate="firing",'
            f'sloth_severity="{severity}"}}))',
        ),
        (
            "sloengine",
            f'sgn(count(ALERTS{{alertname="SLOErrorBudgetBurn",alertstate="firing",'
            f'service="checkout",slo="requests-availability",severity="{severity}"}}))',
        ),
    ]


# (case, good and bad requests per minute, when to look, page fires, ticket fires);
# the objective is 99.9%, so 1 bad request in 1000 burns the budget at 1x.
SCENARIOS = [
    (
        "an outage (10% errors, 100x) pages and tickets within 30 minutes",
        900,
        100,
        "30m",
        True,
        True,
    ),
    ("a slow burn (0.5% errors, 5x) tickets after 3 hours, no page", 995, 5, "3h", False, True),
    ("half the budget's pace (0.05% errors) stays quiet", 1999, 1, "4h", False, False),
]


@pytest.mark.parametrize(
    ("good", "bad", "at", "page", "ticket"),
    [s[1:] for s in SCENARIOS],
    ids=[s[0] for s in SCENARIOS],
)
def test_an_imported_sloth_slo_alerts_when_sloths_own_rules_do(
    promtool: str,
    tmp_path: Path,
    good: int,
    bad: int,
    at: str,
    page: bool,
    ticket: bool,
) -> None:
    source = FIXTURES / "sloth" / "checkout.yml"
    spec = yaml.safe_load(source.read_text())
    (slo,) = spec["slos"]
    events = slo["sli"]["events"]
    baseline = SlothSLO(
        service=spec["service"],
        name=slo["name"],
        objective=slo["objective"],
        errors=events["error_query"],
        total=events["total_query"],
        labels=spec["labels"],
    )
    (tmp_path / "sloth.rules.yml").write_text(sloth_rules([baseline], "exact"))
    sloengine("import", "sloth", str(source), "--out", str(tmp_path / "slos"))
    sloengine("generate", str(tmp_path / "slos"), "--out", str(tmp_path))
    expected = {"page": page, "ticket": ticket}
    cases: list[dict[str, Any]] = []
    for severity, fires in expected.items():
        for _, query in _firing(severity, alert_name(baseline)):
            cases.append(
                {
                    "expr": query,
                    "eval_time": at,
                    "exp_samples": [{"labels": "{}", "value": 1}] if fires else [],
                }
            )
    test = {
        "rule_files": ["sloth.rules.yml", "checkout.rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": _scenario(good, bad, 300),
                "promql_expr_test": cases,
            }
        ],
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
