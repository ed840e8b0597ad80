"""Hostile SLO files: each is refused with a located problem, or accepted and turned into
rules promtool accepts. Never a traceback, a silent skip or a rule file Prometheus would
refuse to load.

``tests/hostile/*.yaml`` are refused; each lists in ``# expect:`` lines every problem it
must produce, as ``sloengine validate`` prints them from ``tests/`` (as in
``tests/invalid/``). ``tests/hostile/accepted/*.yaml`` are odd but valid: they load, and
their generated rules pass ``promtool check rules``. Cases that cannot be files in the
repository (a file over the size limit, a name with a line break, an unreadable file)
are built in a temporary directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from sloengine import output
from sloengine.cli import cli
from sloengine.errors import SpecError
from sloengine.loading import discovery, load_specs
from sloengine.rules import render

TESTS = Path(__file__).parent
HOSTILE = TESTS / "hostile"
ACCEPTED = HOSTILE / "accepted"
EXPECT = "# expect: "
VALID = (
    "apiVersion: sloengine/v1\nservice: {service}\nslos:\n  - name: availability\n"
    "    objective: 99.5\n    sli: {{success_rate: {{}}}}\n"
)

REFUSED = [
    pytest.param(path.relative_to(TESTS).as_posix(), id=path.stem.replace("-", " "))
    for path in sorted(HOSTILE.glob("*.yaml"))
]
GOOD = [
    pytest.param(path.relative_to(TESTS).as_posix(), id=path.stem.replace("-", " "))
    for path in sorted(ACCEPTED.glob("*.yaml"))
]


def expected(case: str) -> list[str]:
    # Some cases are not UTF-8 on purpose: their expect lines are.
    text = (TESTS / case).read_bytes().decode("utf-8", errors="replace")
    return [line.removeprefix(EXPECT) for line in text.splitlines() if line.startswith(EXPECT)]


def copy_without_expectations(case: str, folder: Path) -> Path:
    """The case in folder, its expect lines blanked: they name sloengine, and a file found
    in a directory must be recognised by what a user would write, not by them."""
    lines = (TESTS / case).read_bytes().split(b"\n")
    target = folder / Path(case).name
    target.write_bytes(
        b"\n".join(b"#" if line.startswith(EXPECT.encode()) else line for line in lines)
    )
    return target


def reported(*paths: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_specs(list(paths))
    return [str(problem) for problem in info.value.problems]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def _from_tests_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(TESTS)


@pytest.mark.parametrize("case", REFUSED)
def test_a_hostile_file_is_refused_with_exactly_the_expected_located_problems(case: str) -> None:
    want = expected(case)
    assert want, f"{case} has no `{EXPECT}` lines"
    assert reported(case) == want
    code, out, err = invoke("validate", case)
    assert code == 2
    assert [line for line in err.splitlines() if line.startswith("error: ")] == [
        f"error: {line}" for line in want
    ]
    assert "ok:" not in out


@pytest.mark.parametrize("case", REFUSED)
def test_a_hostile_file_found_in_a_directory_is_reported_never_skipped(
    case: str, tmp_path: Path
) -> None:
    folder = tmp_path / "slos"
    folder.mkdir()
    name = copy_without_expectations(case, folder).as_posix()
    (folder / "other.yaml").write_text(VALID.format(service="other"), encoding="utf-8")
    want = [line.replace(case, name, 1) for line in expected(case)]
    assert reported(str(folder)) == want


@pytest.mark.parametrize("case", REFUSED)
def test_generate_over_a_directory_with_a_hostile_file_exits_2_and_deletes_no_rules(
    case: str, tmp_path: Path
) -> None:
    folder, out = tmp_path / "slos", tmp_path / "rules"
    folder.mkdir()
    copy_without_expectations(case, folder)
    (folder / "other.yaml").write_text(VALID.format(service="other"), encoding="utf-8")
    out.mkdir()
    # The rules the hostile file's service had before someone broke its file.
    (out / "chat.rules.yml").write_text(
        render(load_specs([str(ACCEPTED / "an-anchor-without-aliases.yaml")])[0]),
        encoding="utf-8",
    )
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, _, err = invoke("generate", str(folder), "--out", str(out))
    assert code == 2, err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize("case", GOOD)
def test_an_odd_but_valid_file_gives_rules_promtool_accepts(
    case: str, tmp_path: Path, promtool: str
) -> None:
    (service,) = load_specs([case])
    rule_file = tmp_path / "rules.yml"
    rule_file.write_text(render(service), encoding="utf-8")
    check = subprocess.run(
        [promtool, "check", "rules", str(rule_file)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    code, _, _ = invoke("explain", case)
    assert code == 0


def test_go_templates_in_user_text_reach_the_page_as_written_and_run_nothing(
    tmp_path: Path, promtool: str
) -> None:
    # promtool evaluates the generated alert's labels and annotations as Prometheus does;
    # the alert fires at once on `vector(1)` so only the templates are under test.
    (service,) = load_specs(
        ["hostile/accepted/go-templates-in-labels-annotations-and-runbook.yaml"]
    )
    (obj,) = service.objectives
    groups = yaml.safe_load(render(service))["groups"]
    alert = next(r for g in groups for r in g["rules"] if "alert" in r)
    written = {k: v for k, v in alert["annotations"].items() if k not in ("summary", "description")}
    rule = {"alert": "T", "expr": "vector(1)", "labels": alert["labels"], "annotations": written}
    (tmp_path / "t.rules.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "t", "rules": [rule]}]}), encoding="utf-8"
    )
    want_labels = {**alert["labels"], **obj.labels}
    want_annotations = {**obj.annotations, "runbook_url": obj.runbook_url}
    assert "{{ 7*7 }}" in want_labels.values() and '{{ query "up" }}' in want_annotations.values()
    test = {
        "rule_files": ["t.rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [],
                "alert_rule_test": [
                    {
                        "eval_time": "1m",
                        "alertname": "T",
                        "exp_alerts": [
                            {"exp_labels": want_labels, "exp_annotations": want_annotations}
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "t.test.yml").write_text(yaml.safe_dump(test), encoding="utf-8")
    run = subprocess.run(
        [promtool, "test", "rules", "t.test.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_valid_examples_make_byte_identical_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(TESTS.parent)
    code, _, err = invoke("generate", "slos", "--out", "rules", "--check")
    assert code == 0, err


def test_a_billion_laughs_file_is_refused_at_once() -> None:
    start = time.monotonic()
    problems = reported("hostile/billion-laughs.yaml")
    assert time.monotonic() - start < 1.0
    assert len(problems) == 1 and "aliases" in problems[0]


def test_nesting_a_hundred_thousand_levels_deep_is_refused_without_recursion(
    tmp_path: Path,
) -> None:
    # The 33rd opening bracket is refused: column 14 + 32 openings.
    for nest, column in (
        ("[" * 100_000 + "]" * 100_000, 45),
        ("{a: " * 100_000 + "}" * 100_000, 138),
    ):
        path = tmp_path / "deep.yaml"
        path.write_text(VALID.format(service="deep") + "description: " + nest + "\n")
        (problem,) = reported(str(path))
        assert problem.endswith(
            f":7:{column}: the YAML is nested more than 32 levels deep "
            "(an SLO file nests a few levels: check the indentation and brackets)"
        )


def test_a_file_over_a_megabyte_is_refused_without_being_parsed(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    text = VALID.format(service="big") + "# padding\n" * 100_000
    path.write_text(text, encoding="utf-8")
    (problem,) = reported(str(path))
    assert len(text) == 1_000_115
    assert problem == (
        f"{path}:1:1: the file has 1,000,115 characters, more than the 1,000,000 an SLO file "
        "may have (one file describes one service: split it, or remove what is not SLOs)"
    )


def test_in_a_directory_a_dangling_link_with_an_slo_name_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(VALID.format(service="good"), encoding="utf-8")
    (tmp_path / "SLO.yaml").symlink_to(tmp_path / "gone.yaml")
    assert reported(str(tmp_path)) == [
        f"{tmp_path}/SLO.yaml:1:1: cannot read the file: No such file or directory "
        "(check its permissions)"
    ]


def test_in_a_directory_a_fifo_with_an_slo_name_is_an_error_not_a_hang(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(VALID.format(service="good"), encoding="utf-8")
    os.mkfifo(tmp_path / "slo.yaml")
    assert reported(str(tmp_path)) == [
        f"{tmp_path}/slo.yaml:1:1: cannot read the file: it is not a regular file "
        "(an SLO file is a plain file; remove it or rename it)"
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_in_a_directory_an_unreadable_yaml_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(VALID.format(service="good"), encoding="utf-8")
    locked = tmp_path / "locked.yaml"
    locked.write_text(VALID.format(service="locked"), encoding="utf-8")
    locked.chmod(0)
    assert reported(str(tmp_path)) == [
        f"{locked}:1:1: cannot read the file: Permission denied (check its permissions)"
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists every directory")
def test_a_directory_that_cannot_be_listed_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(VALID.format(service="good"), encoding="utf-8")
    locked = tmp_path / "team"
    locked.mkdir()
    locked.chmod(0)
    try:
        assert reported(str(tmp_path)) == [
            f"{locked}:1:1: cannot list the directory: Permission denied (check its permissions)"
        ]
    finally:
        locked.chmod(0o755)


def test_a_linked_directory_is_searched_once_and_a_link_loop_ends(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "chat.yaml").write_text(VALID.format(service="chat"), encoding="utf-8")
    (shared / "loop").symlink_to(shared)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "gw.yaml").write_text(VALID.format(service="gw"), encoding="utf-8")
    (repo / "shared").symlink_to(shared)
    assert sorted(s.name for s in load_specs([str(repo)])) == ["chat", "gw"]


def test_generated_promtool_tests_pass_with_templates_in_user_labels(
    tmp_path: Path, promtool: str
) -> None:
    # The alert tests sloengine writes match alerts by their labels as written.
    case = "hostile/accepted/go-templates-in-labels-annotations-and-runbook.yaml"
    code, _, err = invoke(
        "generate", case, "--out", str(tmp_path / "rules"), "--tests", str(tmp_path / "t")
    )
    assert code == 0, err
    test_files = sorted((tmp_path / "t").glob("*.test.yml"))
    assert test_files
    for test_file in test_files:
        run = subprocess.run(
            [promtool, "test", "rules", test_file.name],
            cwd=test_file.parent,
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stdout + run.stderr


def test_in_a_directory_an_slo_file_with_an_upper_case_suffix_is_loaded(tmp_path: Path) -> None:
    (tmp_path / "chat.YAML").write_text(VALID.format(service="chat"), encoding="utf-8")
    (tmp_path / "gw.Yml").write_text(VALID.format(service="gw"), encoding="utf-8")
    assert sorted(s.name for s in load_specs([str(tmp_path)])) == ["chat", "gw"]


def test_a_valid_file_after_a_long_comment_header_is_found_in_a_directory(tmp_path: Path) -> None:
    shutil.copy(ACCEPTED / "long-comment-header.yaml", tmp_path / "chat.yaml")
    assert [s.name for s in load_specs([str(tmp_path)])] == ["long-comment-header"]


def test_rule_files_sloengine_generated_are_not_read_as_slo_files(tmp_path: Path) -> None:
    (tmp_path / "chat.yaml").write_text(VALID.format(service="chat"), encoding="utf-8")
    code, _, err = invoke(
        "generate", str(tmp_path), "--out", str(tmp_path / "rules"), "--tests", str(tmp_path / "t")
    )
    assert code == 0, err
    assert [s.name for s in load_specs([str(tmp_path)])] == ["chat"]
    assert discovery.GENERATED_MARK == output.GENERATED_MARK


def test_a_file_name_with_a_line_break_keeps_the_header_and_errors_on_one_line(
    tmp_path: Path, promtool: str
) -> None:
    good = tmp_path / "a\nb # c.yaml"
    good.write_text(VALID.format(service="odd"), encoding="utf-8")
    code, _, err = invoke("generate", str(good), "--out", str(tmp_path / "rules"))
    assert code == 0, err
    rule_file = tmp_path / "rules" / "odd.rules.yml"
    assert rule_file.read_text().splitlines()[0] == (
        f"# Generated by sloengine from {tmp_path}/a\\nb # c.yaml. Do not edit:"
    )
    check = subprocess.run([promtool, "check", "rules", str(rule_file)], capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr
    tests = tmp_path / "tests"
    code, _, err = invoke(
        "generate", str(good), "--out", str(tmp_path / "rules"), "--tests", str(tests)
    )
    assert code == 0, err
    proof = subprocess.run(
        [promtool, "test", "rules", "odd.availability.test.yml"], capture_output=True, cwd=tests
    )
    assert proof.returncode == 0, proof.stdout + proof.stderr
    bad = tmp_path / "x\ny.yaml"
    bad.write_text("apiVersion: sloengine/v2\n", encoding="utf-8")
    code, _, err = invoke("validate", str(bad))
    assert code == 2
    assert all(
        line.startswith(f"error: {tmp_path}/x\\ny.yaml:1:") for line in err.splitlines()[:-1]
    )


def test_explain_refuses_an_objective_beyond_five_nines_instead_of_saying_it_fires_after_1s(
    tmp_path: Path,
) -> None:
    code, out, err = invoke("explain", "hostile/objective-has-ten-nines.yaml")
    assert code == 2
    assert "fires after" not in out
    assert "objective: 99.99999999 is more than 99.999" in err


def test_the_corpus_covers_every_kind_of_hostile_input() -> None:
    assert len(REFUSED) >= 35 and len(GOOD) >= 5
