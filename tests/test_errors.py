"""Every command on bad input, run as users run it: one clean `error:` line, the exit code
from the README's table, and never a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import cast

import pytest
from conftest import ROOT
from test_cli import BROKEN as INVALID

from sloengine.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_STALE, EXIT_UNAVAILABLE, cli

SLOENGINE = str(Path(sys.executable).with_name("sloengine"))
SLOS = str(ROOT / "slos")
GATEWAY = str(ROOT / "slos" / "gateway.yaml")
# Nothing listens on port 1: connecting is refused at once.
UNREACHABLE = "http://127.0.0.1:1"


def sloengine(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SLOENGINE, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "invalid.yaml").write_text(INVALID)
    (tmp_path / "a-file").write_text("")
    (tmp_path / "rules").mkdir()
    return tmp_path


# (command line, extra environment, exit code, the start of the one `error:` line)
CASES = [
    pytest.param(
        ["validate", "missing.yaml"],
        {},
        EXIT_BAD_INPUT,
        "error: missing.yaml:1:1: no such file or directory",
        id="validate names a missing file and exits 2",
    ),
    pytest.param(
        ["validate", "invalid.yaml"],
        {},
        EXIT_BAD_INPUT,
        "error: invalid.yaml:5:16: objective:",
        id="validate locates an invalid SLO and exits 2",
    ),
    pytest.param(
        ["validate", "--prometheus", UNREACHABLE, GATEWAY],
        {},
        EXIT_UNAVAILABLE,
        f"error: {UNREACHABLE} is unreachable",
        id="validate against an unreachable Prometheus exits 3",
    ),
    pytest.param(
        ["validate", "--prometheus", UNREACHABLE, GATEWAY],
        {"SLOENGINE_PROMETHEUS_TOKEN_FILE": "no-such-token"},
        EXIT_BAD_INPUT,
        "error: cannot read SLOENGINE_PROMETHEUS_TOKEN_FILE: No such file or directory",
        id="validate with an unreadable token file exits 2",
    ),
    pytest.param(
        ["generate", "invalid.yaml", "--out", "rules"],
        {},
        EXIT_BAD_INPUT,
        "error: invalid.yaml:5:16: objective:",
        id="generate refuses an invalid SLO and exits 2",
    ),
    pytest.param(
        ["generate", GATEWAY, "--out", "rules", "--check"],
        {},
        EXIT_STALE,
        "",
        id="generate check on stale rules exits 1",
    ),
    pytest.param(
        ["generate", GATEWAY, "--out", "a-file/rules"],
        {},
        EXIT_BAD_INPUT,
        "error: cannot write a-file/rules: Not a directory",
        id="generate where a file blocks the output directory exits 2",
    ),
    pytest.param(
        ["generate", GATEWAY, "--out", "rules", "--format", "operator", "--label", "release"],
        {},
        EXIT_BAD_INPUT,
        "error: --label 'release' has no '='",
        id="generate for the operator with a label that is not key=value exits 2",
    ),
    pytest.param(
        ["dashboard", "invalid.yaml", "--out", "dashboards"],
        {},
        EXIT_BAD_INPUT,
        "error: invalid.yaml:5:16: objective:",
        id="dashboard refuses an invalid SLO and exits 2",
    ),
    pytest.param(
        ["dashboard", GATEWAY, "--out", "dashboards", "--check"],
        {},
        EXIT_STALE,
        "",
        id="dashboard check on a missing dashboard exits 1",
    ),
    pytest.param(
        ["dashboard", GATEWAY, "--out", "a-file/dashboards"],
        {},
        EXIT_BAD_INPUT,
        "error: cannot write a-file/dashboards: Not a directory",
        id="dashboard where a file blocks the output directory exits 2",
    ),
    pytest.param(
        ["alertmanager", GATEWAY, "--out", "am.yml"],
        {},
        EXIT_BAD_INPUT,
        "error: no Slack channel for",
        id="alertmanager for a file with no notify route and no default channel exits 2",
    ),
    pytest.param(
        [
            "alertmanager",
            GATEWAY,
            "--out",
            "am.yml",
            "--page-channel",
            "#p",
            "--group-wait",
            "soon",
        ],
        {},
        EXIT_BAD_INPUT,
        "error: Invalid value for '--group-wait'",
        id="alertmanager with a timing that is no duration exits 2",
    ),
    pytest.param(
        ["schema", "--out", "a-file/schema.json"],
        {},
        EXIT_BAD_INPUT,
        "error: cannot write a-file/schema.json: File exists",
        id="schema where a file blocks the output directory exits 2",
    ),
    pytest.param(
        ["explain", "missing.yaml"],
        {},
        EXIT_BAD_INPUT,
        "error: missing.yaml:1:1: no such file or directory",
        id="explain names a missing file and exits 2",
    ),
    pytest.param(
        ["explain", "--format", "yaml", GATEWAY],
        {},
        EXIT_BAD_INPUT,
        "error: Invalid value for '--format': 'yaml' is not one of 'text', 'json'.",
        id="explain with a bad option exits 2",
    ),
    pytest.param(
        ["status", "--prometheus", UNREACHABLE, GATEWAY],
        {},
        EXIT_UNAVAILABLE,
        f"error: {UNREACHABLE} is unreachable",
        id="status against an unreachable Prometheus exits 3",
    ),
    pytest.param(
        ["status", "--prometheus", UNREACHABLE, GATEWAY],
        {"SLOENGINE_PROMETHEUS_TOKEN_FILE": "."},
        EXIT_BAD_INPUT,
        "error: cannot read SLOENGINE_PROMETHEUS_TOKEN_FILE: Is a directory",
        id="status with a token file that is a directory exits 2",
    ),
    pytest.param(
        ["status", "--prometheus", "prometheus:9090", GATEWAY],
        {},
        EXIT_BAD_INPUT,
        "error: not an http(s) URL: prometheus:9090",
        id="status with a URL that is not http exits 2",
    ),
    pytest.param(
        ["backtest", "--prometheus", UNREACHABLE, GATEWAY, "--since", "1d"],
        {},
        EXIT_UNAVAILABLE,
        f"error: {UNREACHABLE} is unreachable",
        id="backtest against an unreachable Prometheus exits 3",
    ),
    pytest.param(
        ["backtest", "--prometheus", UNREACHABLE, GATEWAY, "--incidents", "invalid.yaml"],
        {},
        EXIT_BAD_INPUT,
        "error: invalid.yaml:",
        id="backtest with an incidents file that is not a list of incidents exits 2",
    ),
    pytest.param(
        ["status", GATEWAY],
        {},
        EXIT_BAD_INPUT,
        "error: Missing option '--prometheus'.",
        id="status without a Prometheus exits 2",
    ),
    pytest.param(
        ["run", "--once", "--listen", "", "--prometheus", UNREACHABLE, GATEWAY],
        {},
        EXIT_UNAVAILABLE,
        f"error: {UNREACHABLE} is unreachable",
        id="run once against an unreachable Prometheus exits 3",
    ),
    pytest.param(
        ["run", "--once", "--prometheus", UNREACHABLE, GATEWAY],
        {"SLOENGINE_PROMETHEUS_TOKEN_FILE": "no-such-token"},
        EXIT_BAD_INPUT,
        "error: cannot read SLOENGINE_PROMETHEUS_TOKEN_FILE: No such file or directory",
        id="run with an unreadable token file exits 2",
    ),
    pytest.param(
        ["run", "--once", "--prometheus", UNREACHABLE, GATEWAY],
        {"SLACK_BOT_TOKEN_FILE": "no-such-token"},
        EXIT_BAD_INPUT,
        "error: cannot read the Slack secret file: No such file or directory",
        id="run with an unreadable Slack token file exits 2",
    ),
    pytest.param(
        ["run", "--once", "--renotify", "often", "--prometheus", UNREACHABLE, GATEWAY],
        {},
        EXIT_BAD_INPUT,
        "error: Invalid value for --renotify: 'often' is not a duration such as 4h",
        id="run with a bad option exits 2",
    ),
    pytest.param(
        ["run", "--listen", "metrics", "--prometheus", UNREACHABLE, GATEWAY],
        {},
        EXIT_BAD_INPUT,
        "error: Invalid value for '--listen': 'metrics' is not HOST:PORT",
        id="run with a listen address that is not host and port exits 2 before it starts",
    ),
    pytest.param(
        ["serve", "--prometheus", UNREACHABLE, "--state", "missing.db", GATEWAY],
        {},
        EXIT_BAD_INPUT,
        "error: the state database missing.db does not exist (give --state the file",
        id="serve with a state database that does not exist exits 2 and creates none",
    ),
    pytest.param(
        ["serve", "--listen", "", "--prometheus", UNREACHABLE, GATEWAY],
        {},
        EXIT_BAD_INPUT,
        "error: Invalid value for '--listen': an address is needed, such as 127.0.0.1:9465",
        id="serve with no listen address exits 2",
    ),
    pytest.param(
        ["demo", "--listen", "web", str(ROOT / "slos" / "chat-assistant.yaml")],
        {},
        EXIT_BAD_INPUT,
        "error: Invalid value for '--listen': 'web' is not HOST:PORT",
        id="demo with a listen address that is not host and port exits 2 before it starts",
    ),
    pytest.param(
        ["demo", SLOS],
        {},
        EXIT_BAD_INPUT,
        f"error: {SLOS} holds 2 services; the demo shows one (name one SLO file",
        id="demo on a directory of several services exits 2 and says which file to name",
    ),
    pytest.param(
        ["demo", "missing.yaml"],
        {},
        EXIT_BAD_INPUT,
        "error: missing.yaml:1:1: no such file or directory",
        id="demo names a missing file and exits 2",
    ),
    pytest.param(
        ["demo", str(ROOT / "slos" / "chat-assistant.yaml")],
        # No prometheus binary, and no apt-get on PATH to install one.
        {"PROMETHEUS_BIN": "no-such-prometheus", "PATH": str(Path(SLOENGINE).parent)},
        EXIT_UNAVAILABLE,
        "error: prometheus and promtool are needed (install Debian's `prometheus` package",
        id="demo without prometheus exits 3 and says how to install it",
    ),
    pytest.param(
        ["simulate", "--out", "no-such-dir/metrics.om", "--days", "1"],
        {},
        EXIT_BAD_INPUT,
        "error: cannot write no-such-dir/metrics.om: No such file or directory",
        id="simulate into a missing directory exits 2",
    ),
    pytest.param(
        ["simulate", "--out", "metrics.om", "--step", "0"],
        {},
        EXIT_BAD_INPUT,
        "error: Invalid value for '--step': 0 is not in the range x>=1.",
        id="simulate with no time between samples exits 2",
    ),
    pytest.param(
        ["simulate"],
        {},
        EXIT_BAD_INPUT,
        "error: Missing option '--out'.",
        id="simulate without --out exits 2",
    ),
    pytest.param(
        ["import", "sloth", "missing.yml", "--out", "slos"],
        {},
        EXIT_BAD_INPUT,
        "error: missing.yml:1:1: cannot read the file: No such file or directory",
        id="import of a missing file exits 2",
    ),
    pytest.param(
        ["import", "openslo", GATEWAY, "--out", "slos"],
        {},
        EXIT_BAD_INPUT,
        f"error: {GATEWAY}:2:1: apiVersion 'sloengine/v1' is not openslo/v1",
        id="import openslo of a file that is not OpenSLO exits 2",
    ),
    pytest.param(
        ["backfill", "--prometheus", UNREACHABLE, GATEWAY, "--out", "blocks"],
        {},
        EXIT_UNAVAILABLE,
        f"error: {UNREACHABLE} is unreachable",
        id="backfill against an unreachable Prometheus exits 3",
    ),
    pytest.param(
        ["backfill", "--prometheus", UNREACHABLE, GATEWAY, "--out", "."],
        {},
        EXIT_BAD_INPUT,
        "error: --out . exists and is not an empty directory",
        id="backfill into a directory that holds files exits 2",
    ),
    pytest.param(
        ["backfill", "--prometheus", UNREACHABLE, GATEWAY, "--out", "blocks"],
        {"PROMTOOL_BIN": "/nonexistent/promtool"},
        EXIT_BAD_INPUT,
        "error: promtool not found",
        id="backfill without promtool exits 2",
    ),
    pytest.param(
        ["report"],
        {},
        EXIT_BAD_INPUT,
        "error: No such command 'report'.",
        id="an unknown command exits 2",
    ),
]


@pytest.mark.parametrize(("args", "env", "code", "error"), CASES)
def test_bad_input_ends_in_one_clean_error_and_the_exit_code_of_its_kind(
    work: Path, args: list[str], env: dict[str, str], code: int, error: str
) -> None:
    done = sloengine(*args, cwd=work, env=env)
    output = done.stdout + done.stderr
    assert done.returncode == code, output
    assert "Traceback" not in output
    if error:
        errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, done.stderr
        assert errors[0].startswith(error), done.stderr


def test_every_command_is_run_on_bad_input_here() -> None:
    tried = {cast(list[str], case.values[0])[0] for case in CASES}
    assert set(cli.commands) <= tried


def test_the_readme_lists_the_exit_code_table_the_cli_uses() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = {int(code) for code in re.findall(r"^\| `(\d)` \|", readme, re.MULTILINE)}
    assert listed == {EXIT_OK, EXIT_STALE, EXIT_BAD_INPUT, EXIT_UNAVAILABLE}


def test_a_local_prometheus_that_cannot_start_raises_the_unavailable_error_with_its_log(
    tmp_path: Path,
) -> None:
    from sloengine.errors import UnavailableError
    from sloengine.sim.launch import prometheus_server

    with (
        pytest.raises(UnavailableError) as info,
        prometheus_server(tmp_path, extra_args=["--no-such-flag"]),
    ):
        pass
    assert info.value.message.startswith("prometheus exited:\n")
    assert "no-such-flag" in info.value.message
    assert info.value.hint
