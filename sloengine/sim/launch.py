"""A local Prometheus, started on a free loopback port over a given TSDB and stopped after.

The demo, the integration tests and the benchmarks start every Prometheus here. Its
configuration names the rule files to evaluate and, optionally, the simulated service's
live exporter to scrape (see sloengine.sim.exporter); data of the past comes from
blocks backfilled into the TSDB (see sloengine.sim.backfill).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sloengine.errors import UnavailableError

PROMETHEUS = os.environ.get("PROMETHEUS_BIN", "prometheus")
PROMTOOL = os.environ.get("PROMTOOL_BIN", "promtool")
# Debian names the Alertmanager server prometheus-alertmanager; upstream, alertmanager.
ALERTMANAGER = os.environ.get("ALERTMANAGER_BIN") or (
    "prometheus-alertmanager" if shutil.which("prometheus-alertmanager") else "alertmanager"
)
START_HINT = "the server's log is above; check that `prometheus --version` runs"
PROMTOOL_HINT = "check that `promtool --version` runs"
# Backfilled history of any age survives startup unless a caller asks for less.
RETENTION = "100y"


def available() -> bool:
    """True when both the prometheus and promtool binaries are on PATH."""
    return shutil.which(PROMETHEUS) is not None and shutil.which(PROMTOOL) is not None


def version() -> str:
    """The prometheus binary's version line, e.g. ``version 2.42.0+ds (branch: ...)``."""
    out = subprocess.run([PROMETHEUS, "--version"], capture_output=True, text=True, check=False)
    first = (out.stdout or out.stderr).splitlines()[0]
    return first.removeprefix("prometheus, ").strip()


def free_port() -> int:
    """A loopback port free right now."""
    # The port is released before Prometheus binds it; running() retries if it gets taken.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ready(url: str, timeout: float = 1.0) -> bool:
    """True when the Prometheus at ``url`` answers /-/ready."""
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def config(
    *,
    rule_files: Sequence[str | os.PathLike[str]] = (),
    scrape: Sequence[str] = (),
    scrape_interval: str = "5s",
    evaluation_interval: str = "1m",
    keep_target_labels: bool = False,
    alertmanagers: Sequence[str] = (),
) -> dict[str, Any]:
    """A configuration that evaluates ``rule_files``, scrapes ``scrape`` (host:port) and
    sends alerts to ``alertmanagers`` (host:port).

    The scraped samples continue the backfilled series: the exposition's own labels win
    and, unless ``keep_target_labels``, the ``job``/``instance`` of the target are dropped.
    """
    job: dict[str, Any] = {
        "job_name": "simulated",
        "scrape_interval": scrape_interval,
        "honor_labels": True,
        "static_configs": [{"targets": list(scrape)}],
    }
    if not keep_target_labels:
        job["metric_relabel_configs"] = [{"action": "labeldrop", "regex": "job|instance"}]
    out: dict[str, Any] = {
        "global": {"evaluation_interval": evaluation_interval},
        "rule_files": [str(Path(f).resolve()) for f in rule_files],
        "scrape_configs": [job] if scrape else [],
    }
    if alertmanagers:
        out["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]
        }
    return out


@dataclass(frozen=True)
class Server:
    """A running Prometheus: its base URL, e.g. http://127.0.0.1:40123, and its files."""

    url: str
    config_file: Path
    log_file: Path

    def reload(self, new_config: Mapping[str, Any]) -> None:
        """Replace the configuration and have the server apply it (``/-/reload``)."""
        self.config_file.write_text(json.dumps(new_config))  # JSON is YAML
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=600) as response:
            response.read()


@contextlib.contextmanager
def running(
    tsdb_dir: str | os.PathLike[str],
    configuration: Mapping[str, Any],
    *,
    workdir: Path | None = None,
    retention: str = RETENTION,
    extra_args: Sequence[str] = (),
    port: int | None = None,
    timeout: float = 30.0,
) -> Iterator[Server]:
    """Run Prometheus over ``tsdb_dir`` with ``configuration`` until the block exits.

    Its config file and log are in ``workdir`` (a temporary directory by default). The
    server is stopped with SIGTERM, then SIGKILL; the tail of its log is in the error if
    it never becomes ready.
    """
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="prometheus-")))
        workdir.mkdir(parents=True, exist_ok=True)
        config_file, log_file = workdir / "prometheus.yml", workdir / "prometheus.log"
        config_file.write_text(json.dumps(configuration))  # JSON is YAML
        for chosen, process in _started(
            lambda chosen: [
                PROMETHEUS,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={Path(tsdb_dir).resolve()}",
                f"--storage.tsdb.retention.time={retention}",
                f"--web.listen-address=127.0.0.1:{chosen}",
                "--web.enable-lifecycle",
                *extra_args,
            ],
            log_file,
            port=port,
            timeout=timeout,
            hint=START_HINT,
        ):
            try:
                yield Server(f"http://127.0.0.1:{chosen}", config_file, log_file)
                return
            finally:
                _stop(process)


