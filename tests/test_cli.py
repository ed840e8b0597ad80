"""The command line as a user meets it: exit codes, messages, and what lands on disk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import ROOT

from sloengine.cli import cli

GATEWAY = str(ROOT / "slos" / "gateway.yaml")
BROKEN = """apiVersion: sloengine/v1
service: broken
slos:
  - name: errors
    objective: 140
    sli: {success_rate: {}}
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_validate_reports_ok_with_the_number_of_services_and_slos() -> None:
    code, out, _ = run("validate", str(ROOT / "slos"))
    assert code == 0
    assert out == "ok: 2 services, 11 SLOs\n"


def test_validate_reports_an_invalid_file_with_its_location_and_exit_code_2(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "slo.yaml"
    bad.write_text(BROKEN)
    code, out, err = run("validate", str(bad))
    assert code == 2
    assert out == ""
    assert err.startswith(f"error: {bad}:5:16: ")
    assert "Traceback" not in err


def test_generate_writes_one_rule_file_per_slo_file(tmp_path: Path) -> None:
    code, _, _ = run("generate", str(ROOT / "slos"), "--out", str(tmp_path))
    assert code == 0
    # and, beside it, one for a file's detectors (README, Detectors)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "api-gateway.rules.yml",
        "chat-assistant.detectors.rules.yml",
        "chat-assistant.rules.yml",
    ]
    assert (tmp_path / "api-gateway.rules.yml").read_text() == (
        ROOT / "rules" / "api-gateway.rules.yml"
    ).read_text()


def test_generate_check_passes_on_the_checked_in_rules() -> None:
    code, out, _ = run("generate", str(ROOT / "slos"), "--out", str(ROOT / "rules"), "--check")
    assert code == 0
    assert out == "up to date: 3 files\n"  # the chatbot has detectors: a third file


def test_generate_check_exits_1_naming_each_stale_file_and_writes_nothing(
    tmp_path: Path,
) -> None:
    out_dir = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", out_dir)
    edited = out_dir / "api-gateway.rules.yml"
    edited.write_text(edited.read_text().replace("14.4", "15"))
    (out_dir / "chat-assistant.rules.yml").unlink()
    before = {p.name: p.read_text() for p in out_dir.iterdir()}
    code, _, err = run("generate", str(ROOT / "slos"), "--out", str(out_dir), "--check")
    assert code == 1
    assert f"stale: {out_dir / 'api-gateway.rules.yml'}: out of date" in err
    assert f"stale: {out_dir / 'chat-assistant.rules.yml'}: missing" in err
    assert {p.name: p.read_text() for p in out_dir.iterdir()} == before


def test_generate_check_names_rule_files_left_from_a_deleted_slo_file(tmp_path: Path) -> None:
    run("generate", str(ROOT / "slos"), "--out", str(tmp_path))
    code, _, err = run("generate", GATEWAY, "--out", str(tmp_path), "--check")
    assert code == 1
    assert "chat-assistant.rules.yml: generated from an SLO that no longer exists" in err


def test_generate_removes_rule_files_of_deleted_slo_files_but_not_other_files(
    tmp_path: Path,
) -> None:
    (tmp_path / "handwritten.yml").write_text("groups: []\n")
    run("generate", str(ROOT / "slos"), "--out", str(tmp_path))
    code, out, _ = run("generate", GATEWAY, "--out", str(tmp_path))
    assert code == 0
    assert f"removed {tmp_path / 'chat-assistant.rules.yml'}" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "api-gateway.rules.yml",
        "handwritten.yml",
    ]


