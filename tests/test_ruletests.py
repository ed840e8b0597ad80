"""How the generated promtool proofs are laid out: which rules each file loads, the step
it evaluates at, and that a wide step keeps the minute each check is about."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import PRESET_FIXTURES, ROOT

from sloengine.durations import parse_duration
from sloengine.inputs import plan
from sloengine.loading import load_specs
from sloengine.rules import rule_groups
from sloengine.ruletests import (
    MINUTE,
    TEST_SUFFIX,
    _Rules,
    render_files,
    slo_cases,
    slo_files,
)

SOURCES = [str(ROOT / "slos"), *PRESET_FIXTURES]


def _group(*rules: dict[str, Any], name: str = "g") -> dict[str, Any]:
    return {"name": name, "interval": "1m", "rules": list(rules)}


def _rec(name: str, expr: str, **labels: str) -> dict[str, Any]:
    return {"record": name, "expr": expr, "labels": labels}


BASE = _rec("base", "sum(rate(x_total[5m]))")
HOUR = _rec("tile", "sum(rate(x_total[1h]))", window="1h")


@pytest.mark.parametrize(
    ("groups", "step"),
    [
        # Raw series only: any step reads them as a 1m evaluation does (the widest, 1h).
        ([_group(BASE)], 3600),
        # Offsets of whole hours: an hour.
        ([_group(HOUR, _rec("w", 'tile{window="1h"} + tile{window="1h"} offset 2h'))], 3600),
        # A 5m offset: 5m.
        ([_group(BASE, _rec("w", "base + base offset 5m"))], 300),
        # A range of recorded samples hangs on every evaluation in between: 1m.
        ([_group(BASE, _rec("w", "avg_over_time(base[1h])"))], MINUTE),
        # A series recorded later in the evaluation is read from the previous one: 1m.
        ([_group(_rec("w", "base offset 1h"), BASE)], MINUTE),
        # A group read by an earlier group: the same.
        ([_group(_rec("w", "base offset 1h"), name="a"), _group(BASE, name="b")], MINUTE),
        # ... but read by a later group, as group_eval_order lists them: an hour.
        ([_group(BASE, name="a"), _group(_rec("w", "base offset 1h"), name="b")], 3600),
        # An alert that waits (for) depends on the evaluations in between: 1m.
        ([_group(BASE, {"alert": "A", "expr": "base > 1", "for": "2m"})], MINUTE),
    ],
)
def test_a_proof_steps_as_wide_as_the_rules_it_loads_allow(
    groups: list[dict[str, Any]], step: int
) -> None:
    rules = _Rules(groups)
    assert rules.step(set(range(len(rules.rules)))) == step


def test_a_proof_loads_the_rules_its_checks_read_and_what_those_read() -> None:
    groups = [
        _group(
            BASE,
            HOUR,
            _rec("burn", 'tile{window="1h"} / 2', window="1h"),
            _rec("burn", "base / 2", window="5m"),
            {"alert": "A", "expr": 'burn{window="1h"} > 1', "labels": {"pair": "long"}},
            {"alert": "A", "expr": 'burn{window="5m"} > 1', "labels": {"pair": "short"}},
        )
    ]
    rules = _Rules(groups)
    assert rules.closure(['ALERTS{alertname="A", pair="long"}']) == {1, 2, 4}
    assert rules.closure(['ALERTS{alertname="A"}']) == {0, 1, 2, 3, 4, 5}
    assert rules.closure(['burn{window="5m"}']) == {0, 3}
    (kept,) = rules.subset({1, 2, 4})
    assert [r.get("record") or r["alert"] for r in kept["rules"]] == ["tile", "burn", "A"]


def test_every_check_lands_on_an_evaluation_of_its_file() -> None:
    for service in load_specs(SOURCES):
        for name, text in render_files(service).items():
            if not name.endswith(TEST_SUFFIX):
                continue
            doc = yaml.safe_load(text)
            step = parse_duration(doc["evaluation_interval"])
            for case in doc["tests"]:
                for check in case["promql_expr_test"]:
                    assert parse_duration(check["eval_time"]) % step == 0, (name, check)


def test_every_check_of_every_case_is_in_exactly_one_proof_file() -> None:
    for service in load_specs(SOURCES):
        groups = rule_groups(service)
        for obj in service.objectives:
            p = plan(obj)
            if p.reason:
                continue
            wanted = sorted(
                (c.query, repr(c.samples)) for case in slo_cases(obj, p) for c in case.checks
            )
            files = slo_files(service, obj, groups)
            got = sorted(
                (check["expr"], repr(check["exp_samples"]))
                for name, text in files.items()
                if name.endswith(TEST_SUFFIX) and not name.endswith(".month" + TEST_SUFFIX)
                for case in yaml.safe_load(text)["tests"]
                for check in case["promql_expr_test"]
            )
            assert got == wanted, (service.name, obj.name)


def test_an_hour_step_still_proves_the_minute_an_alert_fires(promtool: str, tmp_path: Path) -> None:
    """The chatbot's 3d/6h ticket proof steps an hour at a time: set the minute before
    the Workbook's detection time to expect the alert, or the minute after to expect
    none, and promtool fails."""
    (service,) = load_specs([str(ROOT / "slos" / "chat-assistant.yaml")])
    files = render_files(service)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    name = "chat-assistant.availability.ticket-3d.test.yml"
    doc = yaml.safe_load(files[name])
    assert doc["evaluation_interval"] == "1h"

    def run(tests: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
        (tmp_path / "edited.test.yml").write_text(yaml.safe_dump({**doc, "tests": tests}))
        return subprocess.run(
            [promtool, "test", "rules", "edited.test.yml"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )

    assert run(doc["tests"]).returncode == 0

    def since_outage(case: dict[str, Any], check: dict[str, Any]) -> int:
        # Each group's clean history is its first phase: "0+1000x<minutes> ...".
        history = int(case["input_series"][0]["values"].split()[0].split("x")[1])
        return int(parse_duration(check["eval_time"]) // 60) - history

    checks = {
        since_outage(case, check): (case, check)
        for case in doc["tests"]
        for check in case["promql_expr_test"]
    }
    # Nothing before, nothing at the minute before the Workbook's 21.6 minutes, the
    # alert at the next one, nothing once the 6h short window has recovered.
    assert [(m, bool(c["exp_samples"])) for m, (_, c) in sorted(checks.items())] == [
        (0, False),
        (21, False),
        (22, True),
        (393, False),
    ]
    (quiet_case, quiet), (fire_case, fire) = checks[21], checks[22]
    expect_early = {**quiet, "exp_samples": fire["exp_samples"]}
    assert run([{**quiet_case, "promql_expr_test": [expect_early]}]).returncode == 1
    expect_none = {**fire, "exp_samples": []}
    assert run([{**fire_case, "promql_expr_test": [expect_none]}]).returncode == 1