def _started(
    command: Callable[[int], list[str]],
    log_file: Path,
    *,
    port: int | None,
    timeout: float,
    hint: str,
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Start ``command(port)`` until it answers /-/ready, retrying a lost port race;
    yields (port, process) once. The caller stops the process."""
    name = Path(command(0)[0]).name
    for _attempt in range(3):
        chosen = port or free_port()
        with log_file.open("wb") as log:
            process = subprocess.Popen(command(chosen), stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{chosen}"
        try:
            deadline = time.monotonic() + timeout
            while process.poll() is None and not ready(url, timeout=2):
                if time.monotonic() > deadline:
                    raise UnavailableError(
                        f"{name} not ready after {timeout}s:\n{_tail(log_file)}", hint
                    )
                time.sleep(0.05)
            if process.poll() is not None:
                if not port and "address already in use" in log_file.read_text():
                    continue  # lost the port race; pick another
                raise UnavailableError(f"{name} exited:\n{_tail(log_file)}", hint)
        except BaseException:
            _stop(process)
            raise
        yield chosen, process
        return
    raise UnavailableError(f"{name} found no free port:\n{_tail(log_file)}", hint)


@contextlib.contextmanager
def prometheus_server(
    tsdb_dir: str | os.PathLike[str],
    *,
    rule_files: Sequence[str | os.PathLike[str]] = (),
    evaluation_interval: str = "1m",
    extra_args: Sequence[str] = (),
    timeout: float = 30.0,
    port: int | None = None,
    scrape: Sequence[str] = (),
    scrape_interval: str = "5s",
    alertmanagers: Sequence[str] = (),
) -> Iterator[str]:
    """Run Prometheus over ``tsdb_dir`` with these rules and scrape targets; yields its URL."""
    configuration = config(
        rule_files=rule_files,
        scrape=scrape,
        scrape_interval=scrape_interval,
        evaluation_interval=evaluation_interval,
        alertmanagers=alertmanagers,
    )
    with running(
        tsdb_dir, configuration, extra_args=extra_args, port=port, timeout=timeout
    ) as server:
        yield server.url


@contextlib.contextmanager
def alertmanager_server(
    config_file: str | os.PathLike[str],
    workdir: Path,
    *,
    timeout: float = 30.0,
    cluster_port: int | None = None,
    peers: Sequence[str] = (),
) -> Iterator[str]:
    """Run an Alertmanager with ``config_file``; yields its URL.

    Unclustered by default; with ``cluster_port`` it gossips on that loopback port with
    ``peers`` (host:port), at intervals short enough for a test (see
    :func:`alertmanager_cluster`).
    """
    with _alertmanager(
        config_file, workdir, timeout=timeout, cluster_port=cluster_port, peers=peers
    ) as member:
        yield member.url


# Gossip fast, so a cluster settles and shares its notification log within a second or
# two; a member waits PEER_TIMEOUT per position ahead of it before notifying itself.
CLUSTER_FLAGS = (
    "--cluster.gossip-interval=50ms",
    "--cluster.pushpull-interval=1s",
    "--cluster.probe-interval=200ms",
    "--cluster.probe-timeout=100ms",
    "--cluster.settle-timeout=5s",
    "--cluster.reconnect-interval=1s",
)
PEER_TIMEOUT = "3s"


@dataclass
class Member:
    """A running Alertmanager: its URL, its gossip address, and its process."""

    url: str
    cluster_address: str
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        """Stop it the hard way (SIGKILL), as a crash or a lost machine would."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def alertmanager_cluster(
    config_file: str | os.PathLike[str],
    workdir: Path,
    *,
    members: int = 2,
    timeout: float = 30.0,
) -> Iterator[list[Member]]:
    """Run ``members`` Alertmanagers clustered on loopback, each peering with the others;
    yields them (a test may :meth:`Member.kill` one). All stop when the block exits."""
    ports = [free_port() for _ in range(members)]
    addresses = [f"127.0.0.1:{p}" for p in ports]
    with contextlib.ExitStack() as stack:
        started = [
            stack.enter_context(
                _alertmanager(
                    config_file,
                    workdir / f"am{i}",
                    timeout=timeout,
                    cluster_port=port,
                    peers=[a for a in addresses if a != addresses[i]],
                )
            )
            for i, port in enumerate(ports)
        ]
        yield started


@contextlib.contextmanager
def _alertmanager(
    config_file: str | os.PathLike[str],
    workdir: Path,
    *,
    timeout: float,
    cluster_port: int | None,
    peers: Sequence[str],
) -> Iterator[Member]:
    workdir.mkdir(parents=True, exist_ok=True)
    if cluster_port is None:
        cluster = ["--cluster.listen-address="]
        address = ""
    else:
        address = f"127.0.0.1:{cluster_port}"
        cluster = [
            f"--cluster.listen-address={address}",
            f"--cluster.advertise-address={address}",
            f"--cluster.peer-timeout={PEER_TIMEOUT}",
            *CLUSTER_FLAGS,
            *(f"--cluster.peer={p}" for p in peers),
        ]
    for chosen, process in _started(
        lambda chosen: [
            ALERTMANAGER,
            f"--config.file={Path(config_file).resolve()}",
            f"--storage.path={workdir.resolve()}",
            f"--web.listen-address=127.0.0.1:{chosen}",
            *cluster,
        ],
        workdir / "alertmanager.log",
        port=None,
        timeout=timeout,
        hint="check the configuration with `amtool check-config`",
    ):
        try:
            yield Member(f"http://127.0.0.1:{chosen}", address, process)
        finally:
            _stop(process)


def _tail(log_file: Path) -> str:
    return log_file.read_text(errors="replace")[-4000:]


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
