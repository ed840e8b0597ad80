"""A real Prometheus for the benchmarks, and the few API calls they make.

The server is Debian's ``prometheus`` binary on a free loopback port over a TSDB
directory; it reads rule files and may scrape the simulator's live exporter. Nothing
here is mocked: every figure the benchmarks report comes from this process.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sloengine import localprom

PROMETHEUS = os.environ.get("PROMETHEUS_BIN", "prometheus")
PROMTOOL = os.environ.get("PROMTOOL_BIN", "promtool")


def require_binaries() -> None:
    for binary in (PROMETHEUS, PROMTOOL):
        if shutil.which(binary) is None:
            raise SystemExit(f"{binary} not found: install Debian's prometheus package")


def version() -> str:
    out = subprocess.run([PROMETHEUS, "--version"], capture_output=True, text=True, check=False)
    first = (out.stdout or out.stderr).splitlines()[0]
    return first.removeprefix("prometheus, ").strip()


@dataclass
class Server:
    url: str
    log: Path

    def _get(self, path: str, params: dict[str, str] | None = None, timeout: float = 300) -> Any:
        address = f"{self.url}{path}"
        if params:
            address += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(address, timeout=timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise RuntimeError(f"{path} {params}: HTTP {exc.code}: {detail}") from exc
        return body

    def api(self, endpoint: str, params: dict[str, str]) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self._get(f"/api/v1/{endpoint}", params))["data"]
        return data

    def query(self, expr: str, at: float | None = None, stats: bool = False) -> dict[str, Any]:
        """The ``data`` of an instant query (with ``stats`` when asked)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = repr(float(at))
        if stats:
            params["stats"] = "all"
        return self.api("query", params)

    def value(self, expr: str, at: float | None = None) -> float | None:
        """The single value an expression returns at ``at``; None when it returns nothing."""
        data = self.query(expr, at)
        result = data["result"]
        if data["resultType"] == "scalar":
            return float(result[1])
        if not result:
            return None
        if len(result) > 1:
            raise ValueError(f"{expr} returned {len(result)} series, expected one")
        return float(result[0]["value"][1])

    def rule_groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = json.loads(self._get("/api/v1/rules"))["data"]["groups"]
        return groups

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Prometheus's own /metrics, keyed by (name, sorted labels)."""
        return parse_exposition(self._get("/metrics").decode())


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match or line.startswith("#"):
            continue
        name, labels, value = match.groups()
        pairs = tuple(sorted(_LABEL.findall(labels or "")))
        out[(name, pairs)] = float(value)
    return out


@contextlib.contextmanager
def running(
    tsdb_dir: Path,
    workdir: Path,
    *,
    config: dict[str, Any] | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 300.0,
) -> Iterator[Server]:
    """Run Prometheus over ``tsdb_dir`` until the block exits (SIGTERM, then SIGKILL)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "prometheus.yml"
    config_file.write_text(json.dumps(config or {}))  # JSON is YAML
    log_path = workdir / "prometheus.log"
    port = localprom.free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        PROMETHEUS,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={tsdb_dir.resolve()}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        *extra_args,
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while process.poll() is None and not localprom.ready(url, timeout=2):
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus not ready after {timeout}s; see {log_path}")
            time.sleep(0.1)
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited ({process.returncode}); see {log_path}")
        yield Server(url, log_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
