"""The web page's shell: reads statuses, series and incident history, then hands them to
:mod:`sloengine.web.views` and :mod:`sloengine.web.pages`.

The statuses come from the scheduler's last cycle (``sloengine run``) or from one
:class:`~sloengine.evaluate.Evaluator` evaluation per request (``sloengine serve``), the
same objects ``status --format json`` prints. Nothing here writes: the state database
is read through the running scheduler's store or opened read-only.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from sloengine.conventions import Mode
from sloengine.detectors.verdict import DetectorStatus
from sloengine.errors import UserError
from sloengine.evaluate import Evaluator
from sloengine.explain import explain, render_text
from sloengine.model import Objective, Service
from sloengine.prometheus import Prometheus, PrometheusError, Series
from sloengine.rules import window_exprs
from sloengine.server import HTML, Response, address, serve
from sloengine.state import NoteRow, incident_notes, open_read_only
from sloengine.status import Status
from sloengine.web import pages, views
from sloengine.web.views import Note, RatePoint
from sloengine.windows import alert_windows

if TYPE_CHECKING:
    from sloengine.scheduler import Engine

log = logging.getLogger("sloengine")

DAY = 86400
# Points per chart: enough for a smooth line, few enough that a raw 30d query stays cheap.
WINDOW_POINTS = 120
RAW_WINDOW_POINTS = 48
DAY_STEP = 300
RAW_DAY_STEP = 900


@dataclass(frozen=True)
class Snapshot:
    statuses: list[Status]
    at: float | None  # when they were read; None before the first evaluation
    detectors: list[DetectorStatus] = field(default_factory=list)


NotesReader = Callable[[str], list[NoteRow]]


class Site:
    """Answers GET requests for ``/`` and ``/slo/<service>/<slo>``."""

    def __init__(
        self,
        services: Sequence[Service],
        evaluator: Evaluator,
        *,
        current: Callable[[], Snapshot | None] | None = None,
        notes: NotesReader | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.services = list(services)
        self.objectives = {o.key: o for s in services for o in s.objectives}
        self.detectors = [d for s in services for d in s.detectors]
        self.evaluator = evaluator
        self.current = current
        self.notes = notes
        self.clock = clock
        self.sources = {s.file: _read(s.file) for s in services}
        self.documents = {s.file: s.document for s in services}

    def __call__(self, path: str, query: dict[str, list[str]]) -> Response:
        try:
            at = _instant(query)
        except ValueError:
            return self._error(400, "at= is a Unix time in seconds, e.g. at=1767225600")
        if path in ("/", "/index.html"):
            snap = self.snapshot(at)
            view = views.overview(
                snap.statuses,
                self.objectives,
                views.Filters.from_query(query),
                snap.at,
                snap.detectors,
            )
            return 200, HTML, pages.render_overview(view).encode()
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "slo":
            key = (unquote(parts[2]), unquote(parts[3]))
            obj = self.objectives.get(key)
            if obj is None:
                return self._error(404, f"no SLO {key[0]}/{key[1]} is loaded here")
            return 200, HTML, pages.render_detail(self.detail(obj, at)).encode()
        return self._error(404, f"nothing at {path}: the SLOs are at /")

    def snapshot(self, at: float | None = None) -> Snapshot:
        """The scheduler's last statuses, or a fresh evaluation (always for ``at``)."""
        if at is None and self.current is not None:
            snap = self.current()
            if snap is not None:
                return snap
        when = float(int(self.clock() if at is None else at))
        return Snapshot(
            self.evaluator.evaluate(self.objectives.values(), when),
            when,
            self.evaluator.evaluate_detectors(self.detectors, when),
        )

    def detail(self, obj: Objective, at: float | None) -> views.Detail:
        snap = self.snapshot(at)
        mine = [s for s in snap.statuses if s.key == obj.key]
        end = float(int(snap.at if snap.at is not None else self.clock()))
        recorded = any(s.mode == Mode.RECORDED for s in mine)
        errors: list[str] = []
        try:
            window, day = self.series(obj, end, recorded)
        except PrometheusError as exc:
            errors.append(f"charts unavailable: {exc}")
            window, day = [], {}
        notes: list[Note] | None = None
        if self.notes is not None:
            try:
                notes = [Note(*r) for r in self.notes(f"{obj.service}/{obj.name}/")]
            except sqlite3.Error as exc:
                errors.append(f"cannot read the state database: {exc}")
        drawn = views.charts(obj, window, day, end - obj.period, end - DAY, end)
        text = self.sources.get(obj.file, "")
        return views.detail(
            obj,
            mine,
            explanation=render_text(explain(obj), obj),
            source=views.definition(text, self.documents.get(obj.file), obj.name),
            drawn=drawn,
            notes=notes,
            evaluated_at=snap.at,
            errors=errors,
        )

    def series(
        self, obj: Objective, end: float, recorded: bool
    ) -> tuple[list[RatePoint], dict[int, list[RatePoint]]]:
        """Bad and total rates over the SLO window (ending at ``end``), and at every alert
        window over the last day: from the recorded base series as the rules compute
        them, or from the raw series when the rules are not loaded."""
        points = WINDOW_POINTS if recorded else RAW_WINDOW_POINTS
        window_step = max(obj.interval, obj.period // points)
        day_step = DAY_STEP if recorded else RAW_DAY_STEP
        asks = [(obj.period, window_step, end - window_step * (obj.period // window_step))]
        asks += [(w, day_step, end - DAY) for w in alert_windows(obj)]
        with ThreadPoolExecutor(max_workers=self.evaluator.concurrency) as pool:
            found = list(
                pool.map(lambda a: self._rates(obj, a[0], a[1], a[2], end, recorded), asks)
            )
        return found[0], dict(zip([a[0] for a in asks[1:]], found[1:], strict=True))

    def _rates(
        self, obj: Objective, seconds: int, step: int, start: float, end: float, recorded: bool
    ) -> list[RatePoint]:
        if recorded:
            bad_expr, total_expr = window_exprs(obj, seconds)
        else:
            q = obj.queries(seconds)
            bad_expr, total_expr = q.bad, q.total or ""
        prom = self.evaluator.prom
        # A step with no sample is no traffic, as status reads an empty answer: rate 0.
        grid = [start + k * step for k in range(int((end - start) // step) + 1)]
        bad = _summed(prom.query_range(bad_expr, start, end, step))
        if obj.is_spend:
            return [RatePoint(t, bad.get(t, 0.0), None) for t in grid]
        total = _summed(prom.query_range(total_expr, start, end, step))
        return [RatePoint(t, bad.get(t, 0.0), total.get(t, 0.0)) for t in grid]

    def _error(self, code: int, message: str) -> Response:
        return code, HTML, pages.render_error(code, message).encode()


def _summed(series: Sequence[Series]) -> dict[float, float]:
    """Every series of a range answer added up per timestamp (a grouped SLO's groups)."""
    out: dict[float, float] = {}
    for s in series:
        for t, v in s.points:
            if math.isfinite(v):
                out[t] = out.get(t, 0.0) + v
    return out


def _instant(query: dict[str, list[str]]) -> float | None:
    raw = (query.get("at") or [""])[0]
    if not raw:
        return None
    value = float(raw)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(raw)
    return value


def _read(file: str) -> str:
    try:
        return Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def read_only_notes(path: str) -> NotesReader:
    """History from a state database another process may be writing: opened read-only,
    never locked, so ``sloengine serve`` runs beside ``sloengine run``."""
    if not Path(path).is_file():
        raise UserError(
            f"the state database {path} does not exist",
            "give --state the file `sloengine run --state` writes, or leave --state out",
        )
    try:
        db = open_read_only(path)
    except sqlite3.Error as exc:
        raise UserError(
            f"cannot read the state database {path}: {exc}",
            "give --state the file `sloengine run --state` writes",
        ) from None
    lock = threading.Lock()

    def read(prefix: str) -> list[NoteRow]:
        with lock:
            return incident_notes(db, prefix)

    return read


def engine_site(services: Sequence[Service], engine: Engine) -> Site:
    """The page of a running scheduler: its last cycle's statuses and its state database."""

    def current() -> Snapshot | None:
        last = engine.last
        return None if last is None else Snapshot(last.statuses, last.at, last.detectors)

    # A client of its own: the page's queries are not the cycle's (its request metric).
    prom = engine.evaluator.prom
    evaluator = Evaluator(
        Prometheus(prom.url, timeout=prom.timeout),
        mode=engine.evaluator.mode,
        concurrency=engine.evaluator.concurrency,
    )
    return Site(services, evaluator, current=current, notes=engine.store.notes)


def serve_site(
    services: Sequence[Service],
    evaluator: Evaluator,
    listen: str,
    notes: NotesReader | None,
    say: Callable[[str], None],
) -> None:
    """``sloengine serve``: the page alone, evaluating on each request, until Ctrl-C."""
    site = Site(services, evaluator, notes=notes)
    host, port = address(listen)
    count = len(site.objectives)
    httpd = serve(host, port, None, lambda: (True, {"slos": count}), site)
    say(
        f"serving the web page of {count} SLOs at {page_url(host, httpd.server_port)} (Ctrl-C to stop)"
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.shutdown()


def page_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown or '127.0.0.1'}:{port}/"
