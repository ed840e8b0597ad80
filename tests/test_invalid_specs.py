"""Invalid SLO.yaml files and the exact problems sloengine reports for them.

Every ``tests/invalid/*.yaml`` file is one case, named for what is wrong with it. A
directory there is one case made of several files (problems that span files). Each
case lists, in ``# expect:`` comment lines, every problem it must produce, exactly as
``sloengine validate`` prints them (``file:line:col: message (hint)``) when run from
``tests/``, in the order they are reported. The comments count as lines, so the
positions include them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sloengine.cli import cli
from sloengine.errors import SpecError
from sloengine.loading import load_specs

TESTS = Path(__file__).parent
INVALID = TESTS / "invalid"
EXPECT = "# expect: "


CASES = [
    pytest.param(path.relative_to(TESTS).as_posix(), id=path.stem.replace("-", " "))
    for path in sorted(INVALID.iterdir())
    if path.is_dir() or path.suffix == ".yaml"
]


def expected(case: str) -> list[str]:
    path = TESTS / case
    files = sorted(path.rglob("*.yaml")) if path.is_dir() else [path]
    return [
        line.removeprefix(EXPECT)
        for file in files
        for line in file.read_text(encoding="utf-8").splitlines()
        if line.startswith(EXPECT)
    ]


def reported(*paths: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_specs(list(paths))
    return [str(problem) for problem in info.value.problems]


@pytest.fixture(autouse=True)
def _from_tests_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    # Reported paths are relative to the working directory, as the CLI prints them.
    monkeypatch.chdir(TESTS)


@pytest.mark.parametrize("case", CASES)
def test_loader_reports_exactly_the_expected_problems(case: str) -> None:
    want = expected(case)
    assert want, f"{case} has no `{EXPECT}` lines"
    assert reported(case) == want


@pytest.mark.parametrize("case", CASES)
def test_validate_prints_each_problem_and_exits_2(case: str) -> None:
    result = CliRunner().invoke(cli, ["validate", case])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {line}" for line in expected(case)]
    assert "ok:" not in result.stdout


def test_three_distinct_problems_in_one_file_are_reported_together() -> None:
    case = "invalid/three-problems-are-reported-together.yaml"
    problems = reported(case)
    assert problems == expected(case)
    assert len(problems) == 3
    assert len({p.split(": ", 1)[1] for p in problems}) == 3  # three different messages


def test_problems_in_several_files_are_reported_in_one_run() -> None:
    cases = [
        "invalid/objective-is-zero.yaml",
        "invalid/ratio-has-no-total.yaml",
        "invalid/service-is-defined-in-two-files",
    ]
    want = sorted(line for case in cases for line in expected(case))
    assert reported(*cases) == want
    result = CliRunner().invoke(cli, ["validate", *cases])
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {line}" for line in want]


def test_the_corpus_covers_enough_cases() -> None:
    assert len(CASES) >= 35


def test_the_valid_examples_still_load() -> None:
    # The corpus proves nothing if every file is rejected: the examples must pass.
    services = load_specs([str(TESTS.parent / "slos")])
    assert {"chat-assistant", "api-gateway"} <= {s.name for s in services}


def test_a_loaded_service_keeps_its_parsed_file_so_later_checks_can_point_into_it() -> None:
    # validate --prometheus locates its problems with this, without reading the file again.
    (service,) = load_specs(["../slos/gateway.yaml"])
    assert service.document is not None
    assert service.document.file == service.file == "../slos/gateway.yaml"
    assert service.document.at(("slos", 0, "sli")) == (18, 7)  # the `ratio:` under `sli:`
    assert service.document.at(("slos", 1, "name"), key=True) == (22, 5)
