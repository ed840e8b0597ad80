"""The state database under an unlucky deploy: a second scheduler, a damaged file, a
file deleted while running. Each is refused or made visible; none pages twice."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT

from sloengine.alerting import AlertRow, AlertState
from sloengine.cli import cli
from sloengine.conventions import Severity
from sloengine.evaluate import Evaluator
from sloengine.loading import load_specs
from sloengine.notify import ConsoleNotifier
from sloengine.prometheus import Prometheus
from sloengine.scheduler import Engine
from sloengine.state import StateDamaged, StateLocked, Store

SPEC = str(ROOT / "tests" / "live-slos" / "outage.yaml")
NOWHERE = "http://127.0.0.1:9"  # nothing listens: every cycle is blind


def test_a_second_store_on_the_same_file_is_refused_naming_the_holder(tmp_path: Path) -> None:
    first = Store(tmp_path / "state.db")
    with pytest.raises(StateLocked) as caught:
        Store(tmp_path / "state.db")
    assert f"in use by sloengine run (pid {os.getpid()})" in str(caught.value)
    first.close()
    Store(tmp_path / "state.db").close()  # free again once the holder is gone


def test_a_second_run_process_on_one_state_database_exits_2_and_the_first_runs_on(
    tmp_path: Path,
) -> None:
    state = str(tmp_path / "state.db")
    command = [sys.executable, "-m", "sloengine.cli", "run", "--prometheus", NOWHERE]
    first = subprocess.Popen(
        [*command, "--state", state, "--listen", "", "--interval", "60", SPEC],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not Path(state + ".lock").exists() or not Path(state + ".lock").read_text():
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.1)
        second = subprocess.run(
            [*command, "--state", state, "--once", SPEC], capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 2
        assert f"is in use by sloengine run (pid {first.pid})" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(30)


def damage(path: Path) -> None:
    store = Store(path)
    with store.transaction() as db:
        for i in range(200):
            row = AlertRow(f"svc/slo-{i:03}" * 10, AlertState.FIRING, Severity.PAGE, 1, 1, "x" * 99)
            store.put_alert(db, row)
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.seek(4096)
        handle.write(b"\xff" * (size - 4096))


def test_a_damaged_state_database_is_refused_at_start_with_a_hint(tmp_path: Path) -> None:
    damage(tmp_path / "state.db")
    with pytest.raises(StateDamaged, match="is damaged"):
        Store(tmp_path / "state.db")
    result = CliRunner().invoke(
        cli,
        ["run", "--prometheus", NOWHERE, "--state", str(tmp_path / "state.db"), "--once", SPEC],
    )
    assert result.exit_code == 2
    assert "is damaged" in result.output and "move it aside" in result.output


def engine(db: Path, out: io.StringIO) -> Engine:
    objectives = [o for s in load_specs([SPEC]) for o in s.objectives]
    return Engine(
        objectives, Evaluator(Prometheus(NOWHERE, timeout=1)), Store(db), ConsoleNotifier(out)
    )


def test_a_state_database_deleted_while_running_stops_the_cycles_and_turns_health_red(
    tmp_path: Path,
) -> None:
    out = io.StringIO()
    eng = engine(tmp_path / "state.db", out)
    assert eng.run_cycle() is not None
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp_path / 'state.db'}{suffix}").unlink(missing_ok=True)
    for _ in range(4):
        assert eng.run_cycle() is None
    ok, detail = eng.health()
    assert not ok
    assert detail["crashed_cycles"] == 4
    assert "was deleted or replaced" in detail["last_crash"]
    assert "[PAGE]" not in out.getvalue()  # nothing paged from state nobody keeps
    eng.store.close()
