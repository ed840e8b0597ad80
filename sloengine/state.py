"""Alert state and the notification outbox, in SQLite, so a restart neither re-pages nor forgets.

A state change and the notification it causes are written in one transaction; delivery
reads the outbox afterwards and marks each entry delivered. A crash between the two
leaves the entry pending, and it is delivered on the next cycle: at least once, and the
entry's id lets a notifier recognise a repeat (the Slack notifier does).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from sloengine.alerting import AlertRow, AlertState, Event
from sloengine.conventions import Severity
from sloengine.delivery import Message
from sloengine.errors import UserError

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    key TEXT PRIMARY KEY,          -- service/slo[{group}]/severity/long_window, or service/slo[{group}]
    state TEXT NOT NULL,           -- inactive, pending, firing
    severity TEXT NOT NULL,        -- page or ticket (for an SLO's incident: the highest)
    since REAL NOT NULL,           -- when the condition started holding
    fired_at REAL,
    incident TEXT                  -- id of the firing incident, for threading notifications
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    kind TEXT NOT NULL,            -- firing, escalated, renotify, resolved, blind, sight
    incident TEXT NOT NULL,
    payload TEXT NOT NULL,         -- JSON
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    delivered REAL,
    failed TEXT                    -- a permanent delivery error
);
CREATE TABLE IF NOT EXISTS threads (
    incident TEXT PRIMARY KEY,     -- the first message of an incident, for replies and updates
    channel TEXT NOT NULL,
    ts TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class StateLocked(UserError):
    """Another process holds the state database: two schedulers would page twice."""


class StateDamaged(UserError):
    """The state database fails SQLite's integrity check."""


class StateLost(Exception):
    """The state database was deleted or replaced under a running scheduler."""


