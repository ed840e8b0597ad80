"""`sloengine schema` (the JSON Schema editors complete SLO.yaml with) and the pre-commit
hooks: every example and fixture is valid under the schema, typical mistakes are not,
and the hooks run commands that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from conftest import ROOT

from sloengine.cli import cli

VALID = sorted([*(ROOT / "slos").glob("*.yaml"), *(ROOT / "tests" / "fixtures").glob("*.yaml")])


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_every_example_and_fixture_is_valid_under_the_schema(
    validator: jsonschema.Draft202012Validator, path: Path
) -> None:
    errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


@pytest.mark.parametrize(
    ("name", "change", "complaint"),
    [
        ("an unknown field", {"slo": "x"}, "Additional properties"),
        ("a wrong apiVersion", {"apiVersion": "sloengine/v2"}, "sloengine/v1"),
        ("a window that is no duration", {"window": "a month"}, "a month"),
        ("no SLOs", {"slos": []}, "should be non-empty"),
    ],
)
def test_typical_mistakes_are_flagged_by_the_schema(
    validator: jsonschema.Draft202012Validator, name: str, change: dict[str, object], complaint: str
) -> None:
    spec = {**yaml.safe_load((ROOT / "slos" / "gateway.yaml").read_text()), **change}
    messages = " | ".join(e.message for e in validator.iter_errors(spec))
    assert complaint in messages


def test_durations_may_be_written_as_text_or_seconds(
    validator: jsonschema.Draft202012Validator,
) -> None:
    spec = yaml.safe_load((ROOT / "slos" / "gateway.yaml").read_text())
    for window in ("28d", "1h30m", 86400):
        assert list(validator.iter_errors({**spec, "window": window})) == []


def test_schema_out_writes_the_same_schema(tmp_path: Path) -> None:
    runner = CliRunner()
    printed = runner.invoke(cli, ["schema"]).output
    assert runner.invoke(cli, ["schema", "--out", str(tmp_path / "s.json")]).exit_code == 0
    assert (tmp_path / "s.json").read_text() == printed


def test_the_pre_commit_hooks_run_sloengine_commands_on_slo_files() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in hooks] == ["sloengine-validate", "sloengine-generate-check"]
    for hook in hooks:
        program, command, *_ = hook["entry"].split()
        assert program == "sloengine" and command in cli.commands
    files = re.compile(hooks[0]["files"])
    assert files.search("SLO.yaml") and files.search("services/chat/SLO.yml")
    assert files.search("slos/chat-assistant.yaml")
    assert not files.search(".github/workflows/ci.yaml") and not files.search("rules/x.rules.yml")