def test_nothing_is_written_when_any_input_is_invalid(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text(BROKEN)
    out_dir = tmp_path / "rules"
    code, _, err = run("generate", GATEWAY, str(bad), "--out", str(out_dir))
    assert code == 2
    assert err.endswith("1 problem found; nothing was written\n")
    assert not out_dir.exists()


def test_an_invalid_input_leaves_existing_rules_untouched(tmp_path: Path) -> None:
    run("generate", GATEWAY, "--out", str(tmp_path))
    before = (tmp_path / "api-gateway.rules.yml").read_text()
    bad = tmp_path / "broken.yaml"
    bad.write_text(BROKEN)
    code, _, _ = run("generate", GATEWAY, str(bad), "--out", str(tmp_path))
    assert code == 2
    assert (tmp_path / "api-gateway.rules.yml").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["api-gateway.rules.yml", "broken.yaml"]


def test_generated_files_are_readable_by_others_like_any_file_written_normally(
    tmp_path: Path,
) -> None:
    run("generate", GATEWAY, "--out", str(tmp_path))
    assert (tmp_path / "api-gateway.rules.yml").stat().st_mode & 0o044 == 0o044


def test_generate_tests_writes_each_slo_its_proof_and_its_own_rule_groups(tmp_path: Path) -> None:
    rules, tests = tmp_path / "rules", tmp_path / "t"
    code, _, _ = run("generate", GATEWAY, "--out", str(rules), "--tests", str(tests))
    assert code == 0
    # Per SLO its own files, the alerts' part and a part per pair (the gateway's latency
    # SLO has no tickets).
    parts = {
        "errors": ["", ".alerts", ".page-56m", ".page-5h36m", ".ticket-22h24m", ".ticket-2d19h12m"],
        "latency": ["", ".alerts", ".page-56m", ".page-5h36m"],
    }
    assert sorted(p.name for p in tests.iterdir()) == sorted(
        f"api-gateway.{slo}{part}{suffix}"
        for slo, names in parts.items()
        for part in names
        for suffix in (".rules.yml", ".test.yml")
    )
    service = yaml.safe_load((rules / "api-gateway.rules.yml").read_text())["groups"]
    rules_of = {g["name"]: g["rules"] for g in service}
    for slo, names in parts.items():
        for part in names:
            test = yaml.safe_load((tests / f"api-gateway.{slo}{part}.test.yml").read_text())
            assert test["rule_files"] == [f"api-gateway.{slo}{part}.rules.yml"]
            assert {c["name"].split(":")[0] for c in test["tests"]} == {f"api-gateway/{slo}"}
            own = yaml.safe_load((tests / f"api-gateway.{slo}{part}.rules.yml").read_text())
            # Each group's rules as the service's rule file has them, in its order:
            # all of them for the SLO's own file, those the part's checks read for a part.
            for group in own["groups"]:
                assert group["name"].startswith(f"sloengine:api-gateway:{slo}")
                whole = rules_of[group["name"]]
                assert [r for r in whole if r in group["rules"]] == group["rules"]
                assert group["rules"] == whole or part
        own = yaml.safe_load((tests / f"api-gateway.{slo}.rules.yml").read_text())["groups"]
        # The SLO's two groups, exactly as the service's rule file has them.
        assert [g["name"] for g in own] == [
            f"sloengine:api-gateway:{slo}",
            f"sloengine:api-gateway:{slo}:budget",
        ]
        assert all(g in service for g in own)


def test_generate_check_names_stale_missing_and_orphaned_proof_files(tmp_path: Path) -> None:
    rules, tests = tmp_path / "rules", tmp_path / "t"
    args = ("generate", GATEWAY, "--out", str(rules), "--tests", str(tests))
    assert run(*args)[0] == 0
    assert run(*args, "--check")[0] == 0
    (tests / "api-gateway.errors.rules.yml").write_text("# Generated by sloengine\n")
    (tests / "api-gateway.latency.test.yml").unlink()
    # A service-wide test file as generate wrote them before: nothing produces it now.
    (tests / "api-gateway.test.yml").write_text("# Generated by sloengine from gateway.yaml\n")
    code, _, err = run(*args, "--check")
    assert code == 1
    assert f"{tests / 'api-gateway.errors.rules.yml'}: out of date" in err
    assert f"{tests / 'api-gateway.latency.test.yml'}: missing" in err
    assert f"{tests / 'api-gateway.test.yml'}: generated from an SLO that no longer exists" in err
    code, out, _ = run(*args)
    assert code == 0
    assert f"removed {tests / 'api-gateway.test.yml'}" in out
    assert run(*args, "--check")[0] == 0


def test_generate_tests_names_an_slo_it_cannot_write_a_proof_for(tmp_path: Path) -> None:
    (tmp_path / "slo.yaml").write_text(
        "apiVersion: sloengine/v1\nservice: two\nslos:\n"
        "  - {name: plain, objective: 99, sli: {success_rate: {}}}\n"
        "  - name: sum\n    objective: 99\n    sli:\n      ratio:\n"
        "        errors: sum(rate(a_errors_total[{{window}}])) + sum(rate(b_errors_total[{{window}}]))\n"
        "        total: sum(rate(requests_total[{{window}}]))\n"
    )
    tests = tmp_path / "t"
    code, _, err = run(
        "generate", str(tmp_path / "slo.yaml"), "--out", str(tmp_path / "r"), "--tests", str(tests)
    )
    assert code == 0
    assert (
        "note: no promtool tests for two/sum: the ratio SLI reads more than one series selector"
        in err
    )
    assert {p.name.split(".")[1] for p in tests.iterdir()} == {"plain"}
    assert "two.plain.test.yml" in {p.name for p in tests.iterdir()}


def test_generate_refuses_tests_in_the_rules_directory(tmp_path: Path) -> None:
    code, _, err = run("generate", GATEWAY, "--out", str(tmp_path), "--tests", str(tmp_path))
    assert code == 2
    assert "--tests and --out both name" in err and "load every rule twice" in err
    assert list(tmp_path.iterdir()) == []


def test_generate_refuses_two_proofs_that_would_share_a_file_name(tmp_path: Path) -> None:
    # Names may hold dots: service a.b's SLO c and service a's SLO b.c meet at a.b.c.
    for service, slo in (("a.b", "c"), ("a", "b.c")):
        (tmp_path / f"{service}.yaml").write_text(
            f"apiVersion: sloengine/v1\nservice: {service}\nslos:\n"
            f"  - {{name: {slo}, objective: 99, sli: {{success_rate: {{}}}}}}\n"
        )
    out = tmp_path / "out"
    code, _, err = run(
        "generate", str(tmp_path), "--out", str(out / "r"), "--tests", str(out / "t")
    )
    assert code == 2
    assert "the proofs of service a.b" in err and "and of service a (" in err
    assert f"would both write {out / 't' / 'a.b.c.rules.yml'}" in err
    assert not out.exists()


def test_explain_gives_the_budget_in_minutes_of_outage_and_the_time_to_fire() -> None:
    code, out, _ = run("explain", GATEWAY)
    assert code == 0
    first = out.split("\n\n")[0].splitlines()
    assert first[0] == "api-gateway/errors: ratio, objective 99.9% over 28d"
    assert first[1] == "  error budget: 0.1% of events per 28d = 40m19s of full outage"
    # 14.4x over 56m on a 99.9% SLO: a full outage fires after 0.001 * 56m * 14.4 = 48.4s.
    # Its short window, 28d/8640 = 4m40s, is raised to the 5m base window.
    assert first[3].split() == ["page", "14.4x", "56m", "/", "5m", "2%", "48s"]


def test_explain_json_lists_every_pair_with_its_numbers() -> None:
    code, out, _ = run("explain", "--format", "json", GATEWAY)
    assert code == 0
    reports = json.loads(out)
    assert [r["slo"] for r in reports] == ["errors", "latency"]
    page = reports[0]["pairs"][0]
    assert page["severity"] == "page"
    assert page["burn_rate"] == 14.4
    assert page["long_window"] == "56m"
    assert page["fires_after_seconds"] == pytest.approx(48.384)


def explain_one_slo(tmp_path: Path, service: str, objective: str) -> tuple[int, str]:
    """``explain`` of a file with one success-rate SLO at this objective."""
    spec = tmp_path / "slo.yaml"
    spec.write_text(
        f"apiVersion: sloengine/v1\nservice: {service}\nslos:\n"
        f"  - {{name: ok, objective: {objective}, sli: {{success_rate: {{}}}}}}\n"
    )
    code, out, _ = run("explain", str(spec))
    return code, out


def test_explain_warns_when_a_page_can_never_fire(tmp_path: Path) -> None:
    code, out = explain_one_slo(tmp_path, "lax", "90")
    assert code == 0
    assert (
        "warning: the page alert at 14.4x can never fire: it needs 144% bad events, more than "
        "a full outage; raise the objective or lower this burn rate"
    ) in out


def test_run_reports_a_busy_listen_address_cleanly(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run(
            "run",
            "--prometheus",
            "http://127.0.0.1:9",
            "--listen",
            f"127.0.0.1:{port}",
            "--state",
            str(tmp_path / "s.db"),
            GATEWAY,
        )
    assert code == 2
    assert err == f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_run_reports_a_state_database_it_cannot_open(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run(
        "run",
        "--prometheus",
        "http://127.0.0.1:9",
        "--once",
        "--state",
        str(blocker / "s.db"),
        GATEWAY,
    )
    assert code == 2
    assert err.startswith(f"error: cannot open the state database {blocker / 's.db'}: ")
    assert "Traceback" not in err


def test_explain_warns_when_an_objective_reads_like_a_fraction(tmp_path: Path) -> None:
    code, out = explain_one_slo(tmp_path, "typo", "0.995")
    assert code == 0
    assert (
        "warning: objective 0.995% reads like a fraction: objectives are percent, did you mean "
        "99.5?"
    ) in out