class Store:
    """One SQLite file; safe to share between the scheduler thread and the HTTP server.

    One process at a time: a second ``Store`` on the same file (a second ``sloengine
    run``, as a rolling deploy starts one) is refused, since two schedulers reading the
    same outbox deliver every page twice.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._held: BinaryIO | None = None  # the lock, released when closed or collected
        self._inode: int | None = None
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._held = _hold(self.path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            damage = str(self._db.execute("PRAGMA quick_check").fetchone()[0])
        except sqlite3.OperationalError:
            self.close()  # cannot open or write it: not damage, the caller says why
            raise
        except sqlite3.DatabaseError as exc:
            damage = str(exc)
        if damage != "ok":
            self.close()
            raise StateDamaged(
                f"the state database {self.path} is damaged ({damage})",
                "move it aside and start again: a new database starts empty, so open "
                "incidents page once more",
            )
        if self._held is not None:
            self._inode = self.path.stat().st_ino

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._held is not None:
                self._held.close()  # releases the lock
                self._held = None

    def check(self) -> None:
        """Raise StateLost when the file is no longer the one opened: writes would go to a
        deleted file and the next start would page every open incident again."""
        if self._inode is None:
            return
        try:
            inode = self.path.stat().st_ino
        except OSError:
            inode = None
        if inode != self._inode:
            raise StateLost(
                f"the state database {self.path} was deleted or replaced while running; "
                "alert state from now on is not kept"
            )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def alerts(self) -> dict[str, AlertRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, state, severity, since, fired_at, incident FROM alerts"
            )
            return {
                r[0]: AlertRow(r[0], AlertState(r[1]), Severity(r[2]), r[3], r[4], r[5])
                for r in rows.fetchall()
            }

    @staticmethod
    def put_alert(db: sqlite3.Connection, row: AlertRow) -> None:
        db.execute(
            "INSERT INTO alerts (key, state, severity, since, fired_at, incident)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET state=excluded.state,"
            " severity=excluded.severity, since=excluded.since, fired_at=excluded.fired_at,"
            " incident=excluded.incident",
            (row.key, row.state, row.severity, row.since, row.fired_at, row.incident),
        )

    @staticmethod
    def enqueue(
        db: sqlite3.Connection, kind: Event, incident: str, payload: dict[str, Any]
    ) -> None:
        db.execute(
            "INSERT INTO outbox (created, kind, incident, payload) VALUES (?, ?, ?, ?)",
            (time.time(), kind, incident, json.dumps(payload, sort_keys=True)),
        )

    def due(self, now: float) -> list[Message]:
        """Undelivered messages whose next attempt is due, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, incident, payload, attempts FROM outbox"
                " WHERE delivered IS NULL AND failed IS NULL AND next_attempt <= ? ORDER BY id",
                (now,),
            ).fetchall()
        return [Message(r[0], Event(r[1]), r[2], json.loads(r[3]), r[4]) for r in rows]

    def delivered(self, message_id: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE outbox SET delivered = ? WHERE id = ?", (time.time(), message_id))

    def attempting(self, message_id: int) -> None:
        """Count an attempt before it is made: after a crash, the count says one may have landed."""
        with self.transaction() as db:
            db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", (message_id,))

    def retry_later(self, message_id: int, at: float) -> None:
        with self.transaction() as db:
            db.execute("UPDATE outbox SET next_attempt = ? WHERE id = ?", (at, message_id))

    def give_up(self, message_id: int, reason: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE outbox SET failed = ? WHERE id = ?", (reason, message_id))

    def thread(self, incident: str) -> tuple[str, str] | None:
        """(channel, ts) of an incident's first message, if one was sent."""
        with self._lock:
            row = self._db.execute(
                "SELECT channel, ts FROM threads WHERE incident = ?", (incident,)
            ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def put_thread(self, incident: str, channel: str, ts: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO threads (incident, channel, ts) VALUES (?, ?, ?)",
                (incident, channel, ts),
            )

    def failed(self) -> list[tuple[int, str, str]]:
        """(id, kind, reason) of messages given up on."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, failed FROM outbox WHERE failed IS NOT NULL ORDER BY id"
            ).fetchall()
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    def notes(self, incident_prefix: str) -> list[NoteRow]:
        """Every notification of the incidents whose id starts with the prefix (read only)."""
        with self._lock:
            return incident_notes(self._db, incident_prefix)

    def pending_count(self) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT count(*) FROM outbox WHERE delivered IS NULL AND failed IS NULL"
            ).fetchone()
        return int(row[0])

    def get(self, name: str, default: str = "") -> str:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return default if row is None else str(row[0])

    def put(self, name: str, value: str) -> None:
        """Set a meta value in a transaction of its own."""
        with self.transaction() as db:
            self.set(db, name, value)

    @staticmethod
    def set(db: sqlite3.Connection, name: str, value: str) -> None:
        db.execute(
            "INSERT INTO meta (name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value=excluded.value",
            (name, value),
        )


# (incident, kind, created, severity, attempts, delivered, failed) of one outbox entry.
NoteRow = tuple[str, str, float, str, int, float | None, str | None]


def open_read_only(path: str | Path) -> sqlite3.Connection:
    """The state database for reading only, beside a running scheduler: no lock taken,
    nothing created or written (``sloengine serve --state``)."""
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    db = sqlite3.connect(uri, uri=True, check_same_thread=False)
    db.execute("SELECT count(*) FROM outbox").fetchone()  # fails now if it is no state db
    return db


def incident_notes(db: sqlite3.Connection, incident_prefix: str) -> list[NoteRow]:
    """The outbox entries of the incidents whose id starts with ``incident_prefix``."""
    rows = db.execute(
        "SELECT incident, kind, created, payload, attempts, delivered, failed FROM outbox"
        " WHERE substr(incident, 1, ?) = ? ORDER BY id",
        (len(incident_prefix), incident_prefix),
    ).fetchall()
    out: list[NoteRow] = []
    for incident, kind, created, payload, attempts, delivered, failed in rows:
        try:
            severity = str(json.loads(payload).get("severity") or "")
        except (ValueError, AttributeError):
            severity = ""
        out.append(
            (str(incident), str(kind), float(created), severity, int(attempts), delivered, failed)
        )
    return out


def _hold(path: Path) -> BinaryIO:
    """An exclusive lock on ``<db>.lock`` for as long as the returned file is open."""
    lock = path.with_name(path.name + ".lock")
    handle = lock.open("a+b")
    fd = handle.fileno()
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
        handle.close()
        raise StateLocked(
            f"the state database {path} is in use by sloengine run (pid {holder})",
            "run one scheduler per state database: stop the other, or give this one its "
            "own --state",
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return handle
