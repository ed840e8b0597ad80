"""The package's shape, enforced: the CLI on top, shell adapters below it, the pure core
at the bottom, and no import pointing back up.

Every module of sloengine is core unless it is named here as shell or CLI; a core module
that imports a shell module, or a library that talks to the network, a database, a
process or a thread, fails this test."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = ROOT / "sloengine"

# Entry points: they may import anything.
TOP = {"sloengine.cli", "sloengine.demo"}
# Everything else is core, sloengine.detectors.* included (spec, catalog, model, checks,
# resolution, rules, ruletests, explain: pure functions of resolved detectors).
# Adapters: I/O with Prometheus, SQLite, Slack, HTTP, files and processes.
SHELL = {
    "sloengine.prometheus",
    "sloengine.evaluate",
    "sloengine.firstlook",
    "sloengine.live",
    "sloengine.scheduler",
    "sloengine.state",
    "sloengine.notify",
    "sloengine.amclient",
    "sloengine.server",
    "sloengine.web.app",
    "sloengine.output",
    "sloengine.sim.launch",
    "sloengine.sim.backfill",
    "sloengine.sim.exporter",
    "sloengine.sim.client",
    "sloengine.backtest.history",
    "sloengine.backtest.detector_history",
    "sloengine.backfill",
}
# What only the shell may use.
IO_LIBRARIES = {
    "apscheduler",
    "concurrent",
    "http",
    "prometheus_api_client",
    "prometheus_client",
    "requests",
    "slack_sdk",
    "socket",
    "sqlite3",
    "subprocess",
    "threading",
    "urllib3",
    "urllib.request",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from sloengine import sli` imports the module sloengine.sli
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
CORE = sorted(set(MODULES) - SHELL - TOP - {"sloengine"})


def layer(name: str) -> int:
    return 2 if name in TOP else 1 if name in SHELL else 0


def test_every_shell_and_top_module_named_here_exists() -> None:
    assert set(MODULES) >= (SHELL | TOP), sorted((SHELL | TOP) - set(MODULES))


@pytest.mark.parametrize("name", CORE)
def test_a_core_module_imports_no_shell_module_and_no_io_library(name: str) -> None:
    found = imports(MODULES[name])
    upward = sorted(m for m in found if m in SHELL | TOP)
    io = sorted(m for m in found if m in IO_LIBRARIES or m.split(".")[0] in IO_LIBRARIES)
    assert not upward, f"{name} (core) imports shell modules {upward}"
    assert not io, f"{name} (core) imports I/O libraries {io}"


@pytest.mark.parametrize("name", sorted(SHELL))
def test_a_shell_module_never_imports_the_cli_or_the_demo(name: str) -> None:
    upward = sorted(m for m in imports(MODULES[name]) if m in TOP)
    assert not upward, f"{name} (shell) imports {upward}"


def test_the_guard_catches_a_core_module_importing_the_shell(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from sloengine.prometheus import Prometheus\n")
    assert "sloengine.prometheus" in imports(bad)
    assert layer("sloengine.prometheus") > layer("sloengine.status")
