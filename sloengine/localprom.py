"""A local Prometheus, started on a free loopback port over a given TSDB.

The demo and the integration tests use it to serve backfilled data (see
sloengine.simulate). The server scrapes nothing; it only serves what is in ``tsdb_dir``
and evaluates the rule files it is given.
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
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sloengine.errors import UnavailableError

PROMETHEUS = os.environ.get("PROMETHEUS_BIN", "prometheus")
PROMTOOL = os.environ.get("PROMTOOL_BIN", "promtool")
START_HINT = "the server's log is above; check that `prometheus --version` runs"
PROMTOOL_HINT = "check that `promtool --version` runs"


def available() -> bool:
    """True when both the prometheus and promtool binaries are on PATH."""
    return shutil.which(PROMETHEUS) is not None and shutil.which(PROMTOOL) is not None


def free_port() -> int:
    """A loopback port free right now."""
    # The port is released before Prometheus binds it; start() retries if it gets taken.
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
) -> Iterator[str]:
    """Run Prometheus over ``tsdb_dir`` and yield its base URL, e.g. http://127.0.0.1:40123.

    Retention is a century, so backfilled history of any age survives startup. The
    server is stopped (SIGTERM, then SIGKILL) when the block exits; its log is in the
    error message if it never becomes ready.
    """
    config = {
        "global": {"evaluation_interval": evaluation_interval},
        "rule_files": [str(Path(f).resolve()) for f in rule_files],
        "scrape_configs": [
            {
                "job_name": "simulated",
                "scrape_interval": scrape_interval,
                "honor_labels": True,
                "static_configs": [{"targets": list(scrape)}],
                # Scraped samples continue the backfilled series: same labels, no job/instance.
                "metric_relabel_configs": [{"action": "labeldrop", "regex": "job|instance"}],
            }
        ]
        if scrape
        else [],
    }
    with tempfile.TemporaryDirectory(prefix="prometheus-") as tmp:
        config_file = Path(tmp) / "prometheus.yml"
        config_file.write_text(json.dumps(config))  # JSON is YAML
        log_path = Path(tmp) / "prometheus.log"
        for _attempt in range(3):
            chosen = port or free_port()
            url = f"http://127.0.0.1:{chosen}"
            args = [
                PROMETHEUS,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={Path(tsdb_dir).resolve()}",
                "--storage.tsdb.retention.time=100y",
                f"--web.listen-address=127.0.0.1:{chosen}",
                "--web.enable-lifecycle",
                *extra_args,
            ]
            with log_path.open("wb") as log:
                process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
            try:
                deadline = time.monotonic() + timeout
                while process.poll() is None and not ready(url):
                    if time.monotonic() > deadline:
                        raise UnavailableError(
                            f"prometheus not ready after {timeout}s:\n{log_path.read_text()}",
                            START_HINT,
                        )
                    time.sleep(0.05)
                if process.poll() is not None:
                    if not port and "address already in use" in log_path.read_text():
                        continue  # lost the port race; pick another
                    raise UnavailableError(
                        f"prometheus exited:\n{log_path.read_text()}", START_HINT
                    )
                yield url
                return
            finally:
                _stop(process)
        raise UnavailableError(
            f"prometheus found no free port:\n{log_path.read_text()}", START_HINT
        )


def backfill_rules(
    url: str, rule_file: str | os.PathLike[str], start: int, end: int, interval: int, out: Path
) -> None:
    """Evaluate ``rule_file`` every ``interval`` seconds over [start, end] against the
    Prometheus at ``url`` and write the results as TSDB blocks into ``out``
    (``promtool tsdb create-blocks-from rules``). Raises UnavailableError with
    promtool's complaint when it fails."""
    done = subprocess.run(
        [
            shutil.which(PROMTOOL) or PROMTOOL,
            "tsdb",
            "create-blocks-from",
            "rules",
            "--quiet",
            f"--url={url}",
            f"--start={start}",
            f"--end={end}",
            f"--eval-interval={interval}s",
            f"--output-dir={out}",
            str(rule_file),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise UnavailableError(
            f"promtool could not backfill the rules: {done.stderr[-2000:]}",
            PROMTOOL_HINT,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def query(url: str, expr: str, at: float | None = None) -> list[dict[str, Any]]:
    """Result of an instant query (the ``data.result`` list); raises on a query error."""
    params = {"query": expr} if at is None else {"query": expr, "time": repr(float(at))}
    result: list[dict[str, Any]] = _api(url, "query", params)["result"]
    return result


def query_range(url: str, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
    """Result of a range query (the ``data.result`` matrix)."""
    params = {"query": expr, "start": repr(start), "end": repr(end), "step": repr(step)}
    result: list[dict[str, Any]] = _api(url, "query_range", params)["result"]
    return result


def active_alerts(url: str) -> list[dict[str, Any]]:
    """The alerts Prometheus holds now (``/api/v1/alerts``: labels, state, value).

    Unlike the ``ALERTS`` series, which a freshly started Prometheus writes only from
    its third evaluation of a group (it first restores ``for`` state), this answers
    from the first evaluation.
    """
    found: list[dict[str, Any]] = _api(url, "alerts", {})["alerts"]
    return found


def scalar(url: str, expr: str, at: float | None = None) -> float | None:
    """The value of a query that returns one series (or a scalar); None when empty."""
    params = {"query": expr} if at is None else {"query": expr, "time": repr(float(at))}
    data = _api(url, "query", params)
    if data["resultType"] == "scalar":
        return float(data["result"][1])
    result = data["result"]
    if not result:
        return None
    if len(result) > 1:
        raise ValueError(f"{expr} returned {len(result)} series, expected one")
    return float(result[0]["value"][1])


def rule_groups(url: str) -> list[dict[str, Any]]:
    """The rule groups the server has loaded (``/api/v1/rules``)."""
    with urllib.request.urlopen(f"{url}/api/v1/rules", timeout=60) as response:
        groups: list[dict[str, Any]] = json.load(response)["data"]["groups"]
    return groups


def _api(url: str, endpoint: str, params: dict[str, str]) -> dict[str, Any]:
    address = f"{url}/api/v1/{endpoint}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(address, timeout=60) as response:
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise RuntimeError(f"{params.get('query', endpoint)}: HTTP {exc.code}: {detail}") from exc
    data: dict[str, Any] = body["data"]
    return data
