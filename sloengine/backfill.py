"""``sloengine backfill``: the recorded history the rules read into the past, rebuilt from
the raw series on a Prometheus with ``promtool tsdb create-blocks-from rules``, written as
TSDB blocks for the operator to move into that Prometheus's data directory.

Which rules and in what order comes from :mod:`sloengine.lookback`. Layer 0 reads raw
series only, so promtool queries the server itself. A later layer reads recorded series
of the layers before it: promtool queries a local Prometheus that holds those layers'
new blocks and reads everything else from the server (``remote_read``). promtool takes
no credentials, so it (and the local Prometheus) reach the server through a loopback
proxy that adds them (see :meth:`Prometheus.forward`); they never appear on a command
line, in a file or in an error.

Each group is rebuilt up to the first sample its rules recorded on the server, never
over it: a minute counted twice would count its events twice. The blocks are written
to a temporary directory beside ``out`` and renamed to ``out`` at the end: a failure
leaves no partial output.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sloengine.durations import format_duration
from sloengine.errors import UnavailableError, UserError
from sloengine.lookback import Plan, Planned, Skipped
from sloengine.prometheus import Prometheus, PrometheusError
from sloengine.sim import launch
from sloengine.sim.backfill import BLOCK_SECONDS, backfill_rules, count_blocks
from sloengine.yamlwriter import dump_yaml

# What promtool (query_range) and a Prometheus reading remotely (read) ask for.
FORWARDED = ("/api/v1/query_range", "/api/v1/query", "/api/v1/read")
PASSED_HEADERS = ("content-type", "content-encoding", "accept-encoding")
PROMTOOL_MISSING_HINT = (
    "install it (Debian and Ubuntu: `apt-get install prometheus`) or set PROMTOOL_BIN; "
    "use the promtool of your Prometheus's version"
)


@dataclass(frozen=True)
class Span:
    """One planned group and the time it is rebuilt over (unix seconds, inclusive)."""

    planned: Planned
    start: int
    end: int


@dataclass
class Result:
    out: Path
    spans: list[Span] = field(default_factory=list)
    covered: list[tuple[Planned, float]] = field(default_factory=list)  # history since
    skipped: tuple[Skipped, ...] = ()
    blocks: int = 0
    head_min_time: float | None = None  # the server's head: blocks after it, see README
    data_dir: str | None = None


def promtool_binary() -> str:
    """The promtool to run; a UserError naming how to get it when there is none."""
    found = shutil.which(launch.PROMTOOL)
    if found is None:
        raise UserError(f"promtool not found ({launch.PROMTOOL!r})", PROMTOOL_MISSING_HINT)
    return found


def first_live(prom: Prometheus, probe: str, start: int, until: int, step: int) -> float | None:
    """When the series ``probe`` selects got their first sample in (start, until], or None.

    ``timestamp()`` of a selector is its newest sample's time; with a subquery step no
    longer than the rules' interval, the first step after a group went live sees the
    first sample itself.
    """
    span = format_duration(max(until - start, step))
    expr = f"min(min_over_time(timestamp({probe})[{span}:{format_duration(step)}]))"
    samples = prom.query(expr, at=until)
    return samples[0].value if samples else None


def spans(prom: Prometheus, plan: Plan, since: int | None, until: int) -> Result:
    """Each planned group's span: from ``since`` (or as far back as it is read) to
    ``until``, or to just before its rules' first live sample; groups whose rules were
    live before the span starts already have their history."""
    result = Result(out=Path(), skipped=plan.skipped)
    live: dict[str, float | None] = {}
    for planned in plan.groups:
        start = until - planned.lookback if since is None else since
        # promtool (2.42) evaluates block by block (2h, from the epoch) and gives up on a
        # rule at the first block in which no evaluation instant falls after the start:
        # one starting late in its first block, with an interval of an hour, records
        # nothing at all. Started on a block's first second, every block has one.
        start -= start % BLOCK_SECONDS
        if planned.group not in live:
            live[planned.group] = first_live(prom, planned.probe, start, until, planned.interval)
        went_live = live[planned.group]
        if went_live is not None and went_live <= start + planned.interval:
            result.covered.append((planned, went_live))
            continue
        end = until if went_live is None else int(went_live) - 1
        if end > start:
            result.spans.append(Span(planned, start, end))
    return result


class _Forwarder(BaseHTTPRequestHandler):
    """Passes promtool's and a local Prometheus's reads to the server, with credentials."""

    prom: Prometheus

    def log_message(self, format: str, *args: Any) -> None:
        pass  # promtool reports what failed; the paths it asked for are not news

    def do_GET(self) -> None:
        self._forward("GET")

    def do_POST(self) -> None:
        self._forward("POST")

    def _forward(self, method: str) -> None:
        if not self.path.startswith(FORWARDED):
            self._answer(404, {"Content-Type": "text/plain"}, b"not forwarded\n")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() in PASSED_HEADERS}
        headers.update(
            {k: v for k, v in self.headers.items() if k.lower().startswith("x-prometheus-")}
        )
        try:
            status, kept, content = self.prom.forward(method, self.path, body, headers)
        except PrometheusError as exc:
            error = {"status": "error", "errorType": "unavailable", "error": str(exc)}
            self._answer(502, {"Content-Type": "application/json"}, json.dumps(error).encode())
            return
        self._answer(status, kept, content)

    def _answer(self, status: int, headers: dict[str, str], content: bytes) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)


@contextlib.contextmanager
def forwarding(prom: Prometheus) -> Iterator[str]:
    """A loopback proxy to ``prom`` with its credentials, for as long as the block runs;
    yields its URL."""
    handler = type("Forwarder", (_Forwarder,), {"prom": prom})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _link_blocks(blocks: Path, scratch: Path) -> None:
    """Hard links of every block, so the local Prometheus may compact its copy freely."""
    for block in blocks.iterdir():
        for path in block.rglob("*"):
            target = scratch / path.relative_to(blocks)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(path, target)


def _run_layer(url: str, layer: list[Span], work: Path, blocks: Path, workers: int) -> None:
    work.mkdir(parents=True)

    def one(item: tuple[int, Span]) -> None:
        i, span = item
        rule_file, out = work / f"group-{i}.yml", work / f"blocks-{i}"
        group = {
            "name": span.planned.group,
            "interval": format_duration(span.planned.interval),
            "rules": list(span.planned.rules),
        }
        rule_file.write_text(dump_yaml({"groups": [group]}), encoding="utf-8")
        backfill_rules(url, rule_file, span.start, span.end, span.planned.interval, out)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, enumerate(layer)))
    for made in sorted(work.glob("blocks-*")):
        for block in made.iterdir():
            if block.is_dir():
                block.rename(blocks / block.name)


def _staging(out: Path) -> Path:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(
            f"--out {out} exists and is not an empty directory",
            "give a new directory: the blocks are moved from it into Prometheus's data directory",
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as exc:
        raise UserError(
            f"cannot write {out}: {exc.strerror}",
            "check that --out names a directory you can write",
        ) from None


def _status(prom: Prometheus, path: str) -> Any:
    """``data`` of a status endpoint, or None when the server does not serve it."""
    try:
        status, _, content = prom.forward("GET", path, b"", {})
        return json.loads(content)["data"] if status == 200 else None
    except (PrometheusError, ValueError, KeyError, TypeError):
        return None


def backfill(
    prom: Prometheus,
    plan: Plan,
    since: int | None,
    until: int,
    out: Path,
    *,
    workers: int = 2,
    log: Callable[[str], None] = lambda _: None,
) -> Result:
    """Rebuild the plan's history into ``out`` (see the module's docstring)."""
    promtool_binary()
    staging = _staging(out)
    try:
        result = spans(prom, plan, since, until)
        result.out = out
        blocks = staging / "blocks"
        blocks.mkdir()
        with forwarding(prom) as proxy:
            depths = sorted({s.planned.layer for s in result.spans})
            for depth in depths:
                layer = [s for s in result.spans if s.planned.layer == depth]
                log(f"layer {depth}: {sum(len(s.planned.rules) for s in layer)} rules")
                work = staging / f"layer-{depth}"
                if depth == 0:
                    _run_layer(proxy, layer, work, blocks, workers)
                    continue
                scratch = staging / f"tsdb-{depth}"
                _link_blocks(blocks, scratch)
                configuration = {
                    **launch.config(),
                    "remote_read": [{"url": f"{proxy}/api/v1/read", "read_recent": True}],
                }
                with launch.running(
                    scratch, configuration, workdir=staging / f"prometheus-{depth}"
                ) as local:
                    _run_layer(local.url, layer, work, blocks, workers)
                shutil.rmtree(scratch)
        head = _status(prom, "/api/v1/status/tsdb")
        if isinstance(head, dict) and isinstance(head.get("headStats"), dict):
            result.head_min_time = float(head["headStats"].get("minTime", 0)) / 1000
        flags = _status(prom, "/api/v1/status/flags")
        if isinstance(flags, dict):
            result.data_dir = flags.get("storage.tsdb.path")
        result.blocks = count_blocks(blocks)
        if out.exists():
            out.rmdir()
        blocks.rename(out)
    except PrometheusError as exc:
        raise UnavailableError(str(exc), "check --prometheus and that it is up") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


def restart_safe_after(result: Result) -> float | None:
    """When restarting Prometheus stops being a risk, if the blocks reach into its head.

    On start, Prometheus drops the write-ahead log's samples older than the newest block's
    end (tsdb.DB.reload truncates the head there). Once the head has been compacted past
    the blocks' end (the 2h range holding it is cut an hour after that range ends), a
    restart loses nothing.
    """
    if not result.spans or result.head_min_time is None:
        return None
    end = max(s.end for s in result.spans)
    if end < result.head_min_time:
        return None
    return end - end % BLOCK_SECONDS + BLOCK_SECONDS + 3600
