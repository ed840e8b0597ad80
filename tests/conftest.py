"""Shared test set-up: the repository layout and the real promtool the tests need."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The preset fixtures (one service each); tests/fixtures' subdirectories hold Sloth and
# OpenSLO files to import, which are no SLO files.
PRESET_FIXTURES = sorted(str(p) for p in (ROOT / "tests" / "fixtures").glob("*.yaml"))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `apt-get install -y {package}` (see .ci/setup)")
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return _tool("promtool", "prometheus")


@pytest.fixture(scope="session")
def amtool() -> str:
    return _tool("amtool", "prometheus-alertmanager")


# Modules whose tests start a real Prometheus (or the demo); with the tests that run
# promtool, they are `slow`: `pytest -m "not slow"` runs the rest in well under a minute.
SLOW_MODULES = {
    "test_alertmanager_e2e",
    "test_backfill",
    "test_backtest",
    "test_alertmanager_ha",
    "test_demo",
    "test_detector_proofs",
    "test_detector_watch",
    "test_exporter_status",
    "test_faults",
    "test_rule_proofs",
    "test_scheduler",
    "test_month",
    "test_simulate",
    "test_status",
    "test_web_browser",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__ if isinstance(item, pytest.Function) else ""
        fixtures = getattr(item, "fixturenames", ())
        if module in SLOW_MODULES or "promtool" in fixtures:
            item.add_marker(pytest.mark.slow)
